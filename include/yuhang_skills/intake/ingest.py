"""Ingest: each inbox file archived, parsed, validated with its kind's suite, and staged or quarantined.

Guarantees, each checked by tests:
- every file is copied into a content-addressed archive (sha256) before anything reads it,
  and recorded in ``submissions`` whatever happens to it;
- every data row of a file ends in exactly one place: ``raw_<kind>`` or ``quarantine``
  (rows read = rows staged + rows quarantined, recorded per file);
- ingesting the same file again changes nothing; a later file for the same site, period and
  kind supersedes the earlier one in the raw tables, both staying in the archive and the manifest;
- personal data never reaches a table in clear: ID numbers and names become keyed hashes, the
  birth date, sex and age are derived first, and quarantine shows masked values only.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from yuhang_skills.core import catalogue, warehouse
from yuhang_skills.core.policy import Plan
from yuhang_skills.core.settings import Settings
from yuhang_skills.intake import quarantine
from yuhang_skills.intake.archive import archive_copy, received_time
from yuhang_skills.intake.discover import InboxFile, record_not_processed
from yuhang_skills.intake.parse import FileRejected, ParsedFile, clean_text, read_submission
from yuhang_skills.intake.prepare import PREPARERS, period_bounds
from yuhang_skills.intake.publish import USABLE_STATUSES
from yuhang_skills.orchestration import operations

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    """A parsed file waiting for its kind's suite run."""

    item: InboxFile
    parsed: ParsedFile
    record: dict[str, Any]
    context: dict[str, Any]


# Small files of one suite run are written together, up to this many rows per statement (the rows
# being written are bounded by the larger of this and the largest file).
_WRITE_ROWS = 20_000


@dataclass
class _Judged:
    """A validated file, judged and ready to write."""

    pending: _Pending
    record: dict[str, Any]
    good: np.ndarray  # the file's rows that are staged
    first: int  # where the file's rows start in its suite run's frame
    emptied: dict[str, np.ndarray]  # invalid optional values left empty: column -> the file's rows
    validation: dict[str, Any]
    quarantine_rows: pd.DataFrame | None
    result: dict[str, Any]


def _replace_submissions(conn: sa.Connection, records: list[dict[str, Any]]) -> None:
    """Whatever an earlier attempt left of these submissions goes, and their manifest rows go in."""
    sids = [r["submission_id"] for r in records]
    for table in (
        *warehouse.RAW_TABLES.values(),
        warehouse.quarantine,
        warehouse.validation_runs,
        warehouse.submissions,
    ):
        for start in range(0, len(sids), 500):
            conn.execute(table.delete().where(table.c.submission_id.in_(sids[start : start + 500])))
    conn.execute(warehouse.submissions.insert(), records)


def _with_origin(stage: pd.DataFrame, submission_id: str, pending: _Pending, source_row: pd.Series) -> pd.DataFrame:
    """Staged rows with the submission, source row, site and period in front."""
    good = stage.index.to_numpy()
    stage = stage.reset_index(drop=True)
    stage.insert(0, "submission_id", submission_id)
    stage.insert(1, "source_row", source_row.to_numpy()[good])
    stage.insert(2, "site_code", pending.item.site_code)
    stage.insert(3, "period", pending.item.period)
    return stage


