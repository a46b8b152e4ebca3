"""SQL models on SQLite and PostgreSQL from hand-made staging rows, and the scoring rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from yuhang_skills.indicators import layers, models
from yuhang_skills.core import warehouse
from yuhang_skills.core.migrations import migrate
from yuhang_skills.evaluation.outputs import evaluate, write_evaluation
from yuhang_skills.evaluation.release import release_fen
from yuhang_skills.evaluation.score import points_for
from yuhang_skills.core.settings import SQL_DIR


def _submission(site: str, period: str, kind: str) -> dict:
    return {"submission_id": f"sha-{site}-{period}-{kind}:{site}:{period}:{kind}", "sha256": f"sha-{site}-{period}-{kind}",
            "site_code": site, "period": period, "kind": kind, "original_name": f"{period}/{site}/{kind}.csv",
            "archive_path": "-", "size_bytes": 1, "received_at": dt.datetime(2026, 1, 1), "ingested_at": dt.datetime(2026, 1, 1),
            "version": 1, "is_current": True, "status": "accepted", "rows_read": 0, "rows_staged": 0,
            "rows_quarantined": 0}


def _roster(site: str, period: str, n: int, passed: int, *, group: str = "unemployed", industry: str = "digital_economy",
            start: int = 0) -> list[dict]:
    sid = _submission(site, period, "roster")["submission_id"]
    day = dt.date.fromisoformat(period + "-05")
    return [{"submission_id": sid, "source_row": i + 2, "site_code": site, "period": period,
             "class_id": f"{site}-{period}", "course": "c", "occupation": "o", "level": "primary",
             "industry": industry, "start_date": day, "end_date": day, "hours": Decimal(8),
             "person_key": f"p{start + i}", "name_key": f"n{start + i}",
             "birth_date": dt.date(1990, 1, 1), "sex": "M", "age_on_start": 35, "person_group": group,
             "low_income_household": False, "assessed": True, "passed": i < passed, "certificate_no": None,
             "satisfaction": "satisfied"} for i in range(n)]


def _finance(site: str, period: str, rows: list[tuple[str, str, int]]) -> list[dict]:
    sid = _submission(site, period, "finance")["submission_id"]
    return [{"submission_id": sid, "source_row": i + 2, "site_code": site, "period": period, "voucher_no": f"v{i}",
             "pay_date": dt.date.fromisoformat(period + "-10"), "amount_fen": fen, "fund_source": source,
             "category": category, "payee": "p", "invoice_no": None, "description": None}
            for i, (source, category, fen) in enumerate(rows)]


@pytest.fixture
def loaded(warehouse_url, plan):
    engine = warehouse.make_engine(warehouse_url)
    migrate(engine)
    staged = {
        warehouse.raw_roster: _roster("S01", "2025-09", 249, 200) + _roster("S01", "2026-03", 500, 450, start=1000)
        + _roster("B01", "2026-05", 1000, 899, group="other", industry="other", start=5000)
        + _roster("B02", "2026-05", 834, 834, start=9000),
        warehouse.raw_finance: _finance("B01", "2026-05", [("district", "equipment", 700_000_000),
                                                            ("provincial", "other", 12_345)])
        + _finance("S01", "2026-03", [("provincial", "project_training", 30_000_000)]),
    }
    with engine.begin() as conn:
        keys = {(r["site_code"], r["period"], t.name.removeprefix("raw_")) for t, rows in staged.items() for r in rows}
        conn.execute(warehouse.submissions.insert(), [_submission(*k) for k in sorted(keys)])
        for table, rows in staged.items():
            conn.execute(table.insert(), rows)
    models.load_reference(engine, plan)
    counts = layers.build_models(engine, SQL_DIR)
    yield engine, counts
    engine.dispose()


def _site_year(engine, site, year, basis="counted"):
    with engine.connect() as conn:
        return conn.execute(sa.text("select * from ind_site_year where site_code = :s and year = :y and basis = :b"),
                            {"s": site, "y": year, "b": basis}).mappings().one()


def _target(engine, site, year, indicator, basis="counted"):
    with engine.connect() as conn:
        return conn.execute(sa.text("select * from int_site_year_targets where site_code = :s and year = :y"
                                    " and indicator = :i and basis = :b"),
                            {"s": site, "y": year, "i": indicator, "b": basis}).mappings().one()


def test_first_year_targets_are_pro_rated_and_met_exactly(loaded):
    engine, counts = loaded
    assert counts["ind_site_year"] == 2 * 60  # 19 site-years in 2025, 41 in 2026, on two bases
    s01_2025 = _target(engine, "S01", 2025, "person_times")
    assert float(s01_2025["target"]) == 250.0  # 6/12 of 500
    assert (s01_2025["target_numerator"], s01_2025["target_denominator"]) == (500 * 6, 12)
    assert s01_2025["numerator"] == 249 and s01_2025["met"] == 0
    assert float(s01_2025["shortfall"]) == 1.0 and float(s01_2025["attainment"]) == 249 / 250
    s01_2026 = _target(engine, "S01", 2026, "person_times")
    assert s01_2026["numerator"] == 500 and s01_2026["met"] == 1 and float(s01_2026["shortfall"]) == 0
    b02 = _target(engine, "B02", 2026, "person_times")
    assert round(float(b02["target"]), 4) == round(1000 * 10 / 12, 4)
    assert b02["met"] == 1  # 834 >= 833.33
    b02_pass = _target(engine, "B02", 2026, "pass_rate")  # rates are not pro-rated
    assert (b02_pass["target_numerator"], b02_pass["target_denominator"]) == (9, 10)
    assert (b02_pass["numerator"], b02_pass["denominator"], b02_pass["met"]) == (834, 834, 1)
    b02_survey = _target(engine, "B02", 2026, "satisfaction_rate")  # no answers: nothing attained
    assert b02_survey["actual"] is None and b02_survey["met"] == 0 and float(b02_survey["attainment"]) == 0


def test_a_rate_exactly_at_its_target_is_met_on_every_database(warehouse_url, plan):
    # 63 / 70 = 0.9 exactly; in binary floating point 0.9 x 70 is 63.00000000000001
    engine = warehouse.make_engine(warehouse_url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(warehouse.submissions.insert(), [_submission("B01", "2026-05", "roster")])
        conn.execute(warehouse.raw_roster.insert(), _roster("B01", "2026-05", 70, 63))
    models.load_reference(engine, plan)
    layers.build_models(engine, SQL_DIR)
    b01 = _target(engine, "B01", 2026, "pass_rate")
    assert (b01["numerator"], b01["denominator"], b01["met"]) == (63, 70, 1)
    assert float(b01["shortfall"]) == 0 and float(b01["attainment"]) == 1
    engine.dispose()


def test_counted_and_reported_are_rows_of_one_model(loaded):
    engine, _ = loaded
    with engine.begin() as conn:  # one of S01's 2026 rows excluded by an integrity check
        sid = conn.execute(sa.text("select submission_id from submissions where site_code = 'S01'"
                                   " and period = '2026-03' and kind = 'roster'")).scalar_one()
        conn.execute(warehouse.integrity_exclusions.insert(), [
            {"kind": "roster", "submission_id": sid, "source_row": 2, "check_name": "overlapping_classes",
             "finding_id": 1}])
    layers.build_models(engine, SQL_DIR)
    assert _site_year(engine, "S01", 2026, "counted")["person_times"] == 499
    assert _site_year(engine, "S01", 2026, "reported")["person_times"] == 500
    assert _target(engine, "S01", 2026, "person_times", "counted")["met"] == 0
    assert _target(engine, "S01", 2026, "person_times", "reported")["met"] == 1
    assert float(_target(engine, "S01", 2026, "person_times", "counted")["shortfall"]) == 1.0


def test_pass_rate_just_below_target_is_not_met(loaded):
    engine, _ = loaded
    b01 = _site_year(engine, "B01", 2026)
    assert (b01["assessed"], b01["passed"]) == (1000, 899)
    assert _target(engine, "B01", 2026, "pass_rate")["met"] == 0
    assert b01["key_group_person_times"] == 0 and b01["key_industry_person_times"] == 0
    assert float(b01["key_group_share"]) == 0.0
    b02 = _site_year(engine, "B02", 2026)
    assert float(b02["key_group_share"]) == 1.0 and float(b02["key_industry_share"]) == 1.0


def test_money_is_exact_and_ineligible_provincial_spending_is_separated(loaded):
    engine, _ = loaded
    b01 = _site_year(engine, "B01", 2026)
    assert b01["spend_total_fen"] == 700_012_345
    assert b01["provincial_ineligible_fen"] == 12_345 and b01["provincial_eligible_fen"] == 0
    assert b01["equipment_fen"] == 700_000_000


def test_base_subsidy_is_capped(loaded):
    engine, _ = loaded
    with engine.connect() as conn:
        rows = {r["site_code"]: r for r in conn.execute(sa.text("select * from base_subsidy")).mappings()}
    assert set(rows) == {"B01", "B02"}  # B03 starts in 2027
    assert rows["B01"]["entitlement_fen"] == 300_000_000  # min(50% x 7,000,000, 3,000,000) yuan
    assert rows["B01"]["paid_fen"] == 300_000_000 and rows["B01"]["difference_fen"] == 0
    assert rows["B02"]["entitlement_fen"] == 0
    # fen stay integers on both databases (PostgreSQL widens sum(bigint) to numeric)
    with engine.connect() as conn:
        fen = [v for table in ("base_subsidy", "ind_site_year", "ind_site_year_spending")
               for row in conn.execute(sa.text(f"select * from {table}")).mappings()
               for k, v in row.items() if k.endswith("_fen") and v is not None]
    assert fen and all(isinstance(v, int) for v in fen), {type(v) for v in fen}


def test_rebuilding_models_is_idempotent(loaded):
    engine, _ = loaded

    def dump():
        with engine.connect() as conn:
            return sorted(map(tuple, conn.execute(sa.text("select * from ind_site_year")).all()))

    first = dump()
    layers.build_models(engine, SQL_DIR)
    assert dump() == first


def test_evaluation_tables_on_both_databases(loaded, plan):
    engine, _ = loaded
    result = evaluate(engine, plan, 2027, dt.date(2027, 2, 15))
    counts = write_evaluation(engine, result, pii_key_is_demo=True)
    assert counts["eval_indicator"] == 10 and counts["eval_district"] == 1
    points = {i.code: i.points for i in result.indicators}
    # execution: 300,000 yuan eligible of 6,000,000 received -> 10 x 0.05
    assert points["provincial_execution_rate"] == Decimal("0.50")
    with engine.connect() as conn:
        district = conn.execute(sa.text("select score, grade, released_fen from eval_district")).one()
    assert Decimal(str(district.score)) == result.score
    assert district.released_fen == release_fen(plan.policy, result.score)
    with engine.connect() as conn:
        first_rows = sorted(map(tuple, conn.execute(sa.text("select * from eval_indicator")).all()))
    again = write_evaluation(engine, result, pii_key_is_demo=True)  # a rerun is a new run beside the first
    assert again["run_id"] != counts["run_id"]
    assert (counts["run_id"], again["run_id"]) == ("2027-20270215-01", "2027-20270215-02")
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from eval_district")).scalar_one() == 2
        runs = conn.execute(sa.text("select run_id, status, score from eval_runs order by run_id")).all()
        first_again = sorted(map(tuple, conn.execute(sa.text(
            "select * from eval_indicator where run_id = :r"), {"r": counts["run_id"]}).all()))
    assert [(r.run_id, r.status) for r in runs] == [(counts["run_id"], "draft"), (again["run_id"], "draft")]
    assert first_again == [row for row in first_rows]


@pytest.mark.parametrize("score,released_yuan", [
    ("100", 2_000_000), ("90.00", 2_000_000), ("89.99", 1_799_800), ("60.00", 1_200_000), ("59.99", 0), ("0", 0)])
def test_banded_release(plan, score, released_yuan):
    assert release_fen(plan.policy, Decimal(score)) == released_yuan * 100


@pytest.mark.parametrize("score,grade", [("90", "优"), ("89.99", "良"), ("80", "良"), ("79.99", "中"), ("60", "中"),
                                         ("59.99", "差")])
def test_grades(plan, score, grade):
    assert plan.policy.grade(Decimal(score)) == grade


def test_points_are_full_when_met_and_pro_rata_otherwise():
    assert points_for(Decimal(20), Decimal(499), Decimal(500)) == Decimal("19.96")
    assert points_for(Decimal(20), Decimal(600), Decimal(500)) == Decimal("20.00")
    assert points_for(Decimal(10), Decimal("0.899"), Decimal("0.90")) == Decimal("9.99")
