"""The policy file reproduces the source document's plan exactly, and the registry matches it."""

from __future__ import annotations

import json
import shutil
import typing
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pydantic
import pytest
import yaml

from yuhang_skills.evaluation import score
from yuhang_skills.core.policy import Measure, Plan, Policy, PolicyError, load_contract, load_sites
from yuhang_skills.core.settings import POLICY_DIR

POLICY_FILE = POLICY_DIR / "yuhang.yaml"

# 余杭区技能型社会建设专项激励资金使用方案 (2025-12-18), 二、建设计划, in 万元, copied from the
# document: village / station / base cells, then provincial, district and subtotal.
SEED_BUDGET_TABLE = {
    "2025": {"village": "省级资金75万元(15家)", "station": "省级资金90万元(3个)", "base": "区级资金300万元(1家)",
             "provincial": 165, "district": 300, "subtotal": 465},
    "2026": {"village": "省级资金75万元(15家)", "station": "省级资金180万元(6个)",
             "base": "省级资金180万元,区级资金120万元(1家)", "provincial": 435, "district": 120, "subtotal": 555},
    "2027": {"village": "省级资金110万元(22家)", "station": "省级资金90万元(3个)", "base": "区级资金300万元(1家)",
             "provincial": 200, "district": 300, "subtotal": 500},
    "total": {"village": "260万元", "station": "360万元", "base": "900万元",
              "provincial": 800, "district": 720, "subtotal": 1520},
}
TOWNS = ["五常街道", "仁和街道", "良渚街道", "闲林街道", "仓前街道", "余杭街道", "中泰街道", "瓶窑镇", "径山镇",
         "黄湖镇", "鸬鸟镇", "百丈镇"]


def render_budget_table(policy: Policy) -> dict[str, dict]:
    """The plan as the document prints it, built only from the policy file."""

    def cell(provincial: int, district: int, sites: int, unit: str) -> str:
        parts = ([f"省级资金{provincial}万元"] if provincial else []) + ([f"区级资金{district}万元"] if district else [])
        return ",".join(parts) + f"({sites}{unit})"

    table: dict[str, dict] = {}
    for row in policy.budget_table():
        if row.year == "total":
            table["total"] = {"village": f"{row.village_wan}万元", "station": f"{row.station_wan}万元",
                              "base": f"{row.base_provincial_wan + row.base_district_wan}万元",
                              "provincial": row.provincial_wan, "district": row.district_wan,
                              "subtotal": row.subtotal_wan}
            continue
        year = int(row.year)
        v, s = policy.plan_cell(year, "village"), policy.plan_cell(year, "station")
        b = policy.plan_cell(year, "base")
        table[row.year] = {
            "village": cell(v.provincial, v.district, v.sites, "家"),
            "station": cell(s.provincial, s.district, s.sites, "个"),
            "base": cell(b.provincial, b.district, b.sites, "家"),
            "provincial": row.provincial_wan, "district": row.district_wan, "subtotal": row.subtotal_wan,
        }
    return table


@pytest.fixture
def policy() -> Policy:
    return Policy.load(POLICY_DIR / "yuhang.yaml")


def test_budget_table_reproduces_the_source_document_cell_for_cell(policy):
    assert render_budget_table(policy) == SEED_BUDGET_TABLE


def _mutations():
    yield ["budget_plan_wan_yuan", 2025, "village", "provincial"], 76
    yield ["budget_plan_wan_yuan", 2026, "base", "district"], 121
    yield ["budget_plan_wan_yuan", 2027, "station", "sites"], 4
    yield ["budget_plan_wan_yuan", 2026, "station", "provincial"], 170


@pytest.mark.parametrize("path,value", list(_mutations()), ids=lambda v: str(v))
def test_changing_any_plan_number_breaks_the_table(tmp_path, policy, path, value):
    raw = yaml.safe_load((POLICY_DIR / "yuhang.yaml").read_text(encoding="utf-8"))
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    changed = tmp_path / "yuhang.yaml"
    changed.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert render_budget_table(Policy.load(changed)) != SEED_BUDGET_TABLE


