"""A hand-built scenario in which every evaluation rule fires, on SQLite and PostgreSQL.

Staged rows and submissions are inserted directly for a few sites (a registry cut down to them and
to the 2027 batch), the SQL models and the evaluation run as in production, and every figure is
compared with a number worked out by hand: the arithmetic is in the comments next to each
expected value, never delegated to the product code.

The scenario (as of 2027-02-15; targets: station 500, base 1,000 person-times a year, pro-rated
by months active in the first year: 2025 sites from July = 6/12, 2026 sites from March = 10/12):

    site-year  person-times  assessed/passed  satisfied/answers (worker; enterprise)
    S01 2025   260 / 250                       10/10; 2/2
    S01 2026   499 / 500  (a station at 499)   19/20; 4/4   rectification open, note only
    S02 2025   200 / 250                        8/10; 1/2   overdue, no decision: recovery
    S02 2026   500 / 500                       18/20; 4/4
    S03 2025   240 / 250                        9/10; 2/2   rectified 2026-03-20, in time
    S03 2026   520 / 500                       19/20; 3/4
    S04 2026   420 / 416.67 (pro-rated)        18/20; 10/10  the one excellent station
    S05 2026   450 / 416.67                    15/20; 2/2   satisfaction 77.27%
    B01 2025   500 / 500     440/500 = 88%     15/16; 4/4   pass rate rectified late: overdue
    B01 2026  1000 / 1000    899/1000 = 89.9%  28/30; 9/10
    B02 2026   800 / 833.33  800/800           13/16; 4/4   satisfaction 85%
    V01 2025 and 2026 report outcomes (8 of 10 and 9 of 10 low-income households with a skill);
    V16 2026 reports nothing.

Money: provincial project training 1,000,000.00 (S01) and teacher training 500,000.50 (S04),
an ineligible provincial payment of 12,345.67 (S03, category other), 20,000.00 self-raised
(S04), and equipment paid by the district: 7,000,000.00 at B01 (subsidy capped at 3,000,000) and
3,000,000.00 at B02.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from yuhang_skills.indicators import layers, models
from yuhang_skills.core import warehouse
from yuhang_skills.core.migrations import migrate
from yuhang_skills.evaluation.outputs import evaluate, write_evaluation
from yuhang_skills.evaluation.plan import allocate_plan
from yuhang_skills.evaluation.recovery import rectification_records
from yuhang_skills.evaluation.score import SiteYearTarget
from yuhang_skills.core.policy import Plan, Policy
from yuhang_skills.evaluation.rectification import Decisions, RectificationFileError, load_decisions, status
from yuhang_skills.core.settings import POLICY_DIR, SQL_DIR

AS_OF = dt.date(2027, 2, 15)
SCENARIO_SITES = {"V01", "V16", "S01", "S02", "S03", "S04", "S05", "B01", "B02"}
RECTIFICATIONS = (
    "site_code,year,indicator,rectified_on,note\n"
    "S03,2025,person_times,2026-03-20,补训10人次\n"      # row 2: in time (deadline 2026-03-31)
    "B01,2025,pass_rate,2026-04-15,逾期整改\n"          # row 3: after the deadline
    "S01,2026,person_times,,整改中\n"                  # row 4: not rectified yet, deadline 2027-03-31
)


def yuan(text: str) -> int:
    """Yuan written as a person writes them, in fen."""
    return int(Decimal(text.replace(",", "")) * 100)


# --- staged rows ----------------------------------------------------------------------------------
def _submission(site: str, period: str, kind: str) -> dict:
    sha = f"sha-{site}-{period}-{kind}"
    return {"submission_id": f"{sha}:{site}:{period}:{kind}", "sha256": sha, "site_code": site, "period": period,
            "kind": kind, "original_name": f"{period}/{site}/{kind}.csv", "archive_path": "-", "size_bytes": 1,
            "received_at": dt.datetime(2027, 1, 5), "ingested_at": dt.datetime(2027, 1, 5), "version": 1,
            "is_current": True, "status": "accepted", "rows_read": 0, "rows_staged": 0, "rows_quarantined": 0}


def _roster(site: str, period: str, n: int, passed: int, key_group: int, key_industry: int) -> list[dict]:
    """``n`` trainees in one class: the first ``passed`` pass, the first ``key_group`` are
    unemployed (a key group), the first ``key_industry`` train for the digital economy."""
    sid = _submission(site, period, "roster")["submission_id"]
    day = dt.date.fromisoformat(period + "-05")
    return [{"submission_id": sid, "source_row": i + 2, "site_code": site, "period": period,
             "class_id": f"{site}-{period}", "course": "c", "occupation": "o", "level": "primary",
             "industry": "digital_economy" if i < key_industry else "other", "start_date": day, "end_date": day,
             "hours": Decimal(8), "person_key": f"{site}-{period}-{i}", "name_key": f"n-{site}-{period}-{i}",
             "birth_date": dt.date(1990, 1, 1), "sex": "M", "age_on_start": 35,
             "person_group": "unemployed" if i < key_group else "other", "low_income_household": False,
             "assessed": True, "passed": i < passed, "certificate_no": None, "satisfaction": "satisfied"}
            for i in range(n)]


def _finance(site: str, period: str, rows: list[tuple[str, str, int]]) -> list[dict]:
    sid = _submission(site, period, "finance")["submission_id"]
    return [{"submission_id": sid, "source_row": i + 2, "site_code": site, "period": period,
             "voucher_no": f"{site}-{period}-{i}", "pay_date": dt.date.fromisoformat(period + "-10"),
             "amount_fen": amount, "fund_source": source, "category": category, "payee": "p", "invoice_no": None,
             "description": None}
            for i, (source, category, amount) in enumerate(rows)]


def _survey(site: str, period: str, worker: tuple[int, int], enterprise: tuple[int, int]) -> list[dict]:
    """(satisfied, answers) per respondent type; satisfied answers alternate 非常满意 / 满意, the
    others are 基本满意 (not satisfied under the policy)."""
    sid = _submission(site, period, "survey")["submission_id"]
    rows = []
    for kind, (satisfied, answers) in (("worker", worker), ("enterprise", enterprise)):
        for i in range(answers):
            rating = ("very_satisfied" if i % 2 else "satisfied") if i < satisfied else "basic"
            rows.append({"submission_id": sid, "source_row": len(rows) + 2, "site_code": site, "period": period,
                         "respondent_type": kind, "survey_date": dt.date.fromisoformat(period + "-20"),
                         "rating": rating})
    return rows


def _outcomes(site: str, year: int, low_income: int, with_skill: int) -> list[dict]:
    period = f"{year}-12"
    sid = _submission(site, period, "outcomes")["submission_id"]
    return [{"submission_id": sid, "source_row": 2, "site_code": site, "period": period, "year": year,
             "low_income_households": low_income, "households_with_skill": with_skill, "trainees": 20,
             "avg_income_gain_fen": 300_000}]


def staged_rows() -> dict[sa.Table, list[dict]]:
    return {
        warehouse.raw_roster: (
            _roster("S01", "2025-09", 260, 260, 160, 200)
            + _roster("S01", "2026-04", 300, 300, 180, 200) + _roster("S01", "2026-05", 199, 199, 120, 150)
            + _roster("S02", "2025-09", 200, 200, 100, 150) + _roster("S02", "2026-04", 500, 500, 300, 350)
            + _roster("S03", "2025-09", 240, 240, 140, 160) + _roster("S03", "2026-04", 520, 520, 320, 340)
            + _roster("S04", "2026-05", 420, 420, 250, 300) + _roster("S05", "2026-05", 450, 450, 250, 300)
            + _roster("B01", "2025-10", 500, 440, 300, 350) + _roster("B01", "2026-06", 1000, 899, 600, 650)
            + _roster("B02", "2026-06", 800, 800, 480, 450)
        ),
        warehouse.raw_finance: (
            _finance("S01", "2026-04", [("provincial", "project_training", yuan("1,000,000.00"))])
            + _finance("S04", "2026-05", [("provincial", "teacher_training", yuan("500,000.50")),
                                          ("self", "training_subsidy", yuan("20,000.00"))])
            + _finance("S03", "2026-04", [("provincial", "other", yuan("12,345.67"))])
            + _finance("B01", "2025-10", [("district", "equipment", yuan("7,000,000.00"))])
            + _finance("B02", "2026-06", [("district", "equipment", yuan("3,000,000.00"))])
        ),
        warehouse.raw_survey: (
            _survey("S01", "2025-09", (10, 10), (2, 2)) + _survey("S01", "2026-06", (19, 20), (4, 4))
            + _survey("S02", "2025-09", (8, 10), (1, 2)) + _survey("S02", "2026-06", (18, 20), (4, 4))
            + _survey("S03", "2025-09", (9, 10), (2, 2)) + _survey("S03", "2026-06", (19, 20), (3, 4))
            + _survey("S04", "2026-06", (18, 20), (10, 10)) + _survey("S05", "2026-06", (15, 20), (2, 2))
            + _survey("B01", "2025-12", (15, 16), (4, 4)) + _survey("B01", "2026-06", (28, 30), (9, 10))
            + _survey("B02", "2026-06", (13, 16), (4, 4))
        ),
        warehouse.raw_outcomes: _outcomes("V01", 2025, 10, 8) + _outcomes("V01", 2026, 10, 9),
    }


def _with_rule(plan: Plan, rule: str) -> Plan:
    data = plan.policy.data()
    data["release"]["rule"] = rule
    return Plan(Policy.from_data(data, plan.policy.path), plan.sites, plan.contract)


@pytest.fixture
def scenario_plan(plan) -> Plan:
    """The registry cut down to the scenario's sites and the 2027 batch (the 2027 build plan)."""
    return Plan(plan.policy, [s for s in plan.sites if s.site_code in SCENARIO_SITES or s.batch_year == 2027],
                plan.contract)