class Intake:
    """Ingests inbox files into the warehouse; one instance per task, one call per file."""

    def __init__(self, settings: Settings, plan: Plan, engine: sa.Engine | None = None, today: dt.date | None = None):
        self.settings = settings
        self.plan = plan
        self.engine = engine or warehouse.make_engine(settings.warehouse_url)
        self.today = today or warehouse.shanghai_now().date()
        self._copies: dict[str, tuple[Path, str, int, dt.datetime | None]] = {}  # path -> archived copy
        self.run_started = warehouse.shanghai_now()

    def ingest(self, item: InboxFile) -> dict[str, Any]:
        return self.ingest_many([item])[0]

    def ingest_many(self, items: list[InboxFile]) -> list[dict[str, Any]]:
        """Ingest files, validating a kind's files together in suite runs of up to the policy's
        ``intake.suite_run_rows`` rows (GX's fixed cost per run dominates small files) and writing
        each suite run's files in one transaction; each file is parsed and judged on its own, and
        an error in one file becomes that file's ``failed`` row without touching the others."""
        from zoneinfo import ZoneInfo

        # When this call first saw what it sees (to the microsecond, so two runs in one second differ)
        self.run_started = dt.datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
        results: list[dict[str, Any] | None] = [None] * len(items)
        pending: dict[str, list[tuple[int, _Pending]]] = {}
        pending_rows: dict[str, int] = {}
        limit = self.plan.policy.intake.suite_run_rows

        def run_suite(kind: str) -> None:
            batch = pending.pop(kind)
            pending_rows.pop(kind)
            for n, result in zip([n for n, _ in batch], self._validate_batch(kind, [p for _, p in batch]), strict=True):
                results[n] = result

        for n, item in enumerate(items):
            try:
                started = self._start(item)
            except Exception as exc:  # noqa: BLE001 - recorded as failed with the error
                if operations.is_transient(exc):
                    raise  # the database went away: the task is retried, nothing is recorded wrongly
                log.exception("%s could not be ingested", item.relative_path)
                started = self.record_failure(item, exc)
            if isinstance(started, _Pending):
                rows = len(started.parsed.frame)
                # A suite run holds its files' rows in memory: it takes files until the next would
                # pass the policy's limit, so a task's memory is bounded by the larger of that limit
                # and its largest file, not by its site folder.
                if item.kind in pending and pending_rows[item.kind] + rows > limit:
                    run_suite(item.kind)
                pending.setdefault(item.kind, []).append((n, started))
                pending_rows[item.kind] = pending_rows.get(item.kind, 0) + rows
            else:
                results[n] = started
        for kind in list(pending):
            run_suite(kind)
        return [r for r in results if r is not None]

    def _not_processed(self, item: InboxFile, code: str, detail: str | None = None) -> dict[str, Any]:
        record_not_processed(self.engine, [(item, code, detail)], self.today)
        en, _ = catalogue.text(f"intake.not_processed.{code}")
        return {
            "submission_id": None,
            "file": item.relative_path,
            "status": "not_processed",
            "reason": code,
            "message": f"{item.relative_path}: {en}" + (f" ({detail})" if detail else ""),
            "skipped": True,
        }

    def _arrive(
        self, item: InboxFile, sha: str, submission_id: str, mtime: dt.datetime | None
    ) -> tuple[dt.datetime, bool, str | None]:
        """Record the arrival of these bytes at this path unless they are what the path held when last
        seen; returns when the pipeline first saw the path hold them (this time), whether that is now,
        and the status of the submission if it is known already (one transaction for both)."""
        a = warehouse.submission_arrivals
        with self.engine.begin() as conn:
            known = conn.execute(
                sa.select(warehouse.submissions.c.status).where(warehouse.submissions.c.submission_id == submission_id)
            ).scalar()
            last = conn.execute(
                sa.select(a.c.sha256, a.c.first_seen_at)
                .where(a.c.relative_path == item.relative_path)
                .order_by(a.c.arrival_id.desc())
                .limit(1)
            ).first()
            if last is not None and last.sha256 == sha:
                return last.first_seen_at.replace(microsecond=0), False, known
            now = self.run_started  # one instant per run: files arriving together are ordered by their time
            conn.execute(
                a.insert(),
                [
                    {
                        "relative_path": item.relative_path,
                        "sha256": sha,
                        "submission_id": submission_id,
                        "first_seen_at": now,
                        "file_mtime": mtime,
                    }
                ],
            )
            return now.replace(microsecond=0), True, known

    def _start(self, item: InboxFile) -> dict[str, Any] | _Pending:
        if item.skip:
            return self._not_processed(item, item.skip)
        path = item.fs_path()
        try:
            mtime = self._wall_time(os.stat(path).st_mtime)
            archived, sha, size = archive_copy(path, self.settings.archive_dir, path.suffix)
        except OSError as exc:
            return self._not_processed(item, "unreadable", f"{type(exc).__name__}: {exc.strerror or exc}")
        submission_id = f"{sha}:{item.site_code or '-'}:{item.period or '-'}:{item.kind}"
        self._copies[item.path] = (archived, sha, size, mtime)
        first_seen, arrived_now, known = self._arrive(item, sha, submission_id, mtime)
        # Known bytes are skipped, unless they arrive again after other versions (a resend of v1
        # after v2): then they are read again from the archive to become current once more.
        if known is not None and known != "failed" and not (arrived_now and known in USABLE_STATUSES):
            return {"submission_id": submission_id, "file": item.relative_path, "status": known, "skipped": True}
        record, context = self._new_record(item, submission_id, first_seen)
        try:
            if item.problem:
                raise FileRejected(item.problem, item.problem_zh or item.problem, "file_location")
            if (
                item.period
                and item.kind in self.plan.policy.submissions
                and period_bounds(item.period, item.kind, self.plan.policy.submission_rule(item.kind).cadence)[0].date()
                > self.today
            ):
                raise FileRejected(
                    f"period {item.period} has not begun on {self.today}: check the folder name",
                    f"期间 {item.period} 在 {self.today} 尚未开始:请检查目录名",
                    "file_location",
                )
            parsed = read_submission(archived, self.plan.contract.kind(item.kind), self.plan.contract.inbox)
        except FileRejected as rejected:
            return self._reject(record, context, rejected)
        return _Pending(item, parsed, record, context)

    def _wall_time(self, timestamp: float) -> dt.datetime:
        from zoneinfo import ZoneInfo

        moment = dt.datetime.fromtimestamp(timestamp, tz=ZoneInfo(self.plan.policy.timezone))
        return moment.replace(tzinfo=None, microsecond=0)

    def _validate_batch(self, kind: str, batch: list[_Pending]) -> list[dict[str, Any]]:
        from yuhang_skills.intake.validate import expectation_parameters, runner_for

        runner = runner_for(str(self.settings.expectations_dir))
        try:
            rows = pd.concat([p.parsed.frame for p in batch], ignore_index=True)
            # Where each row came from, set once on the run's frame instead of on every file's frame
            sizes = [len(p.parsed.frame) for p in batch]
            periods = [
                period_bounds(p.item.period, kind, self.plan.policy.submission_rule(kind).cadence) for p in batch
            ]
            rows["_folder_site"] = np.repeat(np.array([p.item.site_code for p in batch], dtype=object), sizes)
            rows["_period_first"] = pd.Series([b[0] for b in periods]).repeat(sizes).to_numpy()
            rows["_period_last"] = pd.Series([b[1] for b in periods]).repeat(sizes).to_numpy()
            rows["file_key"] = np.repeat(np.arange(len(batch)), sizes)
            for column in self.plan.contract.kind(kind).columns:
                rows[column] = clean_text(rows[column])
            ctx = {
                "enums": self.plan.contract.enums,
                "policy": self.plan.policy,
                "today": self.today,
                "pii_key": self.settings.pii_key,
                "tolerance": self.plan.policy.intake.tolerance(kind),
            }
            checked, staged = PREPARERS[kind](rows, ctx)
            combined = checked.assign(file_key=rows["file_key"].to_numpy())
            outcome = runner.validate(kind, combined, expectation_parameters(self.plan))
        except Exception as exc:  # noqa: BLE001 - isolate the file that breaks the suite run
            if len(batch) > 1:
                return [r for p in batch for r in self._validate_batch(kind, [p])]
            log.exception("%s could not be validated", batch[0].item.relative_path)
            return [self.record_failure(batch[0].item, exc)]
        self._write_data_docs(kind, batch, outcome)
        offsets = np.cumsum([0] + [len(p.parsed.frame) for p in batch])
        failures = outcome.failures
        file_of = combined["file_key"].to_numpy()[failures["row_index"].to_numpy(dtype=np.int64)]
        # Each file's failures in their order: one stable sort instead of a mask per file.
        order = np.argsort(file_of, kind="stable")
        bounds = np.searchsorted(file_of[order], np.arange(len(batch) + 1))
        no_failures = failures.iloc[:0]
        results: list[dict[str, Any] | None] = []
        judged: list[tuple[int, _Judged]] = []
        for i, p in enumerate(batch):
            if bounds[i] == bounds[i + 1]:
                mine = no_failures
            else:
                mine = failures.iloc[order[bounds[i] : bounds[i + 1]]].copy()
                mine["row_index"] = mine["row_index"] - offsets[i]
            try:
                judged.append((len(results), self._judge(p, mine, outcome, staged, int(offsets[i]))))
                results.append(None)
            except Exception as exc:  # noqa: BLE001 - recorded as rejected with the error
                log.exception("%s could not be written", p.item.relative_path)
                results.append(self.record_failure(p.item, exc))
        for n, result in self._write_judged(kind, [j for _, j in judged], staged, rows["source_row"].to_numpy()):
            results[judged[n][0]] = result
        return [r for r in results if r is not None]

    def _write_judged(
        self, kind: str, judged: list[_Judged], staged: pd.DataFrame, source_rows: np.ndarray
    ) -> list[tuple[int, dict[str, Any]]]:
        """Write the judged files of one suite run in one transaction (a crash leaves all of them or
        none); when that fails for any reason but a lost connection, each file is written on its own,
        so one file that cannot be written is recorded as failed without touching the others."""
        if not judged:
            return []
        try:
            self._write_many(kind, judged, staged, source_rows)
            return [(n, j.result) for n, j in enumerate(judged)]
        except Exception as exc:  # noqa: BLE001 - retried file by file below
            if operations.is_transient(exc):
                raise
            if len(judged) == 1:
                log.exception("%s could not be written", judged[0].pending.item.relative_path)
                return [(0, self.record_failure(judged[0].pending.item, exc))]
        written = []
        for n, j in enumerate(judged):
            try:
                self._write_many(kind, [j], staged, source_rows)
                written.append((n, j.result))
            except Exception as exc:  # noqa: BLE001 - recorded as failed with the error
                if operations.is_transient(exc):
                    raise
                log.exception("%s could not be written", j.pending.item.relative_path)
                written.append((n, self.record_failure(j.pending.item, exc)))
        return written

    @staticmethod
    def _stage_of(j: _Judged, staged: pd.DataFrame) -> pd.DataFrame:
        """One file's staged rows, invalid optional values left empty, with where they came from in front."""
        mine = staged.iloc[j.first : j.first + len(j.good)].reset_index(drop=True)
        for column, rows_ in j.emptied.items():
            mine.loc[mine.index[rows_], column] = None
        return _with_origin(
            mine.loc[j.good], j.record["submission_id"], j.pending, j.pending.parsed.frame["source_row"]
        )

    def _write_many(self, kind: str, judged: list[_Judged], staged: pd.DataFrame, source_rows: np.ndarray) -> None:
        """One transaction for several files: each table's rows in few statements, in the files' order;
        the staged rows are made piece by piece as they are written, so no second copy of them all."""

        def run_stage(run: list[_Judged]) -> pd.DataFrame:
            # Files staged as the suite run prepared them (no value emptied): one slice of the run.
            take = np.zeros(len(staged), dtype=bool)
            for j in run:
                take[j.first : j.first + len(j.good)] = j.good
            stage = staged.loc[take]
            counts = [int(j.good.sum()) for j in run]
            stage.insert(0, "submission_id", np.repeat([j.record["submission_id"] for j in run], counts))
            stage.insert(1, "source_row", source_rows[take])
            stage.insert(2, "site_code", np.repeat(np.array([j.pending.item.site_code for j in run], object), counts))
            stage.insert(3, "period", np.repeat(np.array([j.pending.item.period for j in run], object), counts))
            return stage

        def pieces() -> Iterator[pd.DataFrame]:
            run: list[_Judged] = []
            for j in judged:
                if j.emptied:
                    if run:
                        yield run_stage(run)
                        run = []
                    yield self._stage_of(j, staged)
                    continue
                if run and sum(len(r.good) for r in run) + len(j.good) > _WRITE_ROWS:
                    yield run_stage(run)
                    run = []
                run.append(j)
            if run:
                yield run_stage(run)

        with self.engine.begin() as conn:
            _replace_submissions(conn, [j.record for j in judged])
            for piece in pieces():
                warehouse.bulk_insert(conn, warehouse.RAW_TABLES[kind], piece)
            quarantined = [j.quarantine_rows for j in judged if j.quarantine_rows is not None]
            warehouse.bulk_insert(conn, warehouse.quarantine, [q for q in quarantined if len(q)])
            conn.execute(warehouse.validation_runs.insert(), [j.validation for j in judged])

    def record_failure(self, item: InboxFile, exc: Exception) -> dict[str, Any]:
        """Record a file whose processing broke unexpectedly as ``failed``, with the error (the
        next run tries it again); when even that cannot be written, list it as not processed."""
        first_line = (str(exc).splitlines() or [""])[0]
        detail = operations.mask_personal_numbers(f"{type(exc).__name__}: {first_line}")[:300]
        try:
            if item.path not in self._copies:
                path = item.fs_path()
                self._copies[item.path] = (
                    *archive_copy(path, self.settings.archive_dir, path.suffix),
                    self._wall_time(os.stat(path).st_mtime),
                )
            _, sha, _, _ = self._copies[item.path]
            submission_id = f"{sha}:{item.site_code or '-'}:{item.period or '-'}:{item.kind}"
            record, context = self._new_record(item, submission_id, warehouse.shanghai_now())
            return self._reject(
                record,
                context,
                FileRejected(
                    f"processing failed ({detail}); the data team is alerted and it is retried on the next run",
                    f"处理失败({detail}),已通知数据组,下次运行将重试",
                    "file_processed",
                ),
                status="failed",
            )
        except Exception as again:  # noqa: BLE001 - the last resort: the file is still listed
            if operations.is_transient(again):
                raise
            log.exception("%s could not be recorded as failed", item.relative_path)
            result = self._not_processed(item, "processing_failed", detail)
            result["status"] = "failed"
            return result

    def _new_record(self, item: InboxFile, submission_id: str, first_seen: dt.datetime) -> tuple[dict, dict]:
        archived, sha, size, mtime = self._copies[item.path]
        received = received_time(mtime, first_seen, self.today)
        record: dict[str, Any] = {
            "submission_id": submission_id,
            "sha256": sha,
            "site_code": item.site_code or "-",
            "period": item.period or "-",
            "kind": item.kind,
            "original_name": item.relative_path,
            "archive_path": str(archived),
            "size_bytes": size,
            "received_at": received,
            "ingested_at": warehouse.shanghai_now(),
            "version": None,
            "is_current": False,
            "encoding": None,
            "header_row": None,
        }
        context = {
            "sha256": sha,
            "source_file": item.relative_path,
            "site_code": item.site_code,
            "period": item.period,
            "kind": item.kind,
            "submission_id": submission_id,
        }
        return record, context

    def _reject(
        self, record: dict[str, Any], context: dict[str, Any], rejected: FileRejected, status: str = "rejected"
    ) -> dict[str, Any]:
        name = record["original_name"]
        record.update(
            status=status, rows_read=0, rows_staged=0, rows_quarantined=0, message=f"{name}: {rejected.reason_en}"
        )
        self._write_rejected(record, quarantine.file_reason(context, name, rejected))
        return {
            "submission_id": record["submission_id"],
            "file": name,
            "status": status,
            "message": record["message"],
            "skipped": False,
        }

    def _write_data_docs(self, kind: str, batch: list[_Pending], outcome: Any) -> None:
        """Data Docs are a view for people: failing to render one never stops the intake."""
        from yuhang_skills.intake import data_docs

        # One page per site: the suite ran over several sites' files, each page shows its site's rows only.
        offsets = np.cumsum([0] + [len(p.parsed.frame) for p in batch])
        by_site: dict[str, list[int]] = {}
        for i, p in enumerate(batch):
            by_site.setdefault(p.item.site_code, []).append(i)
        for site, members in by_site.items():
            rows = set(itertools.chain.from_iterable(range(offsets[i], offsets[i + 1]) for i in members))
            try:
                data_docs.write_validation_page(
                    self.settings.data_docs_dir,
                    kind,
                    site,
                    [batch[i].record["sha256"] for i in members],
                    data_docs.result_for_rows(outcome.result, rows),
                )
            except Exception:  # noqa: BLE001
                log.warning("Data Docs page for %s/%s could not be written", kind, site, exc_info=True)

    def _judge(
        self, pending: _Pending, failures: pd.DataFrame, outcome: Any, staged: pd.DataFrame, first: int
    ) -> _Judged:
        """Judge one file from its rows' failures: its status, quarantine rows, manifest and
        validation records; ``staged`` holds the suite run's staged rows, this file's from ``first``."""
        item, parsed, record = pending.item, pending.parsed, pending.record
        frame = parsed.frame
        n_rows = len(frame)
        failed_rows = np.zeros(n_rows, dtype=bool)
        emptied: dict[str, np.ndarray] = {}
        site_mismatch = False
        warnings_ = failures.iloc[:0]
        quarantine_rows = None
        if len(failures):
            columns = self.plan.contract.kind(item.kind).columns
            warning_columns = {c for c, spec in columns.items() if spec.invalid == "warning"}
            failures = failures.assign(
                severity=np.where(failures["column_name"].isin(warning_columns), "warning", "error")
            )
            errors = failures[failures["severity"] == "error"]
            warnings_ = failures[failures["severity"] == "warning"]
            failed_rows[errors["row_index"].to_numpy(dtype=np.int64)] = True
            # A bad optional value: the row still counts, the value is not staged (its reason is kept).
            for column, idx in warnings_.groupby("column_name").indices.items():
                if column in staged:
                    emptied[str(column)] = warnings_["row_index"].to_numpy(dtype=np.int64)[idx]
            site_mismatch = bool(errors["expectation"].str.endswith("(site_code_matches_folder)").any())
            if site_mismatch:
                # The folder says one site and the rows another: nothing in the file can be trusted.
                failed_rows[:] = True
            quarantine_rows = quarantine.row_reasons(frame, failures, failed_rows, site_mismatch, pending.context)
        if site_mismatch:
            status = "rejected"
        elif failed_rows.all() and n_rows:
            status = "no_rows_accepted"
        elif failed_rows.any():
            status = "partially_accepted"
        else:
            status = "accepted"
        good = ~failed_rows
        rows_quarantined = int(failed_rows.sum())
        message = None
        if parsed.unknown_columns:
            message = f"ignored columns not in the contract: {', '.join(parsed.unknown_columns)}"
        if status == "no_rows_accepted":
            message = (
                f"{item.relative_path}: no row accepted, every one of the {n_rows} row(s) has an error "
                f"(the reasons are listed per row); correct them and send the file again"
            )
        if len(warnings_):
            note = (
                f"{warnings_['row_index'].nunique()} row(s) with an invalid optional value: the value was left "
                f"empty and the row counted (severity warning)"
            )
            message = f"{message}; {note}" if message else note
        if site_mismatch:
            message = f"{item.relative_path}: site_code column differs from site folder {item.site_code}; file rejected"
        record.update(
            status=status,
            rows_read=n_rows,
            rows_staged=n_rows - rows_quarantined,
            rows_quarantined=rows_quarantined,
            encoding=parsed.encoding,
            header_row=parsed.header_row,
            message=message,
        )
        counts: Any = failures["expectation"].value_counts() if len(failures) else {}
        validation = {
            "submission_id": record["submission_id"],
            "suite": outcome.suite,
            "expectations": outcome.expectations,
            "failed_expectations": len(counts),
            "success": not len(counts),
            "evaluated_rows": n_rows,
            "run_at": warehouse.shanghai_now(),
            "results_json": json.dumps(
                {"unexpected_rows_by_expectation": {k: int(v) for k, v in counts.items()}}, ensure_ascii=False
            ),
        }
        result = {
            "submission_id": record["submission_id"],
            "file": item.relative_path,
            "status": status,
            "rows_read": n_rows,
            "rows_staged": record["rows_staged"],
            "rows_quarantined": rows_quarantined,
            "message": message,
            "skipped": False,
        }
        return _Judged(pending, record, good, first, emptied, validation, quarantine_rows, result)

    def _write_rejected(self, record: dict[str, Any], quarantine_rows: pd.DataFrame) -> None:
        """A file refused as a whole: its manifest row and its reason, in one transaction."""
        with self.engine.begin() as conn:
            _replace_submissions(conn, [record])
            if len(quarantine_rows):
                warehouse.bulk_insert(conn, warehouse.quarantine, quarantine_rows)
