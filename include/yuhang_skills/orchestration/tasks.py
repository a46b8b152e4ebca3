"""The work each Airflow task does, as plain functions of JSON-able arguments.

DAG files only wire these together; everything here runs (and is tested) without a scheduler.
Settings come from the environment or, inside a task, from Airflow variables and the
``yuhang_warehouse`` connection (see :mod:`yuhang_skills.core.settings`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from yuhang_skills.core import warehouse
from yuhang_skills.core.policy import Plan
from yuhang_skills.core.settings import SQL_DIR, Settings, load_settings
from yuhang_skills.evaluation.outputs import evaluate, write_evaluation
from yuhang_skills.evaluation.rectification import load_decisions
from yuhang_skills.evaluation.report_html import write_html_report
from yuhang_skills.evaluation.reporting import write_workbook
from yuhang_skills.indicators import layers, models
from yuhang_skills.intake import archive, discover, ingest, publish
from yuhang_skills.orchestration.operations import PrerequisiteMissing

log = logging.getLogger(__name__)


def _context(use_airflow: bool = True) -> tuple[Settings, Plan]:
    settings = load_settings(use_airflow=use_airflow)
    return settings, Plan.from_settings(settings)


def as_of_date(value: str | dt.date | dt.datetime | None, timezone: str = "Asia/Shanghai") -> dt.date:
    """A run's as-of date in Asia/Shanghai: an ISO date, a (logical) datetime, or today."""
    if value is None or value == "":
        return dt.datetime.now(ZoneInfo(timezone)).date()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(ZoneInfo(timezone))
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def migrate_warehouse() -> dict[str, str]:
    """The first task of every DAG: the warehouse at the schema's head revision, so the tasks after it
    (mapped ones too) find every table and never race to create one (see core.migrations)."""
    from yuhang_skills.core.migrations import migrate

    settings, _ = _context()
    engine = warehouse.make_engine(settings.warehouse_url)
    try:
        return {"revision": migrate(engine)}
    finally:
        engine.dispose()


def discover_submissions(inbox: str | None, as_of: str) -> list[dict[str, Any]]:
    """Files under the inbox received by the end of the as-of day (Asia/Shanghai), grouped per
    site folder (one mapped task each, small folders packed together by the policy's
    ``intake.task_bytes`` / ``task_max_sites``); files outside any site folder form their own group.

    A file's time is evidence, not authority: one dated in the future counts as received now. Every
    file not handed to a task (received after the as-of day, a link, not a regular file) is listed
    in ``intake_not_processed`` with the reason, which replaces the previous run's list."""
    settings, plan = _context()
    inbox_dir = Path(inbox) if inbox else settings.inbox_dir
    if not inbox_dir.is_dir():
        raise FileNotFoundError(f"inbox folder {inbox_dir} does not exist")
    tz = ZoneInfo(plan.policy.timezone)
    cutoff = dt.datetime.combine(dt.date.fromisoformat(as_of) + dt.timedelta(days=1), dt.time(), tzinfo=tz).timestamp()
    now_wall = dt.datetime.now(tz).replace(tzinfo=None)
    found = discover.discover(inbox_dir, plan)
    engine = warehouse.make_engine(settings.warehouse_url)
    ready: list[discover.InboxFile] = []
    skipped: list[tuple[discover.InboxFile, str, str | None]] = []
    for f in found:
        if f.skip:
            skipped.append((f, f.skip, None))
            continue
        try:
            mtime = dt.datetime.fromtimestamp(os.lstat(f.fs_path()).st_mtime, tz).replace(tzinfo=None)
            received = (
                archive.received_time(mtime, now_wall, dt.date.fromisoformat(as_of)).replace(tzinfo=tz).timestamp()
            )
        except OSError as exc:
            skipped.append((f, "unreadable", f"{type(exc).__name__}: {exc.strerror or exc}"))
            continue
        if received < cutoff:
            ready.append(f)
        else:
            skipped.append(
                (f, "received_after_as_of", dt.datetime.fromtimestamp(received, tz).strftime("%Y-%m-%d %H:%M"))
            )
    with engine.begin() as conn:
        conn.execute(warehouse.intake_not_processed.delete())
    discover.record_not_processed(engine, skipped, dt.date.fromisoformat(as_of))
    engine.dispose()
    for f, code, detail in skipped:
        log.warning("not processed: %s: %s%s", f.relative_path, code, f" ({detail})" if detail else "")
    batches = discover.site_batches(ready, plan.policy.intake.task_bytes, plan.policy.intake.task_max_sites)
    log.info(
        "%d submission file(s) from %d site folder(s) under %s, in %d task(s); %d not processed",
        len(ready),
        len({f.site_code for f in ready}),
        inbox_dir,
        len(batches),
        len(skipped),
    )
    return [
        {"site_code": batch_label(batch), "batch": position, "files": [f.to_dict() for f in batch], "as_of": as_of}
        for position, batch in enumerate(sorted(batches, key=batch_label))
    ]