@pytest.fixture
def scenario(warehouse_url, scenario_plan, tmp_path):
    engine = warehouse.make_engine(warehouse_url)
    migrate(engine)
    staged = staged_rows()
    keys = sorted({(r["site_code"], r["period"], t.name.removeprefix("raw_")) for t, rows in staged.items() for r in rows})
    with engine.begin() as conn:
        conn.execute(warehouse.submissions.insert(), [_submission(*k) for k in keys])
        for table, rows in staged.items():
            conn.execute(table.insert(), rows)
    models.load_reference(engine, scenario_plan)
    layers.build_models(engine, SQL_DIR)
    path = tmp_path / "rectifications.csv"
    path.write_text(RECTIFICATIONS, encoding="utf-8")
    decisions = load_decisions(path, scenario_plan)
    results = {rule: evaluate(engine, _with_rule(scenario_plan, rule), 2027, AS_OF, decisions)
               for rule in ("banded", "linear", "dli")}
    write_evaluation(engine, results["banded"], pii_key_is_demo=True)
    yield engine, results
    engine.dispose()


def _rows(engine, source: sa.Table | str) -> list[dict]:
    """Rows of an eval table for 2027 (typed: dates are dates on SQLite too) or of a SQL query."""
    query = (sa.select(source).where(source.c.evaluation_year == 2027) if isinstance(source, sa.Table)
             else sa.text(source))
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def _dec(value) -> Decimal:
    return Decimal(str(value)).normalize()


