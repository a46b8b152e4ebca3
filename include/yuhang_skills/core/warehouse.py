"""The warehouse: one SQLAlchemy engine, the tables the pipeline owns, and small helpers.

SQLite (a file, nothing to start) is the embedded default and PostgreSQL the production
database; every statement here and under ``include/yuhang_skills/sql`` runs unchanged on both.
Money is stored as integer fen (``*_fen`` columns), never as binary floating point.

The tables below are the models of the schema; the schema itself is made and changed by the
migrations in ``yuhang_skills.core.migrations`` (``migrate`` at the start of every DAG and of the
command line). A change to a table here needs a new revision there (README, "Warehouse schema");
a test fails while the two differ.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    import pandas as pd

metadata = sa.MetaData()

# Reference data loaded from the policy folder on every run ------------------------------------
ref_sites = sa.Table(
    "ref_sites",
    metadata,
    sa.Column("site_code", sa.String(8), primary_key=True),
    sa.Column("programme", sa.String(16), nullable=False),
    sa.Column("name_zh", sa.String(200), nullable=False),
    sa.Column("town", sa.String(50), nullable=False),
    sa.Column("batch_year", sa.Integer, nullable=False),
    sa.Column("active_from", sa.Date, nullable=False),
    sa.Column("industry_focus", sa.String(50)),
    sa.Column("contact_name", sa.String(100)),
    sa.Column("contact_email", sa.String(200)),
    sa.Column("plan_provincial_fen", sa.BigInteger, nullable=False),  # plan money for this site
    sa.Column("plan_district_fen", sa.BigInteger, nullable=False),
)
ref_site_years = sa.Table(
    "ref_site_years",
    metadata,
    sa.Column("site_code", sa.String(8), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("programme", sa.String(16), nullable=False),
    sa.Column("months_active", sa.Integer, nullable=False),
    sa.Column("target_months", sa.Integer, nullable=False),  # months the yearly target counts
)
ref_provincial_received = sa.Table(
    "ref_provincial_received",
    metadata,
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("received_fen", sa.BigInteger, nullable=False),
)
ref_base_rule = sa.Table(
    "ref_base_rule",
    metadata,
    sa.Column("share_numerator", sa.BigInteger, nullable=False),
    sa.Column("share_denominator", sa.BigInteger, nullable=False),
    sa.Column("cap_fen", sa.BigInteger, nullable=False),
)
ref_targets = sa.Table(
    "ref_targets",
    metadata,
    sa.Column("programme", sa.String(16), primary_key=True),
    sa.Column("indicator", sa.String(40), primary_key=True),
    sa.Column("target", sa.Numeric(14, 4), nullable=False),
    sa.Column("per_year", sa.Boolean, nullable=False),
    # the target as an exact fraction of integers, so SQL decides "met" exactly on every database
    sa.Column("target_numerator", sa.BigInteger, nullable=False),
    sa.Column("target_denominator", sa.BigInteger, nullable=False),
)
ref_codes = sa.Table(  # code lists the SQL needs: key groups, key industries, eligible uses, ratings
    "ref_codes",
    metadata,
    sa.Column("code_list", sa.String(40), primary_key=True),
    sa.Column("code", sa.String(40), primary_key=True),
)

# Intake ---------------------------------------------------------------------------------------
submissions = sa.Table(
    "submissions",
    metadata,
    sa.Column("submission_id", sa.String(120), primary_key=True),  # <sha256>:<site>:<period>:<kind>, up to 85
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("site_code", sa.String(16), nullable=False),
    sa.Column("period", sa.String(7), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("original_name", sa.String(500), nullable=False),
    sa.Column("archive_path", sa.String(500), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("received_at", sa.DateTime, nullable=False),  # Asia/Shanghai wall time
    sa.Column("ingested_at", sa.DateTime, nullable=False),
    sa.Column("version", sa.Integer),
    sa.Column("is_current", sa.Boolean, nullable=False, default=False),
    # accepted / partially_accepted / no_rows_accepted (every row refused) / rejected (the file itself
    # refused) / failed (processing error, retried on the next run)
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("rows_read", sa.Integer, nullable=False),
    sa.Column("rows_staged", sa.Integer, nullable=False),
    sa.Column("rows_quarantined", sa.Integer, nullable=False),
    sa.Column("encoding", sa.String(20)),
    sa.Column("header_row", sa.Integer),
    sa.Column("message", sa.Text),
)
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("quarantine_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("submission_id", sa.String(120), nullable=False, index=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("source_file", sa.String(500), nullable=False),
    sa.Column("site_code", sa.String(16)),
    sa.Column("period", sa.String(7)),
    sa.Column("kind", sa.String(16)),
    sa.Column("source_row", sa.Integer),  # row number in the original file; NULL = whole file
    sa.Column("column_name", sa.String(60)),
    sa.Column("value", sa.Text),  # masked where personal
    sa.Column("expectation", sa.String(120), nullable=False),
    sa.Column("reason_zh", sa.Text, nullable=False),
    sa.Column("reason_en", sa.Text, nullable=False),
    # error: the row is not staged; warning: an optional value was set to null and the row staged
    sa.Column("severity", sa.String(8), nullable=False, server_default="error"),
)
# Every time the intake first saw a file's content at a path: the order of versions is the order
# of arrival (a file's modification time is evidence, not authority), and a resend of earlier
# bytes is a new arrival that makes that content current again.
submission_arrivals = sa.Table(
    "submission_arrivals",
    metadata,
    sa.Column("arrival_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("relative_path", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("submission_id", sa.String(120), nullable=False, index=True),
    sa.Column("first_seen_at", sa.DateTime, nullable=False),  # Asia/Shanghai wall time
    sa.Column("file_mtime", sa.DateTime),  # as the file said, for the record
)
# Files the intake saw but did not process in a run, and why (received after the as-of day, a link,
# a path outside the inbox, a name that is not valid text ...). Rebuilt by every run.
intake_not_processed = sa.Table(
    "intake_not_processed",
    metadata,
    sa.Column("relative_path", sa.Text, nullable=False),
    sa.Column("reason_code", sa.String(40), nullable=False),
    sa.Column("reason_zh", sa.Text, nullable=False),
    sa.Column("reason_en", sa.Text, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("seen_at", sa.DateTime, nullable=False),
)
validation_runs = sa.Table(
    "validation_runs",
    metadata,
    sa.Column("submission_id", sa.String(120), primary_key=True),
    sa.Column("suite", sa.String(60), nullable=False),
    sa.Column("expectations", sa.Integer, nullable=False),
    sa.Column("failed_expectations", sa.Integer, nullable=False),
    sa.Column("success", sa.Boolean, nullable=False),
    sa.Column("evaluated_rows", sa.Integer, nullable=False),
    sa.Column("run_at", sa.DateTime, nullable=False),
    sa.Column("results_json", sa.Text, nullable=False),
)


# Raw rows: every data row of an accepted file, as intake wrote it, keyed by (submission_id,
# source_row). The models read them through the staging views (include/yuhang_skills/sql/staging,
# stg_<kind>: the rows of current submissions). On SQLite the tables are WITHOUT ROWID:
# the key is the table's own b-tree instead of a second index beside it, which makes loading a
# million roster rows about a third cheaper and the file smaller. PostgreSQL ignores the option.
RAW_TABLE_OPTIONS: dict[str, Any] = {"sqlite_with_rowid": False}


def _raw_keys() -> list[sa.Column]:
    return [
        sa.Column("submission_id", sa.String(120), primary_key=True),
        sa.Column("source_row", sa.Integer, primary_key=True),
        sa.Column("site_code", sa.String(8), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
    ]


raw_roster = sa.Table(
    "raw_roster",
    metadata,
    *_raw_keys(),
    sa.Column("class_id", sa.String(80), nullable=False),
    sa.Column("course", sa.String(200), nullable=False),
    sa.Column("occupation", sa.String(100), nullable=False),
    sa.Column("level", sa.String(24), nullable=False),
    sa.Column("industry", sa.String(30), nullable=False),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date, nullable=False),
    sa.Column("hours", sa.Numeric(8, 2), nullable=False),
    sa.Column("person_key", sa.String(64), nullable=False),  # HMAC of the ID number
    sa.Column("name_key", sa.String(64), nullable=False),  # HMAC of the name
    # No masked ID here: its visible digits plus the birth date would be the whole number.
    sa.Column("birth_date", sa.Date, nullable=False),
    sa.Column("sex", sa.String(1), nullable=False),
    sa.Column("age_on_start", sa.Integer, nullable=False),
    sa.Column("person_group", sa.String(24), nullable=False),
    sa.Column("low_income_household", sa.Boolean),
    sa.Column("assessed", sa.Boolean, nullable=False),
    sa.Column("passed", sa.Boolean),
    sa.Column("certificate_no", sa.String(80)),
    sa.Column("satisfaction", sa.String(24)),
    **RAW_TABLE_OPTIONS,
)
raw_finance = sa.Table(
    "raw_finance",
    metadata,
    *_raw_keys(),
    sa.Column("voucher_no", sa.String(80), nullable=False),
    sa.Column("pay_date", sa.Date, nullable=False),
    sa.Column("amount_fen", sa.BigInteger, nullable=False),
    sa.Column("fund_source", sa.String(16), nullable=False),
    sa.Column("category", sa.String(30), nullable=False),
    sa.Column("payee", sa.String(200), nullable=False),
    sa.Column("invoice_no", sa.String(80)),
    sa.Column("description", sa.Text),
    **RAW_TABLE_OPTIONS,
)
raw_survey = sa.Table(
    "raw_survey",
    metadata,
    *_raw_keys(),
    sa.Column("respondent_type", sa.String(16), nullable=False),
    sa.Column("survey_date", sa.Date, nullable=False),
    sa.Column("rating", sa.String(24), nullable=False),
    **RAW_TABLE_OPTIONS,
)
raw_outcomes = sa.Table(
    "raw_outcomes",
    metadata,
    *_raw_keys(),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("low_income_households", sa.Integer, nullable=False),
    sa.Column("households_with_skill", sa.Integer, nullable=False),
    sa.Column("trainees", sa.Integer, nullable=False),
    sa.Column("avg_income_gain_fen", sa.BigInteger, nullable=False),
    **RAW_TABLE_OPTIONS,
)
RAW_TABLES = {"roster": raw_roster, "finance": raw_finance, "survey": raw_survey, "outcomes": raw_outcomes}

# Integrity checks (include/yuhang_skills/sql/integrity) -------------------------------------------------------
ref_integrity_params = sa.Table(  # each check's severity and thresholds, from the policy file
    "ref_integrity_params",
    metadata,
    sa.Column("check_name", sa.String(40), primary_key=True),
    sa.Column("parameter", sa.String(40), primary_key=True),
    sa.Column("value", sa.Numeric(18, 4), nullable=False),
)
ref_implementation_period = sa.Table(
    "ref_implementation_period",
    metadata,
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date, nullable=False),
)
ref_calendar = sa.Table(  # day numbers, so the SQL can count days the same way on every database
    "ref_calendar",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("day_number", sa.Integer, nullable=False, unique=True),
    sa.Column("year", sa.Integer, nullable=False),
)
ref_retirement = sa.Table(  # statutory retirement date per sex and birth date (2025 reform, policy base)
    "ref_retirement",
    metadata,
    sa.Column("sex", sa.String(1), primary_key=True),
    sa.Column("birth_date", sa.Date, primary_key=True),
    sa.Column("retirement_date", sa.Date, nullable=False),
)
integrity_findings = sa.Table(
    "integrity_findings",
    metadata,
    sa.Column("finding_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("check_name", sa.String(40), nullable=False, index=True),
    sa.Column("severity", sa.String(10), nullable=False),  # exclude / review (policy)
    sa.Column("site_code", sa.String(8), nullable=False),  # the site the finding is about
    sa.Column("sites", sa.String(200), nullable=False),  # every site involved, comma-separated
    sa.Column("year", sa.Integer),
    sa.Column("periods", sa.String(200)),  # the submitted periods of the evidence rows
    sa.Column("subject_kind", sa.String(16), nullable=False),  # person, invoice, voucher, class, site
    sa.Column("subject", sa.String(200), nullable=False),  # hashed person key, invoice number, class id …
    sa.Column("measure", sa.Numeric(18, 4)),  # what was counted (see explanation)
    sa.Column("threshold", sa.Numeric(18, 4)),  # the policy's limit it was compared with
    sa.Column("evidence_rows", sa.Integer, nullable=False),
    sa.Column("excluded_rows", sa.Integer, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),  # "<file> row <n>" references, excluded ones marked
    sa.Column("explanation_zh", sa.Text, nullable=False),
    sa.Column("explanation_en", sa.Text, nullable=False),
)
integrity_exclusions = sa.Table(  # staged rows left out of the indicators, and the first check why
    "integrity_exclusions",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),  # roster, finance
    sa.Column("submission_id", sa.String(120), primary_key=True),
    sa.Column("source_row", sa.Integer, primary_key=True),
    sa.Column("check_name", sa.String(40), nullable=False),
    sa.Column("finding_id", sa.Integer, nullable=False),
)


def make_engine(url: str, exclusive_transactions: bool = False) -> Engine:
    """An engine for the warehouse URL; SQLite files get WAL and a busy timeout for parallel tasks.

    ``exclusive_transactions`` (SQLite): every transaction begins ``immediate``, holding the
    database's write lock from its first statement (the schema migrations take their lock so)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        connect_args: dict[str, Any] = {"timeout": 60}
        if exclusive_transactions:
            connect_args["isolation_level"] = None  # the driver leaves BEGIN to the listener below
        engine = sa.create_engine(url, connect_args=connect_args)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("pragma journal_mode=wal")
            cur.execute("pragma busy_timeout=60000")
            # With WAL, NORMAL stays consistent after a crash and only risks the last commits on
            # power loss; every file can be re-ingested from the raw archive.
            cur.execute("pragma synchronous=normal")
            cur.execute("pragma cache_size=-65536")  # 64 MB: staging inserts touch random keys
            # Temporary b-trees stay in files and the database is not memory-mapped: at scale 350
            # (3.3 M roster rows) the checks and models ran as fast either way, but with both in
            # memory one process held 3 GB instead of 0.5 GB.
            cur.close()

        if exclusive_transactions:

            @sa.event.listens_for(engine, "begin")
            def _begin_immediate(conn: sa.Connection) -> None:
                conn.exec_driver_sql("begin immediate")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