def batch_files(handed_out: list[dict[str, Any]] | None, position: int, site_code: str) -> list[dict[str, Any]]:
    """The files of batch ``position`` of what ``discover`` handed out, checked against the label the
    mapped task was given (a mismatch means the two were not of the same run)."""
    batches = handed_out or []
    if not 0 <= position < len(batches) or batches[position]["site_code"] != site_code:
        raise RuntimeError(
            f"batch {position} ({site_code}) is not among the {len(batches)} batch(es) discover handed out"
        )
    return list(batches[position]["files"])


def batch_label(batch: list[discover.InboxFile]) -> str:
    """The site folders of a mapped task, as its map index shows them: ``S01`` or ``V01,V02,…``."""
    return ",".join(sorted({f.site_code or "(no site)" for f in batch}))


def ingest_site(site_code: str, files: list[dict[str, Any]], as_of: str) -> dict[str, Any]:
    """Ingest one site's files. A file that breaks is recorded as ``failed`` with the error and
    never touches the others; the task itself succeeds (only a lost database connection fails it,
    to be retried), and the intake's last task fails the run naming every failed file."""
    settings, plan = _context()
    runner = ingest.Intake(settings, plan, today=dt.date.fromisoformat(as_of))
    try:
        results = runner.ingest_many([discover.InboxFile(**item) for item in files])
    finally:
        runner.engine.dispose()
    for result in results:
        log.info("%s: %s", result["file"], {k: v for k, v in result.items() if k not in ("submission_id", "file")})
    statuses = [r["status"] for r in results]
    failed = [{"file": r["file"], "message": r.get("message")} for r in results if r["status"] == "failed"]
    for f in failed:
        log.error("failed: %s", f["message"])
    return {
        "site_code": site_code,
        "files": len(results),
        "failed_files": failed,
        **{s: statuses.count(s) for s in sorted(set(statuses))},
    }


class IntakeIncomplete(RuntimeError):
    """Files of this run could not be processed (deterministic: the run fails without retries, after
    everything else was published); the message lists them."""


def mapped_results(results: Any) -> list[Any]:
    """The return values a mapped task left (a task that failed for good leaves none, so position
    is not map index: match them by content). Read by index: iterating probes one past the end."""
    if results is None:
        return []
    return [results[i] for i in range(len(results))]


