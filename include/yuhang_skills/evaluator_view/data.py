"""Read-only queries behind the evaluator view (the Airflow plugin's pages).

The api-server is not a task: it finds the warehouse the way the DAGs' settings do, from
``YUHANG_WAREHOUSE_URL``, else the Airflow connection ``yuhang_warehouse`` (looked up through
Airflow's secrets backends: ``AIRFLOW_CONN_YUHANG_WAREHOUSE``, the metadata database, …), else the
embedded default under ``var/``. Nothing here writes: every query is a ``select``, the engine is
never asked to create a table, and a warehouse that is missing, empty or unreachable raises
:class:`NoEvaluation` or :class:`WarehouseUnreachable` for the page to say so.

Evaluations are read as runs (``eval_runs`` and the ``run_id`` of every ``eval_*`` table); the
one place that knows how a run's rows are keyed is :func:`_run_rows`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from yuhang_skills.core.settings import WAREHOUSE_CONN_ID, load_settings, normalise_warehouse_url

NO_EVALUATION_ZH = "尚无评价：请先运行 yuhang_intake 和 yuhang_evaluation"
NO_EVALUATION_EN = "no evaluation yet: run yuhang_intake and yuhang_evaluation"
SUBMISSION_STATES = (
    "accepted",
    "partially_accepted",
    "no_rows_accepted",
    "rejected",
    "failed",
    "missing",
    "not_yet_due",
)


class NoEvaluation(LookupError):
    """The warehouse has no evaluation run (or not the one asked for)."""


class NotFound(NoEvaluation):
    """The run or site asked for is not in the warehouse."""


class WarehouseUnreachable(RuntimeError):
    """The warehouse cannot be opened or queried."""


def warehouse_url() -> str:
    """The warehouse the DAGs use: ``YUHANG_WAREHOUSE_URL``, the ``yuhang_warehouse`` connection,
    or the embedded default."""
    if os.environ.get("YUHANG_WAREHOUSE_URL"):
        return normalise_warehouse_url(os.environ["YUHANG_WAREHOUSE_URL"])
    uri = _connection_uri(WAREHOUSE_CONN_ID)
    if uri:
        return normalise_warehouse_url(uri)
    return load_settings().warehouse_url


def _connection_uri(conn_id: str) -> str | None:
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        return Connection.get_connection_from_secrets(conn_id).get_uri()
    except AirflowNotFoundException:
        return None
    except Exception as exc:  # noqa: BLE001 - a secrets backend that cannot be read
        raise WarehouseUnreachable(f"the connection {conn_id} cannot be read: {type(exc).__name__}") from exc


@lru_cache(maxsize=4)
def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        # Read only: a missing file stays missing (the pipeline creates it), SQLite opens it read-only.
        return sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", connect_args={"timeout": 30})
    return sa.create_engine(url, pool_pre_ping=True, connect_args=_connect_timeout(url))


def _connect_timeout(url: str) -> dict[str, Any]:
    return {"connect_timeout": 10} if url.startswith("postgresql") else {}


def engine() -> sa.Engine:
    return _engine(warehouse_url())


def describe_url(url: str) -> str:
    """The URL without its password, for the page."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "(unparseable URL)"


