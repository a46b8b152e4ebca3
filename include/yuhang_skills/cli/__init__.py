"""``yuhang-pipeline``: run the whole pipeline over an inbox without a running scheduler.

It runs the real DAGs of this project in order (intake, indicators, evaluation) in-process
through Airflow's ``dag.test()``, for one as-of date, against one warehouse, and prints the
headline of the evaluation. Airflow's own metadata goes to a SQLite file under the run folder
unless ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` says otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from concurrent.futures import Future
from decimal import Decimal
from pathlib import Path
from typing import Any

from yuhang_skills.core.settings import DEFAULT_VAR_DIR, PROJECT_DIR

DAG_ORDER = ("yuhang_intake", "yuhang_indicators", "yuhang_evaluation")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yuhang-pipeline",
        description="Run the Yuhang skill-fund pipeline (intake → indicators → evaluation) through "
        "the real Airflow DAGs, without a scheduler; rebuild the missing-submission list "
        "(watchdog) and show where things stand (status).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--as-of",
            default=None,
            metavar="YYYY-MM-DD",
            help="as-of date (Asia/Shanghai): files received after that day are left for later "
            "(default: today; 'demo' uses 2027-02-15)",
        )
        p.add_argument(
            "--warehouse",
            default=None,
            metavar="URL",
            help="SQLAlchemy URL of the warehouse, e.g. postgresql+psycopg2://user@host/db "
            "(default: $YUHANG_WAREHOUSE_URL or sqlite:///<var-dir>/warehouse.sqlite)",
        )
        p.add_argument(
            "--var-dir",
            type=Path,
            default=None,
            help=f"folder for the SQLite warehouse, archive, outputs and Airflow metadata "
            f"(default: $YUHANG_VAR_DIR or {DEFAULT_VAR_DIR}; 'demo' works in <var-dir>/demo, "
            f"which it rebuilds on every run)",
        )
        p.add_argument(
            "--output-dir", type=Path, default=None, help="where the workbook is written (default: <var-dir>/outputs)"
        )
        p.add_argument(
            "--evaluation-year",
            type=int,
            default=None,
            help="evaluation year (default: evaluation_year in the policy file)",
        )
        p.add_argument("--json", action="store_true", help="print the headline as JSON")
        p.add_argument("--verbose", action="store_true", help="show Airflow's task logs (default: warnings only)")

    run = sub.add_parser("run", help="run the pipeline over an inbox folder")
    run.add_argument(
        "--inbox", type=Path, required=True, help="inbox folder laid out as <YYYY-MM>/<site code>/<kind>.csv|xlsx"
    )
    run.add_argument(
        "--provisional",
        action="store_true",
        help="as-of date before the evaluated period's data can be complete: write a run marked "
        "provisional (预评估) instead of refusing",
    )
    common(run)
    demo = sub.add_parser("demo", help="generate the sample inbox (seeded) and run the pipeline over it")
    demo.add_argument("--seed", type=int, default=20251218, help="generator seed (default: 20251218)")
    demo.add_argument("--scale", type=float, default=1.0, help="volume multiplier for the sample (default: 1)")
    common(demo)
    from yuhang_skills.cli.ops import add_commands as add_operations_commands

    add_operations_commands(sub)  # watchdog, status
    from yuhang_skills.cli.evaluation import add_commands as add_evaluation_commands

    add_evaluation_commands(sub)  # evaluation list|sign|supersede|diff
    return parser


def configure_environment(
    var_dir: Path, warehouse: str | None, inbox: Path | None, output_dir: Path | None, airflow_home: Path
) -> None:
    """Point this process's Airflow and the pipeline at the run folder (before Airflow is imported)."""
    var_dir = var_dir.resolve()
    os.environ["YUHANG_VAR_DIR"] = str(var_dir)
    if warehouse:
        os.environ["YUHANG_WAREHOUSE_URL"] = warehouse
    if inbox:
        os.environ["YUHANG_INBOX"] = str(inbox.resolve())
    if output_dir:
        os.environ["YUHANG_OUTPUT_DIR"] = str(output_dir.resolve())
    airflow_home = Path(os.environ.setdefault("AIRFLOW_HOME", str(airflow_home.resolve())))
    airflow_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{airflow_home / 'airflow.db'}")
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT_DIR / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(PROJECT_DIR / "plugins"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__DEFAULT_TIMEZONE", "Asia/Shanghai")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def migrate_airflow_db(template_dir: Path | None = None) -> None:
    """Airflow's metadata database at its head revision.

    With ``template_dir`` (the demo, whose sandbox and Airflow metadata are rebuilt on every run) the
    metadata database is a SQLite file: the first run migrates it and keeps a copy there, named for
    the Airflow version, and later runs start from that copy instead of paying Airflow's migration
    (about 3 CPU seconds) again."""
    from airflow.utils import db

    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if template_dir is None or not url.startswith("sqlite:///"):
        db.upgradedb()
        return
    import sqlite3

    import airflow

    target = Path(url.removeprefix("sqlite:///"))
    template = template_dir / f"airflow-metadata-{airflow.__version__}.sqlite"

    def copy(source: Path, destination: Path) -> None:
        # SQLite's backup API: a consistent copy even of a file another process has open
        partial = destination.with_name(destination.name + f".{os.getpid()}.partial")
        src, dst = sqlite3.connect(source), sqlite3.connect(partial)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        partial.replace(destination)

    if template.is_file() and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        copy(template, target)
        return
    db.upgradedb()
    template_dir.mkdir(parents=True, exist_ok=True)
    copy(target, template)


def migrate_warehouse() -> str:
    """The warehouse of this process's settings at the schema's head revision (once per command;
    the DAGs' first task finds it there)."""
    from yuhang_skills.core import warehouse
    from yuhang_skills.core.migrations import migrate
    from yuhang_skills.core.settings import load_settings

    engine = warehouse.make_engine(load_settings().warehouse_url)
    try:
        return migrate(engine)
    finally:
        engine.dispose()


def run_dags(as_of: dt.date, evaluation_year: int | None, inbox: Path | None, provisional: bool = False) -> dict:
    """Run the three DAGs in order with ``dag.test()``; raise if any run does not succeed."""
    from zoneinfo import ZoneInfo

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    logical = dt.datetime.combine(as_of, dt.time(23, 0), tzinfo=ZoneInfo("Asia/Shanghai"))
    confs = {
        "yuhang_intake": {"inbox": str(inbox.resolve()) if inbox else None, "as_of": as_of.isoformat()},
        "yuhang_indicators": {},
        "yuhang_evaluation": {
            "evaluation_year": evaluation_year,
            "as_of": as_of.isoformat(),
            "provisional": provisional,
        },
    }
    timings = {}
    headline: dict = {}
    for dag_id in DAG_ORDER:
        dag = bag.get_dag(dag_id)
        # dag.test() of Airflow 3.3.2 cannot finish a successful run of a DAG with a Deadline Alert
        # (it looks the alert up by its serialized form instead of its id); an in-process run has
        # no scheduler to watch a deadline anyway.
        dag.deadline = None
        started = time.monotonic()
        dag_run = dag.test(logical_date=logical, run_conf=confs[dag_id])
        timings[dag_id] = round(time.monotonic() - started, 1)
        if dag_run is None or str(dag_run.state) != "success":
            failed = [ti.task_id for ti in dag_run.get_task_instances() if str(ti.state) == "failed"] if dag_run else []
            raise RuntimeError(
                f"{dag_id} did not succeed (state {getattr(dag_run, 'state', None)}; failed tasks {failed})"
            )
        if dag_id == "yuhang_evaluation":
            ti = dag_run.get_task_instance("write_outputs")
            headline = ti.xcom_pull(task_ids="write_outputs") if ti else {}
    return {"headline": headline, "seconds": timings}


def _yuan(text: str) -> str:
    """A yuan amount as the headline carries it ("1766600.00") with thousands separators."""
    return f"{Decimal(text):,.2f}"


def format_headline(result: dict, warehouse_url: str) -> str:
    h = result["headline"]
    lines = [
        f"Yuhang skill-society incentive fund — {h['evaluation_year']} performance evaluation (as of {h['as_of']})",
        f"  score        {h['score']} / 100   grade {h['grade']}",
        f"  released     {_yuan(h['released_yuan'])} of {_yuan(h['tranche_yuan'])} yuan "
        f"(rule: {h['release_rule']}, policy {h['policy_version']})",
        f"  recoveries   {_yuan(h['recoveries_yuan'])} yuan (sites not rectified by their deadline)",
        f"  net release  {_yuan(h['net_released_yuan'])} yuan",
        *(
            [f"  run          {h['run_id']} ({h['status']}), input fingerprint {h['input_fingerprint'][:12]}…"]
            if h.get("run_id")
            else []
        ),
        *(
            [
                f"  integrity    {h['integrity_findings']:,} finding(s); "
                f"person-times {h['person_times_reported']:,} reported, {h['person_times_counted']:,} counted; "
                f"score before exclusions {h['score_before_exclusions']}"
            ]
            if h.get("score_before_exclusions") is not None
            else []
        ),
        f"  workbook     {h['workbook']}",
        *([f"  report       {h['report']}"] if h.get("report") else []),
        *(
            [f"  official     {h['official_docx']}" + (" (+ .pdf)" if h.get("official_pdf") else "")]
            if h.get("official_docx")
            else []
        ),
        f"  tables       eval_runs, eval_* (district, indicator, release, site, rectification, plan_2027, "
        f"excellent_station, gap, integrity, village, submissions), integrity_findings, ind_site_year, quarantine … "
        f"in {warehouse_url}",
        "  run times    " + ", ".join(f"{k} {v}s" for k, v in result["seconds"].items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "handler", None) is not None:  # subcommands with a function of their own
        return args.handler(args)
    var_dir = args.var_dir or Path(os.environ.get("YUHANG_VAR_DIR", DEFAULT_VAR_DIR))
    inbox = getattr(args, "inbox", None)
    as_of = dt.date.fromisoformat(args.as_of) if args.as_of else None
    airflow_home = var_dir / "airflow"
    sample: Future[dict[str, Any]] | None = None
    if args.command == "demo":
        import shutil

        from yuhang_sample.generator import SampleOptions, generate

        # The demo is a sandbox of its own (var/demo), rebuilt on every run, so a demo never
        # mixes with the warehouse, archive or outputs of real runs.
        var_dir = var_dir / "demo"
        shutil.rmtree(var_dir, ignore_errors=True)
        for name in (
            "YUHANG_WAREHOUSE_URL",
            "YUHANG_INBOX",
            "YUHANG_OUTPUT_DIR",
            "YUHANG_ARCHIVE_DIR",
            "YUHANG_DATA_DOCS_DIR",
            "YUHANG_RECTIFICATIONS_PATH",
        ):
            os.environ.pop(name, None)  # settings of real runs never point the demo elsewhere
        # Its runs go to Airflow metadata of its own too, so they never show in the local UI
        # (var/airflow) beside runs over the real warehouse.
        airflow_home = var_dir / "airflow"
        os.environ["AIRFLOW_HOME"] = str(airflow_home.resolve())
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{airflow_home.resolve() / 'airflow.db'}"
        inbox = var_dir / "inbox"
        # The sample is written by a second process while this one gets Airflow and the warehouse
        # ready (imports, migrations): on two cores the two overlap instead of adding up.
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        sampler = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
        sample = sampler.submit(generate, inbox, SampleOptions(seed=args.seed, scale=args.scale))
        sampler.shutdown(wait=False)  # the process ends once the sample is written
        as_of = as_of or dt.date(2027, 2, 15)
    elif inbox is not None and not inbox.is_dir():
        print(f"yuhang-pipeline: inbox folder {inbox} does not exist", file=sys.stderr)
        return 2
    if not args.verbose:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    configure_environment(var_dir, args.warehouse, inbox, args.output_dir, airflow_home)
    from yuhang_skills.core.settings import load_settings
    from yuhang_skills.orchestration.tasks import as_of_date

    as_of = as_of or as_of_date(None)
    migrate_airflow_db(template_dir=var_dir.parent / "cache" if args.command == "demo" else None)
    migrate_warehouse()
    if sample is not None:
        import great_expectations  # noqa: F401 - the intake's first task needs it; imported while the sample is written

        summary = sample.result()
        print(f"sample inbox: {inbox} ({summary['files']['total']:,} files, seed {args.seed})")
    result = run_dags(as_of, args.evaluation_year, inbox, bool(getattr(args, "provisional", False)))
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(format_headline(result, load_settings().warehouse_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
