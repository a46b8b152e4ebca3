"""The policy file reproduces the source document's plan exactly, and the registry matches it."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest
import yaml

from yuhang_skills.core.policy import Plan, Policy, load_sites
from yuhang_skills.core.settings import POLICY_DIR

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
            "village": cell(v["provincial"], v["district"], v["sites"], "家"),
            "station": cell(s["provincial"], s["district"], s["sites"], "个"),
            "base": cell(b["provincial"], b["district"], b["sites"], "家"),
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
        assert village["provincial"] * 10_000 == village["sites"] * grant["village"]["grant_per_site_yuan"]
        assert station["provincial"] * 10_000 == station["sites"] * (
            grant["station"]["grant_per_site_yuan"] + grant["station"]["excellent_bonus_yuan"])
        assert (base["provincial"] + base["district"]) * 10_000 == base["sites"] * policy.base_subsidy_cap_yuan
    assert [policy.provincial_tranche_yuan(y) for y in (2025, 2026, 2027)] == [3_000_000, 3_000_000, 2_000_000]
    assert sum(policy.provincial_tranche_yuan(y) for y in (2025, 2026, 2027)) == 8_000_000
    assert policy.performance_tranche_yuan == 2_000_000
    # The 2027 provincial line (22 villages, 3 stations) is exactly the tranche at stake.
    assert policy.budget_table()[2].provincial_wan * 10_000 == policy.performance_tranche_yuan
    assert policy.provincial_received_yuan(2026) == 6_000_000


def test_seed_targets(policy):
    from decimal import Decimal

    assert policy.targets["station"]["person_times_per_year"] == 500
    assert policy.targets["base"]["person_times_per_year"] == 1000
    assert Decimal(policy.targets["base"]["pass_rate"]) == Decimal("0.90")
    assert Decimal(policy.targets["base"]["satisfaction_rate"]) == Decimal("0.90")
    assert policy.implementation_years == [2025, 2026]
    assert policy.female_retirement_base == 55


def test_evaluation_weights_follow_the_mof_frame(policy):
    dims = {k: v["weight"] for k, v in policy.evaluation["dimensions"].items()}
    assert dims == {"budget_execution": 10, "outputs": 50, "benefits": 30, "satisfaction": 10}
    assert [(b["grade"], b["min_score"]) for b in policy.evaluation["grades"]] == [
        ("优", 90), ("良", 80), ("中", 60), ("差", 0)]


def test_inconsistent_weights_are_refused(tmp_path):
    raw = yaml.safe_load((POLICY_DIR / "yuhang.yaml").read_text(encoding="utf-8"))
    raw["evaluation"]["indicators"][0]["weight"] = 11
    bad = tmp_path / "yuhang.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="budget_execution"):
        Policy.load(bad)


def test_registry_has_every_site_in_its_batch():
    sites = load_sites(POLICY_DIR / "sites.csv")
    assert len(sites) == 67
    by = Counter((s.programme, s.batch_year) for s in sites)
    policy = Policy.load(POLICY_DIR / "yuhang.yaml")
    for year in policy.plan_years:
        for programme in ("village", "station", "base"):
            assert by[(programme, year)] == policy.plan_cell(year, programme)["sites"], (programme, year)
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
    with pytest.raises(ValueError, match="duplicate site codes"):
        load_sites(bad)


def test_plan_loads_from_settings(plan):
    assert isinstance(plan, Plan)
    assert len(plan.active_sites(2025)) == 19 and len(plan.active_sites(2026)) == 41