# --- expected values, worked out by hand ----------------------------------------------------------
EXPECTED_POINTS = {
    # provincial execution: eligible provincial spending 1,000,000.00 + 500,000.50 = 1,500,000.50 of
    # 6,000,000 received in 2025-2026 (S03's 12,345.67 'other' is not eligible, S04's 20,000 is
    # self-raised) = 0.2500000833; 10 x 0.2500000833 = 2.500000833 -> 2.50
    "provincial_execution_rate": Decimal("2.50"),
    # station-years: S01 2025 min(1, 260/250) = 1, S01 2026 499/500 = 0.998, S02 2025 200/250 = 0.8,
    # S02 2026 1, S03 2025 240/250 = 0.96, S03 2026 1, S04 2026 420 >= 416.67: 1, S05 2026 1;
    # sum 7.758 / 8 = 0.96975; 20 x 0.96975 = 19.395 -> 19.40 (half-up)
    "station_person_times": Decimal("19.40"),
    # base-years: B01 2025 500/500 = 1, B01 2026 1000/1000 = 1, B02 2026 800 / (1000 x 10/12) = 0.96;
    # 2.96 / 3 = 0.98667; 15 x 0.98667 = 14.80
    "base_person_times": Decimal("14.80"),
    # pass rates: B01 2025 0.88/0.90 = 0.97778, B01 2026 0.899/0.90 = 0.99889, B02 2026 1.00 -> 1;
    # 2.97667 / 3 = 0.99222; 10 x 0.99222 = 9.9222 -> 9.92
    "base_pass_rate": Decimal("9.92"),
    # village-years V01 2025, V01 2026, V16 2026: 2 of 3 reported; 5 x 2/3 = 3.3333 -> 3.33
    "village_reporting": Decimal("3.33"),
    # key-group person-times: stations 160+300+100+300+140+320+250+250 = 1,820, bases 300+600+480 =
    # 1,380, together 3,200 of 3,089 + 2,300 = 5,389 person-times = 0.593802; target 0.60:
    # 10 x 0.593802 / 0.60 = 9.8967 -> 9.90
    "key_group_share": Decimal("9.90"),
    # key-industry person-times: 2,150 + 1,450 = 3,600 / 5,389 = 0.668 >= 0.60: full points
    "key_industry_share": Decimal("10.00"),
    # 一户一技: (8 + 9) / (10 + 10) = 0.85; 10 x 0.85 = 8.50
    "village_one_household_one_skill": Decimal("8.50"),
    # workers: satisfied 10+19+8+18+9+19+18+15+15+28+13 = 172 of 10+20+10+20+10+20+20+20+16+30+16 = 192
    # answers = 0.895833; 5 x 0.895833 / 0.90 = 4.97685 -> 4.98
    "worker_satisfaction": Decimal("4.98"),
    # enterprises: 2+4+1+4+2+3+10+2+4+9+4 = 45 of 2+4+2+4+2+4+10+2+4+10+4 = 48 = 0.9375 >= 0.90: full
    "enterprise_satisfaction": Decimal("5.00"),
}
# 2.50 + 19.40 + 14.80 + 9.92 + 3.33 + 9.90 + 10.00 + 8.50 + 4.98 + 5.00
EXPECTED_SCORE = Decimal("88.33")
# banded: 60 <= 88.33 < 90 releases 88.33% of 2,000,000 = 1,766,600.00; linear: the same 88.33%
RELEASED_BANDED = yuan("1,766,600.00")
RELEASED_LINEAR = yuan("1,766,600.00")
# dli: station-years meeting 500 (pro-rated): S01 2025, S02 2026, S03 2026, S04 2026, S05 2026 = 5 of 8
#      -> 800,000 x 5/8 = 500,000; base-years meeting the 90% pass rate: B02 2026 = 1 of 3 -> 600,000 / 3
#      = 200,000; 一户一技 coverage 0.85 -> 600,000 x 0.85 = 510,000; together 1,210,000
DLI_LINES = {"station_person_times": yuan("500,000"), "base_results": yuan("200,000"),
             "village_coverage": yuan("510,000")}
