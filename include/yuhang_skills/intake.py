"""Intake: find submissions in the inbox, archive them, parse, validate, stage or quarantine.

Guarantees, each checked by tests:
- every file is copied into a content-addressed archive (sha256) before anything reads it,
  and recorded in ``submissions`` whatever happens to it;
- every data row of a file ends in exactly one place: ``stg_<kind>`` or ``quarantine``
  (rows read = rows staged + rows quarantined, recorded per file);
- ingesting the same file again changes nothing; a later file for the same site, period and
  kind supersedes the earlier one in staging, both staying in the archive and the manifest;
- personal data never reaches a table in clear: ID numbers and names become keyed hashes, the
  birth date, sex and age are derived first, and quarantine shows masked values only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from . import identity, warehouse
from .parsing import (FileRejected, ParsedFile, clean_text, number_text, on_distinct, read_submission, to_codes,
                      to_dates, to_fen, to_numbers)
from .policy import Plan
from .settings import Settings

log = logging.getLogger(__name__)

_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class InboxFile:
    """One file found under the inbox, with what its place says about it."""

    path: str
    relative_path: str
    site_code: str
    period: str
    kind: str
    problem: str | None = None  # set when the place or name breaks the contract

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Pending:
    """A parsed file waiting for its kind's suite run."""

    item: InboxFile
    parsed: ParsedFile
    record: dict[str, Any]
    context: dict[str, Any]
    staged: pd.DataFrame | None = None


def discover(inbox: Path, plan: Plan) -> list[InboxFile]:
    """Every file under ``inbox``, sorted, each with its site, period and kind or its problem."""
    kinds = plan.contract["kinds"]
    extensions = {f".{e}" for e in plan.contract["inbox"]["extensions"]}
    found: list[InboxFile] = []
    for path in sorted(p for p in inbox.rglob("*") if p.is_file()):
        rel = path.relative_to(inbox)
        if any(part.startswith(".") for part in rel.parts) or path.name.startswith("~$"):
            continue  # hidden files and Office lock files are not submissions
        parts = rel.parts
        period = parts[0] if len(parts) == 3 else ""
        site = parts[1].upper() if len(parts) == 3 else ""
        stem = path.stem.split("_")[0].split(" ")[0].split("(")[0].lower()
        problem = None
        if len(parts) != 3:
            problem = "file is not at <YYYY-MM>/<site code>/<kind>.<csv|xlsx>"
        elif not _PERIOD.match(period):
            problem = f"period folder {period!r} is not YYYY-MM"
        elif site not in plan.sites_by_code:
            problem = f"site folder {parts[1]!r} is not a registered site code"
        elif path.suffix.lower() not in extensions:
            problem = f"file type {path.suffix!r} is not one of {sorted(extensions)}"
        elif stem not in kinds:
            problem = f"file name {path.name!r} does not start with a submission kind ({', '.join(kinds)})"
        # Only a registered site code and a YYYY-MM period are recorded as such; any other folder
        # name stays visible in relative_path (and the reason) but never in a key column.
        found.append(InboxFile(str(path), str(rel), site if site in plan.sites_by_code else "",
                               period if _PERIOD.match(period) else "", stem if stem in kinds else "unknown", problem))
    return found


def site_batches(files: list[InboxFile], task_bytes: int, task_max_sites: int) -> list[list[InboxFile]]:
    """Files grouped per site folder, small folders packed together (largest first) up to
    ``task_bytes`` and ``task_max_sites``; a folder is never split across batches."""
    by_site: dict[str, list[InboxFile]] = {}
    for f in files:
        by_site.setdefault(f.site_code, []).append(f)
    sized = sorted(((sum(Path(f.path).stat().st_size for f in group), site, group) for site, group in by_site.items()),
                   key=lambda t: (-t[0], t[1]))
    batches: list[tuple[int, list[str], list[InboxFile]]] = []
    for size, site, group in sized:
        for n, (total, sites, members) in enumerate(batches):
            if total + size <= task_bytes and len(sites) < task_max_sites:
                batches[n] = (total + size, [*sites, site], [*members, *group])
                break
        else:
            batches.append((size, [site], list(group)))
    return [members for _, _, members in batches]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def archive(path: Path, sha: str, archive_dir: Path) -> Path:
    """Copy into the content-addressed archive; an existing copy is never rewritten."""
    target = archive_dir / sha[:2] / f"{sha}{path.suffix.lower()}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".part")
        shutil.copyfile(path, tmp)
        tmp.replace(target)
        target.chmod(0o444)
    return target