def test_per_site_money_and_tranches_agree_with_the_plan(policy):
    grant = {p: policy.programme(p) for p in ("village", "station", "base")}
    for year in policy.plan_years:
        village, station, base = (policy.plan_cell(year, p) for p in ("village", "station", "base"))
        # villages: 5万 each; stations: 25万 plus the 5万 excellent-station reserve; bases: the 300万 cap
        assert village.provincial * 10_000 == village.sites * grant["village"].grant_per_site_yuan
        assert station.provincial * 10_000 == station.sites * (
            grant["station"].grant_per_site_yuan + grant["station"].excellent_bonus_yuan)
        assert (base.provincial + base.district) * 10_000 == base.sites * policy.base_subsidy_cap_yuan
    assert [policy.provincial_tranche_yuan(y) for y in (2025, 2026, 2027)] == [3_000_000, 3_000_000, 2_000_000]
    assert sum(policy.provincial_tranche_yuan(y) for y in (2025, 2026, 2027)) == 8_000_000
    assert policy.performance_tranche_yuan == 2_000_000
    # The 2027 provincial line (22 villages, 3 stations) is exactly the tranche at stake.
    assert policy.budget_table()[2].provincial_wan * 10_000 == policy.performance_tranche_yuan
    assert policy.provincial_received_yuan(2026) == 6_000_000


def test_seed_targets(policy):
    assert policy.targets.of("station").person_times_per_year == 500
    assert policy.targets.of("base").person_times_per_year == 1000
    assert policy.targets.of("base").pass_rate == Decimal("0.90")
    assert policy.targets.of("base").satisfaction_rate == Decimal("0.90")
    assert policy.implementation_years == [2025, 2026]
    assert policy.female_retirement_base == 55


def test_evaluation_weights_follow_the_mof_frame(policy):
    dims = {k: v.weight for k, v in policy.evaluation.dimensions.items()}
    assert dims == {"budget_execution": 10, "outputs": 50, "benefits": 30, "satisfaction": 10}
    assert [(b.grade, b.min_score) for b in policy.evaluation.grades] == [
        ("优", 90), ("良", 80), ("中", 60), ("差", 0)]


def test_inconsistent_weights_are_refused(tmp_path):
    raw = yaml.safe_load((POLICY_DIR / "yuhang.yaml").read_text(encoding="utf-8"))
    raw["evaluation"]["indicators"][0]["weight"] = 11
    bad = tmp_path / "yuhang.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"evaluation\.dimensions\.budget_execution\.weight: indicators of "
                                          r"dimension budget_execution weigh 11, the dimension 10"):
        Policy.load(bad)


def test_registry_has_every_site_in_its_batch():
    sites = load_sites(POLICY_DIR / "sites.csv")
    assert len(sites) == 67
    by = Counter((s.programme, s.batch_year) for s in sites)
    policy = Policy.load(POLICY_DIR / "yuhang.yaml")
    for year in policy.plan_years:
        for programme in ("village", "station", "base"):
            assert by[(programme, year)] == policy.plan_cell(year, programme).sites, (programme, year)
    codes = [s.site_code for s in sites]
    assert codes == [f"V{i:02d}" for i in range(1, 53)] + [f"S{i:02d}" for i in range(1, 13)] + ["B01", "B02", "B03"]
    stations = [s for s in sites if s.programme == "station"]
    assert [s.town for s in stations] == TOWNS
    assert {s.site_code: s.industry_focus for s in sites if s.programme == "base"} == {
        "B01": "digital_economy", "B02": "low_altitude", "B03": "elderly_childcare"}
    active = {(s.batch_year, s.active_from.isoformat()) for s in sites}
    assert active == {(2025, "2025-07-01"), (2026, "2026-03-01"), (2027, "2027-03-01")}
    assert all(s.contact_email for s in sites)


def test_first_year_months_active():
    plan_sites = {s.site_code: s for s in load_sites(POLICY_DIR / "sites.csv")}
    assert plan_sites["S01"].months_active(2025) == 6   # 2025 station: 6/12 of 500
    assert plan_sites["B02"].months_active(2026) == 10  # 2026 base: 10/12 of 1,000
    assert plan_sites["B02"].months_active(2025) == 0
    assert plan_sites["S01"].months_active(2026) == 12


def test_registry_errors_are_named(tmp_path):
    bad = tmp_path / "sites.csv"
    shutil.copy(POLICY_DIR / "sites.csv", bad)
    with open(bad, "a", encoding="utf-8") as fh:
        fh.write("V01,village,重复,五常街道,2025,2025-07-01,,,,\n")
    with pytest.raises(PolicyError, match=rf"{bad}:69: site_code: duplicate site codes \('V01' is on line 2 too\)"):
        load_sites(bad)


def test_plan_loads_from_settings(plan):
    assert isinstance(plan, Plan)
    assert len(plan.active_sites(2025)) == 19 and len(plan.active_sites(2026)) == 41


# --- the policy file is typed and checked once, at load -------------------------------------------
def _edited(tmp_path: Path, old: str, new: str, occurrence: int = 1, source: Path = POLICY_FILE) -> tuple[Path, int]:
    """A copy of ``source`` with the ``occurrence``-th line equal to ``old`` replaced by ``new`` (which
    may span lines), and that line's number."""
    lines = source.read_text(encoding="utf-8").split("\n")
    matches = [n for n, line in enumerate(lines) if line == old]
    at = matches[occurrence - 1]
    lines[at] = new
    edited = tmp_path / source.name
    edited.write_text("\n".join(lines), encoding="utf-8")
    return edited, at + 1