def intake_verdict(
    site_summaries: list[dict[str, Any] | None] | None,
    published: dict[str, Any] | None,
    batches: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The intake run's last word: what went in, and a failure naming every file that broke in
    processing and every site task that did not finish (``batches``: the tasks ``discover`` handed
    out; a task that failed for good left no summary and is named by its sites and files), raised
    after the good files were published so the evaluation runs for everyone else."""
    summaries = [s for s in (site_summaries or []) if s]
    finished = {s.get("site_code") for s in summaries}
    unfinished = [
        {"site_code": b["site_code"], "files": [f["relative_path"] for f in b["files"]]}
        for b in (batches or [])
        if b["site_code"] not in finished
    ]
    failed = [f for s in summaries for f in s.get("failed_files", [])]
    totals: dict[str, int] = {}
    for s in summaries:
        for key, value in s.items():
            if key not in ("site_code", "failed_files") and isinstance(value, int):
                totals[key] = totals.get(key, 0) + value
    verdict = {
        "sites": len(summaries),
        **totals,
        "failed_files": failed,
        "unfinished_tasks": [u["site_code"] for u in unfinished],
        "published": published is not None,
    }
    if failed or unfinished or published is None:
        lines = [f"  {f['message'] or f['file']}" for f in failed[:50]]
        more = f"\n  … and {len(failed) - 50} more (table submissions, status failed)" if len(failed) > 50 else ""
        tasks = [
            f"  {u['site_code']}: {len(u['files'])} file(s) not ingested, e.g. {', '.join(u['files'][:3])} "
            f"(the task failed after its retries: see its log; the files are taken again by the next run) / "
            f"该任务重试后仍失败，文件将在下次运行时重新处理"
            for u in unfinished
        ]
        raise IntakeIncomplete(
            f"{len(failed)} file(s) failed in processing and {len(unfinished)} site task(s) did not finish (the other "
            f"files were published{'' if published is not None else ' - NOT: publish did not finish'}); "
            f"处理失败的文件 {len(failed)} 个，未完成的站点任务 {len(unfinished)} 个:\n"
            + "\n".join(lines + tasks)
            + more
        )
    return verdict


def publish_staging() -> dict[str, Any]:
    settings, _ = _context()
    engine = warehouse.make_engine(settings.warehouse_url)
    summary: dict[str, Any] = publish.publish(engine)
    summary["data_docs"] = str(build_data_docs(settings))
    lost = publish.reconcile(engine)
    if lost:
        raise RuntimeError(f"rows do not reconcile (read != staged + quarantined) for: {lost}")
    return summary


def build_data_docs(settings: Settings) -> Path:
    """Suite pages and the Data Docs index (validation pages are written as files are validated)."""
    from yuhang_skills.intake import data_docs
    from yuhang_skills.intake.validate import runner_for

    data_docs.write_suite_pages(settings.data_docs_dir, runner_for(str(settings.expectations_dir)).suites)
    return data_docs.write_index(settings.data_docs_dir)


def _has_rows(engine: Any, table: str) -> bool:
    import sqlalchemy as sa

    if not sa.inspect(engine).has_table(table):
        return False
    with engine.connect() as conn:
        return conn.execute(sa.text(f"select 1 from {table} limit 1")).first() is not None


def require_staged_data(engine: Any) -> None:
    """Stop with "run yuhang_intake first" (in Chinese and English) while nothing was ingested."""
    if not _has_rows(engine, "submissions"):
        raise PrerequisiteMissing(
            "yuhang_intake",
            "数据仓库还没有数据（没有任何已接收的报送文件）",
            "no data yet (the warehouse has no submissions)",
        )


def require_indicators(engine: Any) -> None:
    """Stop with the DAG to run first while the indicator tables are missing or empty."""
    require_staged_data(engine)
    if not _has_rows(engine, "ind_site_year"):
        raise PrerequisiteMissing(
            "yuhang_indicators",
            "还没有年度指标（ind_site_year 为空或不存在）",
            "no indicators yet (ind_site_year is missing or empty)",
        )


def load_reference() -> dict[str, int]:
    """Reload the reference tables from the policy folder; returns row counts."""
    settings, plan = _context()
    return models.load_reference(warehouse.make_engine(settings.warehouse_url), plan)


def run_integrity_checks() -> dict[str, Any]:
    """Run the integrity checks over the staged data: findings and the rows they exclude."""
    from yuhang_skills.indicators import integrity

    settings, plan = _context()
    require_staged_data(warehouse.make_engine(settings.warehouse_url))
    results = integrity.run_checks(warehouse.make_engine(settings.warehouse_url), plan, SQL_DIR)
    return {
        r.name: {
            "severity": r.severity,
            "findings": r.findings,
            "excluded_rows": r.excluded_rows,
            "seconds": round(r.seconds, 2),
        }
        for r in results
    }


def build_models() -> dict[str, int]:
    """Rebuild the SQL models (indicators), leaving out what the integrity checks excluded."""
    settings, _ = _context()
    require_staged_data(warehouse.make_engine(settings.warehouse_url))
    return layers.build_models(warehouse.make_engine(settings.warehouse_url), SQL_DIR)


def run_evaluation(evaluation_year: int | None, as_of: str, provisional: bool = False) -> dict[str, Any]:
    """Score the evaluation year with the evaluators' rectification decisions (a missing file
    means none) and write it as a new run (runs.py): refused (EvaluationRefused) when the as-of date
    is before the evaluated period's data can be complete, unless ``provisional``."""
    from yuhang_skills.evaluation import runs

    settings, plan = _context()
    year = int(evaluation_year or plan.policy.evaluation_year)
    as_of_day = dt.date.fromisoformat(as_of)
    status = runs.check_as_of(plan, year, as_of_day, provisional)
    engine = warehouse.make_engine(settings.warehouse_url)
    require_indicators(engine)
    decisions = load_decisions(settings.rectifications_path, plan)
    log.info("%d rectification decision(s) from %s", len(decisions.by_key), settings.rectifications_path)
    result = evaluate(engine, plan, year, as_of_day, decisions)
    counts = write_evaluation(
        engine,
        result,
        settings.pii_key_is_demo,
        status=status,
        data_complete_on=runs.data_complete_on(plan, year),
        input_files={"policy": plan.policy.path, "sites": settings.sites_path, "contract": settings.contract_path},
        rectifications_sha256=decisions.sha256,
    )
    run_id = counts.pop("run_id")
    log.info("evaluation run %s (%s) written", run_id, status)
    return {**result.headline(), "run_id": run_id, "status": status, "tables": counts}


