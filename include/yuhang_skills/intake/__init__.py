"""Intake: find submissions in the inbox, archive them, parse, validate, stage or quarantine.

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
import hashlib
import itertools
import json
import logging
import os
import re
import stat
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from yuhang_skills.intake import identity
from yuhang_skills.orchestration import operations
from yuhang_skills.core import warehouse
from yuhang_skills.intake.parse import (FileRejected, ParsedFile, clean_text, number_text, on_distinct, read_submission, to_codes,
                      to_dates, to_fen, to_numbers)
from yuhang_skills.core.policy import Plan
from yuhang_skills.core.settings import Settings

log = logging.getLogger(__name__)

_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class InboxFile:
    """One file found under the inbox, with what its place says about it."""

    path: str  # the file system path; "hex:<bytes>" when the name is not valid UTF-8
    relative_path: str  # as shown to people and stored (shortened when over MAX_NAME characters)
    site_code: str
    period: str
    kind: str
    problem: str | None = None  # set when the place or name breaks the contract
    problem_zh: str | None = None
    skip: str | None = None  # set when the file is not processed at all (a link, not a regular file ...)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fs_path(self) -> Path:
        if self.path.startswith("hex:"):
            return Path(os.fsdecode(bytes.fromhex(self.path[4:])))
        return Path(self.path)


@dataclass
class _Pending:
    """A parsed file waiting for its kind's suite run."""

    item: InboxFile
    parsed: ParsedFile
    record: dict[str, Any]
    context: dict[str, Any]
    staged: pd.DataFrame | None = None


# submissions.original_name and quarantine.source_file hold this many characters
MAX_NAME = 500


def shown_name(rel_bytes: bytes) -> tuple[str, bool]:
    """A relative path as text people can read and every table can store: (text, valid UTF-8).
    A name that is not UTF-8 (often GBK from a Windows zip) is shown decoded as GB18030 when that
    works, else with its bytes escaped; a name over MAX_NAME characters keeps its start and end."""
    try:
        text, valid = rel_bytes.decode("utf-8"), True
    except UnicodeDecodeError:
        valid = False
        try:
            text = rel_bytes.decode("gb18030")
        except UnicodeDecodeError:
            text = rel_bytes.decode("utf-8", "backslashreplace")
    text = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)
    if len(text) > MAX_NAME:
        text = f"{text[:240]}…{text[-240:]}"
    return text, valid


def _months_allowed(plan: Plan, kind: str) -> list[int]:
    spec = plan.policy.submissions[kind]
    if spec.get("months"):
        return [int(m) for m in spec["months"]]
    return {"monthly": list(range(1, 13)), "quarterly": [3, 6, 9, 12], "yearly": [12]}[spec["cadence"]]


def layout_problem(plan: Plan, site: str, period: str, kind: str) -> tuple[str, str] | None:
    """What the contract says against a file of ``kind`` from ``site`` in ``period`` (en, zh), or None:
    the kinds each programme submits, the months a kind's folder may be, the implementation period."""
    spec = plan.policy.submissions[kind]
    programme = plan.sites_by_code[site].programme
    if programme not in spec["programmes"]:
        takers = ", ".join(spec["programmes"])
        return (f"a {programme} site does not submit {kind} (only {takers} sites do); put the file in the right "
                f"site's folder or remove it",
                f"{programme} 类站点不报送 {kind}(仅 {takers} 报送),请放入正确站点目录或删除")
    months = _months_allowed(plan, kind)
    if int(period[5:7]) not in months:
        allowed = ", ".join(f"{m:02d}" for m in months)
        return (f"{kind} is filed under months {allowed} only ({spec['cadence']}); move the file to the folder "
                f"{period[:4]}-MM of the period it covers",
                f"{kind} 只能放在 {allowed} 月的目录下({spec['cadence']}),请移到所属期间的目录")
    window = plan.policy.intake["accepted_periods"]
    first_p, last_p = str(window["first"]), str(window["last"])
    if not first_p <= period <= last_p:
        return (f"period {period} lies outside the periods the programme reports ({first_p} to {last_p}); check the "
                f"folder name",
                f"期间 {period} 不在项目报送期间 {first_p} 至 {last_p} 内,请检查目录名")
    return None