class Reader:
    """Every query the pages make, over one engine."""

    def __init__(self, eng: sa.Engine | None = None):
        self.engine = eng or engine()
        url = self.engine.url
        if url.drivername.startswith("sqlite") and url.database:
            path = url.database.removeprefix("file:")
            if not Path(path).is_file():
                raise NoEvaluation(f"no warehouse file at {path}")
        try:
            with self.engine.connect() as conn:
                self.tables = set(sa.inspect(conn).get_table_names())
        except sa.exc.SQLAlchemyError as exc:
            raise WarehouseUnreachable(f"{type(exc.orig if hasattr(exc, 'orig') else exc).__name__}") from exc

    # -- helpers --------------------------------------------------------------------------------
    def has(self, *tables: str) -> bool:
        return all(t in self.tables for t in tables)

    def has_column(self, table: str, column: str) -> bool:
        if not self.has(table):
            return False
        with self.engine.connect() as conn:
            return column in {c["name"] for c in sa.inspect(conn).get_columns(table)}

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        try:
            with self.engine.connect() as conn:
                return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]
        except sa.exc.OperationalError as exc:
            raise WarehouseUnreachable(type(exc.orig).__name__) from exc

    def _run_rows(
        self, table: str, run_id: str, order: str = "", where: str = "", **params: Any
    ) -> list[dict[str, Any]]:
        if not self.has(table):
            return []
        clause = f" and {where}" if where else ""
        return self.rows(
            f"select * from {table} where run_id = :run_id{clause}" + (f" order by {order}" if order else ""),
            run_id=run_id,
            **params,
        )

    # -- runs -----------------------------------------------------------------------------------
    def runs(self) -> list[dict[str, Any]]:
        """Every run, newest first, with its signatures and files."""
        if not self.has("eval_runs"):
            return []
        runs = self.rows("select * from eval_runs order by evaluation_year desc, created_at desc, run_id desc")
        signs: dict[str, list[dict[str, Any]]] = {}
        if self.has("eval_signoffs"):
            for s in self.rows(
                "select run_id, role, name, signed_at, signed_by from eval_signoffs order by signed_at, role"
            ):
                signs.setdefault(s["run_id"], []).append(s)
        for run in runs:
            run["signoffs"] = signs.get(run["run_id"], [])
            run["files"] = json.loads(run.get("outputs") or "{}")
        return runs

    def require_runs(self) -> list[dict[str, Any]]:
        runs = self.runs()
        if not runs:
            raise NoEvaluation(NO_EVALUATION_EN)
        return runs

    def current_run(self) -> dict[str, Any]:
        """The run the site pages read: the newest year's final run, else its newest run."""
        runs = self.require_runs()
        year = runs[0]["evaluation_year"]
        of_year = [r for r in runs if r["evaluation_year"] == year]
        final = [r for r in of_year if r["status"] == "final"]
        return (final or of_year)[0]

    def run(self, run_id: str) -> dict[str, Any]:
        for run in self.require_runs():
            if run["run_id"] == run_id:
                return run
        raise NotFound(f"no evaluation run {run_id}")

    def run_detail(self, run_id: str, policy: Any | None = None) -> dict[str, Any]:
        run = self.run(run_id)
        district = self._run_rows("eval_district", run_id)
        if not district:
            raise NoEvaluation(f"evaluation run {run_id} has no eval_district row")
        indicators = self._run_rows("eval_indicator", run_id, order="dimension, indicator")
        dimensions: dict[str, dict[str, Any]] = {}
        for ind in indicators:
            d = dimensions.setdefault(
                ind["dimension"],
                {"dimension": ind["dimension"], "weight": Decimal(0), "points": Decimal(0), "indicators": []},
            )
            d["weight"] += Decimal(str(ind["weight"]))
            d["points"] += Decimal(str(ind["points"]))
            d["indicators"].append(ind)
        return {
            "run": run,
            "district": district[0],
            "dimensions": list(dimensions.values()),
            "indicators": indicators,
            "release": self._run_rows("eval_release", run_id, order="component"),
            "gap": self._run_rows("eval_gap", run_id, order="release_gain_fen desc, gap_id"),
            "rectification": self._run_rows("eval_rectification", run_id, order="site_code, year, indicator"),
            "plan": self._run_rows("eval_plan_2027", run_id, order="priority_rank, site_code"),
            "integrity": self._run_rows("eval_integrity", run_id, order="check_name"),
            "margin": margin(district[0], policy),
        }

    def diff(self, run_a: str, run_b: str) -> list[dict[str, Any]]:
        """What changed from ``run_a`` to ``run_b`` (runs.diff, not stored: the page only reads)."""
        from yuhang_skills.evaluation import runs

        self.run(run_a), self.run(run_b)
        return runs.diff(self.engine, run_a, run_b, store=False)

    def output_file(self, run_id: str, kind: str) -> Path | None:
        """A run's file (workbook, report, official report) as recorded in eval_runs.outputs."""
        path = self.run(run_id)["files"].get(kind)
        return Path(path) if path and Path(path).is_file() else None

    # -- sites ----------------------------------------------------------------------------------
    def sites(self, programme: str | None = None, town: str | None = None) -> dict[str, Any]:
        run = self.current_run()
        if not self.has("ref_sites"):
            raise NoEvaluation("the warehouse has no site registry (ref_sites)")
        where, params = [], {}
        if programme:
            where.append("programme = :programme")
            params["programme"] = programme
        if town:
            where.append("town = :town")
            params["town"] = town
        sites = self.rows(
            "select site_code, programme, name_zh, town, batch_year, active_from from ref_sites"
            + (" where " + " and ".join(where) if where else "")
            + " order by site_code",
            **params,
        )
        targets: dict[str, list[dict[str, Any]]] = {}
        for r in self._run_rows("eval_site", run["run_id"], order="site_code, year, indicator"):
            targets.setdefault(r["site_code"], []).append(r)
        for site in sites:
            site["targets"] = targets.get(site["site_code"], [])
            site["met"] = all(t["met"] for t in site["targets"]) if site["targets"] else None
        every = self.rows("select distinct programme, town from ref_sites")
        return {
            "run": run,
            "sites": sites,
            "programmes": sorted({r["programme"] for r in every}),
            "towns": sorted({r["town"] for r in every}),
        }

    def site(self, site_code: str) -> dict[str, Any]:
        run = self.current_run()
        found = (
            self.rows(
                "select site_code, programme, name_zh, town, batch_year, active_from, industry_focus "
                "from ref_sites where site_code = :code",
                code=site_code,
            )
            if self.has("ref_sites")
            else []
        )
        if not found:
            raise NotFound(f"no site {site_code}")
        # a warehouse written before quarantine rows had a severity holds errors only
        severity = "severity" if self.has_column("quarantine", "severity") else "'error' as severity"
        return {
            "run": run,
            "site": found[0],
            "targets": self._run_rows(
                "eval_site", run["run_id"], order="year, indicator", where="site_code = :code", code=site_code
            ),
            "submissions": self.site_submissions(site_code),
            "quarantine": self.rows(
                f"select period, kind, source_file, source_row, column_name, value, expectation, {severity}, reason_zh,"
                " reason_en from quarantine where site_code = :code order by period, kind, source_row, column_name",
                code=site_code,
            )
            if self.has("quarantine")
            else [],
            "findings": self.rows(
                "select finding_id, check_name, severity, sites, year, periods, subject_kind, subject, measure,"
                " threshold, evidence_rows, excluded_rows, explanation_zh, explanation_en from integrity_findings"
                " where site_code = :code or sites like :like order by check_name, finding_id",
                code=site_code,
                like=f"%{site_code}%",
            )
            if self.has("integrity_findings")
            else [],
            "exclusions": self.rows(
                "select e.kind, e.check_name, count(*) as rows_excluded from integrity_exclusions e"
                " join submissions s on s.submission_id = e.submission_id where s.site_code = :code"
                " group by e.kind, e.check_name order by e.kind, e.check_name",
                code=site_code,
            )
            if self.has("integrity_exclusions", "submissions")
            else [],
            "rectification": self._run_rows(
                "eval_rectification", run["run_id"], order="year, indicator", where="site_code = :code", code=site_code
            ),
        }

    def site_submissions(self, site_code: str) -> list[dict[str, Any]]:
        """The site's submissions by period and kind: each expected one (the watchdog's calendar)
        with the current file's status, received and due dates, or missing / not yet due; files
        outside the calendar are listed too."""
        received: dict[tuple[str, str], dict[str, Any]] = {}
        if self.has("submissions"):
            for s in self.rows(
                "select period, kind, status, received_at, version, rows_read, rows_staged,"
                " rows_quarantined, is_current, message from submissions where site_code = :code"
                " order by period, kind, received_at",
                code=site_code,
            ):
                key = (s["period"], s["kind"])
                if s["is_current"] or key not in received:
                    received[key] = s
        expected: dict[tuple[str, str], dict[str, Any]] = {}
        as_of = None
        if self.has("expected_submissions"):
            for e in self.rows(
                "select period, kind, due_date, as_of from expected_submissions where site_code = :code", code=site_code
            ):
                expected[(e["period"], e["kind"])] = e
                as_of = e["as_of"]
        out, as_of_day = [], _date(as_of)
        for key in sorted(set(received) | set(expected)):
            sub, exp = received.get(key), expected.get(key)
            due = _date(exp["due_date"]) if exp else None
            if sub is not None:
                got = _datetime(sub["received_at"])
                state = sub["status"]
                late = bool(due and got and got.date() > due)
            else:
                got, late = None, False
                state = "missing" if due and as_of_day and due < as_of_day else "not_yet_due"
            out.append(
                {
                    "period": key[0],
                    "kind": key[1],
                    "state": state,
                    "received_at": got,
                    "due_date": due,
                    "late": late,
                    "rows_read": sub["rows_read"] if sub else None,
                    "rows_quarantined": sub["rows_quarantined"] if sub else None,
                    "version": sub["version"] if sub else None,
                }
            )
        return out

    # -- submissions today ----------------------------------------------------------------------
    def submissions_today(self) -> dict[str, Any]:
        """The watchdog's latest missing and late list and its early warnings, grouped by town."""
        if not self.has("missing_submissions"):
            raise NoEvaluation("the watchdog has not run yet: run yuhang_watchdog")
        missing = self.rows(
            "select m.site_code, m.kind, m.period, m.programme, m.town, m.due_date, m.status, m.days_overdue,"
            " m.escalated, m.resolved_at, m.last_alerted, m.as_of from missing_submissions m"
            " order by m.town, m.status, m.days_overdue desc, m.site_code, m.kind, m.period"
        )
        warnings = (
            self.rows(
                "select w.site_code, w.year, w.indicator, w.programme, r.town, w.actual_to_date, w.projected, w.target,"
                " w.projected_shortfall, w.months_reported, w.as_of from early_warnings w"
                " left join ref_sites r on r.site_code = w.site_code where w.at_risk = :yes"
                " order by r.town, w.site_code, w.year, w.indicator",
                yes=True,
            )
            if self.has("early_warnings", "ref_sites")
            else []
        )
        towns: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for m in missing:
            group = towns.setdefault(m["town"] or "-", {"missing": [], "late": [], "warnings": []})
            group["missing" if m["status"] == "open" else "late"].append(m)
        for w in warnings:
            towns.setdefault(w["town"] or "-", {"missing": [], "late": [], "warnings": []})["warnings"].append(w)
        days = [_date(m["as_of"]) for m in missing] + [_date(w["as_of"]) for w in warnings]
        as_of = max((day for day in days if day is not None), default=None)
        return {
            "as_of": as_of,
            "towns": dict(sorted(towns.items())),
            "open": sum(len(g["missing"]) for g in towns.values()),
            "late": sum(len(g["late"]) for g in towns.values()),
            "warnings": len(warnings),
        }