def period_bounds(period: str, kind: str, cadence: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day the data of a submission may describe."""
    month = pd.Period(period, freq="M")
    if cadence == "quarterly":
        first = (month - 2).start_time
    elif cadence == "yearly":
        first = pd.Period(f"{month.year}-01", freq="M").start_time
        month = pd.Period(f"{month.year}-12", freq="M")
    else:
        first = month.start_time
    return first.normalize(), month.end_time.normalize()


# Row preparation, one function per kind, over the rows of one or many files of that kind.
# Each row carries where it came from: ``_folder_site``, ``_period_first``, ``_period_last``.
def _site_matches(frame: pd.DataFrame) -> pd.Series:
    site = frame["site_code"].astype("string").str.upper()
    return (site.isna() | (site == frame["_folder_site"])).astype(bool)


def _within(dates: pd.Series, frame: pd.DataFrame, tolerance_days: int) -> pd.Series:
    tol = pd.Timedelta(days=tolerance_days)
    return (dates.isna() | ((dates >= frame["_period_first"] - tol) & (dates <= frame["_period_last"] + tol))).astype(bool)


def _distinct_number(values: pd.Series) -> pd.Series:
    """Each value's number among the distinct values (float, NaN where missing)."""
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    return pd.Series(np.where(codes < 0, np.nan, codes), index=values.index)


def _prepare_roster(frame, ctx) -> tuple[pd.DataFrame, pd.DataFrame]:
    enums = ctx["enums"]
    ids = identity.parse_ids(frame["id_number"], reference_date=ctx["today"])
    fmt = ids["format_ok"].astype(bool)
    checksum = ids["checksum_ok"].astype(bool) | ~fmt
    birth_ok = ids["birth_date_ok"].astype(bool) | ~(fmt & checksum)
    province = ids["province_ok"].astype(bool) | ~(fmt & checksum)
    id_valid = ids["valid"].astype(bool)
    start, _ = to_dates(frame["start_date"])
    end, _ = to_dates(frame["end_date"])
    hours, _ = to_numbers(frame["hours"])
    birth, sex = ids["birth_date"].where(id_valid), ids["sex"].where(id_valid)

    def working_age_on(day: pd.Series) -> pd.DataFrame:
        return identity.working_age_status(birth, sex, day, female_base=ctx["policy"].female_retirement_base,
                                           minimum_age_years=ctx["policy"].minimum_working_age)

    age = working_age_on(start)
    in_age = age["in_working_age"].astype(bool)
    grace = pd.Timedelta(days=int(ctx["policy"].intake.get("working_age_grace_days", 0)))
    if grace:  # within the grace of a limit: staged, and reported by the outside_working_age check
        in_age |= working_age_on(start - grace)["in_working_age"].astype(bool)
        in_age |= working_age_on(start + grace)["in_working_age"].astype(bool)
    in_age = in_age | ~id_valid | start.isna()
    assessed = to_codes(frame["assessed"], enums["bool"])
    passed = to_codes(frame["passed"], enums["pass_result"])
    # People attend several classes and names repeat: hash each distinct value once.
    person_key = on_distinct(ids["id_number"], lambda v: identity.hmac_hex(v, ctx["pii_key"], kind="id"))
    name_key = on_distinct(frame["name"], lambda v: identity.hmac_hex(v, ctx["pii_key"], kind="name"))
    checked = pd.DataFrame(
        {
            "site_code_matches_folder": _site_matches(frame),
            "class_id": frame["class_id"],
            "course": frame["course"],
            "occupation": frame["occupation"],
            "certificate_no": frame["certificate_no"],
            "start_date": start,
            "end_date": end,
            "start_in_period": _within(start, frame, ctx["tolerance"]),
            "end_in_period": _within(end, frame, ctx["tolerance"]),
            "hours": hours,
            # The suite only asks "present?" and "twice in one class?" of names and IDs: it gets each
            # value's number among the batch's distinct values, which are cheap to compare and hash.
            "name_number": _distinct_number(name_key),
            "id_format_ok": fmt,
            "id_checksum_ok": checksum,
            "id_birth_date_ok": birth_ok,
            "id_province_ok": province,
            "in_working_age": in_age,
            "person_number": _distinct_number(person_key),
            "level": to_codes(frame["level"], enums["level"]),
            "industry": to_codes(frame["industry"], enums["industry"]),
            "person_group": to_codes(frame["group"], enums["group"]),
            "assessed": assessed,
            "low_income_household": to_codes(frame["low_income_household"], enums["bool"]),
            "passed": passed,
            "passed_consistent": ~((assessed == "false") & passed.notna()) & ~((assessed == "true") & passed.isna()),
            "satisfaction": to_codes(frame["satisfaction"], enums["rating"]),
        }
    )
    staged = pd.DataFrame(
        {
            "class_id": checked["class_id"],
            "course": checked["course"],
            "occupation": checked["occupation"],
            "level": checked["level"],
            "industry": checked["industry"],
            "start_date": start.dt.date,
            "end_date": end.dt.date,
            "hours": hours.round(2),
            "person_key": person_key,
            "name_key": name_key,
            "birth_date": ids["birth_date"].dt.date,
            "sex": ids["sex"],
            "age_on_start": age["age_years"],
            "person_group": checked["person_group"],
            "low_income_household": checked["low_income_household"].map({"true": True, "false": False}),
            "assessed": assessed.map({"true": True, "false": False}),
            "passed": passed.map({"passed": True, "failed": False}),
            "certificate_no": frame["certificate_no"],
            "satisfaction": checked["satisfaction"],
        }
    )
    return checked, staged


def _prepare_finance(frame, ctx) -> tuple[pd.DataFrame, pd.DataFrame]:
    enums = ctx["enums"]
    pay_date, _ = to_dates(frame["pay_date"])
    amount_text = number_text(frame["amount"])
    fen = to_fen(frame["amount"])
    checked = pd.DataFrame(
        {
            "site_code_matches_folder": _site_matches(frame),
            "voucher_no": frame["voucher_no"],
            "invoice_no": frame["invoice_no"],
            "pay_date": pay_date,
            "dates_in_period": _within(pay_date, frame, ctx["tolerance"]),
            "amount_text": amount_text,
            "amount_fen": fen.astype("float64"),
            "fund_source": to_codes(frame["fund_source"], enums["fund_source"]),
            "category": to_codes(frame["category"], enums["category"]),
            "payee": frame["payee"],
        }
    )
    staged = pd.DataFrame(
        {
            "voucher_no": frame["voucher_no"],
            "pay_date": pay_date.dt.date,
            "amount_fen": fen,
            "fund_source": checked["fund_source"],
            "category": checked["category"],
            "payee": frame["payee"],
            "invoice_no": frame["invoice_no"],
            "description": frame["description"],
        }
    )
    return checked, staged


def _prepare_survey(frame, ctx) -> tuple[pd.DataFrame, pd.DataFrame]:
    enums = ctx["enums"]
    survey_date, _ = to_dates(frame["survey_date"])
    checked = pd.DataFrame(
        {
            "site_code_matches_folder": _site_matches(frame),
            "respondent_type": to_codes(frame["respondent_type"], enums["respondent_type"]),
            "survey_date": survey_date,
            "dates_in_period": _within(survey_date, frame, ctx["tolerance"]),
            "rating": to_codes(frame["rating"], enums["rating"]),
        }
    )
    staged = pd.DataFrame(
        {"respondent_type": checked["respondent_type"], "survey_date": survey_date.dt.date, "rating": checked["rating"]}
    )
    return checked, staged


def _whole_numbers(s: pd.Series) -> pd.Series:
    values, _ = to_numbers(s)
    return values.where(values == values.round(0))


def _prepare_outcomes(frame, ctx) -> tuple[pd.DataFrame, pd.DataFrame]:
    year = _whole_numbers(frame["year"])
    gain_text = number_text(frame["avg_income_gain"])
    checked = pd.DataFrame(
        {
            "site_code_matches_folder": _site_matches(frame),
            "year": year,
            "year_matches_period": year.isna() | (year == frame["_period_first"].dt.year),
            "low_income_households": _whole_numbers(frame["low_income_households"]),
            "households_with_skill": _whole_numbers(frame["households_with_skill"]),
            "trainees": _whole_numbers(frame["trainees"]),
            "avg_income_gain_text": gain_text,
        }
    )
    staged = pd.DataFrame(
        {
            "year": year.astype("Int64"),
            "low_income_households": checked["low_income_households"].astype("Int64"),
            "households_with_skill": checked["households_with_skill"].astype("Int64"),
            "trainees": checked["trainees"].astype("Int64"),
            "avg_income_gain_fen": to_fen(frame["avg_income_gain"]),
        }
    )
    return checked, staged


PREPARERS = {"roster": _prepare_roster, "finance": _prepare_finance, "survey": _prepare_survey, "outcomes": _prepare_outcomes}
PII_COLUMNS = {"id_number": identity.mask_id, "name": identity.mask_name}


def expectation_parameters(plan: Plan) -> dict[str, Any]:
    enums = plan.contract["enums"]
    params = {f"{name}_codes": sorted(str(c) for c in codes) for name, codes in enums.items()}
    params["max_class_hours"] = float(plan.policy.intake["max_class_hours"])
    # Text longer than its warehouse column is a row problem, not a database error.
    for table in warehouse.STAGING_TABLES.values():
        for column in table.columns:
            length = getattr(column.type, "length", None)
            if length and column.name not in ("submission_id", "site_code", "period"):
                params[f"max_length_{column.name}"] = length
    return params


class Intake:
    """Ingests inbox files into the warehouse; one instance per task, one call per file."""

    def __init__(self, settings: Settings, plan: Plan, engine: sa.Engine | None = None, today: dt.date | None = None):
        self.settings = settings
        self.plan = plan
        self.engine = engine or warehouse.make_engine(settings.warehouse_url)
        self.today = today or warehouse.shanghai_now().date()
        warehouse.create_schema(self.engine)

    def ingest(self, item: InboxFile) -> dict[str, Any]:
        return self.ingest_many([item])[0]

    def ingest_many(self, items: list[InboxFile]) -> list[dict[str, Any]]:
        """Ingest files, validating all files of one kind in one suite run (GX's fixed cost per
        run dominates small files); each file is still parsed, judged and written on its own."""
        results: list[dict[str, Any] | None] = [None] * len(items)
        pending: dict[str, list[tuple[int, _Pending]]] = {}
        for n, item in enumerate(items):
            try:
                started = self._start(item)
            except Exception as exc:  # noqa: BLE001 - recorded as rejected with the error
                log.exception("%s could not be ingested", item.relative_path)
                started = self.record_failure(item, exc)
            if isinstance(started, _Pending):
                pending.setdefault(item.kind, []).append((n, started))
            else:
                results[n] = started
        for kind, batch in pending.items():
            for n, result in zip([n for n, _ in batch], self._validate_batch(kind, [p for _, p in batch])):
                results[n] = result
        return [r for r in results if r is not None]

    def _start(self, item: InboxFile) -> "dict[str, Any] | _Pending":
        path = Path(item.path)
        sha = sha256_of(path)
        submission_id = f"{sha}:{item.site_code or '-'}:{item.period or '-'}:{item.kind}"
        with self.engine.connect() as conn:
            known = conn.execute(
                sa.select(warehouse.submissions.c.status).where(warehouse.submissions.c.submission_id == submission_id)
            ).scalar()
        if known is not None and known != "failed":
            return {"submission_id": submission_id, "file": item.relative_path, "status": known, "skipped": True}
        record, context = self._new_record(item, path, sha, submission_id)
        try:
            if item.problem:
                raise FileRejected(item.problem, _zh_problem(item.problem), "file_location")
            parsed = read_submission(path, self.plan.contract["kinds"][item.kind], self.plan.contract["inbox"])
        except FileRejected as rejected:
            return self._reject(record, context, rejected)
        first, last = period_bounds(item.period, item.kind, self.plan.policy.submissions[item.kind]["cadence"])
        parsed.frame = parsed.frame.assign(_folder_site=item.site_code, _period_first=first, _period_last=last)
        return _Pending(item, parsed, record, context)

    def _validate_batch(self, kind: str, batch: list["_Pending"]) -> list[dict[str, Any]]:
        from .validation import runner_for

        runner = runner_for(str(self.settings.expectations_dir))
        try:
            rows = pd.concat([p.parsed.frame.assign(file_key=i) for i, p in enumerate(batch)], ignore_index=True)
            for column in self.plan.contract["kinds"][kind]["columns"]:
                rows[column] = clean_text(rows[column])
            ctx = {
                "enums": self.plan.contract["enums"],
                "policy": self.plan.policy,
                "today": self.today,
                "pii_key": self.settings.pii_key,
                "tolerance": int(self.plan.policy.intake["period_tolerance_days"]),
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
            p.staged = staged.iloc[offsets[i]:offsets[i + 1]].reset_index(drop=True)
            try:
                results.append(self._finish(p, mine, outcome))
            except Exception as exc:  # noqa: BLE001 - recorded as rejected with the error
                log.exception("%s could not be written", p.item.relative_path)
                results.append(self.record_failure(p.item, exc))
        return results

    def record_failure(self, item: InboxFile, exc: Exception) -> dict[str, Any]:
        """Record a file whose processing broke unexpectedly as rejected, with the error."""
        path = Path(item.path)
        sha = sha256_of(path)
        submission_id = f"{sha}:{item.site_code or '-'}:{item.period or '-'}:{item.kind}"
        record, context = self._new_record(item, path, sha, submission_id)
        first_line = (str(exc).splitlines() or [""])[0]
        detail = f"{type(exc).__name__}: {first_line}"[:300]
        result = self._reject(record, context, FileRejected(
            f"processing failed ({detail}); it is retried on the next run", f"处理失败({detail}),下次运行将重试",
            "file_processed"), status="failed")
        return result

    def _new_record(self, item: InboxFile, path: Path, sha: str, submission_id: str) -> tuple[dict, dict]:
        from zoneinfo import ZoneInfo

        archived = archive(path, sha, self.settings.archive_dir)
        received = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=ZoneInfo(self.plan.policy.timezone))
        record: dict[str, Any] = {
            "submission_id": submission_id,
            "sha256": sha,
            "site_code": item.site_code or "-",
            "period": item.period or "-",
            "kind": item.kind,
            "original_name": item.relative_path,
            "archive_path": str(archived),
            "size_bytes": path.stat().st_size,
            "received_at": received.replace(tzinfo=None, microsecond=0),
            "ingested_at": warehouse.shanghai_now(),
            "version": None,
            "is_current": False,
            "encoding": None,
            "header_row": None,
        }
        context = {"sha256": sha, "source_file": item.relative_path, "site_code": item.site_code,
                   "period": item.period, "kind": item.kind, "submission_id": submission_id}
        return record, context

    def _reject(self, record: dict[str, Any], context: dict[str, Any], rejected: FileRejected,
                status: str = "rejected") -> dict[str, Any]:
        name = record["original_name"]
        record.update(status=status, rows_read=0, rows_staged=0, rows_quarantined=0,
                      message=f"{name}: {rejected.reason_en}")
        self._write(record, None, None, pd.DataFrame([dict(context, source_row=None, column_name=None, value=None,
                                                           expectation=rejected.expectation,
                                                           reason_zh=f"{name}: {rejected.reason_zh}",
                                                           reason_en=f"{name}: {rejected.reason_en}")]),
                    record["kind"])
        return {"submission_id": record["submission_id"], "file": name, "status": status,
                "message": record["message"], "skipped": False}

    def _write_data_docs(self, kind: str, batch: list["_Pending"], outcome: Any) -> None:
        """Data Docs are a view for people: failing to render one never stops the intake."""
        from . import data_docs

        try:
            data_docs.write_validation_page(self.settings.data_docs_dir, kind, batch[0].item.site_code,
                                            [p.record["sha256"] for p in batch], outcome.result)
        except Exception:  # noqa: BLE001
            log.warning("Data Docs page for %s/%s could not be written", kind, batch[0].item.site_code, exc_info=True)

    def _finish(self, pending: "_Pending", failures: pd.DataFrame, outcome: Any) -> dict[str, Any]:
        """Judge one file from its rows' failures and write it: staging, quarantine, manifest."""
        item, parsed, record, context, staged = pending.item, pending.parsed, pending.record, pending.context, pending.staged
        frame = parsed.frame
        failed_rows = np.zeros(len(frame), dtype=bool)
        failed_rows[failures["row_index"].to_numpy(dtype=np.int64)] = True
        site_mismatch = failures["expectation"].str.endswith("(site_code_matches_folder)").any()
        if site_mismatch:
            # The folder says one site and the rows another: nothing in the file can be trusted.
            failed_rows[:] = True
            status = "rejected"
        elif failed_rows.all() and len(frame):
            status = "rejected"
        elif failed_rows.any():
            status = "partially_accepted"
        else:
            status = "accepted"
        quarantine_rows = self._quarantine_rows(frame, failures, failed_rows, site_mismatch, context)
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
        if site_mismatch:
            message = f"{item.relative_path}: site_code column differs from site folder {item.site_code}; file rejected"
        record.update(status=status, rows_read=len(frame), rows_staged=int(good.sum()),
                      rows_quarantined=rows_quarantined, encoding=parsed.encoding,
                      header_row=parsed.header_row, message=message)
        counts = failures["expectation"].value_counts()
        validation = {
            "submission_id": record["submission_id"], "suite": outcome.suite, "expectations": outcome.expectations,
            "failed_expectations": int(counts.size), "success": bool(counts.empty),
            "evaluated_rows": len(frame), "run_at": warehouse.shanghai_now(),
            "results_json": json.dumps({"unexpected_rows_by_expectation": {k: int(v) for k, v in counts.items()}},
                                       ensure_ascii=False),
        }
        self._write(record, stage, validation, quarantine_rows, item.kind)
        return {"submission_id": record["submission_id"], "file": item.relative_path, "status": status,
                "rows_read": len(frame), "rows_staged": record["rows_staged"],
                "rows_quarantined": rows_quarantined, "message": message, "skipped": False}

    def _quarantine_rows(self, frame: pd.DataFrame, failures: pd.DataFrame, failed_rows: np.ndarray,
                         site_mismatch: bool, context: dict[str, Any]) -> pd.DataFrame | None:
        if site_mismatch:
            # Rows that passed every check are still quarantined, with the file-level reason.
            extra = pd.DataFrame({"row_index": np.flatnonzero(failed_rows)})
            extra = extra[~extra["row_index"].isin(failures["row_index"])]
            extra = extra.assign(expectation="site_code_matches_folder", column_name="site_code",
                                 reason_zh="文件中其他行的站点编码与提交目录不一致,整份文件退回",
                                 reason_en="other rows of this file name another site than its folder; the whole file is rejected")
            failures = pd.concat([failures, extra], ignore_index=True)
        if failures.empty:
            return None
        rows = failures["row_index"].to_numpy(dtype=np.int64)
        failed = np.unique(rows)
        display = frame.iloc[failed]
        for column, mask in PII_COLUMNS.items():
            if column in display:
                display = display.assign(**{column: mask(display[column])})
        position = np.searchsorted(failed, rows)
        values = np.empty(len(failures), dtype=object)
        for column, idx in failures.groupby("column_name").indices.items():
            if column in display:
                values[idx] = display[column].to_numpy()[position[idx]]
        out = pd.DataFrame(
            {
                "submission_id": context["submission_id"],
                "sha256": context["sha256"],
                "source_file": context["source_file"],
                "site_code": context["site_code"],
                "period": context["period"],
                "kind": context["kind"],
                "source_row": frame["source_row"].to_numpy()[rows],
                "column_name": failures["column_name"].to_numpy(),
                "value": values,
                "expectation": failures["expectation"].to_numpy(),
                "reason_zh": failures["reason_zh"].to_numpy(),
                "reason_en": failures["reason_en"].to_numpy(),
            }
        ).sort_values(["source_row", "column_name"], kind="stable")
        return out

    def _write(self, record: dict[str, Any], stage: pd.DataFrame | None, validation: dict[str, Any] | None,
               quarantine_rows: pd.DataFrame | None, kind: str) -> None:
        """One transaction per file: a crash leaves either all of it or none of it."""
        sid = record["submission_id"]
        with self.engine.begin() as conn:
            for table in (*warehouse.STAGING_TABLES.values(), warehouse.quarantine, warehouse.validation_runs,
                          warehouse.submissions):
                conn.execute(table.delete().where(table.c.submission_id == sid))
            conn.execute(warehouse.submissions.insert(), [record])
            if stage is not None and len(stage):
                warehouse.bulk_insert(conn, warehouse.STAGING_TABLES[kind], stage)
            if quarantine_rows is not None and len(quarantine_rows):
                warehouse.bulk_insert(conn, warehouse.quarantine, quarantine_rows)
            if validation is not None:
                conn.execute(warehouse.validation_runs.insert(), [validation])


def publish(engine: sa.Engine) -> dict[str, int]:
    """Number the versions of each site/period/kind and keep only the current one in staging.

    The current version is the latest received file that was not rejected outright; a rejected
    resubmission leaves the previous data in place (and its site is told why).
    """
    s = warehouse.submissions
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(s.c.submission_id, s.c.site_code, s.c.period, s.c.kind, s.c.received_at, s.c.original_name,
                      s.c.status)
        ).all()
        frame = pd.DataFrame(rows, columns=["submission_id", "site_code", "period", "kind", "received_at",
                                            "original_name", "status"])
        if frame.empty:
            return {"submissions": 0, "current": 0, "superseded": 0}
        frame = frame.sort_values(["site_code", "period", "kind", "received_at", "original_name", "submission_id"])
        frame["version"] = frame.groupby(["site_code", "period", "kind"]).cumcount() + 1
        usable = frame[~frame["status"].isin(["rejected", "failed"])]
        current_ids = set(usable.groupby(["site_code", "period", "kind"])["submission_id"].last())
        frame["is_current"] = frame["submission_id"].isin(current_ids)
        for sid, version, current in frame[["submission_id", "version", "is_current"]].itertuples(index=False):
            conn.execute(s.update().where(s.c.submission_id == sid).values(version=int(version), is_current=bool(current)))
        stale = frame.loc[~frame["is_current"], "submission_id"].tolist()
        for table in warehouse.STAGING_TABLES.values():
            for start in range(0, len(stale), 500):
                conn.execute(table.delete().where(table.c.submission_id.in_(stale[start:start + 500])))
    return {"submissions": len(frame), "current": len(current_ids), "superseded": len(stale)}


