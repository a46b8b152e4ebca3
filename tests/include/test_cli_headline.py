"""The command line's headline shows the release, the recoveries and the net release."""

from __future__ import annotations

from yuhang_skills.cli import format_headline


def test_headline_prints_recoveries_and_net_release():
    headline = {"evaluation_year": 2027, "as_of": "2027-02-15", "score": "88.33", "grade": "良",
                "released_yuan": "1766600.00", "tranche_yuan": "2000000.00", "release_rule": "banded",
                "policy_version": "yuhang-2025-12-18/v1", "recoveries_yuan": "60000.00",
                "net_released_yuan": "1706600.00", "workbook": "/out/evaluation_2027.xlsx",
                "report": "/out/evaluation_2027.html"}
    lines = format_headline({"headline": headline, "seconds": {"yuhang_evaluation": 1.2}}, "sqlite:///w.sqlite")
    assert "  released     1,766,600.00 of 2,000,000.00 yuan (rule: banded, policy yuhang-2025-12-18/v1)" in lines
    assert "  recoveries   60,000.00 yuan (sites not rectified by their deadline)" in lines
    assert "  net release  1,706,600.00 yuan" in lines
    assert "  report       /out/evaluation_2027.html" in lines
