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
    staged: pd.DataFrame | None = None


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
        """Ingest files, validating all files of one kind in one suite run (GX's fixed cost per
        run dominates small files); each file is still parsed, judged and written on its own, and
        an error in one file becomes that file's ``failed`` row without touching the others."""
        from zoneinfo import ZoneInfo

        # When this call first saw what it sees (to the microsecond, so two runs in one second differ)
        self.run_started = dt.datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
        results: list[dict[str, Any] | None] = [None] * len(items)
        pending: dict[str, list[tuple[int, _Pending]]] = {}
        for n, item in enumerate(items):
            try:
                started = self._start(item)
            except Exception as exc:  # noqa: BLE001 - recorded as failed with the error
                if operations.is_transient(exc):
                    raise  # the database went away: the task is retried, nothing is recorded wrongly
                log.exception("%s could not be ingested", item.relative_path)
                started = self.record_failure(item, exc)
            if isinstance(started, _Pending):
                pending.setdefault(item.kind, []).append((n, started))
            else:
                results[n] = started
        for kind, batch in pending.items():
            for n, result in zip([n for n, _ in batch], self._validate_batch(kind, [p for _, p in batch]), strict=True):
                results[n] = result
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
    ) -> tuple[dt.datetime, bool]:
        """Record the arrival of these bytes at this path unless they are what the path held when last
        seen; returns when the pipeline first saw the path hold them (this time), and whether that is now."""
        a = warehouse.submission_arrivals
        with self.engine.begin() as conn:
            last = conn.execute(
                sa.select(a.c.sha256, a.c.first_seen_at)
                .where(a.c.relative_path == item.relative_path)
                .order_by(a.c.arrival_id.desc())
                .limit(1)
            ).first()
            if last is not None and last.sha256 == sha:
                return last.first_seen_at.replace(microsecond=0), False
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
            return now.replace(microsecond=0), True

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
        first_seen, arrived_now = self._arrive(item, sha, submission_id, mtime)
        with self.engine.connect() as conn:
            known = conn.execute(
                sa.select(warehouse.submissions.c.status).where(warehouse.submissions.c.submission_id == submission_id)
            ).scalar()
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
        first, last = period_bounds(item.period, item.kind, self.plan.policy.submission_rule(item.kind).cadence)
        parsed.frame = parsed.frame.assign(_folder_site=item.site_code, _period_first=first, _period_last=last)
        return _Pending(item, parsed, record, context)

    def _wall_time(self, timestamp: float) -> dt.datetime:
        from zoneinfo import ZoneInfo

        moment = dt.datetime.fromtimestamp(timestamp, tz=ZoneInfo(self.plan.policy.timezone))
        return moment.replace(tzinfo=None, microsecond=0)

    def _validate_batch(self, kind: str, batch: list[_Pending]) -> list[dict[str, Any]]:
        from yuhang_skills.intake.validate import expectation_parameters, runner_for

        runner = runner_for(str(self.settings.expectations_dir))
        try:
            rows = pd.concat([p.parsed.frame.assign(file_key=i) for i, p in enumerate(batch)], ignore_index=True)
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
        results = []
        for i, p in enumerate(batch):
            mine = failures[file_of == i].copy()
            mine["row_index"] = mine["row_index"] - offsets[i]
            p.staged = staged.iloc[offsets[i] : offsets[i + 1]].reset_index(drop=True)
            try:
                results.append(self._finish(p, mine, outcome))
            except Exception as exc:  # noqa: BLE001 - recorded as rejected with the error
                log.exception("%s could not be written", p.item.relative_path)
                results.append(self.record_failure(p.item, exc))
        return results

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
        self._write(record, None, None, quarantine.file_reason(context, name, rejected), record["kind"])
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

    def _finish(self, pending: _Pending, failures: pd.DataFrame, outcome: Any) -> dict[str, Any]:
        """Judge one file from its rows' failures and write it: staging, quarantine, manifest."""
        item, parsed, record, context, staged = (
            pending.item,
            pending.parsed,
            pending.record,
            pending.context,
            pending.staged,
        )
        frame = parsed.frame
        if staged is None:
            raise RuntimeError(f"{item.relative_path} reached judging without its staged rows")
        columns = self.plan.contract.kind(item.kind).columns
        warning_columns = {c for c, spec in columns.items() if spec.invalid == "warning"}
        failures = failures.assign(severity=np.where(failures["column_name"].isin(warning_columns), "warning", "error"))
        errors = failures[failures["severity"] == "error"]
        warnings_ = failures[failures["severity"] == "warning"]
        failed_rows = np.zeros(len(frame), dtype=bool)
        failed_rows[errors["row_index"].to_numpy(dtype=np.int64)] = True
        # A bad optional value: the row still counts, the value is not staged (its reason is kept).
        for column, idx in warnings_.groupby("column_name").indices.items():
            if column in staged:
                rows_ = warnings_["row_index"].to_numpy(dtype=np.int64)[idx]
                staged.loc[staged.index[rows_], column] = None
        site_mismatch = bool(errors["expectation"].str.endswith("(site_code_matches_folder)").any())
        if site_mismatch:
            # The folder says one site and the rows another: nothing in the file can be trusted.
            failed_rows[:] = True
            status = "rejected"
        elif failed_rows.all() and len(frame):
            status = "no_rows_accepted"
        elif failed_rows.any():
            status = "partially_accepted"
        else:
            status = "accepted"
        quarantine_rows = quarantine.row_reasons(frame, failures, failed_rows, site_mismatch, context)
        good = ~failed_rows
        stage = staged.loc[good].copy()
        stage.insert(0, "submission_id", record["submission_id"])
        stage.insert(1, "source_row", frame.loc[good, "source_row"].to_numpy())
        stage.insert(2, "site_code", item.site_code)
        stage.insert(3, "period", item.period)
        rows_quarantined = int(failed_rows.sum())
        message = None
        if parsed.unknown_columns:
            message = f"ignored columns not in the contract: {', '.join(parsed.unknown_columns)}"
        if status == "no_rows_accepted":
            message = (
                f"{item.relative_path}: no row accepted, every one of the {len(frame)} row(s) has an error "
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
            rows_read=len(frame),
            rows_staged=int(good.sum()),
            rows_quarantined=rows_quarantined,
            encoding=parsed.encoding,
            header_row=parsed.header_row,
            message=message,
        )
        counts = failures["expectation"].value_counts()
        validation = {
            "submission_id": record["submission_id"],
            "suite": outcome.suite,
            "expectations": outcome.expectations,
            "failed_expectations": int(counts.size),
            "success": bool(counts.empty),
            "evaluated_rows": len(frame),
            "run_at": warehouse.shanghai_now(),
            "results_json": json.dumps(
                {"unexpected_rows_by_expectation": {k: int(v) for k, v in counts.items()}}, ensure_ascii=False
            ),
        }
        self._write(record, stage, validation, quarantine_rows, item.kind)
        return {
            "submission_id": record["submission_id"],
            "file": item.relative_path,
            "status": status,
            "rows_read": len(frame),
            "rows_staged": record["rows_staged"],
            "rows_quarantined": rows_quarantined,
            "message": message,
            "skipped": False,
        }

    def _write(
        self,
        record: dict[str, Any],
        stage: pd.DataFrame | None,
        validation: dict[str, Any] | None,
        quarantine_rows: pd.DataFrame | None,
        kind: str,
    ) -> None:
        """One transaction per file: a crash leaves either all of it or none of it."""
        sid = record["submission_id"]
        with self.engine.begin() as conn:
            for table in (
                *warehouse.RAW_TABLES.values(),
                warehouse.quarantine,
                warehouse.validation_runs,
                warehouse.submissions,
            ):
                conn.execute(table.delete().where(table.c.submission_id == sid))
            conn.execute(warehouse.submissions.insert(), [record])
            if stage is not None and len(stage):
                warehouse.bulk_insert(conn, warehouse.RAW_TABLES[kind], stage)
            if quarantine_rows is not None and len(quarantine_rows):
                warehouse.bulk_insert(conn, warehouse.quarantine, quarantine_rows)
            if validation is not None:
                conn.execute(warehouse.validation_runs.insert(), [validation])