def margin(district: dict[str, Any], policy: Any | None) -> dict[str, Any]:
    """How far the score is from the next grade and from full release under the policy's rule."""
    score = Decimal(str(district["score"]))
    out: dict[str, Any] = {
        "score": score,
        "next_grade": None,
        "points_to_next_grade": None,
        "full_release_at": None,
        "points_to_full_release": None,
    }
    if policy is None:
        return out
    bands = sorted(policy.evaluation.grades, key=lambda b: b.min_score)
    above = [b for b in bands if b.min_score > score]
    if above:
        out["next_grade"] = above[0].grade
        out["points_to_next_grade"] = above[0].min_score - score
    rule = str(district.get("release_rule") or policy.release.rule)
    full = policy.release.banded.full_at if rule == "banded" and policy.release.banded else None
    if full is not None:
        out["full_release_at"] = Decimal(str(full))
        out["points_to_full_release"] = max(Decimal(0), Decimal(str(full)) - score)
    return out


def load_policy() -> Any | None:
    """The policy file the DAGs use (grades and release rule for the margin), or None."""
    try:
        from yuhang_skills.core.policy import Plan

        return Plan.from_settings(load_settings()).policy
    except Exception:  # noqa: BLE001 - the pages work without the margin
        return None


def _date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    return dt.date.fromisoformat(str(value)[:10])


def _datetime(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def yuan(fen: Any) -> str:
    if fen is None:
        return "–"
    return f"{Decimal(int(fen)) / 100:,.2f}"


__all__ = [
    "Reader",
    "NoEvaluation",
    "WarehouseUnreachable",
    "warehouse_url",
    "engine",
    "describe_url",
    "yuan",
    "load_policy",
    "margin",
    "NO_EVALUATION_ZH",
    "NO_EVALUATION_EN",
    "WAREHOUSE_CONN_ID",
]
