"""Integrity checks: double counting and subsidy-fraud patterns in the staged data.

Each check is one SQL file under ``include/yuhang_skills/sql/integrity`` named after it, listed with its
severity and thresholds under ``integrity.checks`` in the policy file. A check returns its
evidence in long form, one row per staged row involved::

    finding_key, year, subject_kind, subject, measure, threshold,
    kind (roster/finance), submission_id, source_row, row_site, row_period, would_exclude

and this module turns the rows of one ``finding_key`` into one ``integrity_findings`` row with a
plain-language explanation in Chinese and English. Rows marked ``would_exclude`` by a check the
policy sets to ``exclude`` go to ``integrity_exclusions``; the SQL models leave them out of the
indicators that feed the score and keep the reported figures beside the counted ones. Both
tables are rebuilt whole on every run, so reruns give identical tables.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from yuhang_skills.core import catalogue, warehouse
from yuhang_skills.core.policy import Plan
from yuhang_skills.indicators import layers
from yuhang_skills.intake import identity

log = logging.getLogger(__name__)

LONG_COLUMNS = [
    "finding_key",
    "year",
    "subject_kind",
    "subject",
    "measure",
    "threshold",
    "kind",
    "submission_id",
    "source_row",
    "row_site",
    "row_period",
    "would_exclude",
]


def check_names(plan: Plan) -> list[str]:
    """The checks in the policy's order."""
    return list(plan.policy.integrity.checks)


def check_sql(sql_dir: Path, name: str) -> str:
    return (sql_dir / "integrity" / f"{name}.sql").read_text(encoding="utf-8").strip().rstrip(";")


def verify_checks(plan: Plan, sql_dir: Path) -> None:
    """Every policy check has its SQL file and explanation, and every SQL file a policy entry."""
    names = set(check_names(plan))
    files = {p.stem for p in (sql_dir / "integrity").glob("*.sql")}
    problems = []
    if names - files:
        problems.append(f"no SQL file for {sorted(names - files)}")
    if files - names:
        problems.append(f"SQL files not in the policy: {sorted(files - names)}")
    explained = {code.removeprefix("integrity.") for code in catalogue.entries() if code.startswith("integrity.")}
    if names - explained:
        problems.append(f"no explanation in the catalogue for {sorted(names - explained)}")
    if problems:
        raise ValueError(f"integrity checks ({sql_dir / 'integrity'}): " + "; ".join(problems))


# Reference data ----------------------------------------------------------------------------
CALENDAR_YEARS = (2000, 2040)  # ref_calendar spans these years: any submitted date falls inside
BIRTH_YEARS = (1920, 2020)  # ref_retirement spans these birth years


def code_lists(plan: Plan) -> list[dict[str, str]]:
    """ref_codes rows for the checks' lists, named ``<check>_<key>`` (certificate_burst_programmes …)."""
    return [
        {"code_list": f"{name}_{key}", "code": code}
        for name, spec in plan.policy.integrity.checks.items()
        for key, codes in spec.code_lists().items()
        for code in codes
    ]


def reference_rows(plan: Plan) -> dict[sa.Table, list[dict[str, Any]] | pd.DataFrame]:
    """Reference tables the checks read: thresholds, the implementation period, day numbers and
    retirement dates (the same rule as intake's working-age check)."""
    policy = plan.policy
    params = []
    for name, spec in policy.integrity.checks.items():
        for parameter, value in spec.thresholds().items():
            params.append({"check_name": name, "parameter": parameter, "value": Decimal(str(value))})
    params.append(
        {
            "check_name": "outside_working_age",
            "parameter": "minimum_age_years",
            "value": Decimal(policy.minimum_working_age),
        }
    )
    period = policy.implementation_period
    days = pd.date_range(f"{CALENDAR_YEARS[0]}-01-01", f"{CALENDAR_YEARS[1]}-12-31", freq="D")
    calendar = pd.DataFrame(
        {"day": days.date, "day_number": (days - pd.Timestamp("1970-01-01")).days, "year": days.year}
    )
    births = pd.date_range(f"{BIRTH_YEARS[0]}-01-01", f"{BIRTH_YEARS[1]}-12-31", freq="D")
    retirement = []
    for sex in ("M", "F"):
        birth = pd.Series(births)
        status = identity.working_age_status(
            birth, pd.Series(sex, index=birth.index), birth, female_base=policy.female_retirement_base
        )
        retirement.append(
            pd.DataFrame({"sex": sex, "birth_date": births.date, "retirement_date": status["retirement_date"].dt.date})
        )
    return {
        warehouse.ref_integrity_params: params,
        warehouse.ref_implementation_period: [{"start_date": period.start, "end_date": period.end}],
        warehouse.ref_calendar: calendar,
        warehouse.ref_retirement: pd.concat(retirement, ignore_index=True),
    }