OUTPUT_KINDS = ("xlsx", "html", "docx", "pdf")


def run_output_path(output_dir: Path, year: int, run_id: str, suffix: str, edition: str = "") -> Path:
    return output_dir / f"evaluation_{year}_{run_id}{edition}.{suffix}"


def _write_once(path: Path, write: Any, run_created_at: dt.datetime | None = None) -> Path:
    """Write a run's file once, never replacing one: the file is written under a temporary name
    and linked into place only when complete, so a file under the run's name is always whole. A
    retry after a failure part-way through the run's files (outputs not yet recorded) keeps the
    files already there and writes the rest; a file older than the run (an earlier warehouse's
    run of the same id, in the same output folder) is refused, not taken as this run's."""
    if path.exists():
        written = dt.datetime.fromtimestamp(path.stat().st_mtime, ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
        if run_created_at is not None and written < run_created_at:
            raise FileExistsError(
                f"{path} was written {written:%Y-%m-%d %H:%M:%S}, before this run existed "
                f"({run_created_at:%Y-%m-%d %H:%M:%S}): it belongs to an earlier warehouse's run of the same id; "
                "move it out of the output folder (a run's files are never replaced)"
            )
        return path
    tmp = path.with_name(f".{path.name}.partial")
    tmp.unlink(missing_ok=True)
    try:
        write(tmp)
        os.link(tmp, path)  # fails, rather than replaces, if another writer got there first
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _refuse_written(engine: Any, run_id: str, kinds: Any) -> None:
    """A run's files are written once: once recorded in eval_runs.outputs they are never redone."""
    from yuhang_skills.evaluation import runs

    recorded = json.loads(runs.get_run(engine, run_id).get("outputs") or "{}")
    done = [k for k in kinds if k in recorded]
    if done:
        raise FileExistsError(
            f"{run_id}: {', '.join(recorded[k] for k in done)} already written; a run's "
            "outputs are written once and never replaced (run the evaluation again for a new run)"
        )


def _pointer_copy(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` atomically (the ``latest`` and ``final`` copies)."""
    import shutil

    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    tmp.replace(target)


def render_outputs(
    engine: Any, output_dir: Path, year: int, run_id: str, edition: str = "", plan: Plan | None = None
) -> dict[str, Path]:
    """The run's workbook, HTML report and official report (DOCX, and PDF when LibreOffice is
    installed), each written once under its run's name (``edition`` ``_signed``: the edition made
    when the run became final, with its signatures)."""
    from yuhang_skills.evaluation import report_docx, runs

    plan = plan or _context()[1]
    created = runs.get_run(engine, run_id)["created_at"]

    def once(path: Path, write: Any) -> Path:
        return _write_once(path, write, created)

    files = {
        "workbook": once(
            run_output_path(output_dir, year, run_id, "xlsx", edition),
            lambda p: write_workbook(engine, p, year, run_id),
        ),
        "report": once(
            run_output_path(output_dir, year, run_id, "html", edition),
            lambda p: write_html_report(engine, p, year, run_id),
        ),
        "official_docx": once(
            run_output_path(output_dir, year, run_id, "docx", edition),
            lambda p: report_docx.write_report_docx(engine, plan, p, year, run_id),
        ),
    }
    if report_docx.soffice() is None:
        log.warning(
            "LibreOffice (soffice) is not installed: the official report has no PDF (install "
            "libreoffice-writer; the Docker image and CI have it)"
        )
    else:
        files["official_pdf"] = once(
            run_output_path(output_dir, year, run_id, "pdf", edition),
            lambda p: report_docx.convert_to_pdf(files["official_docx"], p),
        )
    return files


def write_outputs(evaluation_year: int | None, run_id: str | None = None) -> dict[str, str]:
    """The run's files, named by run and written once; then the year's ``latest`` copies point at
    them."""
    from yuhang_skills.evaluation import runs

    settings, plan = _context()
    engine = warehouse.make_engine(settings.warehouse_url)
    year = int(evaluation_year or plan.policy.evaluation_year)
    run_id = run_id or runs.latest_run_id(engine, year)
    if run_id is None:
        raise PrerequisiteMissing("yuhang_evaluation", f"{year} 年还没有评价运行", f"no evaluation run for {year} yet")
    _refuse_written(engine, run_id, ("workbook", "report"))
    files = render_outputs(engine, settings.output_dir, year, run_id, plan=plan)
    for path in files.values():
        _pointer_copy(path, settings.output_dir / f"evaluation_{year}_latest{path.suffix}")
    runs.set_outputs(engine, run_id, {k: str(v) for k, v in files.items()})
    return {k: str(v) for k, v in files.items()}


def publish_final(run_id: str, use_airflow: bool = True) -> dict[str, str]:
    """For a run that became final: its signed edition (the same rows, now with the signatures
    and status final), written once as ``evaluation_<year>_<run>_signed.*``, and the year's
    ``evaluation_<year>_final.*`` copies of it."""
    from yuhang_skills.evaluation import runs

    settings, plan = _context(use_airflow)
    engine = warehouse.make_engine(settings.warehouse_url)
    run = runs.get_run(engine, run_id)
    if run["status"] != "final":
        raise runs.EvaluationRefused(f"{run_id} 不是正式评价", f"{run_id} is not the final run")
    year = int(run["evaluation_year"])
    _refuse_written(engine, run_id, ("workbook_signed", "report_signed"))
    files = render_outputs(engine, settings.output_dir, year, run_id, "_signed", plan=plan)
    copied: dict[str, str] = {}
    for kind, path in files.items():
        target = settings.output_dir / f"evaluation_{year}_final{path.suffix}"
        _pointer_copy(path, target)
        copied[kind] = str(path)
        copied[f"{kind}_final"] = str(target)
    made = {path.suffix for path in files.values()}
    for suffix in OUTPUT_KINDS:  # a final copy this edition has no file for belongs to the run replaced
        if f".{suffix}" not in made:
            (settings.output_dir / f"evaluation_{year}_final.{suffix}").unlink(missing_ok=True)
    runs.set_outputs(engine, run_id, {f"{k}_signed": str(v) for k, v in files.items()})
    return copied


def signed_edition_missing(engine: Any, run_id: str) -> bool:
    """The run is final but its signed edition was never recorded: the last signature (or the
    supersede) was committed and writing the edition then failed. Signing again publishes it."""
    from yuhang_skills.evaluation import runs

    try:
        run = runs.get_run(engine, run_id)
    except runs.EvaluationRefused:
        return False
    return run["status"] == "final" and "workbook_signed" not in json.loads(run.get("outputs") or "{}")


def sign_evaluation(run_id: str, role: str, name: str, comment: str | None, signed_by: str | None) -> dict[str, Any]:
    """The Airflow-native sign-off (DAG yuhang_evaluation_signoff): record the signature and,
    when it was the last one, publish the final edition."""
    from yuhang_skills.evaluation import runs

    settings, plan = _context()
    engine = warehouse.make_engine(settings.warehouse_url)
    if signed_edition_missing(engine, run_id):  # a retry after the last signature's edition failed
        return {
            "run_id": run_id,
            "role": role,
            "status": "final",
            "missing_roles": [],
            "superseded": None,
            "files": publish_final(run_id),
        }
    result = runs.sign(engine, run_id, role, name, comment, signed_by=signed_by, policy=plan.policy)
    files = publish_final(run_id) if result.became_final else {}
    return {
        "run_id": run_id,
        "role": role,
        "status": result.status,
        "missing_roles": result.missing_roles,
        "superseded": result.superseded,
        "files": files,
    }


def as_of_from_context(context: Any) -> str:
    """The as-of date of a task's run: the ``as_of`` param, else the run's logical date (or,
    for a manual run without one, its run-after time), in Asia/Shanghai."""
    params = context.get("params") or {}
    if params.get("as_of"):
        return as_of_date(params["as_of"]).isoformat()
    dag_run = context.get("dag_run")
    moment = context.get("logical_date") or getattr(dag_run, "run_after", None)
    return as_of_date(moment).isoformat()