def _error(load, path: Path) -> str:
    with pytest.raises(PolicyError) as caught:
        load(path)
    return str(caught.value)


def test_the_shipped_policy_contract_and_registry_load():
    plan = Plan.load(POLICY_FILE, POLICY_DIR / "sites.csv", POLICY_DIR / "contract.yaml")
    assert plan.policy.version == "yuhang-2025-12-18/v1"
    assert [i.measure for i in plan.policy.evaluation.indicators][:2] == [
        "provincial_execution_rate", "mean_site_year_attainment"]
    assert plan.policy.release.rule == "banded" and plan.policy.release.banded.full_at == Decimal(90)
    assert plan.policy.implementation_period.end.isoformat() == "2026-12-31"
    assert plan.policy.key_groups == ("rural_migrant", "unemployed", "graduate", "disabled", "veteran", "low_income")
    assert plan.contract.kinds["roster"].columns["level"].enum == "level"
    assert plan.contract.enums["bool"]["true"][:2] == ("是", "Y")


def test_the_policy_is_frozen_and_loaded_once_per_content(tmp_path):
    policy = Policy.load(POLICY_FILE)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        policy.evaluation_year = 2028
    assert Policy.load(POLICY_FILE) is policy
    copy = tmp_path / "yuhang.yaml"
    shutil.copy(POLICY_FILE, copy)
    first = Policy.load(copy)
    assert first is not policy and Policy.load(copy) is first
    copy.write_text(copy.read_text(encoding="utf-8").replace("evaluation_year: 2027", "evaluation_year: 2028"),
                    encoding="utf-8")
    assert Policy.load(copy).evaluation_year == 2028


def test_every_measure_the_policy_may_name_is_registered():
    assert set(score.MEASURES) == set(typing.get_args(Measure))


def test_a_misspelt_measure_is_named_with_its_file_line_and_key(tmp_path):
    bad, line = _edited(tmp_path, "      measure: mean_site_year_attainment", "      measure: mean_site_year_attainmnet",
                        occurrence=2)
    assert line == 163
    assert _error(Policy.load, bad) == (
        f"{bad}:163: evaluation.indicators[2].measure: 'mean_site_year_attainmnet' is not one of "
        "'provincial_execution_rate', 'mean_site_year_attainment', 'village_outcome_reporting_rate', "
        "'share_of_person_times', 'village_skill_coverage' or 'satisfaction_rate'")


def test_a_measure_without_the_keys_it_reads_is_refused(tmp_path):
    bad, _ = _edited(tmp_path, "      column: key_group_person_times", "")
    assert _error(Policy.load, bad) == (f"{bad}:181: evaluation.indicators[5].column: missing key (measure "
                                        f"share_of_person_times reads it)")
    bad, line = _edited(tmp_path, "      respondent_type: worker", "      respondent_type: worker\n      column: key_group_person_times")
    assert _error(Policy.load, bad) == (f"{bad}:{line + 1}: evaluation.indicators[8].column: not read by measure "
                                        f"satisfaction_rate (it reads ['programmes', 'respondent_type'])")


def test_an_indicator_without_a_yearly_target_is_named(tmp_path):
    bad, line = _edited(tmp_path, "      indicator: pass_rate", "      indicator: dropout_rate")
    assert line == 173
    assert _error(Policy.load, bad) == (f"{bad}:173: evaluation.indicators[3].indicator: targets.base sets no "
                                        f"yearly target 'dropout_rate'")


def test_an_unknown_key_is_named(tmp_path):
    bad, line = _edited(tmp_path, "  max_class_hours: 2000", "  max_class_hours: 2000\n  max_class_minutes: 5")
    assert _error(Policy.load, bad) == f"{bad}:{line + 1}: intake.max_class_minutes: unknown key"


def test_a_value_of_the_wrong_type_is_named(tmp_path):
    bad, line = _edited(tmp_path, "evaluation_year: 2027              # [seed] 2027年开展绩效评估",
                        "evaluation_year: next year")
    assert _error(Policy.load, bad) == (f"{bad}:{line}: evaluation_year: Input should be a valid integer, unable to "
                                        f"parse string as an integer (got 'next year')")


def test_weights_that_do_not_sum_to_100_are_named(tmp_path):
    bad, line = _edited(tmp_path, "    outputs:          {name_zh: 产出, weight: 50}",
                        "    outputs:          {name_zh: 产出, weight: 51}")
    assert line == 141
    assert _error(Policy.load, bad) == f"{bad}:139: evaluation.dimensions: dimension weights sum to 101, not 100"