# Running the checks ------------------------------------------------------------------------
# What the checks look rows up by, on the raw tables under the staging views they read; created
# once, kept up to date by the database, and rebuilt where an older version has other columns.
INDEXES = (
    ("ix_raw_roster_person", "raw_roster", "person_key, start_date"),
    ("ix_raw_roster_class", "raw_roster", "site_code, class_id"),
    ("ix_raw_roster_end", "raw_roster", "site_code, end_date"),
    ("ix_raw_finance_invoice", "raw_finance", "invoice_no"),
    ("ix_raw_finance_site", "raw_finance", "site_code, category"),
)

# On SQLite the person index carries every column the person checks pair and group by, so they
# read them from the index alone instead of from a million table rows (overlapping_classes 2.3 ->
# 1.5 s, repeat_occupation_level 2.5 -> 1.5 s CPU at scale 115). PostgreSQL hashes those rows
# either way and gained nothing from it (measured), so it keeps the narrow one.
SQLITE_COLUMNS = {
    "ix_raw_roster_person": "person_key, start_date, end_date, site_code, class_id, period, occupation, level",
}

ANALYZED = ("raw_roster", "raw_finance", "submissions", "integrity_exclusions")


@dataclass
class CheckResult:
    name: str
    severity: str
    findings: int
    excluded_rows: int
    seconds: float  # the whole check: its query, the findings made of its rows, its exclusions written
    query_seconds: float  # the check's SQL alone, until its last row is fetched
    query_rows: int  # the evidence rows it returned


def run_checks(engine: sa.Engine, plan: Plan, sql_dir: Path) -> list[CheckResult]:
    """Run every check in the policy's order and replace ``integrity_findings`` and
    ``integrity_exclusions``, in one transaction. Each excluding check's rows are recorded before
    the next check runs, so a row an earlier check excluded does not count toward a later check's
    limit (a duplicate person-time does not also use up one of the person's yearly subsidies).
    The checks read the staging layer (``stg_*``), rebuilt first."""
    verify_checks(plan, sql_dir)
    layers.build_models(engine, sql_dir, ["staging"])
    policy = plan.policy
    shown = policy.integrity.evidence_rows_shown
    texts = {"share": f"{policy.base_subsidy_share * 100:g}%", "cap": f"{policy.base_subsidy_cap_yuan:,}"}
    findings: list[dict[str, Any]] = []
    excluded_keys: set[tuple[str, str, int]] = set()
    results = []
    with engine.begin() as conn:
        _create_indexes(conn)
        # Fresh statistics, or the planner guesses after a big intake: SQLite without them drives
        # every staging view by its list of current submissions and sorts a million rows that an
        # index already holds in order.
        for table in ANALYZED:
            conn.execute(sa.text(f"analyze {table}"))
        warehouse.analytics_session(conn)
        names: dict[str, str] = dict(
            conn.execute(sa.text("select submission_id, original_name from submissions")).all()
        )
        conn.execute(warehouse.integrity_exclusions.delete())
        conn.execute(warehouse.integrity_findings.delete())
        for name in check_names(plan):
            severity = policy.integrity_check(name).severity
            started = time.perf_counter()
            fetched = conn.execute(sa.text(check_sql(sql_dir, name))).all()
            query_seconds = time.perf_counter() - started
            rows = pd.DataFrame(fetched, columns=LONG_COLUMNS)
            mine = _findings(name, severity, rows, names, shown, len(findings) + 1, excluded_keys, texts)
            new = [
                {
                    "kind": kind,
                    "submission_id": sid,
                    "source_row": row,
                    "check_name": name,
                    "finding_id": finding["finding_id"],
                }
                for finding, keys in mine
                for kind, sid, row in keys
            ]
            excluded_keys.update((r["kind"], r["submission_id"], r["source_row"]) for r in new)
            if new:
                warehouse.bulk_insert(conn, warehouse.integrity_exclusions, pd.DataFrame(new))
            findings.extend(f for f, _ in mine)
            seconds = time.perf_counter() - started
            results.append(CheckResult(name, severity, len(mine), len(new), seconds, query_seconds, len(fetched)))
            log.info(
                "integrity check %s: %d finding(s), %d row(s) excluded, %.1f s", name, len(mine), len(new), seconds
            )
        if findings:
            conn.execute(warehouse.integrity_findings.insert(), findings)
    return results


