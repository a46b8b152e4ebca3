"""The catalogue of problem codes: checked at load, and in step with the code that uses it.

Code names a catalogue entry as a literal (``catalogue.text("intake.file_location.period_folder")``)
or, for a family of codes keyed by a value, as a prefix the value completes
(``catalogue.text(f"intake.not_processed.{code}")``, ``catalogue_zh("watchdog.indicator." ~ ...)``
in a template, a whole code list ``catalogue.labels("evaluation.unit.")``). Every literal must be in the catalogue, every entry must be named by a literal or
belong to a family in use, and each family holds exactly the values its code can produce.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "include" / "yuhang_skills"
USE = re.compile(r"""(?:catalogue\.(?:text|entry|zh|family|labels)|catalogue_zh)\(\s*f?["']([a-z0-9_.]+)""")


def _uses() -> tuple[set[str], set[str]]:
    """(codes named literally, family prefixes) in the package's code and templates."""
    literal, families = set(), set()
    for path in sorted(PACKAGE.rglob("*")):
        if path.suffix not in (".py", ".j2") or "catalogue" in path.name:
            continue
        for name in USE.findall(path.read_text(encoding="utf-8")):
            (families if name.endswith(".") else literal).add(name)
    return literal, families


def test_every_code_used_is_in_the_catalogue_and_every_entry_is_used():
    from yuhang_skills.core import catalogue

    codes = set(catalogue.entries())
    literal, families = _uses()
    assert literal and families
    assert sorted(literal - codes) == [], "codes used in the code but missing from the catalogue"
    unused = sorted(c for c in codes if c not in literal and not any(c.startswith(f) for f in families))
    assert unused == [], "catalogue entries no code uses"
    empty = sorted(f for f in families if not any(c.startswith(f) for c in codes))
    assert empty == [], "code looks up families the catalogue does not have"


def _family(prefix: str) -> set[str]:
    from yuhang_skills.core import catalogue

    return {c.removeprefix(prefix) for c in catalogue.entries() if c.startswith(prefix)}


def test_each_family_holds_exactly_the_values_its_code_produces():
    from yuhang_skills.core.policy import Plan
    from yuhang_skills.core.settings import load_settings
    from yuhang_skills.indicators import integrity
    from yuhang_skills.intake.discover import SKIP_REASONS
    from yuhang_skills.watchdog.missing import FIX_STATUSES

    plan = Plan.from_settings(load_settings())
    assert _family("integrity.") == set(integrity.check_names(plan))
    assert _family("intake.not_processed.") == set(SKIP_REASONS)
    assert _family("watchdog.file_status.") == set(FIX_STATUSES)
    assert _family("watchdog.indicator.") == {"person_times", "pass_rate"}  # what early_warnings projects


def test_every_entry_renders_in_both_languages_with_its_fix():
    from yuhang_skills.core import catalogue

    assert catalogue.text("intake.file_location.period_folder", period="2026-3") == (
        "period folder '2026-3' is not YYYY-MM", "期间目录不是 YYYY-MM 格式 (period folder '2026-3' is not YYYY-MM)")
    en, zh = catalogue.text("intake.file_location.path_too_long", limit=500)
    assert en == "the path is longer than 500 characters; use <YYYY-MM>/<site code>/<kind>.<csv|xlsx>"
    assert zh == "文件路径超过 500 个字符,请按 <年-月>/<站点编码>/<类型>.<csv|xlsx> 存放"
    with pytest.raises(KeyError, match="not in the catalogue"):
        catalogue.text("intake.file_location.no_such_problem")


@pytest.mark.parametrize("text, error", [
    ("a.b:\n  zh: 甲\n  en: a\na.b:\n  zh: 乙\n  en: b\n", r"code 'a\.b' appears twice \(lines 1 and 4\)"),
    ("a.b:\n  en: a\n", "code 'a.b': no zh text"),
    ("a.b:\n  zh: 甲\n  en: ' '\n", "code 'a.b': no en text"),
    ("a.b:\n  zh: 甲\n  en: a\n  fix_en: do this\n", "a fix needs both fix_zh and fix_en"),
    ("a.b:\n  zh: 甲\n  en: a\n  note: x\n", r"unknown keys \['note'\]"),
    ("a.b:\n  zh: 甲{}\n  en: a{}\n", "zh has a field without a name"),
    ("- a\n- b\n", "expected a mapping of codes to entries"),
])
def test_a_broken_catalogue_is_refused_at_load_with_the_file_and_code_named(tmp_path, text, error):
    from yuhang_skills.core import catalogue

    path = tmp_path / "catalogue.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(catalogue.CatalogueError, match=error) as raised:
        catalogue.load(path)
    assert str(path) in str(raised.value)
