"""The integrity checks on the sample inbox with every fraud pattern planted: the real DAGs via
dag.test() find what the generator planted (its truth summary), and the findings reach the
evaluation tables, the workbook and the HTML report with their effect on the score."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa

from test_end_to_end import embedded_warehouse

AS_OF = dt.date(2027, 2, 15)


@pytest.fixture(scope="module")
def run(tmp_path_factory, airflow_db):
    from yuhang_skills import cli
    from yuhang_sample.generator import SampleOptions, generate

    root = tmp_path_factory.mktemp("integrity-sample")
    truth = generate(root / "inbox", SampleOptions())
    with embedded_warehouse(root) as url:
        result = cli.run_dags(AS_OF, None, root / "inbox")
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            findings = pd.read_sql(sa.text("select * from integrity_findings"), conn)
            district = conn.execute(sa.text("select * from eval_district where evaluation_year = 2027")).mappings().one()
            checks = pd.read_sql(sa.text("select * from eval_integrity where evaluation_year = 2027"), conn)
        yield {"truth": truth["patterns"], "result": result, "findings": findings, "district": district,
               "checks": checks.set_index("check_name")}
        engine.dispose()


def _of(run, check: str) -> pd.DataFrame:
    return run["findings"][run["findings"]["check_name"] == check]


def test_every_planted_pattern_is_found(run):
    truth = run["truth"]
    assert len(_of(run, "yearly_subsidy_limit")) == truth["over_yearly_limit"]["total"] > 0
    assert len(_of(run, "outside_working_age")) == truth["near_retirement"]["total"] > 0
    assert set(_of(run, "uniform_class")["subject"]) == {c for _, c in truth["uniform_class"]["list"]}
    assert set(_of(run, "duplicate_invoice")["subject"]) == {d["invoice_no"] for d in truth["duplicate_invoice"]["list"]}
    assert set(_of(run, "duplicate_voucher")["subject"]) == {d["voucher_no"] for d in truth["duplicate_voucher"]["list"]}
    assert len(_of(run, "payment_outside_period")) == truth["out_of_period_payment"]["total"] > 0
    assert len(_of(run, "ineligible_provincial")) == truth["ineligible_spending"]["total"] > 0
    # the cross-site duplicates of the older pattern may share occupation and level as well
    assert len(_of(run, "repeat_occupation_level")) >= truth["repeat_occupation_level"]["total"] > 0
    assert len(_of(run, "overlapping_classes")) == len(truth["cross_site_duplicate"]["pairs"]) > 0
    burst = _of(run, "certificate_burst")
    assert list(burst["site_code"]) == [truth["certificate_burst"]["site_code"]]
    assert float(burst["measure"].iloc[0]) >= truth["certificate_burst"]["certificates"]
    assert truth["base_over_claim"]["site_code"] in set(_of(run, "base_equipment_over_rule")["site_code"])
    overpaid = _of(run, "training_paid_beyond_roster")
    assert list(zip(overpaid["site_code"], overpaid["year"])) == [
        (truth["training_overpaid"]["site_code"], truth["training_overpaid"]["year"])]


def test_the_evaluation_shows_person_times_and_score_before_and_after_exclusion(run):
    d, checks = run["district"], run["checks"]
    excluded = int(checks["excluded_person_times"].sum())
    assert excluded > 0
    assert d["person_times_reported"] - d["person_times_counted"] == excluded
    assert Decimal(str(d["score_before_exclusions"])) >= Decimal(str(d["score"]))
    assert int(checks["findings"].sum()) == len(run["findings"])
    headline = run["result"]["headline"]
    assert headline["score_before_exclusions"] == str(Decimal(str(d["score_before_exclusions"])))


def test_workbook_and_report_carry_the_findings(run):
    headline = run["result"]["headline"]
    book = openpyxl.load_workbook(headline["workbook"], read_only=True)
    summary = list(book["诚信核查 Integrity"].values)
    assert summary[0][:3] == ("核查项", "处理方式", "发现数") and len(summary) == 1 + len(run["checks"])
    detail = list(book["核查明细 Findings"].values)
    assert len(detail) == 1 + len(run["findings"])
    html = open(headline["report"], encoding="utf-8").read()
    d = run["district"]
    assert '<section id="integrity">' in html
    assert f"剔除前总分 {Decimal(str(d['score_before_exclusions'])):.2f}" in html
    assert f"{int(d['person_times_reported']):,} person-times" in html