def _create_indexes(conn: sa.Connection) -> None:
    """Create the check indexes that are missing; drop and create again one whose columns are not
    the ones ``INDEXES`` (on SQLite ``SQLITE_COLUMNS``) name now."""
    inspector = sa.inspect(conn)
    existing = {
        index["name"]: [str(c) for c in index["column_names"]]
        for table in {t for _, t, _ in INDEXES}
        for index in inspector.get_indexes(table)
    }
    for name, table, columns in INDEXES:
        if conn.dialect.name == "sqlite":
            columns = SQLITE_COLUMNS.get(name, columns)
        wanted = [c.strip() for c in columns.split(",")]
        if name in existing and existing[name] != wanted:
            conn.execute(sa.text(f"drop index {name}"))
        conn.execute(sa.text(f"create index if not exists {name} on {table} ({columns})"))


def _findings(
    name: str,
    severity: str,
    rows: pd.DataFrame,
    names: dict[str, str],
    shown: int,
    first_id: int,
    already: set[tuple[str, str, int]],
    texts: dict[str, str],
) -> list[tuple[dict[str, Any], list[tuple[str, str, int]]]]:
    """One finding per finding_key, with the rows it newly excludes (none unless the check's
    severity is exclude; rows ``already`` excluded by an earlier check stay with it): the site and
    year of its first row that would be excluded (else its first row), every site and period
    involved, and the evidence references."""
    if rows.empty:
        return []
    rows = rows.assign(would_exclude=rows["would_exclude"].astype(int))
    rows = rows.sort_values(
        ["finding_key", "would_exclude", "row_site", "row_period", "submission_id", "source_row"],
        ascending=[True, False, True, True, True, True],
        kind="stable",
        na_position="last",
    )
    explanation = catalogue.entry(f"integrity.{name}")
    out = []
    for n, (_, group) in enumerate(rows.groupby("finding_key", sort=True)):
        lead = group.iloc[0]
        sites = sorted(s for s in group["row_site"].dropna().unique())
        periods = sorted(p for p in group["row_period"].dropna().unique())
        evidence, excludes = [], []
        for kind, sid, row, would in group[["kind", "submission_id", "source_row", "would_exclude"]].itertuples(
            index=False
        ):
            if sid is None or pd.isna(row):
                continue
            ref = (kind, sid, int(row))
            new = severity == "exclude" and would == 1 and ref not in already and ref not in excludes
            if new:
                excludes.append(ref)
            evidence.append(f"{names.get(sid, sid)} row {int(row)}" + (" (excluded)" if new or ref in already else ""))
        text = "; ".join(evidence[:shown]) + (f"; … {len(evidence) - shown} more" if len(evidence) > shown else "")
        fields = {
            "sites": ", ".join(sites) or lead["subject"],
            "year": "" if pd.isna(lead["year"]) else int(lead["year"]),
            "measure": _plain(lead["measure"]),
            "threshold": _plain(lead["threshold"]),
            "evidence_rows": len(evidence),
            "excluded_rows": len(excludes),
            **texts,
        }
        finding = {
            "finding_id": first_id + n,
            "check_name": name,
            "severity": severity,
            "site_code": lead["row_site"] if isinstance(lead["row_site"], str) else lead["subject"],
            "sites": ",".join(sites),
            "year": None if pd.isna(lead["year"]) else int(lead["year"]),
            "periods": ",".join(periods)[:200] or None,
            "subject_kind": lead["subject_kind"],
            "subject": str(lead["subject"])[:200],
            "measure": _decimal(lead["measure"]),
            "threshold": _decimal(lead["threshold"]),
            "evidence_rows": len(evidence),
            "excluded_rows": len(excludes),
            "evidence": text or "no staged rows",
            "explanation_zh": explanation.render("zh", **fields),
            "explanation_en": explanation.render("en", **fields),
        }
        out.append((finding, excludes))
    return out


def _decimal(value: Any) -> Decimal | None:
    if value is None or pd.isna(value):
        return None
    return Decimal(str(value)).quantize(Decimal("0.0001"))


def _plain(value: Any) -> str:
    """A measure as people write it: 4, 3,000, 1,234.5."""
    number = _decimal(value)
    if number is None:
        return ""
    text = f"{number.normalize():,f}"
    return text