def discover(inbox: Path, plan: Plan) -> list[InboxFile]:
    """Every file under ``inbox``, sorted, each with its site, period and kind or its problem.

    Links are never followed (a link, or anything whose real path leaves the inbox, is listed with
    ``skip`` set), nor are special files read; names that are not UTF-8 are shown readably."""
    kinds = plan.contract["kinds"]
    extensions = {f".{e}" for e in plan.contract["inbox"]["extensions"]}
    root = os.fsencode(inbox)
    real_root = os.path.realpath(root)
    found: list[InboxFile] = []
    entries: list[tuple[bytes, str | None]] = []
    def unreadable(error: OSError) -> None:  # a folder that cannot be listed is reported, not skipped
        if error.filename is not None:
            entries.append((os.fsencode(error.filename), "unreadable"))

    for folder, dirs, files in os.walk(root, followlinks=False, onerror=unreadable):
        rel_folder = os.path.relpath(folder, root)
        hidden = [d for d in dirs if d.startswith(b".")]
        for d in sorted(dirs):
            full = os.path.join(folder, d)
            if os.path.islink(full) and not d.startswith(b"."):
                entries.append((full, "link"))
        dirs[:] = [d for d in dirs if d not in hidden and not os.path.islink(os.path.join(folder, d))]
        if rel_folder != b"." and any(part.startswith(b".") for part in rel_folder.split(os.sep.encode())):
            continue
        for name in files:
            entries.append((os.path.join(folder, name), None))
    for full, skip in sorted(entries):
        rel = os.path.relpath(full, root)
        parts_b = rel.split(os.sep.encode())
        name_b = parts_b[-1]
        if name_b.startswith(b".") or name_b.startswith(b"~$"):
            continue  # hidden files and Office lock files are not submissions
        text, valid = shown_name(rel)
        try:
            mode = os.lstat(full).st_mode
        except FileNotFoundError:
            mode = None  # renamed or removed since the folder was listed (an upload's temporary name)
            skip = skip or "vanished"
        except OSError:
            mode = None
            skip = skip or "unreadable"
        if mode is None:
            pass
        elif skip is None and stat.S_ISLNK(mode):
            skip = "link"
        elif skip is None and not stat.S_ISREG(mode):
            skip = "not_a_regular_file"
        elif skip is None and not os.path.realpath(full).startswith(real_root + os.sep.encode()):
            skip = "outside_inbox"
        path_field = os.fsdecode(full) if valid else "hex:" + full.hex()
        parts = text.split("/")
        period = parts[0] if len(parts) == 3 else ""
        site = parts[1].upper() if len(parts) == 3 else ""
        filename = parts[-1]
        suffix = Path(filename).suffix
        stem = Path(filename).stem.split("_")[0].split(" ")[0].split("(")[0].lower()
        problem = problem_zh = None
        if not valid:
            problem = (f"the file name is not valid UTF-8 text (it reads as {text!r} in GBK); rename it to "
                       f"<kind>.csv or <kind>.xlsx and send it again")
            problem_zh = f"文件名不是 UTF-8 编码(按 GBK 读作 {text!r}),请改名为 <类型>.csv 或 <类型>.xlsx 后重新报送"
        elif len(os.fsdecode(rel)) > MAX_NAME:
            problem = f"the path is longer than {MAX_NAME} characters; use <YYYY-MM>/<site code>/<kind>.<csv|xlsx>"
            problem_zh = f"文件路径超过 {MAX_NAME} 个字符,请按 <年-月>/<站点编码>/<类型>.<csv|xlsx> 存放"
        elif len(parts) != 3:
            problem = "file is not at <YYYY-MM>/<site code>/<kind>.<csv|xlsx>"
        elif not _PERIOD.match(period):
            problem = f"period folder {period!r} is not YYYY-MM"
        elif site not in plan.sites_by_code:
            problem = f"site folder {_visible(parts[1])} is not a registered site code"
        elif suffix.lower() not in extensions:
            problem = f"file type {suffix!r} is not one of {sorted(extensions)}"
        elif stem not in kinds:
            problem = f"file name {filename!r} does not start with a submission kind ({', '.join(kinds)})"
        else:
            layout = layout_problem(plan, site, period, stem)
            if layout:
                problem, problem_zh = layout
        # Only a registered site code and a YYYY-MM period are recorded as such; any other folder
        # name stays visible in relative_path (and the reason) but never in a key column.
        found.append(InboxFile(path_field, text, site if site in plan.sites_by_code else "",
                               period if _PERIOD.match(period) else "", stem if stem in kinds else "unknown",
                               problem, problem_zh, skip))
    return found