RELEASED_DLI = yuan("1,210,000.00")
# recoveries: S02 2025 missed 200 of 250 (attainment 0.8), deadline 2025-12-31 + 90 days = 2026-03-31,
# no decision: overdue -> a station's provincial plan money 900,000 / 3 = 300,000 x (1 - 0.8) = 60,000.
# B01 2025 pass rate rectified 2026-04-15, after its deadline: overdue, but B01 (2025) is funded by the
# district (provincial plan money 0) -> 0. S03 2025 rectified 2026-03-20: nothing. 2026 misses are due
# 2027-03-31, after the as-of date: open.
RECOVERIES = yuan("60,000.00")
# 2027 plan: S10-S12 at 900,000 / 3 = 300,000 each, then V31-V52 at 1,100,000 / 22 = 50,000 each.
# banded: net 1,766,600 - 60,000 = 1,706,600: three stations 900,000 leave 806,600, sixteen villages
#   (V31-V46) 800,000 leave 6,600, too little for V47: V47-V52 lose provincial funding, 6,600 unallocated.
# dli: net 1,210,000 - 60,000 = 1,150,000: stations 900,000 leave 250,000 = five villages V31-V35, 0 left.
NET_BANDED = yuan("1,706,600.00")
NET_DLI = yuan("1,150,000.00")


def test_every_indicator_score_grade_and_release(scenario):
    engine, results = scenario
    banded = results["banded"]
    assert {i.code: i.points for i in banded.indicators} == EXPECTED_POINTS
    assert banded.score == EXPECTED_SCORE
    assert banded.grade == "良"  # 80 <= 88.33 < 90
    assert banded.released_fen == RELEASED_BANDED
    assert results["linear"].released_fen == RELEASED_LINEAR
    assert results["dli"].released_fen == RELEASED_DLI
    assert {line.component: line.released_fen for line in results["dli"].release} == DLI_LINES
    assert {r.score for r in results.values()} == {EXPECTED_SCORE}

    district = _rows(engine, warehouse.eval_district)
    assert len(district) == 1
    d = district[0]
    assert (_dec(d["score"]), d["grade"], d["release_rule"]) == (EXPECTED_SCORE, "良", "banded")
    assert d["tranche_fen"] == yuan("2,000,000")
    assert d["released_fen"] == RELEASED_BANDED
    assert d["withheld_fen"] == yuan("2,000,000") - RELEASED_BANDED  # 233,400.00
    assert d["recoveries_fen"] == RECOVERIES
    assert d["net_released_fen"] == NET_BANDED
    assert d["excellent_bonus_fen"] == yuan("50,000")
    assert d["plan_unallocated_fen"] == yuan("6,600")
    assert banded.headline()["recoveries_yuan"] == "60000.00"
    assert banded.headline()["net_released_yuan"] == "1706600.00"
    assert banded.headline()["released_yuan"] == "1766600.00"

    # the indicators as stored, with the numbers they came from
    stored = {r["indicator"]: r for r in _rows(engine, warehouse.eval_indicator)}
    assert {k: _dec(v["points"]) for k, v in stored.items()} == {k: v.normalize() for k, v in EXPECTED_POINTS.items()}
    assert (_dec(stored["provincial_execution_rate"]["numerator"]), _dec(stored["provincial_execution_rate"]["denominator"])) \
        == (Decimal("1500000.5"), Decimal("6000000"))
    assert stored["provincial_execution_rate"]["source_rows"] == 6  # finance rows of the evaluated site-years
    assert (_dec(stored["key_group_share"]["numerator"]), _dec(stored["key_group_share"]["denominator"])) \
        == (Decimal(3200), Decimal(5389))
    assert stored["station_person_times"]["source_rows"] == 3089  # one roster row per person-time
    assert (_dec(stored["worker_satisfaction"]["numerator"]), _dec(stored["worker_satisfaction"]["denominator"])) \
        == (Decimal(172), Decimal(192))

    # the release line of the banded rule
    (line,) = _rows(engine, warehouse.eval_release)
    assert (line["component"], line["amount_fen"], line["released_fen"]) == ("banded", yuan("2,000,000"), RELEASED_BANDED)
    assert _dec(line["share"]) == Decimal("0.8833")


def test_dli_lines_say_what_they_paid_for(scenario):
    _, results = scenario
    lines = {line.component: line for line in results["dli"].release}
    assert (lines["station_person_times"].numerator, lines["station_person_times"].denominator) == (5, 8)
    assert (lines["base_results"].numerator, lines["base_results"].denominator) == (1, 3)
    assert (lines["village_coverage"].numerator, lines["village_coverage"].denominator) == (17, 20)
    assert sum(line.amount_fen for line in lines.values()) == yuan("2,000,000")