POSTGRESQL_ANALYTICS_WORK_MEM = "256MB"


def analytics_session(conn: sa.Connection) -> None:
    """Settings for a transaction that groups and sorts the staged rows (integrity checks, models):
    on PostgreSQL, ``work_mem`` for this transaction only, so its sorts and hashes of a million
    rows stay in memory instead of spilling to disk at the 4 MB default, and no JIT compilation:
    every check and model costs enough over a million rows to cross the JIT thresholds, and
    compiling its expressions took longer than the compiled code saved (measured on 1.1 million
    roster rows). No parallel workers either: a parallel hash join has every worker build the same
    inner aggregate of the whole roster (resubmitted_in_another_period did its grouping three
    times over, 3.6 s against 1.6 s alone), and the machines it runs on have two cores to share.
    SQLite's settings are per connection (``make_engine``)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"set local work_mem = '{POSTGRESQL_ANALYTICS_WORK_MEM}'"))
        conn.execute(sa.text("set local jit = off"))
        conn.execute(sa.text("set local max_parallel_workers_per_gather = 0"))


def replace_rows(conn: sa.Connection, table: sa.Table, rows: Iterable[dict[str, Any]]) -> int:
    """Delete everything in ``table`` and insert ``rows`` (reference data, fully rebuilt each run)."""
    rows = list(rows)
    conn.execute(table.delete())
    if rows:
        conn.execute(table.insert(), rows)
    return len(rows)


def shanghai_now() -> dt.datetime:
    """Current Asia/Shanghai wall time, naive (the warehouse stores Asia/Shanghai wall times)."""
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None, microsecond=0)


# Evaluation runs: every evaluation is a run with its own id (runs.py); its rows in the eval_*
# tables carry that id and are never changed or replaced once written --------------------------
eval_runs = sa.Table(
    "eval_runs",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),  # <year>-<as-of yyyymmdd>-<nn>, sortable
    sa.Column("evaluation_year", sa.Integer, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("input_fingerprint", sa.String(64), nullable=False),  # sha256: accepted submissions + policy
    sa.Column("policy_version", sa.String(60), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),  # provisional / draft / final / superseded
    sa.Column("data_complete_on", sa.Date),  # last period's due date by the submission calendar
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("finalised_at", sa.DateTime),
    sa.Column("superseded_by", sa.String(40)),
    sa.Column("supersede_reason", sa.Text),
    sa.Column("score", sa.Numeric(6, 2)),
    sa.Column("grade", sa.String(4)),
    sa.Column("released_fen", sa.BigInteger),
    sa.Column("recoveries_fen", sa.BigInteger),
    sa.Column("net_released_fen", sa.BigInteger),
    sa.Column("outputs", sa.Text),  # JSON: the run's files by kind (xlsx, html, docx, pdf)
)
# Exactly one final run per year, held by the database too (two sign-offs finishing at once).
eval_runs_one_final = sa.Index(
    "uq_eval_runs_one_final_per_year",
    eval_runs.c.evaluation_year,
    unique=True,
    postgresql_where=sa.text("status = 'final'"),
    sqlite_where=sa.text("status = 'final'"),
)
eval_signoffs = sa.Table(  # who signed which run in which role, and when
    "eval_signoffs",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("role", sa.String(20), primary_key=True),  # a role of the policy's evaluation_runs.signoff_roles
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("signed_at", sa.DateTime, nullable=False),
    sa.Column("signed_by", sa.String(100)),  # the account that recorded it (OS user, Airflow user)
)


def _eval_key() -> sa.Column:
    return sa.Column("evaluation_year", sa.Integer, primary_key=True)


def _run_key() -> sa.Column:
    return sa.Column("run_id", sa.String(40), primary_key=True)


eval_indicator = sa.Table(
    "eval_indicator",
    metadata,
    _run_key(),
    _eval_key(),
    sa.Column("indicator", sa.String(60), primary_key=True),
    sa.Column("dimension", sa.String(30), nullable=False),
    sa.Column("name_zh", sa.String(200), nullable=False),
    sa.Column("weight", sa.Numeric(6, 2), nullable=False),
    sa.Column("target", sa.Numeric(14, 4), nullable=False),
    sa.Column("actual", sa.Numeric(14, 4), nullable=False),
    sa.Column("numerator", sa.Numeric(20, 4), nullable=False),
    sa.Column("denominator", sa.Numeric(20, 4), nullable=False),
    sa.Column("points", sa.Numeric(6, 2), nullable=False),
    sa.Column("met", sa.Boolean, nullable=False),
    sa.Column("basis", sa.Text, nullable=False),
    sa.Column("source_rows", sa.Integer, nullable=False),
    sa.Column("margin_actual", sa.Numeric(14, 4)),  # percentage points the actual can fall before the release drops
)
eval_site = sa.Table(
    "eval_site",
    metadata,
    _run_key(),
    _eval_key(),
    sa.Column("site_code", sa.String(8), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("programme", sa.String(16), nullable=False),
    sa.Column("indicator", sa.String(40), primary_key=True),
    sa.Column("target", sa.Numeric(14, 4), nullable=False),
    sa.Column("actual", sa.Numeric(14, 4)),
    sa.Column("attainment", sa.Numeric(10, 6), nullable=False),
    sa.Column("met", sa.Boolean, nullable=False),
    sa.Column("shortfall", sa.Numeric(14, 4), nullable=False),
    sa.Column("source_rows", sa.Integer, nullable=False),  # rows of ind_site_year (site_code, year) behind actual
    sa.Column("submissions", sa.Integer),  # current submissions of that site-year
    sa.Column("deadline", sa.Date),  # rectification deadline when not met
    sa.Column("rectification_status", sa.String(12)),  # rectified / open / overdue when not met
    sa.Column("recovery_fen", sa.BigInteger),
    sa.Column("actual_reported", sa.Numeric(14, 4)),  # actual before integrity exclusions
)
eval_district = sa.Table(
    "eval_district",
    metadata,
    _run_key(),
    _eval_key(),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("score", sa.Numeric(6, 2), nullable=False),
    sa.Column("grade", sa.String(4), nullable=False),
    sa.Column("release_rule", sa.String(20), nullable=False),
    sa.Column("tranche_fen", sa.BigInteger, nullable=False),
    sa.Column("released_fen", sa.BigInteger, nullable=False),  # gross release under release_rule
    sa.Column("withheld_fen", sa.BigInteger, nullable=False),
    sa.Column("recoveries_fen", sa.BigInteger),  # eval_rectification, overdue records
    sa.Column("net_released_fen", sa.BigInteger),  # released - recoveries, never below 0
    sa.Column("excellent_bonus_fen", sa.BigInteger),  # eval_excellent_station
    sa.Column("plan_unallocated_fen", sa.BigInteger),  # net release no site of eval_plan_2027 takes
    sa.Column("score_before_exclusions", sa.Numeric(6, 2)),  # the score on every reported row
    sa.Column("person_times_reported", sa.Integer),  # evaluated years, before integrity exclusions
    sa.Column("person_times_counted", sa.Integer),  # after: what the score counts
    sa.Column("policy_version", sa.String(60), nullable=False),
    sa.Column("input_fingerprint", sa.String(64), nullable=False),
    sa.Column("pii_key_is_demo", sa.Boolean, nullable=False),
    sa.Column("evaluated_at", sa.DateTime, nullable=False),
)
eval_gap = sa.Table(
    "eval_gap",
    metadata,
    _run_key(),
    _eval_key(),
    sa.Column("gap_id", sa.Integer, primary_key=True),
    sa.Column("indicator", sa.String(60), nullable=False),
    sa.Column("site_code", sa.String(8)),
    sa.Column("year", sa.Integer),
    sa.Column("name_zh", sa.String(200), nullable=False),
    sa.Column("target", sa.Numeric(14, 4), nullable=False),
    sa.Column("actual", sa.Numeric(14, 4)),
    sa.Column("additional_needed", sa.Numeric(20, 4)),
    sa.Column("unit", sa.String(24)),  # of additional_needed: person_times, pass_rate_points, yuan, ...
    sa.Column("missing_points", sa.Numeric(6, 2), nullable=False),
    sa.Column("release_gain_fen", sa.BigInteger, nullable=False),
)
eval_release = sa.Table(  # how the release was computed: one line per score rule, one per DLI tranche
    "eval_release",
    metadata,
    _run_key(),
    _eval_key(),
    sa.Column("component", sa.String(40), primary_key=True),
    sa.Column("rule", sa.String(20), nullable=False),
    sa.Column("name_zh", sa.String(200), nullable=False),
    sa.Column("amount_fen", sa.BigInteger, nullable=False),
    sa.Column("numerator", sa.Numeric(20, 4), nullable=False),
    sa.Column("denominator", sa.Numeric(20, 4), nullable=False),
    sa.Column("result", sa.Numeric(14, 6), nullable=False),
    sa.Column("target", sa.Numeric(14, 4), nullable=False),
    sa.Column("share", sa.Numeric(10, 6), nullable=False),
    sa.Column("released_fen", sa.BigInteger, nullable=False),
    sa.Column("basis", sa.Text, nullable=False),
)
eval_rectification = sa.Table(  # every missed site-year target, its deadline, status and recovery
    "eval_rectification",
    metadata,
    _run_key(),
    _eval_key(),
    sa.Column("site_code", sa.String(8), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("indicator", sa.String(40), primary_key=True),
    sa.Column("programme", sa.String(16), nullable=False),
    sa.Column("target", sa.Numeric(14, 4), nullable=False),
    sa.Column("actual", sa.Numeric(14, 4)),
    sa.Column("attainment", sa.Numeric(10, 6), nullable=False),
    sa.Column("deadline", sa.Date, nullable=False),
    sa.Column("rectified_on", sa.Date),
    sa.Column("status", sa.String(12), nullable=False),  # rectified / open / overdue
    sa.Column("plan_provincial_fen", sa.BigInteger, nullable=False),
    sa.Column("recovery_fen", sa.BigInteger, nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("decision_row", sa.Integer),  # row of the rectifications file, if it has one
    sa.Column("source_rows", sa.Integer, nullable=False),
)
eval_plan_2027 = sa.Table(  # the tranche year's build plan: which sites keep provincial funding
    "eval_plan_2027",
    metadata,
    _run_key(),
    _eval_key(),
    sa.Column("site_code", sa.String(8), primary_key=True),
    sa.Column("programme", sa.String(16), nullable=False),
    sa.Column("priority_rank", sa.Integer, nullable=False),
    sa.Column("planned_provincial_fen", sa.BigInteger, nullable=False),
    sa.Column("funded_fen", sa.BigInteger, nullable=False),
    sa.Column("keeps_funding", sa.Boolean, nullable=False),
    sa.Column("remaining_after_fen", sa.BigInteger, nullable=False),  # net release left after this site
)
eval_excellent_station = sa.Table(
    "eval_excellent_station",
    metadata,
    _run_key(),
    _eval_key(),
    sa.Column("site_code", sa.String(8), primary_key=True),
    sa.Column("qualifies", sa.Boolean, nullable=False),
    sa.Column("bonus_fen", sa.BigInteger, nullable=False),
    sa.Column("years_evaluated", sa.Integer, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("source_rows", sa.Integer, nullable=False),  # roster and survey rows behind it
)
eval_integrity = sa.Table(  # integrity findings per check and what they took out of the score
    "eval_integrity",
    metadata,
    _run_key(),
    _eval_key(),
    sa.Column("check_name", sa.String(40), primary_key=True),
    sa.Column("severity", sa.String(10), nullable=False),
    sa.Column("findings", sa.Integer, nullable=False),
    sa.Column("excluded_rows", sa.Integer, nullable=False),  # evaluated years, each row once (integrity_exclusions)
    sa.Column("excluded_person_times", sa.Integer, nullable=False),  # evaluated years, none of their rows counted
    sa.Column("excluded_fen", sa.BigInteger, nullable=False),  # payments left out, evaluated years
    sa.Column("sites", sa.Text),  # sites with findings
)
eval_village = sa.Table(  # 一户一技 coverage per village and year, the rows behind the indicator
    "eval_village",
    metadata,
    _run_key(),
    _eval_key(),
    sa.Column("site_code", sa.String(8), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("name_zh", sa.String(200)),
    sa.Column("town", sa.String(40)),
    sa.Column("low_income_households", sa.Integer),
    sa.Column("households_with_skill", sa.Integer),
    sa.Column("coverage", sa.Numeric(10, 6)),  # households_with_skill / low_income_households
    sa.Column("households_short", sa.Integer),  # low_income_households - households_with_skill
    sa.Column("outcomes_reported", sa.Boolean, nullable=False),
)
eval_submissions = sa.Table(  # the submissions record of the evaluated years as of the run's date
    "eval_submissions",
    metadata,
    _run_key(),
    _eval_key(),
    sa.Column("item", sa.Integer, primary_key=True),
    sa.Column("record", sa.String(16), nullable=False),  # missing / late / early_warning
    sa.Column("site_code", sa.String(8), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),  # roster / finance / survey / outcomes / indicator
    sa.Column("period", sa.String(10), nullable=False),
    sa.Column("due_date", sa.Date),
    sa.Column("received_at", sa.DateTime),
    sa.Column("days_late", sa.Integer),
    sa.Column("detail", sa.Text),
)
eval_run_inputs = sa.Table(  # the accepted submissions (and policy files) a run's fingerprint covers
    "eval_run_inputs",
    metadata,
    _run_key(),
    sa.Column("input", sa.String(300), primary_key=True),  # original file path, or policy:<file>
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("site_code", sa.String(8)),
    sa.Column("kind", sa.String(30)),
    sa.Column("period", sa.String(10)),
)
eval_diff = sa.Table(  # what changed between two runs (runs.diff), one row per difference
    "eval_diff",
    metadata,
    sa.Column("run_a", sa.String(40), primary_key=True),
    sa.Column("run_b", sa.String(40), primary_key=True),
    sa.Column("item", sa.Integer, primary_key=True),
    sa.Column("section", sa.String(16), nullable=False),  # input / indicator / headline
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("change", sa.String(16), nullable=False),  # added / removed / changed
    sa.Column("value_a", sa.Text),
    sa.Column("value_b", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
eval_report_evidence = sa.Table(  # a run's report tables as first rendered, for every later edition
    # (the signed one at sign-off): findings, spending, quarantine and submissions summaries and the
    # other tables not keyed by run change with every intake, the run's documents do not
    "eval_report_evidence",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("frame", sa.String(60), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),  # the report's table order
    sa.Column("payload", sa.Text, nullable=False),  # JSON: columns, their dtypes and the typed rows
)
EVAL_TABLES = (
    eval_indicator,
    eval_site,
    eval_district,
    eval_gap,
    eval_release,
    eval_rectification,
    eval_plan_2027,
    eval_excellent_station,
    eval_integrity,
    eval_village,
    eval_submissions,
)
RUN_TABLES = (eval_runs, eval_signoffs, eval_run_inputs, eval_diff)


# Submissions watchdog (yuhang_watchdog): what is expected, what is missing, what was sent -------
def _item_key() -> list[sa.Column]:
    return [
        sa.Column("site_code", sa.String(8), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("period", sa.String(7), primary_key=True),  # month; a quarter's last month; December (yearly)
    ]


expected_submissions = sa.Table(  # the calendar: registry x cadence, rebuilt as of each run's date
    "expected_submissions",
    metadata,
    *_item_key(),
    sa.Column("programme", sa.String(16), nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("nominal_due", sa.Date, nullable=False),  # the cadence's due day
    sa.Column("due_date", sa.Date, nullable=False),  # moved to the next working day when nominal_due is a rest day
    sa.Column("shifted", sa.Boolean, nullable=False),
    sa.Column("calendar_source", sa.String(60), nullable=False),  # chinese-calendar <version> / provisional list
    sa.Column("calendar_official", sa.Boolean, nullable=False),  # false: computed without an official calendar
    sa.Column("as_of", sa.Date, nullable=False),
)
missing_submissions = sa.Table(  # expected submissions overdue as of as_of, open or resolved late
    "missing_submissions",
    metadata,
    *_item_key(),
    sa.Column("programme", sa.String(16), nullable=False),
    sa.Column("town", sa.String(50), nullable=False),
    sa.Column("nominal_due", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("calendar_official", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),  # open / resolved
    sa.Column("days_overdue", sa.Integer, nullable=False),  # as of as_of (open) or when resolved
    sa.Column("escalated", sa.Boolean, nullable=False),  # days_overdue reached alerts.escalation_days
    sa.Column("last_rejected_at", sa.DateTime),  # latest file for it that was rejected (received time)
    sa.Column("first_alerted", sa.DateTime),  # first delivered alert about it (any recipient)
    sa.Column("last_alerted", sa.DateTime),
    sa.Column("resolved_at", sa.DateTime),  # received time of the file that resolved it
    sa.Column("resolution_announced_at", sa.DateTime),  # first delivered "received" notice
    sa.Column("as_of", sa.Date, nullable=False),
)
alerts = sa.Table(  # every message composed by the watchdog and what became of it
    "alerts",
    metadata,
    sa.Column("alert_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("as_of", sa.Date, nullable=False),  # the run's as-of date (de-duplication counts in these days)
    sa.Column("channel", sa.String(16), nullable=False),  # a channel of alerts.channels
    sa.Column("recipient", sa.String(200), nullable=False),  # e-mail address, or the channel's connection id
    sa.Column("recipient_role", sa.String(20), nullable=False),  # site_contact / town_office / district_team
    sa.Column("site_code", sa.String(40)),  # the site(s) a site contact's message is about
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("message", sa.Text, nullable=False),  # the message text (markdown)
    sa.Column("items", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),  # sent / failed / not_configured
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("sent_at", sa.DateTime),
    sa.Column("follow_up", sa.String(20)),  # failed/not_configured only: resent / no_longer_due
    sa.Column("follow_up_alert_id", sa.Integer),  # the alert that carried it later
)
alert_items = sa.Table(  # what each message carried, for de-duplication per recipient and channel
    "alert_items",
    metadata,
    sa.Column("alert_id", sa.Integer, primary_key=True),
    sa.Column("item_type", sa.String(16), primary_key=True),  # missing / resolved / rejected / early_warning
    sa.Column("item_key", sa.String(160), primary_key=True),  # site/kind/period, submission_id, site/year/indicator
)
early_warnings = sa.Table(  # yearly targets projected from the run rate so far, as of as_of
    "early_warnings",
    metadata,
    sa.Column("site_code", sa.String(8), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("indicator", sa.String(40), primary_key=True),  # person_times / pass_rate
    sa.Column("programme", sa.String(16), nullable=False),
    sa.Column("months_active", sa.Integer, nullable=False),
    sa.Column("months_reported", sa.Integer, nullable=False),  # months of the year whose roster was due by as_of
    sa.Column("actual_to_date", sa.Numeric(14, 4), nullable=False),  # person-times, or pass rate
    sa.Column("numerator", sa.Integer),  # pass rate: passed
    sa.Column("denominator", sa.Integer),  # pass rate: assessed
    sa.Column("run_rate_per_month", sa.Numeric(14, 4)),
    sa.Column("projected", sa.Numeric(14, 4), nullable=False),
    sa.Column("target", sa.Numeric(14, 4), nullable=False),  # pro-rated like the evaluation
    sa.Column("projected_shortfall", sa.Numeric(14, 4), nullable=False),
    sa.Column("at_risk", sa.Boolean, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
)
WATCHDOG_TABLES = (expected_submissions, missing_submissions, alerts, alert_items, early_warnings)


def bulk_insert(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame | list[pd.DataFrame]) -> int:
    """Insert a DataFrame's rows fast: COPY on PostgreSQL, a driver-level executemany elsewhere.

    The frame's columns must be columns of ``table``; missing values become NULL. Values are
    passed as plain Python objects (ints, floats, bools, str), dates and times as the ISO text
    both databases read for their date columns (see ``_driver_values``). A list of frames with the
    same columns is inserted in order, one statement per frame.
    """
    import io

    frames = [f for f in (frame if isinstance(frame, list) else [frame]) if not f.empty]
    if not frames:
        return 0
    columns = list(frames[0].columns)
    unknown = [c for c in columns if c not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column(s) {unknown}")
    if any(list(f.columns) != columns for f in frames):
        raise ValueError(f"the frames for {table.name} differ in their columns")
    names = ", ".join(f'"{c}"' for c in columns)
    for f in frames:  # one statement per frame: memory is bounded by the largest frame, not all of them
        rows = zip(*(_driver_values(f[c]) for c in columns), strict=True)
        if conn.dialect.name == "postgresql":
            import csv

            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows(rows)  # None → empty field → NULL
            buffer.seek(0)
            driver = conn.connection.driver_connection
            if driver is None:
                raise RuntimeError("the PostgreSQL connection is closed")
            cursor = driver.cursor()
            try:
                cursor.copy_expert(f'copy "{table.name}" ({names}) from stdin with (format csv)', buffer)
            finally:
                cursor.close()
        else:
            placeholders = ", ".join("?" for _ in columns)
            conn.exec_driver_sql(f'insert into "{table.name}" ({names}) values ({placeholders})', list(rows))
    return sum(len(f) for f in frames)


def _driver_values(column: pd.Series) -> list[Any]:
    """A column as the values the database stores, built column-wise: dates and times as the ISO text
    SQLAlchemy's SQLite types read back (formatted once per distinct value, since dates repeat),
    missing values as None."""
    import numpy as np
    import pandas as pd

    if column.dtype.kind == "M":
        column = column.astype(object).where(column.notna(), None)
    values = column.to_numpy(dtype=object)
    missing = pd.isna(values)
    if missing.any():
        values = values.copy()
        values[missing] = None
    present = values[~missing]
    if len(present) and isinstance(present[0], dt.date):
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        text = np.array([_iso(u) for u in uniques] + [None], dtype=object)
        return text[codes].tolist()
    return values.tolist()


def _iso(value: Any) -> Any:
    """ISO text as Python's sqlite3 adapters wrote it: ``YYYY-MM-DD`` and ``YYYY-MM-DD HH:MM:SS[.ffffff]``."""
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# Failures of the pipeline's own runs (failure_alerts.py) -------------------------------------------
task_failures = sa.Table(  # a failed task's error, first lines only, for its run's failure alert
    "task_failures",
    metadata,
    sa.Column("failure_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dag_id", sa.String(100), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("task_id", sa.String(250), nullable=False),
    sa.Column("map_index", sa.Integer, nullable=False),
    sa.Column("try_number", sa.Integer, nullable=False),
    sa.Column("error", sa.Text),  # personal numbers masked
    sa.Column("log_url", sa.Text),
    sa.Column("failed_at", sa.DateTime, nullable=False),  # Asia/Shanghai wall time
)
failure_alerts = sa.Table(  # every failure/deadline message per recipient, channel and failure, with its outcome
    "failure_alerts",
    metadata,
    sa.Column("failure_alert_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),  # task_failure / deadline_missed
    sa.Column("dag_id", sa.String(100), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("item_key", sa.String(400), nullable=False),  # dag/task/hash of the first error line, or deadline/dag/run
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("recipient", sa.String(200), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),  # sent / failed / not_configured
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("sent_at", sa.DateTime),
)