_INVISIBLE = re.compile(r"[\u0000-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")


def _visible(text: str) -> str:
    """``text`` quoted, with invisible characters (zero-width spaces, BOMs, controls) spelled out as
    ``\\u200b`` so a site code that looks right but is not says why."""
    return "'" + _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "'"


SKIP_REASONS = {
    "link": ("a link (symbolic link or shortcut) is not a submission: put the file itself in the inbox",
             "链接(符号链接/快捷方式)不作为报送文件:请把文件本身放入收件箱"),
    "outside_inbox": ("the file's real location is outside the inbox: put the file itself in the inbox",
                      "文件实际位置在收件箱之外:请把文件本身放入收件箱"),
    "not_a_regular_file": ("not a regular file (a device, pipe or socket)", "不是普通文件(设备、管道或套接字)"),
    "received_after_as_of": ("received after the run's as-of day: a later run takes it",
                             "在本次运行截止日之后收到:由以后的运行处理"),
    "processing_failed": ("processing failed and the file could not be recorded: the data team must check it",
                          "处理失败且无法登记:数据组需检查该文件"),
    "unreadable": ("the file could not be read (permissions or I/O error): the data team must check the inbox",
                   "文件无法读取(权限或读写错误):数据组需检查收件箱"),
    "vanished": ("the file disappeared while the inbox was read (renamed or removed during an upload): a later "
                 "run takes it under its new name", "读取收件箱期间文件消失(上传中改名或删除):以后的运行按新文件名处理"),
}


def record_not_processed(engine: sa.Engine, items: list[tuple[InboxFile, str, str | None]], as_of: dt.date) -> int:
    """List files a run did not process, and why; one row per file (a rerun replaces its row)."""
    if not items:
        return 0
    t = warehouse.intake_not_processed
    now = warehouse.shanghai_now()
    rows = []
    for item, code, detail in items:
        en, zh = SKIP_REASONS[code]
        rows.append({"relative_path": item.relative_path, "reason_code": code,
                     "reason_en": f"{item.relative_path}: {en}" + (f" ({detail})" if detail else ""),
                     "reason_zh": f"{item.relative_path}: {zh}" + (f"({detail})" if detail else ""),
                     "as_of": as_of, "seen_at": now})
    with engine.begin() as conn:
        paths = [r["relative_path"] for r in rows]
        for start in range(0, len(paths), 500):
            conn.execute(t.delete().where(t.c.relative_path.in_(paths[start:start + 500])))
        conn.execute(t.insert(), rows)
    return len(rows)


def _size(item: InboxFile) -> int:
    try:
        return os.lstat(item.fs_path()).st_size
    except OSError:
        return 0