def test_rectification_recoveries_and_net_release(scenario):
    engine, results = scenario
    rows = sorted(_rows(engine, warehouse.eval_rectification), key=lambda r: (r["site_code"], r["year"], r["indicator"]))
    got = [(r["site_code"], r["year"], r["indicator"], r["deadline"], r["rectified_on"], r["status"], r["recovery_fen"],
            r["decision_row"], r["note"]) for r in rows]
    due_2025, due_2026 = dt.date(2026, 3, 31), dt.date(2027, 3, 31)  # 31 December + 90 days
    assert got == [
        ("B01", 2025, "pass_rate", due_2025, dt.date(2026, 4, 15), "overdue", 0, 3, "逾期整改"),  # no provincial money
        ("B01", 2026, "pass_rate", due_2026, None, "open", 0, None, None),           # 89.9%
        ("B02", 2026, "person_times", due_2026, None, "open", 0, None, None),        # 800 of 833.33
        ("B02", 2026, "satisfaction_rate", due_2026, None, "open", 0, None, None),   # 17/20 = 85%
        ("S01", 2026, "person_times", due_2026, None, "open", 0, 4, "整改中"),       # 499 of 500
        ("S02", 2025, "person_times", due_2025, None, "overdue", yuan("60,000"), None, None),
        ("S03", 2025, "person_times", due_2025, dt.date(2026, 3, 20), "rectified", 0, 2, "补训10人次"),
    ]
    s02 = rows[5]
    assert (_dec(s02["target"]), _dec(s02["actual"]), _dec(s02["attainment"])) == (Decimal(250), Decimal(200), Decimal("0.8"))
    assert s02["plan_provincial_fen"] == yuan("300,000")
    assert s02["source_rows"] == 200  # the roster rows of S02 2025 in ind_site_year
    assert results["banded"].recoveries_fen == RECOVERIES
    assert results["banded"].net_released_fen == NET_BANDED
    assert results["dli"].net_released_fen == NET_DLI


def test_plan_2027_keeps_funding_in_priority_order(scenario):
    engine, results = scenario
    rows = sorted(_rows(engine, warehouse.eval_plan_2027), key=lambda r: r["priority_rank"])
    stations = ["S10", "S11", "S12"]
    villages = [f"V{i}" for i in range(31, 53)]
    assert [r["site_code"] for r in rows] == stations + villages
    assert [r["planned_provincial_fen"] for r in rows] == [yuan("300,000")] * 3 + [yuan("50,000")] * 22
    keeps = [r["site_code"] for r in rows if r["keeps_funding"]]
    assert keeps == stations + [f"V{i}" for i in range(31, 47)]  # V31-V46
    assert sum(r["funded_fen"] for r in rows) == yuan("1,700,000")
    assert sum(r["funded_fen"] for r in rows) + yuan("6,600") == NET_BANDED  # the remainder is shown
    assert rows[2]["remaining_after_fen"] == yuan("806,600")  # after S12
    assert rows[-1]["remaining_after_fen"] == yuan("6,600")
    assert {r["funded_fen"] for r in rows if not r["keeps_funding"]} == {0}

    dli = results["dli"]
    assert [p.site_code for p in dli.plan if p.keeps_funding] == stations + ["V31", "V32", "V33", "V34", "V35"]
    assert dli.plan_unallocated_fen == 0


def test_excellent_stations(scenario):
    engine, _ = scenario
    rows = {r["site_code"]: r for r in _rows(engine, warehouse.eval_excellent_station)}
    assert {k: (r["qualifies"], r["bonus_fen"], r["years_evaluated"]) for k, r in rows.items()} == {
        "S01": (False, 0, 2),   # 2026: 499 < 500
        "S02": (False, 0, 2),   # 2025: 200 < 250 and 9/12 = 75% satisfied
        "S03": (False, 0, 2),   # 2025: 240 < 250 (rectified, but the target was missed)
        "S04": (True, yuan("50,000"), 1),  # 420 >= 416.67 and 28/30 = 93.33%
        "S05": (False, 0, 1),   # 17/22 = 77.27% < 90%
    }
    assert rows["S04"]["reasons"] == "2026年: 培训人次420, 目标416.6667, 达标; 满意率93.33%(28/30), 目标90.00%, 达标"
    assert rows["S05"]["reasons"] == "2026年: 培训人次450, 目标416.6667, 达标; 满意率77.27%(17/22), 目标90.00%, 未达标"
    assert rows["S02"]["reasons"] == ("2025年: 培训人次200, 目标250, 未达标; 满意率75.00%(9/12), 目标90.00%, 未达标; "
                                      "2026年: 培训人次500, 目标500, 达标; 满意率91.67%(22/24), 目标90.00%, 达标")
    assert rows["S04"]["source_rows"] == 420 + 30  # roster and survey rows


