"""Baseline: the warehouse as the last release before migrations made it with ``create_schema``.

Revision ID: 0001_baseline
Revises: (none)
Create Date: 2026-12-03

A frozen copy of the tables (never edited: later changes are later revisions). ``upgrade`` creates
them in an empty database. ``adopt`` brings a warehouse made by an earlier release's
``create_schema`` (no version table) to this schema without losing a row, before ``migrate``
stamps it with this revision:

- an ``eval_*`` table made before evaluation runs existed (one set of rows per year, no
  ``run_id``) is renamed ``<table>_before_runs`` with its rows, and the new table is created
  beside it, so the old evaluation stays readable;
- tables it lacks are created;
- columns a table made by an earlier release lacks (``quarantine.severity``, the newer
  ``eval_gap`` columns …) are added as nullable: its earlier rows have no value;
- the index holding one final run per year is created when missing.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

# Staging tables are WITHOUT ROWID on SQLite (their key is the table's b-tree); PostgreSQL ignores it.
STAGING_TABLE_OPTIONS: dict[str, Any] = {"sqlite_with_rowid": False}
# The evaluation tables that gained run_id in their key when evaluation runs came.
PRE_RUN_TABLES = (
    "eval_indicator",
    "eval_site",
    "eval_district",
    "eval_gap",
    "eval_release",
    "eval_rectification",
    "eval_plan_2027",
    "eval_excellent_station",
    "eval_integrity",
    "eval_village",
    "eval_submissions",
)


def baseline_metadata() -> sa.MetaData:
    meta = sa.MetaData()
    sa.Table(
        "ref_sites",
        meta,
        sa.Column("site_code", sa.String(length=8), primary_key=True),
        sa.Column("programme", sa.String(length=16), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("town", sa.String(length=50), nullable=False),
        sa.Column("batch_year", sa.Integer(), nullable=False),
        sa.Column("active_from", sa.Date(), nullable=False),
        sa.Column("industry_focus", sa.String(length=50)),
        sa.Column("contact_name", sa.String(length=100)),
        sa.Column("contact_email", sa.String(length=200)),
        sa.Column("plan_provincial_fen", sa.BigInteger(), nullable=False),
        sa.Column("plan_district_fen", sa.BigInteger(), nullable=False),
    )
    sa.Table(
        "ref_site_years",
        meta,
        sa.Column("site_code", sa.String(length=8), primary_key=True),
        sa.Column("year", sa.Integer(), primary_key=True),
        sa.Column("programme", sa.String(length=16), nullable=False),
        sa.Column("months_active", sa.Integer(), nullable=False),
        sa.Column("target_months", sa.Integer(), nullable=False),
    )
    sa.Table(
        "ref_provincial_received",
        meta,
        sa.Column("year", sa.Integer(), primary_key=True),
        sa.Column("received_fen", sa.BigInteger(), nullable=False),
    )
    sa.Table(
        "ref_base_rule",
        meta,
        sa.Column("share_numerator", sa.BigInteger(), nullable=False),
        sa.Column("share_denominator", sa.BigInteger(), nullable=False),
        sa.Column("cap_fen", sa.BigInteger(), nullable=False),
    )
    sa.Table(
        "ref_targets",
        meta,
        sa.Column("programme", sa.String(length=16), primary_key=True),
        sa.Column("indicator", sa.String(length=40), primary_key=True),
        sa.Column("target", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("per_year", sa.Boolean(), nullable=False),
    )
    sa.Table(
        "ref_codes",
        meta,
        sa.Column("code_list", sa.String(length=40), primary_key=True),
        sa.Column("code", sa.String(length=40), primary_key=True),
    )
    sa.Table(
        "submissions",
        meta,
        sa.Column("submission_id", sa.String(length=120), primary_key=True),
        sa.Column("sha256", sa.String(length=64), nullable=False, index=True),
        sa.Column("site_code", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("original_name", sa.String(length=500), nullable=False),
        sa.Column("archive_path", sa.String(length=500), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("ingested_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer()),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_staged", sa.Integer(), nullable=False),
        sa.Column("rows_quarantined", sa.Integer(), nullable=False),
        sa.Column("encoding", sa.String(length=20)),
        sa.Column("header_row", sa.Integer()),
        sa.Column("message", sa.Text()),
    )
    sa.Table(
        "quarantine",
        meta,
        sa.Column("quarantine_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("submission_id", sa.String(length=120), nullable=False, index=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("source_file", sa.String(length=500), nullable=False),
        sa.Column("site_code", sa.String(length=16)),
        sa.Column("period", sa.String(length=7)),
        sa.Column("kind", sa.String(length=16)),
        sa.Column("source_row", sa.Integer()),
        sa.Column("column_name", sa.String(length=60)),
        sa.Column("value", sa.Text()),
        sa.Column("expectation", sa.String(length=120), nullable=False),
        sa.Column("reason_zh", sa.Text(), nullable=False),
        sa.Column("reason_en", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False, server_default="error"),
    )
    sa.Table(
        "submission_arrivals",
        meta,
        sa.Column("arrival_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("relative_path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False, index=True),
        sa.Column("submission_id", sa.String(length=120), nullable=False, index=True),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("file_mtime", sa.DateTime()),
    )
    sa.Table(
        "intake_not_processed",
        meta,
        sa.Column("relative_path", sa.Text(), nullable=False),
        sa.Column("reason_code", sa.String(length=40), nullable=False),
        sa.Column("reason_zh", sa.Text(), nullable=False),
        sa.Column("reason_en", sa.Text(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
    )
    sa.Table(
        "validation_runs",
        meta,
        sa.Column("submission_id", sa.String(length=120), primary_key=True),
        sa.Column("suite", sa.String(length=60), nullable=False),
        sa.Column("expectations", sa.Integer(), nullable=False),
        sa.Column("failed_expectations", sa.Integer(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("evaluated_rows", sa.Integer(), nullable=False),
        sa.Column("run_at", sa.DateTime(), nullable=False),
        sa.Column("results_json", sa.Text(), nullable=False),
    )
    sa.Table(
        "stg_roster",
        meta,
        sa.Column("submission_id", sa.String(length=120), primary_key=True),
        sa.Column("source_row", sa.Integer(), primary_key=True),
        sa.Column("site_code", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("class_id", sa.String(length=80), nullable=False),
        sa.Column("course", sa.String(length=200), nullable=False),
        sa.Column("occupation", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=24), nullable=False),
        sa.Column("industry", sa.String(length=30), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("hours", sa.Numeric(precision=8, scale=2), nullable=False),
        sa.Column("person_key", sa.String(length=64), nullable=False),
        sa.Column("name_key", sa.String(length=64), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("age_on_start", sa.Integer(), nullable=False),
        sa.Column("person_group", sa.String(length=24), nullable=False),
        sa.Column("low_income_household", sa.Boolean()),
        sa.Column("assessed", sa.Boolean(), nullable=False),
        sa.Column("passed", sa.Boolean()),
        sa.Column("certificate_no", sa.String(length=80)),
        sa.Column("satisfaction", sa.String(length=24)),
        **STAGING_TABLE_OPTIONS,
    )
    sa.Table(
        "stg_finance",
        meta,
        sa.Column("submission_id", sa.String(length=120), primary_key=True),
        sa.Column("source_row", sa.Integer(), primary_key=True),
        sa.Column("site_code", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("voucher_no", sa.String(length=80), nullable=False),
        sa.Column("pay_date", sa.Date(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("fund_source", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("payee", sa.String(length=200), nullable=False),
        sa.Column("invoice_no", sa.String(length=80)),
        sa.Column("description", sa.Text()),
        **STAGING_TABLE_OPTIONS,
    )
    sa.Table(
        "stg_survey",
        meta,
        sa.Column("submission_id", sa.String(length=120), primary_key=True),
        sa.Column("source_row", sa.Integer(), primary_key=True),
        sa.Column("site_code", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("respondent_type", sa.String(length=16), nullable=False),
        sa.Column("survey_date", sa.Date(), nullable=False),
        sa.Column("rating", sa.String(length=24), nullable=False),
        **STAGING_TABLE_OPTIONS,
    )
    sa.Table(
        "stg_outcomes",
        meta,
        sa.Column("submission_id", sa.String(length=120), primary_key=True),
        sa.Column("source_row", sa.Integer(), primary_key=True),
        sa.Column("site_code", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("low_income_households", sa.Integer(), nullable=False),
        sa.Column("households_with_skill", sa.Integer(), nullable=False),
        sa.Column("trainees", sa.Integer(), nullable=False),
        sa.Column("avg_income_gain_fen", sa.BigInteger(), nullable=False),
        **STAGING_TABLE_OPTIONS,
    )
    sa.Table(
        "ref_integrity_params",
        meta,
        sa.Column("check_name", sa.String(length=40), primary_key=True),
        sa.Column("parameter", sa.String(length=40), primary_key=True),
        sa.Column("value", sa.Numeric(precision=18, scale=4), nullable=False),
    )
    sa.Table(
        "ref_implementation_period",
        meta,
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
    )
    sa.Table(
        "ref_calendar",
        meta,
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("day_number", sa.Integer(), nullable=False, unique=True),
        sa.Column("year", sa.Integer(), nullable=False),
    )
    sa.Table(
        "ref_retirement",
        meta,
        sa.Column("sex", sa.String(length=1), primary_key=True),
        sa.Column("birth_date", sa.Date(), primary_key=True),
        sa.Column("retirement_date", sa.Date(), nullable=False),
    )
    sa.Table(
        "integrity_findings",
        meta,
        sa.Column("finding_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("check_name", sa.String(length=40), nullable=False, index=True),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("site_code", sa.String(length=8), nullable=False),
        sa.Column("sites", sa.String(length=200), nullable=False),
        sa.Column("year", sa.Integer()),
        sa.Column("periods", sa.String(length=200)),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("measure", sa.Numeric(precision=18, scale=4)),
        sa.Column("threshold", sa.Numeric(precision=18, scale=4)),
        sa.Column("evidence_rows", sa.Integer(), nullable=False),
        sa.Column("excluded_rows", sa.Integer(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("explanation_zh", sa.Text(), nullable=False),
        sa.Column("explanation_en", sa.Text(), nullable=False),
    )
    sa.Table(
        "integrity_exclusions",
        meta,
        sa.Column("kind", sa.String(length=16), primary_key=True),
        sa.Column("submission_id", sa.String(length=120), primary_key=True),
        sa.Column("source_row", sa.Integer(), primary_key=True),
        sa.Column("check_name", sa.String(length=40), nullable=False),
        sa.Column("finding_id", sa.Integer(), nullable=False),
    )
    sa.Table(
        "eval_runs",
        meta,
        sa.Column("run_id", sa.String(length=40), primary_key=True),
        sa.Column("evaluation_year", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("input_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("policy_version", sa.String(length=60), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("data_complete_on", sa.Date()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finalised_at", sa.DateTime()),
        sa.Column("superseded_by", sa.String(length=40)),
        sa.Column("supersede_reason", sa.Text()),
        sa.Column("score", sa.Numeric(precision=6, scale=2)),
        sa.Column("grade", sa.String(length=4)),
        sa.Column("released_fen", sa.BigInteger()),
        sa.Column("recoveries_fen", sa.BigInteger()),
        sa.Column("net_released_fen", sa.BigInteger()),
        sa.Column("outputs", sa.Text()),
    )
    sa.Table(
        "eval_signoffs",
        meta,
        sa.Column("run_id", sa.String(length=40), primary_key=True),
        sa.Column("role", sa.String(length=20), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("comment", sa.Text()),
        sa.Column("signed_at", sa.DateTime(), nullable=False),
        sa.Column("signed_by", sa.String(length=100)),
    )
    sa.Table(
        "eval_indicator",
        meta,
        sa.Column("run_id", sa.String(length=40), primary_key=True),
        sa.Column("evaluation_year", sa.Integer(), primary_key=True),
        sa.Column("indicator", sa.String(length=60), primary_key=True),
        sa.Column("dimension", sa.String(length=30), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("weight", sa.Numeric(precision=6, scale=2), nullable=False),
        sa.Column("target", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("actual", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("numerator", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("denominator", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("points", sa.Numeric(precision=6, scale=2), nullable=False),
        sa.Column("met", sa.Boolean(), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("source_rows", sa.Integer(), nullable=False),
        sa.Column("margin_actual", sa.Numeric(precision=14, scale=4)),
    )
    sa.Table(
        "eval_site",
        meta,
        sa.Column("run_id", sa.String(length=40), primary_key=True),
        sa.Column("evaluation_year", sa.Integer(), primary_key=True),
        sa.Column("site_code", sa.String(length=8), primary_key=True),
        sa.Column("year", sa.Integer(), primary_key=True),
        sa.Column("programme", sa.String(length=16), nullable=False),
        sa.Column("indicator", sa.String(length=40), primary_key=True),
        sa.Column("target", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("actual", sa.Numeric(precision=14, scale=4)),
        sa.Column("attainment", sa.Numeric(precision=10, scale=6), nullable=False),
        sa.Column("met", sa.Boolean(), nullable=False),
        sa.Column("shortfall", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("source_rows", sa.Integer(), nullable=False),
        sa.Column("submissions", sa.Integer()),
        sa.Column("deadline", sa.Date()),
        sa.Column("rectification_status", sa.String(length=12)),
        sa.Column("recovery_fen", sa.BigInteger()),
        sa.Column("actual_reported", sa.Numeric(precision=14, scale=4)),
    )
    sa.Table(
        "eval_district",
        meta,
        sa.Column("run_id", sa.String(length=40), primary_key=True),
        sa.Column("evaluation_year", sa.Integer(), primary_key=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("score", sa.Numeric(precision=6, scale=2), nullable=False),
        sa.Column("grade", sa.String(length=4), nullable=False),
        sa.Column("release_rule", sa.String(length=20), nullable=False),
        sa.Column("tranche_fen", sa.BigInteger(), nullable=False),
        sa.Column("released_fen", sa.BigInteger(), nullable=False),
        sa.Column("withheld_fen", sa.BigInteger(), nullable=False),
        sa.Column("recoveries_fen", sa.BigInteger()),
        sa.Column("net_released_fen", sa.BigInteger()),
        sa.Column("excellent_bonus_fen", sa.BigInteger()),
        sa.Column("plan_unallocated_fen", sa.BigInteger()),
        sa.Column("score_before_exclusions", sa.Numeric(precision=6, scale=2)),
        sa.Column("person_times_reported", sa.Integer()),
        sa.Column("person_times_counted", sa.Integer()),
        sa.Column("policy_version", sa.String(length=60), nullable=False),
        sa.Column("input_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("pii_key_is_demo", sa.Boolean(), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(), nullable=False),
    )
    sa.Table(
        "eval_gap",
        meta,
        sa.Column("run_id", sa.String(length=40), primary_key=True),
        sa.Column("evaluation_year", sa.Integer(), primary_key=True),
        sa.Column("gap_id", sa.Integer(), primary_key=True),
        sa.Column("indicator", sa.String(length=60), nullable=False),
        sa.Column("site_code", sa.String(length=8)),
        sa.Column("year", sa.Integer()),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("target", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("actual", sa.Numeric(precision=14, scale=4)),
        sa.Column("additional_needed", sa.Numeric(precision=20, scale=4)),
        sa.Column("unit", sa.String(length=24)),
        sa.Column("missing_points", sa.Numeric(precision=6, scale=2), nullable=False),
        sa.Column("release_gain_fen", sa.BigInteger(), nullable=False),
    )
    sa.Table(
        "eval_release",
        meta,
        sa.Column("run_id", sa.String(length=40), primary_key=True),
        sa.Column("evaluation_year", sa.Integer(), primary_key=True),
        sa.Column("component", sa.String(length=40), primary_key=True),
        sa.Column("rule", sa.String(length=20), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("numerator", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("denominator", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("result", sa.Numeric(precision=14, scale=6), nullable=False),
        sa.Column("target", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("share", sa.Numeric(precision=10, scale=6), nullable=False),
        sa.Column("released_fen", sa.BigInteger(), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
    )
    sa.Table(
        "eval_rectification",
        meta,
        sa.Column("run_id", sa.String(length=40), primary_key=True),
        sa.Column("evaluation_year", sa.Integer(), primary_key=True),
        sa.Column("site_code", sa.String(length=8), primary_key=True),
        sa.Column("year", sa.Integer(), primary_key=True),
        sa.Column("indicator", sa.String(length=40), primary_key=True),
        sa.Column("programme", sa.String(length=16), nullable=False),
        sa.Column("target", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("actual", sa.Numeric(precision=14, scale=4)),
        sa.Column("attainment", sa.Numeric(precision=10, scale=6), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("rectified_on", sa.Date()),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("plan_provincial_fen", sa.BigInteger(), nullable=False),
        sa.Column("recovery_fen", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("decision_row", sa.Integer()),
        sa.Column("source_rows", sa.Integer(), nullable=False),
    )
    sa.Table(
        "eval_plan_2027",
        meta,
        sa.Column("run_id", sa.String(length=40), primary_key=True),
        sa.Column("evaluation_year", sa.Integer(), primary_key=True),
        sa.Column("site_code", sa.String(length=8), primary_key=True),
        sa.Column("programme", sa.String(length=16), nullable=False),
        sa.Column("priority_rank", sa.Integer(), nullable=False),
        sa.Column("planned_provincial_fen", sa.BigInteger(), nullable=False),
        sa.Column("funded_fen", sa.BigInteger(), nullable=False),
        sa.Column("keeps_funding", sa.Boolean(), nullable=False),
        sa.Column("remaining_after_fen", sa.BigInteger(), nullable=False),
    )
    sa.Table(
        "eval_excellent_station",
        meta,
        sa.Column("run_id", sa.String(length=40), primary_key=True),
        sa.Column("evaluation_year", sa.Integer(), primary_key=True),
        sa.Column("site_code", sa.String(length=8), primary_key=True),
        sa.Column("qualifies", sa.Boolean(), nullable=False),
        sa.Column("bonus_fen", sa.BigInteger(), nullable=False),
        sa.Column("years_evaluated", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("source_rows", sa.Integer(), nullable=False),
    )
    sa.Table(
        "eval_integrity",
        meta,
        sa.Column("run_id", sa.String(length=40), primary_key=True),
        sa.Column("evaluation_year", sa.Integer(), primary_key=True),
        sa.Column("check_name", sa.String(length=40), primary_key=True),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("excluded_rows", sa.Integer(), nullable=False),
        sa.Column("excluded_person_times", sa.Integer(), nullable=False),
        sa.Column("excluded_fen", sa.BigInteger(), nullable=False),
        sa.Column("sites", sa.Text()),
    )
    sa.Table(
        "eval_village",
        meta,
        sa.Column("run_id", sa.String(length=40), primary_key=True),
        sa.Column("evaluation_year", sa.Integer(), primary_key=True),
        sa.Column("site_code", sa.String(length=8), primary_key=True),
        sa.Column("year", sa.Integer(), primary_key=True),
        sa.Column("name_zh", sa.String(length=200)),
        sa.Column("town", sa.String(length=40)),
        sa.Column("low_income_households", sa.Integer()),
        sa.Column("households_with_skill", sa.Integer()),
        sa.Column("coverage", sa.Numeric(precision=10, scale=6)),
        sa.Column("households_short", sa.Integer()),
        sa.Column("outcomes_reported", sa.Boolean(), nullable=False),
    )
    sa.Table(
        "eval_submissions",
        meta,
        sa.Column("run_id", sa.String(length=40), primary_key=True),
        sa.Column("evaluation_year", sa.Integer(), primary_key=True),
        sa.Column("item", sa.Integer(), primary_key=True),
        sa.Column("record", sa.String(length=16), nullable=False),
        sa.Column("site_code", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("due_date", sa.Date()),
        sa.Column("received_at", sa.DateTime()),
        sa.Column("days_late", sa.Integer()),
        sa.Column("detail", sa.Text()),
    )
    sa.Table(
        "eval_run_inputs",
        meta,
        sa.Column("run_id", sa.String(length=40), primary_key=True),
        sa.Column("input", sa.String(length=300), primary_key=True),
        sa.Column("sha256", sa.String(length=64), primary_key=True),
        sa.Column("site_code", sa.String(length=8)),
        sa.Column("kind", sa.String(length=30)),
        sa.Column("period", sa.String(length=10)),
    )
    sa.Table(
        "eval_diff",
        meta,
        sa.Column("run_a", sa.String(length=40), primary_key=True),
        sa.Column("run_b", sa.String(length=40), primary_key=True),
        sa.Column("item", sa.Integer(), primary_key=True),
        sa.Column("section", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("value_a", sa.Text()),
        sa.Column("value_b", sa.Text()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    sa.Table(
        "eval_report_evidence",
        meta,
        sa.Column("run_id", sa.String(length=40), primary_key=True),
        sa.Column("frame", sa.String(length=60), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
    )
    sa.Table(
        "expected_submissions",
        meta,
        sa.Column("site_code", sa.String(length=8), primary_key=True),
        sa.Column("kind", sa.String(length=16), primary_key=True),
        sa.Column("period", sa.String(length=7), primary_key=True),
        sa.Column("programme", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("nominal_due", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("shifted", sa.Boolean(), nullable=False),
        sa.Column("calendar_source", sa.String(length=60), nullable=False),
        sa.Column("calendar_official", sa.Boolean(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
    )
    sa.Table(
        "missing_submissions",
        meta,
        sa.Column("site_code", sa.String(length=8), primary_key=True),
        sa.Column("kind", sa.String(length=16), primary_key=True),
        sa.Column("period", sa.String(length=7), primary_key=True),
        sa.Column("programme", sa.String(length=16), nullable=False),
        sa.Column("town", sa.String(length=50), nullable=False),
        sa.Column("nominal_due", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("calendar_official", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("days_overdue", sa.Integer(), nullable=False),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("last_rejected_at", sa.DateTime()),
        sa.Column("first_alerted", sa.DateTime()),
        sa.Column("last_alerted", sa.DateTime()),
        sa.Column("resolved_at", sa.DateTime()),
        sa.Column("resolution_announced_at", sa.DateTime()),
        sa.Column("as_of", sa.Date(), nullable=False),
    )
    sa.Table(
        "alerts",
        meta,
        sa.Column("alert_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("recipient_role", sa.String(length=20), nullable=False),
        sa.Column("site_code", sa.String(length=40)),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime()),
        sa.Column("follow_up", sa.String(length=20)),
        sa.Column("follow_up_alert_id", sa.Integer()),
    )
    sa.Table(
        "alert_items",
        meta,
        sa.Column("alert_id", sa.Integer(), primary_key=True),
        sa.Column("item_type", sa.String(length=16), primary_key=True),
        sa.Column("item_key", sa.String(length=160), primary_key=True),
    )
    sa.Table(
        "early_warnings",
        meta,
        sa.Column("site_code", sa.String(length=8), primary_key=True),
        sa.Column("year", sa.Integer(), primary_key=True),
        sa.Column("indicator", sa.String(length=40), primary_key=True),
        sa.Column("programme", sa.String(length=16), nullable=False),
        sa.Column("months_active", sa.Integer(), nullable=False),
        sa.Column("months_reported", sa.Integer(), nullable=False),
        sa.Column("actual_to_date", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("numerator", sa.Integer()),
        sa.Column("denominator", sa.Integer()),
        sa.Column("run_rate_per_month", sa.Numeric(precision=14, scale=4)),
        sa.Column("projected", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("target", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("projected_shortfall", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("at_risk", sa.Boolean(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
    )
    sa.Table(
        "task_failures",
        meta,
        sa.Column("failure_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("dag_id", sa.String(length=100), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("task_id", sa.String(length=250), nullable=False),
        sa.Column("map_index", sa.Integer(), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("log_url", sa.Text()),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
    )
    sa.Table(
        "failure_alerts",
        meta,
        sa.Column("failure_alert_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("dag_id", sa.String(length=100), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("item_key", sa.String(length=400), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime()),
    )
    eval_runs = meta.tables["eval_runs"]
    sa.Index(
        "uq_eval_runs_one_final_per_year",
        eval_runs.c.evaluation_year,
        unique=True,
        postgresql_where=sa.text("status = 'final'"),
        sqlite_where=sa.text("status = 'final'"),
    )
    return meta


BASELINE_TABLE_NAMES = frozenset(baseline_metadata().tables)


def upgrade() -> None:
    baseline_metadata().create_all(op.get_bind())


def downgrade() -> None:
    # Irreversible by design: below the baseline is a warehouse made before migrations existed.
    raise RuntimeError("the baseline is not undone: restore the warehouse from its backup")


def adopt(conn: sa.Connection) -> list[str]:
    """Bring a warehouse made by an earlier release's ``create_schema`` to this schema, in the
    caller's transaction; returns what it changed."""
    meta = baseline_metadata()
    changed = [f"{name} set aside as {name}_before_runs" for name in _set_aside_pre_run_tables(conn)]
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    for table in meta.sorted_tables:
        if table.name not in present:
            table.create(conn)
            changed.append(f"{table.name} created")
            continue
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                ddl_type = column.type.compile(dialect=conn.dialect)
                conn.execute(sa.text(f'alter table "{table.name}" add column "{column.name}" {ddl_type}'))
                changed.append(f"{table.name}.{column.name} added")
    for table in meta.sorted_tables:
        if table.name not in present:
            continue
        indexes = {ix["name"] for ix in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(conn)
                changed.append(f"index {index.name} created")
    return changed


def _set_aside_pre_run_tables(conn: sa.Connection) -> list[str]:
    inspector = sa.inspect(conn)
    renamed = []
    for name in PRE_RUN_TABLES:
        if not inspector.has_table(name):
            continue
        if "run_id" in {c["name"] for c in inspector.get_columns(name)}:
            continue
        old = f"{name}_before_runs"
        pk = inspector.get_pk_constraint(name).get("name")
        conn.execute(sa.text(f'alter table "{name}" rename to "{old}"'))
        if conn.dialect.name == "postgresql" and pk:
            conn.execute(sa.text(f'alter table "{old}" rename constraint "{pk}" to "{old}_pkey"'))
        renamed.append(name)
    return renamed