def site_batches(files: list[InboxFile], task_bytes: int, task_max_sites: int) -> list[list[InboxFile]]:
    """Files grouped per site folder, small folders packed together (largest first) up to
    ``task_bytes`` and ``task_max_sites``; a folder is never split across batches."""
    by_site: dict[str, list[InboxFile]] = {}
    for f in files:
        by_site.setdefault(f.site_code, []).append(f)
    sized = sorted(((sum(_size(f) for f in group), site, group) for site, group in by_site.items()),
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


def archive_copy(path: Path, archive_dir: Path, suffix: str) -> tuple[Path, str, int]:
    """Copy ``path`` into the content-addressed archive, hashing the bytes as they are copied:
    the archive, its name and everything parsed afterwards (from the archived copy) are the same
    bytes even when the site's file is rewritten meanwhile. Returns (archived path, sha256, size).
    The archive is readable by the service's user only; an existing copy is never rewritten."""
    archive_dir.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=archive_dir, prefix=".incoming-", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, open(path, "rb", buffering=0) as src:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
        sha = h.hexdigest()
        target = archive_dir / sha[:2] / f"{sha}{suffix.lower()}"
        if target.exists():
            tmp.unlink()
        else:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp.chmod(0o400)
            tmp.replace(target)
        return target, sha, size
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def received_time(mtime: dt.datetime | None, seen: dt.datetime, as_of: dt.date) -> dt.datetime:
    """When a file counts as received (Asia/Shanghai wall time): its modification time is evidence of
    when the site sent it, but never later than when the pipeline saw it (a time in the future is a
    wrong clock). A run whose as-of day has not begun yet by the wall clock (a replay of a simulated
    calendar, like the demo) has no present to compare with: the file's time stands."""
    if mtime is None:
        return seen
    if seen < dt.datetime.combine(as_of, dt.time()):
        return mtime
    return min(mtime, seen)


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


def _within(dates: pd.Series, frame: pd.DataFrame, tolerance: dict[str, int]) -> pd.Series:
    """Dates inside their folder's period, ``tolerance['before']`` days before its first day and
    ``tolerance['after']`` days after its last day included (policy intake.date_tolerance_days)."""
    before, after = pd.Timedelta(days=int(tolerance["before"])), pd.Timedelta(days=int(tolerance["after"]))
    return (dates.isna() | ((dates >= frame["_period_first"] - before) & (dates <= frame["_period_last"] + after))).astype(bool)


def _distinct_number(values: pd.Series) -> pd.Series:
    """Each value's number among the distinct values (float, NaN where missing)."""
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    return pd.Series(np.where(codes < 0, np.nan, codes), index=values.index)


def _prepare_roster(frame, ctx) -> tuple[pd.DataFrame, pd.DataFrame]:
    enums = ctx["enums"]
    ids = identity.parse_ids(frame["id_number"], reference_date=ctx["today"])
    # An Excel number cell cannot hold an ID number: its own reason replaces the checks it would fail.
    typed = (frame["_id_typed_number"].fillna(False).astype(bool) if "_id_typed_number" in frame
             else pd.Series(False, index=frame.index))
    fmt = ids["format_ok"].astype(bool) | typed
    checksum = ids["checksum_ok"].astype(bool) | ~fmt | typed
    birth_ok = ids["birth_date_ok"].astype(bool) | ~(fmt & checksum) | typed
    province = ids["province_ok"].astype(bool) | ~(fmt & checksum) | typed
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
            "id_is_text": ~typed,
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


# Counts and years are whole numbers the warehouse's INTEGER columns hold; anything beyond is an
# error in that cell ("missing or not a whole number"), never an overflow of the file.
_MAX_WHOLE = 2**31 - 1


def _whole_numbers(s: pd.Series) -> pd.Series:
    values, _ = to_numbers(s)
    return values.where((values == values.round(0)) & (values.abs() <= _MAX_WHOLE))


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
    for table in warehouse.RAW_TABLES.values():
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
        self._copies: dict[str, tuple[Path, str, int, dt.datetime | None]] = {}  # path -> archived copy
        self.run_started = warehouse.shanghai_now()
        warehouse.create_schema(self.engine)

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
            for n, result in zip([n for n, _ in batch], self._validate_batch(kind, [p for _, p in batch])):
                results[n] = result
        return [r for r in results if r is not None]

    def _not_processed(self, item: InboxFile, code: str, detail: str | None = None) -> dict[str, Any]:
        record_not_processed(self.engine, [(item, code, detail)], self.today)
        en, _ = SKIP_REASONS[code]
        return {"submission_id": None, "file": item.relative_path, "status": "not_processed", "reason": code,
                "message": f"{item.relative_path}: {en}" + (f" ({detail})" if detail else ""), "skipped": True}

    def _arrive(self, item: InboxFile, sha: str, submission_id: str,
                mtime: dt.datetime | None) -> tuple[dt.datetime, bool]:
        """Record the arrival of these bytes at this path unless they are what the path held when last
        seen; returns when the pipeline first saw the path hold them (this time), and whether that is now."""
        a = warehouse.submission_arrivals
        with self.engine.begin() as conn:
            last = conn.execute(sa.select(a.c.sha256, a.c.first_seen_at).where(a.c.relative_path == item.relative_path)
                                .order_by(a.c.arrival_id.desc()).limit(1)).first()
            if last is not None and last.sha256 == sha:
                return last.first_seen_at.replace(microsecond=0), False
            now = self.run_started  # one instant per run: files arriving together are ordered by their time
            conn.execute(a.insert(), [{"relative_path": item.relative_path, "sha256": sha, "submission_id": submission_id,
                                       "first_seen_at": now, "file_mtime": mtime}])
            return now.replace(microsecond=0), True

    def _start(self, item: InboxFile) -> "dict[str, Any] | _Pending":
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
                raise FileRejected(item.problem, item.problem_zh or _zh_problem(item.problem), "file_location")
            if item.period and item.kind in self.plan.policy.submissions and period_bounds(
                    item.period, item.kind, self.plan.policy.submissions[item.kind]["cadence"])[0].date() > self.today:
                raise FileRejected(
                    f"period {item.period} has not begun on {self.today}: check the folder name",
                    f"期间 {item.period} 在 {self.today} 尚未开始:请检查目录名", "file_location")
            parsed = read_submission(archived, self.plan.contract["kinds"][item.kind], self.plan.contract["inbox"])
        except FileRejected as rejected:
            return self._reject(record, context, rejected)
        first, last = period_bounds(item.period, item.kind, self.plan.policy.submissions[item.kind]["cadence"])
        parsed.frame = parsed.frame.assign(_folder_site=item.site_code, _period_first=first, _period_last=last)
        return _Pending(item, parsed, record, context)

    def _wall_time(self, timestamp: float) -> dt.datetime:
        from zoneinfo import ZoneInfo

        moment = dt.datetime.fromtimestamp(timestamp, tz=ZoneInfo(self.plan.policy.timezone))
        return moment.replace(tzinfo=None, microsecond=0)

    def _validate_batch(self, kind: str, batch: list["_Pending"]) -> list[dict[str, Any]]:
        from yuhang_skills.intake.validate import runner_for

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
                "tolerance": self.plan.policy.intake["date_tolerance_days"].get(kind, {"before": 0, "after": 0}),
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
        """Record a file whose processing broke unexpectedly as ``failed``, with the error (the
        next run tries it again); when even that cannot be written, list it as not processed."""
        first_line = (str(exc).splitlines() or [""])[0]
        detail = operations.mask_personal_numbers(f"{type(exc).__name__}: {first_line}")[:300]
        try:
            if item.path not in self._copies:
                path = item.fs_path()
                self._copies[item.path] = (*archive_copy(path, self.settings.archive_dir, path.suffix),
                                           self._wall_time(os.stat(path).st_mtime))
            _, sha, _, _ = self._copies[item.path]
            submission_id = f"{sha}:{item.site_code or '-'}:{item.period or '-'}:{item.kind}"
            record, context = self._new_record(item, submission_id, warehouse.shanghai_now())
            return self._reject(record, context, FileRejected(
                f"processing failed ({detail}); the data team is alerted and it is retried on the next run",
                f"处理失败({detail}),已通知数据组,下次运行将重试", "file_processed"), status="failed")
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
                                                           reason_en=f"{name}: {rejected.reason_en}",
                                                           severity="error")]),
                    record["kind"])
        return {"submission_id": record["submission_id"], "file": name, "status": status,
                "message": record["message"], "skipped": False}

    def _write_data_docs(self, kind: str, batch: list["_Pending"], outcome: Any) -> None:
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
                data_docs.write_validation_page(self.settings.data_docs_dir, kind, site,
                                                [batch[i].record["sha256"] for i in members],
                                                data_docs.result_for_rows(outcome.result, rows))
            except Exception:  # noqa: BLE001
                log.warning("Data Docs page for %s/%s could not be written", kind, site, exc_info=True)

    def _finish(self, pending: "_Pending", failures: pd.DataFrame, outcome: Any) -> dict[str, Any]:
        """Judge one file from its rows' failures and write it: staging, quarantine, manifest."""
        item, parsed, record, context, staged = pending.item, pending.parsed, pending.record, pending.context, pending.staged
        frame = parsed.frame
        columns = self.plan.contract["kinds"][item.kind]["columns"]
        warning_columns = {c for c, spec in columns.items() if spec.get("invalid") == "warning"}
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
        site_mismatch = errors["expectation"].str.endswith("(site_code_matches_folder)").any()
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
        if status == "no_rows_accepted":
            message = (f"{item.relative_path}: no row accepted, every one of the {len(frame)} row(s) has an error "
                       f"(the reasons are listed per row); correct them and send the file again")
        if len(warnings_):
            note = (f"{warnings_['row_index'].nunique()} row(s) with an invalid optional value: the value was left "
                    f"empty and the row counted (severity warning)")
            message = f"{message}; {note}" if message else note
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
            extra = extra.assign(expectation="site_code_matches_folder", column_name="site_code", severity="error",
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
        # Invisible characters (a zero-width space after V24) are spelled out, so the value shown is
        # the value refused.
        values = np.array([_INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", v) if isinstance(v, str) else v
                           for v in values], dtype=object)
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
                "severity": (failures["severity"].fillna("error").to_numpy() if "severity" in failures
                             else "error"),
            }
        ).sort_values(["source_row", "column_name"], kind="stable")
        return out

    def _write(self, record: dict[str, Any], stage: pd.DataFrame | None, validation: dict[str, Any] | None,
               quarantine_rows: pd.DataFrame | None, kind: str) -> None:
        """One transaction per file: a crash leaves either all of it or none of it."""
        sid = record["submission_id"]
        with self.engine.begin() as conn:
            for table in (*warehouse.RAW_TABLES.values(), warehouse.quarantine, warehouse.validation_runs,
                          warehouse.submissions):
                conn.execute(table.delete().where(table.c.submission_id == sid))
            conn.execute(warehouse.submissions.insert(), [record])
            if stage is not None and len(stage):
                warehouse.bulk_insert(conn, warehouse.RAW_TABLES[kind], stage)
            if quarantine_rows is not None and len(quarantine_rows):
                warehouse.bulk_insert(conn, warehouse.quarantine, quarantine_rows)
            if validation is not None:
                conn.execute(warehouse.validation_runs.insert(), [validation])