# Gap rows under banded (release now 1,766,600.00 at 88.33; 2,000,000 x 0.01% = 200 yuan per 0.01 point
# below 90, the whole 233,400 withheld once the score reaches 90):
# (indicator, site, year, target, actual, additional_needed, unit, missing_points, yuan released, dli yuan)
EXPECTED_GAP = [
    # 6,000,000 x 1.00 - 1,500,000.50 = 4,499,999.50 yuan more eligible spending; +7.50 -> 95.83 >= 90
    ("provincial_execution_rate", None, None, "1", "0.25", "4499999.5", "yuan", "7.50", "233,400", "0"),
    # three station-years short; 0.60 points -> 88.93: 2,000,000 x 0.006 = 12,000; dli 800,000 x 3/8 = 300,000
    ("station_person_times", None, None, "1", "0.9698", "3", "site_years", "0.60", "12,000", "300,000"),
    # 1 person-time; 20 x (1 - 0.998) / 8 = 0.005 -> 0.01 point = 200 yuan; dli one more of 8 = 100,000
    ("station_person_times", "S01", 2026, "500", "499", "1", "person_times", "0.01", "200", "100,000"),
    # 50 person-times; 20 x 0.2 / 8 = 0.50 -> 10,000
    ("station_person_times", "S02", 2025, "250", "200", "50", "person_times", "0.50", "10,000", "100,000"),
    # 10 person-times; 20 x 0.04 / 8 = 0.10 -> 2,000
    ("station_person_times", "S03", 2025, "250", "240", "10", "person_times", "0.10", "2,000", "100,000"),
    # one base-year short; 0.20 points -> 4,000; no DLI tranche on base person-times
    ("base_person_times", None, None, "1", "0.9867", "1", "site_years", "0.20", "4,000", "0"),
    # 833.33 - 800 = 33.33 -> 34 person-times; 15 x 0.04 / 3 = 0.20 -> 4,000
    ("base_person_times", "B02", 2026, "833.3333", "800", "34", "person_times", "0.20", "4,000", "0"),
    # two base-years short; 10 - 9.92 = 0.08 -> 1,600; dli 600,000 x 2/3 = 400,000
    ("base_pass_rate", None, None, "1", "0.9922", "2", "site_years", "0.08", "1,600", "400,000"),
    # 90% - 88% = 2 points; 10 x (1 - 0.97778) / 3 = 0.0741 -> 0.07 = 1,400; dli one more of 3 = 200,000
    ("base_pass_rate", "B01", 2025, "0.9", "0.88", "2", "pass_rate_points", "0.07", "1,400", "200,000"),
    # the base at 89.9%: 0.1 point; 10 x (1 - 0.99889) / 3 = 0.0037 -> 0.00 points, 0 yuan; dli 200,000
    ("base_pass_rate", "B01", 2026, "0.9", "0.899", "0.1", "pass_rate_points", "0.00", "0", "200,000"),
    # 3 x 1.00 - 2 = 1 report; 5 - 3.33 = 1.67 -> 90.00: full release
    ("village_reporting", None, None, "1", "0.6667", "1", "reports", "1.67", "233,400", "0"),
    # key-group person-times x with (3,200 + x) / (5,389 + x) >= 0.60: x >= (3,233.4 - 3,200) / 0.4 = 83.5
    # -> 84; 0.10 point -> 2,000
    ("key_group_share", None, None, "0.6", "0.5938", "84", "person_times", "0.10", "2,000", "0"),
    # 20 x 1.00 - 17 = 3 households; 1.50 points -> 30,000; dli 600,000 - 510,000 = 90,000
    ("village_one_household_one_skill", None, None, "1", "0.85", "3", "households", "1.50", "30,000", "90,000"),
    # (0.90 - 172/192) x 100 = 0.41667 -> 0.4167 satisfaction points; 0.02 point -> 400
    ("worker_satisfaction", None, None, "0.9", "0.8958", "0.4167", "satisfaction_points", "0.02", "400", "0"),
]


def test_gap_to_full_release(scenario):
    engine, results = scenario
    rows = sorted(_rows(engine, warehouse.eval_gap), key=lambda r: r["gap_id"])
    got = [(r["indicator"], r["site_code"], r["year"], _dec(r["target"]), _dec(r["actual"]),
            _dec(r["additional_needed"]), r["unit"], Decimal(str(r["missing_points"])).quantize(Decimal("0.01")),
            r["release_gain_fen"]) for r in rows]
    expected = [(i, s, y, Decimal(t).normalize(), Decimal(a).normalize(), Decimal(n).normalize(), u, Decimal(p),
                 yuan(g)) for i, s, y, t, a, n, u, p, g, _ in EXPECTED_GAP]
    assert got == expected
    dli = [(g["indicator"], g["site_code"], g["year"], g["release_gain_fen"]) for g in results["dli"].gaps]
    assert dli == [(i, s, y, yuan(d)) for i, s, y, *_, d in EXPECTED_GAP]


