"""The expectation suites kept as data: GX accepts every expectation (it silently drops malformed
ones), each carries its reasons, and every $PARAMETER is supplied from the policy folder."""

from __future__ import annotations

import json

import pytest

from yuhang_skills.core.settings import EXPECTATIONS_DIR
from yuhang_skills.intake.validate import SUITE_KINDS, SuiteRunner, expectation_parameters, load_suite_document

# The number of expectations written in each suite file. Change it together with the suite.
EXPECTED_COUNTS = {"roster": 35, "finance": 17, "survey": 7, "outcomes": 13}


@pytest.fixture(scope="module")
def runner() -> SuiteRunner:
    return SuiteRunner(EXPECTATIONS_DIR)


@pytest.mark.parametrize("kind", SUITE_KINDS)
def test_every_written_expectation_is_accepted_by_gx(runner, kind):
    written = load_suite_document(EXPECTATIONS_DIR, kind)["expectations"]
    assert len(written) == EXPECTED_COUNTS[kind]
    assert runner.expectation_count(kind) == EXPECTED_COUNTS[kind]


@pytest.mark.parametrize("kind", SUITE_KINDS)
def test_every_expectation_names_its_column_and_reasons(kind):
    for e in load_suite_document(EXPECTATIONS_DIR, kind)["expectations"]:
        meta = e["meta"]
        assert meta["column"] and meta["reason_zh"] and meta["reason_en"], e
        assert any("\u4e00" <= ch <= "\u9fff" for ch in meta["reason_zh"]), e


def test_every_parameter_is_supplied(plan):
    supplied = expectation_parameters(plan)
    wanted = set()
    for kind in SUITE_KINDS:
        text = json.dumps(load_suite_document(EXPECTATIONS_DIR, kind))
        doc = json.loads(text)
        for e in doc["expectations"]:
            for value in e["kwargs"].values():
                if isinstance(value, dict) and "$PARAMETER" in value:
                    wanted.add(value["$PARAMETER"])
    assert wanted and wanted <= set(supplied), wanted - set(supplied)


def test_a_malformed_expectation_is_refused_loudly(tmp_path):
    for kind in SUITE_KINDS:
        (tmp_path / f"{kind}_suite.json").write_text(
            (EXPECTATIONS_DIR / f"{kind}_suite.json").read_text(encoding="utf-8"), encoding="utf-8")
    doc = json.loads((tmp_path / "survey_suite.json").read_text(encoding="utf-8"))
    doc["expectations"].append({"type": "expect_column_values_to_be_in_set", "kwargs": {"colum": "rating"},
                                "meta": {"column": "rating", "reason_zh": "坏", "reason_en": "bad"}})
    (tmp_path / "survey_suite.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(Exception):
        SuiteRunner(tmp_path)