def test_a_date_that_does_not_exist_is_named(tmp_path):
    bad, line = _edited(tmp_path, "  end: 2026-12-31", "  end: 2026-02-30")
    message = _error(Policy.load, bad)
    assert message.startswith(f"{bad}:{line}: implementation_period.end: Input should be a valid date")
    assert message.endswith("(got '2026-02-30')")


def test_a_period_that_ends_before_it_starts_is_named(tmp_path):
    bad, line = _edited(tmp_path, "  end: 2026-12-31", "  end: 2024-12-31")
    assert _error(Policy.load, bad) == f"{bad}:{line}: implementation_period.end: 2024-12-31 is before start 2025-01-01"


def test_a_code_the_contract_does_not_know_is_named(tmp_path):
    bad, line = _edited(tmp_path, "key_groups: [rural_migrant, unemployed, graduate, disabled, veteran, low_income]"
                                  "   # [seed]", "key_groups: [rural_migrant, unemployed, pensioner]")
    with pytest.raises(PolicyError) as caught:
        Plan.load(bad, POLICY_DIR / "sites.csv", POLICY_DIR / "contract.yaml")
    assert str(caught.value).startswith(f"{bad}:{line}: key_groups[2]: 'pensioner' is not a code of the contract's "
                                        f"enumeration group (rural_migrant, unemployed, graduate, ")


def test_rules_across_sections_are_named(tmp_path):
    bad, line = _edited(tmp_path, "  rule: banded", "  rule: stepped")
    assert _error(Policy.load, bad) == f"{bad}:{line}: release.rule: 'stepped' is not one of 'banded', 'linear' or 'dli'"
    bad, line = _edited(tmp_path, "          amount_yuan: 600000", "          amount_yuan: 500000")
    assert _error(Policy.load, bad) == (f"{bad}:241: release.rules.dli.tranches: release.rules.dli tranches sum to "
                                        f"1900000 yuan, the performance tranche is 2000000")
    bad, line = _edited(tmp_path, "    - {grade: 良, min_score: 80}", "    - {grade: 良, min_score: 95}")
    assert _error(Policy.load, bad) == (f"{bad}:134: evaluation.grades: grade bands must be listed highest first, "
                                        f"each with its own min_score")
    bad, line = _edited(tmp_path, "      severity: review            # (already left out of the execution rate, which "
                                  "counts eligible uses only)", "      severity: ignore")
    assert _error(Policy.load, bad) == (f"{bad}:{line}: integrity.checks.ineligible_provincial.severity: 'ignore' is "
                                        f"not one of 'exclude' or 'review'")


def test_a_file_that_is_not_yaml_is_named(tmp_path):
    bad, line = _edited(tmp_path, "  rule: banded", "  rule: [banded")
    assert _error(Policy.load, bad).startswith(f"{bad}:")
    assert "not valid YAML" in _error(Policy.load, bad)


def test_the_contract_is_checked_with_file_line_and_key(tmp_path):
    source = POLICY_DIR / "contract.yaml"
    bad, line = _edited(tmp_path, "      level:          {type: enum:level, required: true, aliases: [等级, 技能等级]}",
                        "      level:          {type: enum:levels, required: true, aliases: [等级, 技能等级]}",
                        source=source)
    assert _error(load_contract, bad).startswith(f"{bad}:{line}: kinds.roster.columns.level.type: 'enum:levels': "
                                                 f"the contract has no enumeration 'levels'")
    bad, line = _edited(tmp_path, "  header_min_matches: 3", "  header_min_matches: 3\n  header_max_matches: 9",
                        source=source)
    assert _error(load_contract, bad) == f"{bad}:{line + 1}: inbox.header_max_matches: unknown key"


def test_the_contract_hashed_into_the_fingerprint_is_the_file_as_read():
    contract = load_contract(POLICY_DIR / "contract.yaml")
    as_read = yaml.safe_load((POLICY_DIR / "contract.yaml").read_text(encoding="utf-8"))
    assert json.dumps(contract.source, sort_keys=True, ensure_ascii=False, default=str) == json.dumps(
        as_read, sort_keys=True, ensure_ascii=False, default=str)


def test_registry_errors_name_the_line_and_column(tmp_path):
    bad = tmp_path / "sites.csv"
    shutil.copy(POLICY_DIR / "sites.csv", bad)
    with open(bad, "a", encoding="utf-8") as fh:
        fh.write("X01,hamlet,某村,五常街道,2025,2025-07-01,,,,\n")
    with pytest.raises(PolicyError, match=rf"^{bad}:69: programme: 'hamlet' is not one of 'village', 'station' or "
                                          rf"'base'$"):
        load_sites(bad)