# Statuses whose rows may become the current data of a site, period and kind; a file refused
# outright, refused row by row, or broken in processing leaves the previous version current.
USABLE_STATUSES = ("accepted", "partially_accepted")


def publish(engine: sa.Engine) -> dict[str, int]:
    """Number the versions of each site/period/kind and keep only the current one in staging.

    Versions are ordered by arrival as the pipeline saw them (``submission_arrivals``: when a path
    was first seen holding these bytes), so a correction whose file time is older still wins and a
    resend of earlier bytes makes them current again; the file's time breaks ties within one
    run. The current version is the latest arrival that was accepted in whole or in part.
    """
    s, a = warehouse.submissions, warehouse.submission_arrivals
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(s.c.submission_id, s.c.site_code, s.c.period, s.c.kind, s.c.received_at, s.c.original_name,
                      s.c.status)
        ).all()
        frame = pd.DataFrame(rows, columns=["submission_id", "site_code", "period", "kind", "received_at",
                                            "original_name", "status"])
        if frame.empty:
            return {"submissions": 0, "current": 0, "superseded": 0}
        arrivals = pd.DataFrame(conn.execute(
            sa.select(a.c.submission_id, sa.func.max(a.c.first_seen_at).label("arrived_at"),
                      sa.func.max(a.c.arrival_id).label("arrival_id")).group_by(a.c.submission_id)).all(),
            columns=["submission_id", "arrived_at", "arrival_id"])
        frame = frame.merge(arrivals, on="submission_id", how="left")
        frame["arrived_at"] = pd.to_datetime(frame["arrived_at"]).fillna(pd.to_datetime(frame["received_at"]))
        frame["arrival_id"] = frame["arrival_id"].fillna(0)
        frame = frame.sort_values(["site_code", "period", "kind", "arrived_at", "received_at", "original_name",
                                   "arrival_id", "submission_id"])
        frame["version"] = frame.groupby(["site_code", "period", "kind"]).cumcount() + 1
        usable = frame[frame["status"].isin(USABLE_STATUSES)]
        current_ids = set(usable.groupby(["site_code", "period", "kind"])["submission_id"].last())
        frame["is_current"] = frame["submission_id"].isin(current_ids)
        for sid, version, current in frame[["submission_id", "version", "is_current"]].itertuples(index=False):
            conn.execute(s.update().where(s.c.submission_id == sid).values(version=int(version), is_current=bool(current)))
        stale = frame.loc[~frame["is_current"], "submission_id"].tolist()
        for table in warehouse.RAW_TABLES.values():
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
        .where(q.c.source_row.is_not(None), q.c.severity != "warning").group_by(q.c.submission_id).subquery()
    )
    query = sa.select(s.c.original_name, s.c.rows_read, s.c.rows_staged, s.c.rows_quarantined,
                      sa.func.coalesce(quarantined.c.n, 0).label("distinct_quarantined")).select_from(
        s.outerjoin(quarantined, quarantined.c.submission_id == s.c.submission_id))
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    return [r for r in rows
            if r["rows_read"] != r["rows_staged"] + r["rows_quarantined"]
            or r["rows_quarantined"] != r["distinct_quarantined"]]