def test_every_row_traces_to_its_sources(scenario):
    engine, _ = scenario
    site = {(r["site_code"], r["year"], r["indicator"]): r for r in _rows(engine, warehouse.eval_site)}
    assert len(site) == 8 + 3 * 3  # station-years x 1 target, base-years x 3 targets
    s01 = site[("S01", 2026, "person_times")]
    # two roster files (2026-04, 2026-05), a finance file and a survey file
    assert (s01["source_rows"], s01["submissions"], s01["met"]) == (499, 4, False)
    assert (s01["rectification_status"], s01["deadline"], s01["recovery_fen"]) == ("open", dt.date(2027, 3, 31), 0)
    assert _dec(site[("S04", 2026, "person_times")]["target"]) == Decimal("416.6667")  # 500 x 10/12, pro-rated
    assert site[("S04", 2026, "person_times")]["rectification_status"] is None
    b02 = site[("B02", 2026, "satisfaction_rate")]
    assert (_dec(b02["actual"]), b02["source_rows"], b02["met"]) == (Decimal("0.85"), 20, False)
    assert site[("S02", 2025, "person_times")]["recovery_fen"] == RECOVERIES

    spending = _rows(engine, "select * from ind_site_year_spending order by site_code, year, fund_source, category")
    assert [(r["site_code"], r["programme"], r["year"], r["fund_source"], r["category"], r["eligible_use"],
             r["amount_fen"], r["finance_rows"], r["submissions"]) for r in spending] == [
        ("B01", "base", 2025, "district", "equipment", 1, yuan("7,000,000"), 1, 1),
        ("B02", "base", 2026, "district", "equipment", 1, yuan("3,000,000"), 1, 1),
        ("S01", "station", 2026, "provincial", "project_training", 1, yuan("1,000,000"), 1, 1),
        ("S03", "station", 2026, "provincial", "other", 0, yuan("12,345.67"), 1, 1),  # the ineligible payment
        ("S04", "station", 2026, "provincial", "teacher_training", 1, yuan("500,000.50"), 1, 1),
        ("S04", "station", 2026, "self", "training_subsidy", 1, yuan("20,000"), 1, 1),
    ]
    with engine.connect() as conn:
        totals = dict(conn.execute(sa.text(
            "select site_code || '-' || cast(year as varchar(4)), spend_total_fen from ind_site_year "
            "where spend_total_fen > 0")).all())
    assert totals == {"B01-2025": yuan("7,000,000"), "B02-2026": yuan("3,000,000"), "S01-2026": yuan("1,000,000"),
                      "S03-2026": yuan("12,345.67"), "S04-2026": yuan("520,000.50")}

    subsidy = {r["site_code"]: r for r in _rows(engine, "select * from base_subsidy")}
    # B01: min(50% x 7,000,000, 3,000,000) = 3,000,000, the cap; paid 3,000,000 (district plan), difference 0
    assert (subsidy["B01"]["entitlement_fen"], subsidy["B01"]["paid_fen"], subsidy["B01"]["difference_fen"]) \
        == (yuan("3,000,000"), yuan("3,000,000"), 0)
    # B02: 50% x 3,000,000 = 1,500,000 of 1,800,000 provincial + 1,200,000 district paid: 1,500,000 over
    assert (subsidy["B02"]["entitlement_fen"], subsidy["B02"]["difference_fen"]) == (yuan("1,500,000"), yuan("1,500,000"))


def test_a_rerun_is_a_new_run_and_the_fingerprint_covers_the_decisions(scenario, scenario_plan):
    engine, results = scenario
    second = write_evaluation(engine, results["banded"], pii_key_is_demo=True)["run_id"]
    expected = {"eval_indicator": 10, "eval_site": 17, "eval_district": 1, "eval_gap": 14,
                "eval_release": 1, "eval_rectification": 7, "eval_plan_2027": 25,
                "eval_excellent_station": 5, "eval_integrity": 13}
    for table in warehouse.EVAL_TABLES:
        if table.name not in expected:
            continue
        with engine.connect() as conn:
            per_run = dict(conn.execute(sa.text(f"select run_id, count(*) from {table.name} group by run_id")).all())
        assert per_run == {"2027-20270215-01": expected[table.name], second: expected[table.name]}, table.name
    without = evaluate(engine, scenario_plan, 2027, AS_OF)
    assert without.input_fingerprint != results["banded"].input_fingerprint
    # without decisions S03 2025 and B01 2025 are overdue as well: S03 300,000 x (1 - 0.96) = 12,000 more
    assert without.recoveries_fen == RECOVERIES + yuan("12,000")


# --- rules in isolation ---------------------------------------------------------------------------
def _target(site: str, year: int, actual: int, target: int = 500) -> SiteYearTarget:
    return SiteYearTarget(site, "station", year, "person_times", Decimal(target), Decimal(actual), actual, 1)


def test_recoveries_never_exceed_the_sites_plan_money(plan):
    # as of 2027-06-30 both years are overdue: 2025 recovers 300,000 x (1 - 100/500) = 240,000, 2026
    # would recover 300,000 x (1 - 250/500) = 150,000 but only 60,000 of the plan money is left
    records = rectification_records(plan.policy, [_target("S01", 2025, 100), _target("S01", 2026, 250)],
                                    Decisions.none(), {"S01": yuan("300,000")}, dt.date(2027, 6, 30))
    assert [(r.site.year, r.status, r.recovery_fen) for r in records] == [
        (2025, "overdue", yuan("240,000")), (2026, "overdue", yuan("60,000"))]


@pytest.mark.parametrize("rectified_on,as_of,expected", [
    (None, dt.date(2026, 3, 31), "open"),                          # the deadline day is still in time
    (None, dt.date(2026, 4, 1), "overdue"),
    (dt.date(2026, 3, 31), dt.date(2027, 2, 15), "rectified"),     # on the deadline day
    (dt.date(2026, 4, 1), dt.date(2027, 2, 15), "overdue"),        # late
    (dt.date(2026, 3, 1), dt.date(2026, 2, 15), "open"),           # not yet known on the as-of date
])
def test_rectification_status(rectified_on, as_of, expected):
    assert status(dt.date(2026, 3, 31), rectified_on, as_of) == expected


