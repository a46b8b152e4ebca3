"""Great Expectations Data Docs pages show what sites sent as text, one page per site and kind.

The pages are opened in the Debian Chromium (headless, ``--dump-dom``): a value crafted to run
script (``<img src=x onerror=…>``) must stay text, and a page of one site must not show another
site's values although both sites' files were validated in one suite run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from test_intake import PERIOD, Box, box, finance_row  # noqa: F401 - box is a fixture
from yuhang_skills.intake import data_docs

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ATTACK = "<img src=x onerror=\"document.body.setAttribute('data-pwned','yes')\">"


def dump_dom(page: Path, tmp_path: Path) -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is needed for this test (apt-get install chromium); not found at {CHROMIUM}")
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'chrome'}",
         "--virtual-time-budget=3000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0 and "<body" in out.stdout, out.stderr[-2000:]
    return out.stdout


def test_site_values_stay_text_and_each_site_has_its_own_page(box: Box, tmp_path):
    attacker = box.csv(f"{PERIOD}/S01/finance.csv", "finance",
                       [finance_row("S01"), finance_row("S01", category=ATTACK)])
    other = box.csv(f"{PERIOD}/S02/finance.csv", "finance",
                    [finance_row("S02", category="S02专用招待费"), finance_row("S02")])
    box.run()
    assert box.sub(attacker)["status"] == box.sub(other)["status"] == "partially_accepted"
    docs = box.settings.data_docs_dir / "validations" / "finance"
    pages = {site: sorted((docs / site).glob("*.html")) for site in ("S01", "S02")}
    assert all(len(p) == 1 for p in pages.values()), pages
    s01, s02 = pages["S01"][0].read_text(encoding="utf-8"), pages["S02"][0].read_text(encoding="utf-8")
    assert "S02专用招待费" in s02 and "S02专用招待费" not in s01
    assert "onerror" in s01 and "onerror" not in s02
    dom = dump_dom(pages["S01"][0], tmp_path)
    assert "data-pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]
    assert "<img src=\"x\"" not in dom and "&lt;img src=x onerror=" in dom


def test_an_unescaped_value_would_run_in_chromium(tmp_path):
    """The check above can fail: the same value unescaped in a page does run in Chromium."""
    page = tmp_path / "raw.html"
    page.write_text(f"<!doctype html><html><body><p>{ATTACK}</p></body></html>", encoding="utf-8")
    dom = dump_dom(page, tmp_path)
    assert 'data-pwned="yes"' in dom


def test_result_for_rows_keeps_only_the_rows_given(box: Box):
    box.csv(f"{PERIOD}/S01/finance.csv", "finance", [finance_row("S01", category="甲"), finance_row("S01")])
    box.run()
    page = next((box.settings.data_docs_dir / "validations" / "finance" / "S01").glob("*.html"))
    assert "甲" in page.read_text(encoding="utf-8")
    assert data_docs._neutral({"a": ["<b>"]}) == {"a": ["&lt;b&gt;"]}
