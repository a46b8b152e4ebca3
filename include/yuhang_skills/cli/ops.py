"""``yuhang-pipeline watchdog`` and ``yuhang-pipeline status``: the operator's day-one commands.

- ``watchdog --as-of D [--send]`` runs the real ``yuhang_watchdog`` DAG for one as-of date with
  ``dag.test()``: it rebuilds ``expected_submissions``, ``missing_submissions`` and
  ``early_warnings`` as of D and sends nothing unless ``--send`` is given (and then only when D is
  live: today or within ``alerts.backfill_grace_days`` before it).
- ``status`` prints, in one screen, the warehouse, the last run of each stage (from Airflow's
  metadata and from the warehouse), what is missing today and which files failed. It only reads.
- ``warehouse migrate`` brings the warehouse to the schema's head revision (what every DAG's first
  task does); ``warehouse current`` prints its revision and whether it is the head.

Each command is one function taking the parsed arguments; :func:`add_commands` adds their
sub-parsers beside the others of ``yuhang-pipeline``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from yuhang_skills.core.settings import DEFAULT_VAR_DIR

STAGES = ("yuhang_intake", "yuhang_indicators", "yuhang_evaluation", "yuhang_watchdog")
SCREEN_ROWS = 8  # rows of each list shown; the rest are counted


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--warehouse",
        default=None,
        metavar="URL",
        help="SQLAlchemy URL of the warehouse (default: $YUHANG_WAREHOUSE_URL or sqlite:///<var-dir>/warehouse.sqlite)",
    )
    p.add_argument(
        "--var-dir",
        type=Path,
        default=None,
        help=f"the pipeline's folder, with Airflow's metadata in <var-dir>/airflow "
        f"(default: $YUHANG_VAR_DIR or {DEFAULT_VAR_DIR})",
    )
    p.add_argument(
        "--today", default=None, metavar="YYYY-MM-DD", help="today in Asia/Shanghai (default: the real today)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def add_commands(sub: Any) -> None:
    watchdog = sub.add_parser(
        "watchdog",
        help="rebuild the missing-submission list as of a date; --send alerts",
        description="Run the yuhang_watchdog DAG for one as-of date. Rebuilds the expected "
        "calendar, the missing list and the early warnings; sends nothing "
        "unless --send (and then only for a live date).",
    )
    watchdog.add_argument("--as-of", required=True, metavar="YYYY-MM-DD", help="the as-of date (Asia/Shanghai)")
    watchdog.add_argument(
        "--send",
        action="store_true",
        help="send the alerts due (only when the as-of date is today or within the policy's "
        "backfill_grace_days before it); default: rebuild only",
    )
    watchdog.add_argument("--verbose", action="store_true", help="show Airflow's task logs")
    _common(watchdog)
    watchdog.set_defaults(handler=watchdog_command)
    status = sub.add_parser(
        "status",
        help="warehouse, last run of each stage, missing today, failed files",
        description="One screen: the warehouse, the last run of each stage, what is missing "
        "today and which files failed. Reads only.",
    )
    _common(status)
    status.set_defaults(handler=status_command)
    schema = sub.add_parser(
        "warehouse",
        help="the warehouse's schema: migrate to the head revision, or show its revision",
        description="The warehouse's schema revisions (Alembic).",
    )
    schema_commands = schema.add_subparsers(dest="warehouse_command", required=True)
    for name, handler, text in (
        (
            "migrate",
            migrate_command,
            "bring the warehouse to the head revision (a warehouse made before "
            "migrations is brought to the baseline first, keeping every row)",
        ),
        ("current", current_command, "print the warehouse's revision and whether it is the head"),
    ):
        command = schema_commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        command.add_argument(
            "--warehouse",
            default=None,
            metavar="URL",
            help="SQLAlchemy URL of the warehouse (default: $YUHANG_WAREHOUSE_URL or "
            "sqlite:///<var-dir>/warehouse.sqlite)",
        )
        command.add_argument(
            "--var-dir",
            type=Path,
            default=None,
            help=f"the pipeline's folder (default: $YUHANG_VAR_DIR or {DEFAULT_VAR_DIR})",
        )
        command.add_argument("--json", action="store_true", help="print the result as JSON")
        command.set_defaults(handler=handler)


def _environment(args: argparse.Namespace) -> Path:
    from yuhang_skills.cli import configure_environment

    var_dir = args.var_dir or Path(os.environ.get("YUHANG_VAR_DIR", DEFAULT_VAR_DIR))
    configure_environment(var_dir, args.warehouse, None, None, var_dir / "airflow")
    return var_dir


def _warehouse_engine(args: argparse.Namespace) -> Any:
    from yuhang_skills.core import warehouse
    from yuhang_skills.core.settings import load_settings

    _environment(args)
    return warehouse.make_engine(load_settings().warehouse_url)


def _today(args: argparse.Namespace) -> dt.date:
    from yuhang_skills.orchestration.tasks import as_of_date

    return dt.date.fromisoformat(args.today) if args.today else as_of_date(None)


# --- watchdog ---------------------------------------------------------------------------------------
def watchdog_command(args: argparse.Namespace) -> int:
    as_of = dt.date.fromisoformat(args.as_of)
    if not args.verbose:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    _environment(args)
    from yuhang_skills.cli import migrate_airflow_db, migrate_warehouse
    from yuhang_skills.core.settings import load_settings

    migrate_airflow_db()
    migrate_warehouse()
    result = run_watchdog(as_of, args.send, args.today)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    else:
        print(format_watchdog(result, load_settings().warehouse_url))
    return 0


def run_watchdog(as_of: dt.date, send: bool, today: str | None) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag("yuhang_watchdog")
    now = dt.datetime.now(ZoneInfo("Asia/Shanghai"))
    logical = dt.datetime.combine(as_of, now.time(), tzinfo=ZoneInfo("Asia/Shanghai"))  # one run per call
    dag_run = dag.test(logical_date=logical, run_conf={"as_of": as_of.isoformat(), "today": today, "send_alerts": send})
    if dag_run is None or str(dag_run.state) != "success":
        failed = [ti.task_id for ti in dag_run.get_task_instances() if str(ti.state) == "failed"] if dag_run else []
        raise RuntimeError(f"yuhang_watchdog did not succeed (failed tasks {failed}); rerun with --verbose")
    missing = dag_run.get_task_instance("missing_list").xcom_pull(task_ids="missing_list")
    alerts = dag_run.get_task_instance("send_alerts").xcom_pull(task_ids="send_alerts")
    return {"as_of": as_of.isoformat(), "run_id": dag_run.run_id, "missing": missing, "alerts": alerts}


def format_watchdog(result: dict[str, Any], warehouse_url: str) -> str:
    m, a = result["missing"], result["alerts"]
    lines = [
        f"Submissions watchdog as of {result['as_of']} (run {result['run_id']})",
        f"  missing      {m['open']} open ({m['escalated']} escalated), {m['resolved_late']} received late",
        f"  warnings     {m['early_warnings_at_risk']} station/base target(s) at risk",
    ]
    if a.get("mode") == "live":
        counts = ", ".join(f"{k} {v}" for k, v in sorted(a.items()) if k not in ("as_of", "mode", "messages"))
        lines.append(f"  alerts       {a['messages']} message(s): {counts or 'nothing due'}")
    else:
        lines.append(f"  alerts       none sent: {a.get('reason')}")
    lines.append(
        f"  tables       expected_submissions, missing_submissions, early_warnings, alerts in "
        f"{_safe_url(warehouse_url)}"
    )
    return "\n".join(lines)


# --- status -----------------------------------------------------------------------------------------
def status_command(args: argparse.Namespace) -> int:
    _environment(args)
    from yuhang_skills.core.policy import Plan
    from yuhang_skills.core.settings import load_settings

    settings = load_settings()
    report = status_report(
        settings.warehouse_url,
        Plan.from_settings(settings),
        _today(args),
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
    )
    print(json.dumps(report, ensure_ascii=False, indent=2, default=str) if args.json else format_status(report))
    return 0


def _safe_url(url: str) -> str:
    import sqlalchemy as sa

    return sa.engine.make_url(url).render_as_string(hide_password=True)


def last_airflow_runs(metadata_url: str) -> dict[str, Any]:
    """The newest run of each stage in Airflow's metadata database, read with plain SQL (no
    migration, no Airflow import); None per stage when there is none or no database yet."""
    import sqlalchemy as sa

    if metadata_url.startswith("sqlite:///") and not Path(metadata_url.removeprefix("sqlite:///")).is_file():
        return {"source": _safe_url(metadata_url), "error": "no Airflow metadata database yet", "runs": {}}
    engine = sa.create_engine(metadata_url)
    runs: dict[str, Any] = {}
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("dag_run"):
                return {"source": _safe_url(metadata_url), "error": "Airflow metadata not migrated yet", "runs": {}}
            for dag_id in STAGES:
                row = (
                    conn.execute(
                        sa.text(
                            "select run_id, state, logical_date, start_date, end_date from dag_run where dag_id = :d "
                            "order by coalesce(start_date, run_after) desc limit 1"
                        ),
                        {"d": dag_id},
                    )
                    .mappings()
                    .first()
                )
                runs[dag_id] = dict(row) if row else None
    finally:
        engine.dispose()
    return {"source": _safe_url(metadata_url), "error": None, "runs": runs}


def _shanghai(value: Any) -> str:
    from zoneinfo import ZoneInfo

    if value is None:
        return "-"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:  # Airflow stores UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")


def status_report(warehouse_url: str, plan: Any, today: dt.date, metadata_url: str) -> dict[str, Any]:
    import sqlalchemy as sa

    from yuhang_skills.core import warehouse
    from yuhang_skills.watchdog.calendar import expected_submissions
    from yuhang_skills.watchdog.missing import find_missing, load_manifest

    report: dict[str, Any] = {
        "today": today.isoformat(),
        "warehouse": _safe_url(warehouse_url),
        "airflow": last_airflow_runs(metadata_url),
    }
    engine = warehouse.make_engine(warehouse_url)
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())

            def scalar(sql: str, table: str) -> Any:
                return conn.execute(sa.text(sql)).scalar() if table in tables else None

            submissions = scalar("select count(*) from submissions", "submissions") or 0
            report["data"] = {
                "submissions": submissions,
                "last_received": scalar("select max(received_at) from submissions", "submissions"),
                "last_ingested": scalar("select max(ingested_at) from submissions", "submissions"),
                "indicator_rows": scalar("select count(*) from ind_site_year where basis = 'counted'", "ind_site_year"),
                "evaluation": (
                    dict(
                        conn.execute(
                            sa.text(
                                "select evaluation_year, as_of, score, grade, created_at as evaluated_at, run_id,"
                                " status from eval_runs order by created_at desc, run_id desc limit 1"
                            )
                        )
                        .mappings()
                        .first()
                        or {}
                    )
                    or None
                )
                if "eval_runs" in tables
                else (
                    dict(
                        conn.execute(
                            sa.text(
                                "select evaluation_year, as_of, score, grade, evaluated_at from eval_district "
                                "order by evaluated_at desc limit 1"
                            )
                        )
                        .mappings()
                        .first()
                        or {}
                    )
                    or None
                )
                if "eval_district" in tables
                else None,
                "watchdog_as_of": scalar("select max(as_of) from missing_submissions", "missing_submissions"),
                "last_alert_sent": scalar("select max(sent_at) from alerts where outcome = 'sent'", "alerts"),
            }
            if not submissions:
                report["empty"] = "no data yet: run yuhang_intake first / 还没有数据：请先运行 yuhang_intake"
                report["missing_today"], report["failed_files"], report["not_processed"] = None, [], []
                return report
            manifest = load_manifest(conn, today)
            items = find_missing(expected_submissions(plan, today), manifest, plan, today)
            report["missing_today"] = [
                {
                    "site_code": m.site_code,
                    "kind": m.kind,
                    "period": m.period,
                    "due_date": m.due_date.isoformat(),
                    "days_overdue": m.days_overdue,
                    "escalated": m.escalated,
                }
                for m in sorted(
                    (m for m in items if m.status == "open"),
                    key=lambda m: (-m.days_overdue, m.site_code, m.kind, m.period),
                )
            ]
            report["failed_files"] = failed_files(conn)
            report["not_processed"] = not_processed_files(conn)
    finally:
        engine.dispose()
    return report


def failed_files(conn: Any) -> list[dict[str, Any]]:
    """The latest file of each site, period and kind when it was rejected or failed in processing
    (a later good file clears it)."""
    import sqlalchemy as sa

    from yuhang_skills.core import warehouse

    s = warehouse.submissions
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in conn.execute(
        sa.select(
            s.c.site_code,
            s.c.period,
            s.c.kind,
            s.c.original_name,
            s.c.status,
            s.c.received_at,
            s.c.rows_quarantined,
            s.c.message,
        ).order_by(s.c.received_at, s.c.submission_id)
    ).mappings():
        latest[(row["site_code"], row["period"], row["kind"])] = dict(row)
    return [
        {**r, "message": (r["message"] or "").splitlines()[0][:100] if r["message"] else None}
        for _, r in sorted(latest.items())
        if r["status"] in FAILED_STATUSES
    ]


# The latest file's statuses that leave a site, period and kind without usable data.
FAILED_STATUSES = ("rejected", "no_rows_accepted", "failed")


def not_processed_files(conn: Any) -> list[dict[str, Any]]:
    """Files the last intake run saw and did not process, with the reason (``intake_not_processed``)."""
    import sqlalchemy as sa

    from yuhang_skills.core import warehouse

    t = warehouse.intake_not_processed
    if not sa.inspect(conn).has_table(t.name):
        return []
    return [
        dict(r)
        for r in conn.execute(
            sa.select(t.c.relative_path, t.c.reason_code, t.c.reason_en, t.c.as_of).order_by(t.c.relative_path)
        ).mappings()
    ]


def format_status(report: dict[str, Any]) -> str:
    lines = [
        f"Yuhang pipeline status — today {report['today']} (Asia/Shanghai)",
        f"  warehouse    {report['warehouse']}",
    ]
    airflow = report["airflow"]
    lines.append(f"  airflow      {airflow['source']}" + (f" ({airflow['error']})" if airflow["error"] else ""))
    data = report.get("data") or {}
    evidence = {
        "yuhang_intake": f"{data.get('submissions') or 0:,} file(s), last received {_plain(data.get('last_received'))}",
        "yuhang_indicators": f"{data.get('indicator_rows') or 0:,} site-year(s) in ind_site_year",
        "yuhang_evaluation": (
            f"{data['evaluation']['evaluation_year']}: score {data['evaluation']['score']}, grade "
            f"{data['evaluation']['grade']}, as of {_plain(data['evaluation']['as_of'])}"
            + (
                f", run {data['evaluation']['run_id']} ({data['evaluation']['status']})"
                if data["evaluation"].get("run_id")
                else ""
            )
        )
        if data.get("evaluation")
        else "no evaluation yet",
        "yuhang_watchdog": f"missing list as of {_plain(data.get('watchdog_as_of'))}, last alert sent "
        f"{_plain(data.get('last_alert_sent'))}",
    }
    lines.append("  last runs")
    for dag_id in STAGES:
        run = (airflow.get("runs") or {}).get(dag_id)
        when = (
            (
                f"{run['state']:<8} {_shanghai(run['logical_date'] or run['start_date'])}, ended "
                f"{_shanghai(run['end_date'])}"
            )
            if run
            else "no run recorded"
        )
        lines.append(f"    {dag_id:<18} {when:<50} {evidence[dag_id]}")
    if report.get("empty"):
        lines.append(f"  {report['empty']}")
        return "\n".join(lines)
    missing = report["missing_today"]
    escalated = sum(m["escalated"] for m in missing)
    lines.append(f"  missing today  {len(missing)} overdue submission(s), {escalated} escalated")
    by_site: dict[str, list[dict[str, Any]]] = {}
    for m in missing:  # oldest first
        by_site.setdefault(m["site_code"], []).append(m)
    for site, items in list(by_site.items())[:SCREEN_ROWS]:
        kinds: dict[str, int] = {}
        for m in items:
            kinds[m["kind"]] = kinds.get(m["kind"], 0) + 1
        lines.append(
            f"    {site:<5} {len(items)} overdue, oldest due {items[0]['due_date']} "
            f"({items[0]['days_overdue']} day(s)): " + ", ".join(f"{k} ×{n}" for k, n in sorted(kinds.items()))
        )
    if len(by_site) > SCREEN_ROWS:
        lines.append(f"    … and {len(by_site) - SCREEN_ROWS} more site(s)")
    if missing:
        lines.append(
            f"    every item: `yuhang-pipeline watchdog --as-of {report['today']}`, then table missing_submissions"
        )
    failed = report["failed_files"]
    lines.append(
        f"  failed files   {len(failed)} (latest file of a site, period and kind rejected, with no row "
        f"accepted, or failed)"
    )
    lines += [
        f"    {f['site_code']:<5} {f['period']} {f['kind']:<9} {f['original_name']}: {f['status']}"
        + (f" — {f['message']}" if f["message"] else "")
        for f in failed[:SCREEN_ROWS]
    ]
    if len(failed) > SCREEN_ROWS:
        lines.append(f"    … and {len(failed) - SCREEN_ROWS} more (table submissions)")
    skipped = report.get("not_processed") or []
    lines.append(f"  not processed  {len(skipped)} file(s) the last intake run did not process")
    lines += [f"    {f['reason_en']}" for f in skipped[:SCREEN_ROWS]]
    if len(skipped) > SCREEN_ROWS:
        lines.append(f"    … and {len(skipped) - SCREEN_ROWS} more (table intake_not_processed)")
    return "\n".join(lines)


def _plain(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)[:16]


# --- warehouse migrate | current --------------------------------------------------------------------
def migrate_command(args: argparse.Namespace) -> int:
    from yuhang_skills.core.migrations import current_revision, head_revision, migrate

    engine = _warehouse_engine(args)
    try:
        before = current_revision(engine)
        after = migrate(engine)
        url = _safe_url(engine.url.render_as_string(hide_password=False))
    finally:
        engine.dispose()
    result = {"warehouse": url, "from": before, "to": after, "head": head_revision()}
    text = (
        f"warehouse {url}: already at {after} (head)"
        if before == after
        else f"warehouse {url}: migrated from {before or 'no revision (empty, or made before migrations)'} "
        f"to {after} (head)"
    )
    print(json.dumps(result, ensure_ascii=False, indent=2) if args.json else text)
    return 0


def current_command(args: argparse.Namespace) -> int:
    from yuhang_skills.core.migrations import current_revision, head_revision

    engine = _warehouse_engine(args)
    try:
        revision = current_revision(engine)
        url = _safe_url(engine.url.render_as_string(hide_password=False))
    finally:
        engine.dispose()
    head = head_revision()
    result = {"warehouse": url, "revision": revision, "head": head, "at_head": revision == head}
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    elif revision is None:
        print(f"none (empty, or made before migrations: run `yuhang-pipeline warehouse migrate`); head {head}")
    else:
        print(
            f"{revision}"
            + (" (head)" if revision == head else f" (head is {head}: run `yuhang-pipeline warehouse migrate`)")
        )
    return 0
