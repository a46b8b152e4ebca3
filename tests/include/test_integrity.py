"""Integrity checks (include/yuhang_skills/sql/integrity) on SQLite and PostgreSQL, from hand-made staging rows:
for every check a planted case that must be found and a near miss that must not, then what the
exclusions do to the indicators."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa

from yuhang_skills.indicators import integrity
from yuhang_skills.indicators import layers, models
from yuhang_skills.core import warehouse
from yuhang_skills.core.migrations import migrate
from yuhang_skills.core.policy import Plan
from yuhang_skills.core.settings import SQL_DIR, load_settings

D = dt.date


def _answer(person: str) -> str:
    """A satisfaction answer that varies between trainees (so no class answers uniformly by chance)."""
    return ("satisfied", "very_satisfied", "basic")[int(hashlib.md5(person.encode()).hexdigest(), 16) % 3]


class World:
    """Staging rows with the submissions they came from (one file per site, period and kind)."""

    def __init__(self) -> None:
        self.roster: list[dict] = []
        self.finance: list[dict] = []
        self.files: dict[tuple[str, str, str], dict] = {}

    def _file(self, site: str, period: str, kind: str) -> dict:
        key = (site, period, kind)
        if key not in self.files:
            sid = f"sha-{site}-{period}-{kind}:{site}:{period}:{kind}"
            self.files[key] = {"submission_id": sid, "sha256": f"sha-{site}-{period}-{kind}", "site_code": site,
                               "period": period, "kind": kind, "original_name": f"{period}/{site}/{kind}.csv",
                               "archive_path": "-", "size_bytes": 1, "received_at": dt.datetime(2026, 1, 1),
                               "ingested_at": dt.datetime(2026, 1, 1), "version": 1, "is_current": True,
                               "status": "accepted", "rows_read": 0, "rows_staged": 0, "rows_quarantined": 0,
                               "next_row": 2}
        return self.files[key]

    def trainee(self, site: str, class_id: str, person: str, start: dt.date, end: dt.date, *,
                occupation: str = "电工", level: str = "primary", passed: bool = True, satisfaction: str | None = None,
                birth: dt.date = D(1990, 1, 1), sex: str = "M", age: int = 36,
                period: str | None = None) -> tuple[str, int]:
        f = self._file(site, period or start.strftime("%Y-%m"), "roster")
        row = f["next_row"]
        f["next_row"] += 1
        self.roster.append({
            "submission_id": f["submission_id"], "source_row": row, "site_code": site, "period": f["period"],
            "class_id": class_id, "course": "c", "occupation": occupation, "level": level, "industry": "other",
            "start_date": start, "end_date": end, "hours": Decimal(8), "person_key": person, "name_key": f"n-{person}",
            "birth_date": birth, "sex": sex, "age_on_start": age, "person_group": "other",
            "low_income_household": False, "assessed": True, "passed": passed, "certificate_no": None,
            "satisfaction": satisfaction if satisfaction is not None else _answer(person),
        })
        return f["original_name"], row

    def payment(self, site: str, period: str, *, pay_date: dt.date | None = None, fen: int = 100_000,
                source: str = "district", category: str = "equipment", voucher: str | None = None,
                payee: str | None = None, invoice: str | None = None) -> tuple[str, int]:
        f = self._file(site, period, "finance")
        row = f["next_row"]
        f["next_row"] += 1
        self.finance.append({
            "submission_id": f["submission_id"], "source_row": row, "site_code": site, "period": period,
            "voucher_no": voucher or f"记{period.replace('-', '')}-{row:03d}", "pay_date": pay_date or D.fromisoformat(period + "-10"),
            "amount_fen": fen, "fund_source": source, "category": category, "payee": payee or f"{site} 的供应商",
            "invoice_no": invoice,
            "description": None,
        })
        return f["original_name"], row


def build_world() -> tuple[World, dict[str, set]]:
    """Every planted case and its near miss; returns the findings each check must report, as
    (site_code of the finding, subject) pairs, and the rows each must exclude."""
    w = World()
    expected: dict[str, set] = {}
    excluded: dict[str, set] = {}

    # overlapping_classes: two sites sharing 2026-03-05; one site sharing 2026-04-03 (planted);
    # classes that touch (05-05 / 05-06) but do not overlap (near miss).
    w.trainee("S01", "S01-A", "ov1", D(2026, 3, 2), D(2026, 3, 6))
    later = w.trainee("S02", "S02-B", "ov1", D(2026, 3, 5), D(2026, 3, 8), occupation="焊工")
    w.trainee("S03", "S03-C", "ov2", D(2026, 4, 1), D(2026, 4, 3))
    later2 = w.trainee("S03", "S03-D", "ov2", D(2026, 4, 3), D(2026, 4, 5), occupation="焊工")
    w.trainee("S01", "S01-E", "touch", D(2026, 5, 1), D(2026, 5, 5))
    w.trainee("S02", "S02-F", "touch", D(2026, 5, 6), D(2026, 5, 9), occupation="焊工")
    # a chain: B overlaps A and is excluded; C overlaps only B, which does not count, so C counts
    w.trainee("S04", "CH-A", "chain", D(2026, 6, 1), D(2026, 6, 10), occupation="焊工")
    chain_b = w.trainee("S04", "CH-B", "chain", D(2026, 6, 5), D(2026, 6, 15), occupation="钳工")
    w.trainee("S04", "CH-C", "chain", D(2026, 6, 12), D(2026, 6, 20), occupation="茶艺师")
    # an overlapping duplicate does not also use up one of the person's three yearly subsidies
    w.trainee("S01", "DUP-1", "dup", D(2026, 10, 1), D(2026, 10, 5), occupation="焊工")
    dup = w.trainee("S02", "DUP-2", "dup", D(2026, 10, 3), D(2026, 10, 6), occupation="钳工")
    w.trainee("S01", "DUP-3", "dup", D(2026, 11, 2), D(2026, 11, 4), occupation="茶艺师")
    w.trainee("S01", "DUP-4", "dup", D(2026, 12, 1), D(2026, 12, 3), occupation="育婴员")
    expected["overlapping_classes"] = {("S02", "ov1"), ("S03", "ov2"), ("S04", "chain"), ("S02", "dup")}
    excluded["overlapping_classes"] = {later, later2, chain_b, dup}

    # yearly_subsidy_limit: 4 trainings in 2026 (planted), 3 in 2026 and one in 2025 (near miss).
    occupations = ["电工", "焊工", "钳工", "茶艺师"]
    fourth = None
    for n, occ in enumerate(occupations):
        fourth = w.trainee("S01" if n < 2 else "S02", f"Y4-{n}", "y4", D(2026, 6 + n, 1), D(2026, 6 + n, 3), occupation=occ)
    w.trainee("S01", "Y3-2025", "y3", D(2025, 11, 3), D(2025, 11, 5), occupation="育婴员")
    for n, occ in enumerate(occupations[:3]):
        w.trainee("S01", f"Y3-{n}", "y3", D(2026, 6 + n, 10), D(2026, 6 + n, 12), occupation=occ)
    expected["yearly_subsidy_limit"] = {("S02", "y4")}
    excluded["yearly_subsidy_limit"] = {fourth}

    # repeat_occupation_level: 电工 primary twice (planted); 电工 primary then intermediate (near miss).
    w.trainee("S01", "R-1", "rep", D(2026, 2, 2), D(2026, 2, 4))
    repeat = w.trainee("S02", "R-2", "rep", D(2026, 9, 14), D(2026, 9, 16))
    w.trainee("S01", "R-3", "rep-nm", D(2026, 2, 2), D(2026, 2, 4))
    w.trainee("S02", "R-4", "rep-nm", D(2026, 9, 14), D(2026, 9, 16), level="intermediate")
    expected["repeat_occupation_level"] = {("S02", "rep")}
    excluded["repeat_occupation_level"] = {repeat}

    # outside_working_age: a man born 1965-12-10 retires on 2026-03-10 (60y3m); a class from 03-20
    # (inside intake's grace) and a 15-year-old are planted; the day before retirement is the near miss.
    retired = w.trainee("S04", "A-1", "old", D(2026, 3, 20), D(2026, 3, 22), birth=D(1965, 12, 10), age=60,
                        occupation="钳工")
    minor = w.trainee("S04", "A-2", "young", D(2026, 3, 20), D(2026, 3, 22), birth=D(2010, 4, 1), age=15,
                      occupation="钳工")
    w.trainee("S04", "A-3", "almost", D(2026, 3, 9), D(2026, 3, 11), birth=D(1965, 12, 10), age=60, occupation="钳工")
    expected["outside_working_age"] = {("S04", "old"), ("S04", "young")}
    excluded["outside_working_age"] = {retired, minor}

    # certificate_burst: B01 passes 150 within 3 days on top of 10 a month (planted); B02 99 (near miss,
    # below min_passed).
    for site, burst in (("B01", 150), ("B02", 99)):
        for month in range(1, 13):
            for i in range(10):
                w.trainee(site, f"{site}-M{month}", f"{site}-m{month}-{i}", D(2026, month, 10), D(2026, month, 15),
                          occupation=f"工种{i}")
        for i in range(burst):
            day = D(2026, 6, 1 + i % 3)
            w.trainee(site, f"{site}-BURST-{i % 3}", f"{site}-b{i}", day - dt.timedelta(days=2), day, occupation="焊工")
    expected["certificate_burst"] = {("B01", "B01")}

    # uniform_class: 10 passed with the same answer (planted); the same with one other answer, and 9
    # identical (near misses).
    for i in range(10):
        w.trainee("S05", "U-10", f"u10-{i}", D(2026, 7, 6), D(2026, 7, 8), satisfaction="very_satisfied")
        w.trainee("S05", "U-MIXED", f"um-{i}", D(2026, 7, 6), D(2026, 7, 8),
                  satisfaction="satisfied" if i == 0 else "very_satisfied")
    for i in range(9):
        w.trainee("S05", "U-9", f"u9-{i}", D(2026, 7, 6), D(2026, 7, 8), satisfaction="very_satisfied")
    expected["uniform_class"] = {("S05", "U-10")}

    # duplicate_invoice: the same number at S01 and S02 (planted); twice at one site (near miss).
    w.payment("S01", "2026-03", pay_date=D(2026, 3, 10), invoice="26330000000000000001")
    dup_invoice = w.payment("S02", "2026-03", pay_date=D(2026, 3, 12), invoice="26330000000000000001")
    w.payment("S03", "2026-03", invoice="26330000000000000002")
    w.payment("S03", "2026-04", invoice="26330000000000000002")
    expected["duplicate_invoice"] = {("S02", "26330000000000000001")}
    excluded["duplicate_invoice"] = {dup_invoice}

    # duplicate_voucher: one voucher, amount and payee at S01 and S03 (planted); the same voucher
    # number with another amount at S02 (near miss).
    w.payment("S01", "2026-05", voucher="记202605-001", fen=5_000_000, payee="杭州华睿教学设备有限公司")
    w.payment("S03", "2026-05", voucher="记202605-001", fen=5_000_000, payee="杭州华睿教学设备有限公司")
    w.payment("S02", "2026-05", voucher="记202605-001", fen=5_000_001, payee="杭州华睿教学设备有限公司")
    expected["duplicate_voucher"] = {("S03", "记202605-001")}

    # base_equipment_over_rule: B01 (3,000,000 paid) bought 1,000,000 of equipment (planted); B02
    # bought 7,000,000, so min(50%, 3,000,000) is exactly what it was paid (near miss).
    w.payment("B01", "2026-02", fen=100_000_000)
    w.payment("B02", "2026-02", fen=700_000_000)
    expected["base_equipment_over_rule"] = {("B01", "B01")}

    # ineligible_provincial: provincial money on "other" (planted); district money on "other" and
    # provincial money on equipment (near misses).
    w.payment("S06", "2026-06", source="provincial", category="other", voucher="记202606-009", fen=12_345)
    w.payment("S06", "2026-06", source="district", category="other")
    w.payment("S06", "2026-06", source="provincial", category="equipment")
    expected["ineligible_provincial"] = {("S06", "记202606-009")}

    # payment_outside_period: paid 2027-01-05 in the 2026-12 ledger (planted); 2026-12-31 (near miss).
    late = w.payment("S06", "2026-12", pay_date=D(2027, 1, 5), voucher="记202612-005")
    w.payment("S06", "2026-12", pay_date=D(2026, 12, 31))
    expected["payment_outside_period"] = {("S06", "记202612-005")}
    excluded["payment_outside_period"] = {late}

    # training_paid_beyond_roster (3,000 yuan a person-time, stations and bases): S07 pays 6,000.01
    # for 2 person-times (planted); S08 exactly 6,000 (near miss); village V01 pays 100,000 for one.
    for site, fen in (("S07", 600_001), ("S08", 600_000)):
        w.trainee(site, f"{site}-T", f"{site}-t1", D(2026, 8, 3), D(2026, 8, 5), occupation="茶艺师")
        w.trainee(site, f"{site}-T", f"{site}-t2", D(2026, 8, 3), D(2026, 8, 5), occupation="茶艺师")
        w.payment(site, "2026-08", category="training_subsidy", fen=fen)
    w.trainee("V01", "V01-T", "v1", D(2026, 8, 3), D(2026, 8, 5), occupation="茶艺师")
    w.payment("V01", "2026-08", category="training_subsidy", fen=10_000_000)
    expected["training_paid_beyond_roster"] = {("S07", "S07")}

    # resubmitted_in_another_period: S10's May payment booked again in its June ledger (planted: the
    # June copy is excluded); the same voucher number with another amount in July (near miss: ledgers
    # that number vouchers from 1 every month).
    w.payment("S10", "2026-05", pay_date=D(2026, 5, 20), voucher="记-RS1", payee="重复供应商", fen=50_000)
    repeat = w.payment("S10", "2026-06", pay_date=D(2026, 5, 20), voucher="记-RS1", payee="重复供应商", fen=50_000)
    w.payment("S10", "2026-07", pay_date=D(2026, 7, 20), voucher="记-RS1", payee="重复供应商", fen=70_000)
    expected["resubmitted_in_another_period"] = {("S10", "记-RS1")}
    excluded["resubmitted_in_another_period"] = {repeat}
    return w, {"findings": expected, "excluded": excluded}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def checked(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('integrity')}/warehouse.sqlite"
    else:
        url = request.getfixturevalue("new_postgres_schema")()
    plan = Plan.from_settings(load_settings())
    engine = warehouse.make_engine(url)
    migrate(engine)
    world, truth = build_world()
    with engine.begin() as conn:
        conn.execute(warehouse.submissions.insert(), [{k: v for k, v in f.items() if k != "next_row"}
                                                      for f in world.files.values()])
        conn.execute(warehouse.raw_roster.insert(), world.roster)
        conn.execute(warehouse.raw_finance.insert(), world.finance)
    models.load_reference(engine, plan)
    results = integrity.run_checks(engine, plan, SQL_DIR)
    layers.build_models(engine, SQL_DIR)
    yield engine, plan, truth, results
    engine.dispose()


def _findings(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text("select * from integrity_findings order by finding_id"), conn)


CHECKS = ["overlapping_classes", "yearly_subsidy_limit", "repeat_occupation_level", "outside_working_age",
          "certificate_burst", "uniform_class", "duplicate_invoice", "duplicate_voucher", "base_equipment_over_rule",
          "ineligible_provincial", "payment_outside_period", "resubmitted_in_another_period", "training_paid_beyond_roster"]


def test_every_check_of_the_policy_is_tested():
    assert integrity.check_names(Plan.from_settings(load_settings())) == CHECKS


@pytest.mark.parametrize("check", CHECKS)
def test_planted_case_is_found_and_near_miss_is_not(checked, check):
    engine, _, truth, _ = checked
    found = _findings(engine)
    mine = found[found["check_name"] == check]
    assert set(zip(mine["site_code"], mine["subject"])) == truth["findings"][check], mine.to_dict("records")


@pytest.mark.parametrize("check", [c for c in CHECKS if c in {"overlapping_classes", "yearly_subsidy_limit",
                                                                 "repeat_occupation_level", "outside_working_age",
                                                                 "duplicate_invoice", "payment_outside_period",
                                                                 "resubmitted_in_another_period"}])
def test_excluding_checks_exclude_exactly_the_later_rows(checked, check):
    engine, _, truth, _ = checked
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "select s.original_name, x.source_row from integrity_exclusions as x "
            "join submissions as s on s.submission_id = x.submission_id where x.check_name = :c"), {"c": check}).all()
    assert {(name, row) for name, row in rows} == truth["excluded"][check]


def test_findings_explain_themselves_in_both_languages_and_cite_their_rows(checked):
    engine, *_ = checked
    found = _findings(engine).set_index("check_name")
    over = found.loc["yearly_subsidy_limit"]
    assert over["sites"] == "S01,S02" and over["year"] == 2026
    assert float(over["measure"]) == 4 and float(over["threshold"]) == 3
    assert over["evidence_rows"] == 4 and over["excluded_rows"] == 1
    assert "2026-09/S02/roster.csv row" in over["evidence"] and "(excluded)" in over["evidence"]
    assert "4次" in over["explanation_zh"] and "3次" in over["explanation_zh"]
    assert "4 times in 2026" in over["explanation_en"]
    burst = found.loc["certificate_burst"]
    assert float(burst["measure"]) == 150 and burst["severity"] == "review" and burst["excluded_rows"] == 0
    assert burst["evidence_rows"] == 150 and "… 100 more" in burst["evidence"]  # 50 references shown


def test_exclusions_leave_the_indicators_with_both_figures(checked):
    engine, *_ = checked
    with engine.connect() as conn:
        rows = {(r.site_code, r.year): r for r in conn.execute(sa.text(
            "select c.site_code, c.year, c.person_times, r.person_times as person_times_reported, c.spend_total_fen, "
            "r.spend_total_fen as spend_total_fen_reported from ind_site_year as c join ind_site_year as r "
            "on r.site_code = c.site_code and r.year = c.year and r.basis = 'reported' where c.basis = 'counted'"))}
    # S02 2026: ov1's and dup's overlapping classes, y4's fourth training and rep's repeat are left out.
    assert (rows[("S02", 2026)].person_times_reported - rows[("S02", 2026)].person_times) == 4
    assert (rows[("S04", 2026)].person_times_reported - rows[("S04", 2026)].person_times) == 3  # 2 ages, chain B
    assert rows[("S01", 2026)].person_times_reported == rows[("S01", 2026)].person_times
    # S06: the payment dated after the implementation period is not counted.
    assert rows[("S06", 2026)].spend_total_fen_reported - rows[("S06", 2026)].spend_total_fen == 100_000
    # S02 2026: the second use of an invoice is not counted.
    assert rows[("S02", 2026)].spend_total_fen_reported - rows[("S02", 2026)].spend_total_fen == 100_000


def test_rerun_gives_identical_tables(checked):
    engine, plan, *_ = checked
    before = _findings(engine)
    with engine.connect() as conn:
        exclusions = pd.read_sql(sa.text("select * from integrity_exclusions order by kind, submission_id, source_row"), conn)
    integrity.run_checks(engine, plan, SQL_DIR)
    pd.testing.assert_frame_equal(_findings(engine), before)
    with engine.connect() as conn:
        again = pd.read_sql(sa.text("select * from integrity_exclusions order by kind, submission_id, source_row"), conn)
    pd.testing.assert_frame_equal(again, exclusions)


def test_a_check_without_its_sql_file_is_refused(tmp_path):
    plan = Plan.from_settings(load_settings())
    (tmp_path / "integrity").mkdir()
    for name in CHECKS[1:]:
        (tmp_path / "integrity" / f"{name}.sql").write_text("select 1", encoding="utf-8")
    with pytest.raises(ValueError, match="no SQL file for \\['overlapping_classes'\\]"):
        integrity.verify_checks(plan, tmp_path)


def test_a_class_filed_again_under_another_period_is_found_and_its_repeat_excluded(warehouse_url):
    """resubmitted_in_another_period, roster: V20 files class RS-C (ending in August) in its July
    and its August roster (planted: the August copy is excluded); the same person in another class
    in September is no finding (near miss)."""
    plan = Plan.from_settings(load_settings())
    engine = warehouse.make_engine(warehouse_url)
    migrate(engine)
    w = World()
    w.trainee("V20", "RS-C", "rs-p", D(2026, 7, 28), D(2026, 8, 2), period="2026-07")
    repeat = w.trainee("V20", "RS-C", "rs-p", D(2026, 7, 28), D(2026, 8, 2), period="2026-08")
    w.trainee("V20", "RS-D", "rs-p", D(2026, 9, 7), D(2026, 9, 9), occupation="焊工", period="2026-09")
    with engine.begin() as conn:
        conn.execute(warehouse.submissions.insert(), [{k: v for k, v in f.items() if k != "next_row"}
                                                      for f in w.files.values()])
        conn.execute(warehouse.raw_roster.insert(), w.roster)
    models.load_reference(engine, plan)
    integrity.run_checks(engine, plan, SQL_DIR)
    found = _findings(engine)
    mine = found[found["check_name"] == "resubmitted_in_another_period"]
    assert mine[["site_code", "subject", "excluded_rows", "evidence_rows"]].values.tolist() == [["V20", "rs-p", 1, 2]]
    assert float(mine.iloc[0]["measure"]) == 2 and "2 periods" in mine.iloc[0]["explanation_en"]
    # Only this check sees it (overlapping_classes pairs different classes): the repeat is excluded,
    # once, and nothing else.
    with engine.connect() as conn:
        excluded = conn.execute(sa.text(
            "select s.original_name, x.source_row, x.check_name from integrity_exclusions as x join submissions as s "
            "on s.submission_id = x.submission_id")).all()
    assert [(n, r, c) for n, r, c in excluded] == [(*repeat, "resubmitted_in_another_period")]
    engine.dispose()


def test_a_check_index_with_other_columns_is_built_again(warehouse_url):
    """A check index left by an older version with other columns (here the person index on the
    person key alone) is dropped and created with the columns the checks use now."""
    plan = Plan.from_settings(load_settings())
    engine = warehouse.make_engine(warehouse_url)
    migrate(engine)
    models.load_reference(engine, plan)
    with engine.begin() as conn:
        conn.execute(sa.text("create index ix_raw_roster_person on raw_roster (person_key)"))
    integrity.run_checks(engine, plan, SQL_DIR)
    wanted = dict((name, columns) for name, _, columns in integrity.INDEXES)
    if engine.dialect.name == "sqlite":
        wanted.update(integrity.SQLITE_COLUMNS)
    with engine.connect() as conn:
        found = {
            index["name"]: ", ".join(str(c) for c in index["column_names"])
            for table in ("raw_roster", "raw_finance")
            for index in sa.inspect(conn).get_indexes(table)
        }
    assert {name: found.get(name) for name in wanted} == wanted
    assert wanted["ix_raw_roster_person"].startswith("person_key, start_date")