_ZH_PROBLEMS = [
    ("is not at", "文件位置不符合 <年-月>/<站点编码>/<类型>.<csv|xlsx> 的约定"),
    ("is not YYYY-MM", "期间目录不是 YYYY-MM 格式"),
    ("is not a registered site code", "站点目录不是已登记的站点编码"),
    ("file type", "文件类型不是 csv 或 xlsx"),
    ("does not start with a submission kind", "文件名不是 roster/finance/survey/outcomes 之一"),
]


def _zh_problem(problem: str) -> str:
    for marker, zh in _ZH_PROBLEMS:
        if marker in problem:
            return f"{zh} ({problem})"
    return problem


def reconcile(engine: sa.Engine) -> list[dict[str, Any]]:
    """Files whose rows do not add up (rows read ≠ staged + quarantined); empty when nothing is lost."""
    s, q = warehouse.submissions, warehouse.quarantine
    quarantined = (
        sa.select(q.c.submission_id, sa.func.count(sa.distinct(q.c.source_row)).label("n"))
        .where(q.c.source_row.is_not(None)).group_by(q.c.submission_id).subquery()
    )
    query = sa.select(s.c.original_name, s.c.rows_read, s.c.rows_staged, s.c.rows_quarantined,
                      sa.func.coalesce(quarantined.c.n, 0).label("distinct_quarantined")).select_from(
        s.outerjoin(quarantined, quarantined.c.submission_id == s.c.submission_id))
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    return [r for r in rows
            if r["rows_read"] != r["rows_staged"] + r["rows_quarantined"]
            or r["rows_quarantined"] != r["distinct_quarantined"]]