def test_a_site_that_does_not_fit_is_passed_over_or_partly_funded(plan):
    import pandas as pd

    sites = pd.DataFrame([{"site_code": "V31", "programme": "village", "batch_year": 2027, "plan_provincial_fen": 100},
                          {"site_code": "S11", "programme": "station", "batch_year": 2027, "plan_provincial_fen": 300},
                          {"site_code": "S10", "programme": "station", "batch_year": 2027, "plan_provincial_fen": 300},
                          {"site_code": "B03", "programme": "base", "batch_year": 2027, "plan_provincial_fen": 0}])
    # default, whole sites: S10 takes 300 of 450; S11 (300) does not fit in 150 and is passed over;
    # V31 (100) fits; 50 stays unallocated. B03 has no provincial plan money and is not in the plan.
    whole, left = allocate_plan(plan.policy, sites, 450)
    assert [(p.site_code, p.priority_rank, p.funded_fen, p.keeps_funding, p.remaining_after_fen) for p in whole] == [
        ("S10", 1, 300, True, 150), ("S11", 2, 0, False, 150), ("V31", 3, 100, True, 50)]
    assert left == 50
    # whole_sites_only false: S11 gets the 150 that is left, partly funded; nothing for V31
    data = plan.policy.data()
    data["plan_2027"]["whole_sites_only"] = False
    partial, left = allocate_plan(Policy.from_data(data, plan.policy.path), sites, 450)
    assert [(p.site_code, p.funded_fen, p.keeps_funding) for p in partial] == [
        ("S10", 300, True), ("S11", 150, False), ("V31", 0, False)]
    assert left == 0


def test_dli_tranches_must_add_up_to_the_tranche(tmp_path):
    raw = yaml.safe_load((POLICY_DIR / "yuhang.yaml").read_text(encoding="utf-8"))
    raw["release"]["rules"]["dli"]["tranches"][0]["amount_yuan"] = 700000
    bad = tmp_path / "yuhang.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="dli tranches sum to 1900000"):
        Policy.load(bad)


# --- the rectifications file ----------------------------------------------------------------------
def _write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "rectifications.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_a_missing_file_means_no_decisions(tmp_path, plan):
    decisions = load_decisions(tmp_path / "absent.csv", plan)
    assert decisions.by_key == {} and decisions.sha256 is None


def test_decisions_are_read_in_utf8_bom_and_gbk(tmp_path, plan):
    for encoding in ("utf-8-sig", "gb18030"):
        path = _write(tmp_path, "site_code,year,indicator,rectified_on,note,evaluator\n"
                                "S02, 2025 ,person_times,2026-03-02,补训完成,张三\n\n", encoding)
        decisions = load_decisions(path, plan)
        decision = decisions.get("S02", 2025, "person_times")
        assert (decision.rectified_on, decision.note, decision.row) == (dt.date(2026, 3, 2), "补训完成", 2)
        assert len(decisions.by_key) == 1


@pytest.mark.parametrize("line,column,message", [
    ("S99,2025,person_times,2026-03-01,", "site_code", "unknown site code 'S99'"),
    ("S01,2025年,person_times,2026-03-01,", "year", "'2025年' is not a year"),
    ("S01,2024,person_times,2026-03-01,", "year", "2024 is not a year of the implementation period"),
    ("S04,2025,person_times,2026-03-01,", "year", "site S04 was not active in 2025"),
    ("S01,2025,pass_rate,2026-03-01,", "indicator", "'pass_rate' is not a yearly target of a station"),
    ("V01,2025,person_times,2026-03-01,", "indicator", "is not a yearly target of a village"),
    ("S01,2025,person_times,2026-02-30,", "rectified_on", "'2026-02-30' is not a date"),
    ("S01,2025,person_times,2026/3/1,", "rectified_on", "'2026/3/1' is not a date"),
])
def test_bad_rows_are_named_by_file_row_and_column(tmp_path, plan, line, column, message):
    path = _write(tmp_path, "site_code,year,indicator,rectified_on,note\nS02,2025,person_times,,\n" + line + "\n")
    with pytest.raises(RectificationFileError) as caught:
        load_decisions(path, plan)
    assert str(caught.value).startswith(f"rectifications file {path}: row 3, column {column}: ")
    assert message in str(caught.value)
    assert [(p.row, p.column) for p in caught.value.problems] == [(3, column)]


def test_every_problem_is_reported_at_once(tmp_path, plan):
    path = _write(tmp_path, "site_code,year,indicator,rectified_on\n"
                            "S01,2025,person_times,2026-03-01\n"
                            "S01,2025,person_times,2026-03-05\n"
                            "B01,2025,pass_rate,soon\n")
    with pytest.raises(RectificationFileError) as caught:
        load_decisions(path, plan)
    assert [(p.row, p.column) for p in caught.value.problems] == [(3, "site_code"), (4, "rectified_on")]
    assert "a second decision for S01 2025 person_times (first on row 2)" in str(caught.value)


def test_a_missing_column_is_named(tmp_path, plan):
    path = _write(tmp_path, "site_code,year,indicator,note\nS01,2025,person_times,x\n")
    with pytest.raises(RectificationFileError, match=r"row 1, column rectified_on: required column is missing"):
        load_decisions(path, plan)


def test_the_rectifications_path_is_a_setting(monkeypatch, tmp_path):
    from yuhang_skills.core.settings import load_settings

    monkeypatch.setenv("YUHANG_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("YUHANG_RECTIFICATIONS_PATH", raising=False)
    assert load_settings().rectifications_path == tmp_path / "var" / "rectifications.csv"
    monkeypatch.setenv("YUHANG_RECTIFICATIONS_PATH", str(tmp_path / "decisions.csv"))
    assert load_settings().rectifications_path == tmp_path / "decisions.csv"
