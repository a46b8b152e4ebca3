"""Discover: the files under the inbox, each with the site, period and kind its place names, or
why its place breaks the contract; the files a run does not process, and why; the site batches
the intake's mapped tasks take."""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from yuhang_skills.core import catalogue, warehouse
from yuhang_skills.core.policy import Plan

_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class InboxFile:
    """One file found under the inbox, with what its place says about it."""

    path: str  # the file system path; "hex:<bytes>" when the name is not valid UTF-8
    relative_path: str  # as shown to people and stored (shortened when over MAX_NAME characters)
    site_code: str
    period: str
    kind: str
    problem: str | None = None  # set when the place or name breaks the contract (catalogue intake.file_location.*)
    problem_zh: str | None = None
    skip: str | None = None  # set when the file is not processed at all (a link, not a regular file ...)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fs_path(self) -> Path:
        if self.path.startswith("hex:"):
            return Path(os.fsdecode(bytes.fromhex(self.path[4:])))
        return Path(self.path)


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
    return {"monthly": list(range(1, 13)), "quarterly": [3, 6, 9, 12], "yearly": [12]}[
        plan.policy.submission_rule(kind).cadence
    ]


def layout_problem(plan: Plan, site: str, period: str, kind: str) -> tuple[str, str] | None:
    """What the contract says against a file of ``kind`` from ``site`` in ``period`` (en, zh), or None:
    the kinds each programme submits, the months a kind's folder may be, the implementation period."""
    spec = plan.policy.submission_rule(kind)
    programme = plan.sites_by_code[site].programme
    if programme not in spec.programmes:
        return catalogue.text(
            "intake.file_location.kind_not_for_programme",
            programme=programme,
            kind=kind,
            takers=", ".join(spec.programmes),
        )
    months = _months_allowed(plan, kind)
    if int(period[5:7]) not in months:
        return catalogue.text(
            "intake.file_location.month_not_allowed",
            kind=kind,
            cadence=spec.cadence,
            allowed=", ".join(f"{m:02d}" for m in months),
            year=period[:4],
        )
    window = plan.policy.intake.accepted_periods
    first_p, last_p = window.first, window.last
    if not first_p <= period <= last_p:
        return catalogue.text("intake.file_location.period_not_reported", period=period, first=first_p, last=last_p)
    return None


def discover(inbox: Path, plan: Plan) -> list[InboxFile]:
    """Every file under ``inbox``, sorted, each with its site, period and kind or its problem.

    Links are never followed (a link, or anything whose real path leaves the inbox, is listed with
    ``skip`` set), nor are special files read; names that are not UTF-8 are shown readably."""
    kinds = plan.contract.kinds
    extensions = {f".{e}" for e in plan.contract.inbox.extensions}
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
        problem: tuple[str, str] | None = None
        if not valid:
            problem = catalogue.text("intake.file_location.name_not_utf8", shown=text)
        elif len(os.fsdecode(rel)) > MAX_NAME:
            problem = catalogue.text("intake.file_location.path_too_long", limit=MAX_NAME)
        elif len(parts) != 3:
            problem = catalogue.text("intake.file_location.not_in_layout")
        elif not _PERIOD.match(period):
            problem = catalogue.text("intake.file_location.period_folder", period=period)
        elif site not in plan.sites_by_code:
            problem = catalogue.text("intake.file_location.site_folder", site=_visible(parts[1]))
        elif suffix.lower() not in extensions:
            problem = catalogue.text("intake.file_location.file_type", suffix=suffix, extensions=sorted(extensions))
        elif stem not in kinds:
            problem = catalogue.text("intake.file_location.kind_unknown", filename=filename, kinds=", ".join(kinds))
        else:
            problem = layout_problem(plan, site, period, stem)
        # Only a registered site code and a YYYY-MM period are recorded as such; any other folder
        # name stays visible in relative_path (and the reason) but never in a key column.
        problem_en, problem_zh = problem or (None, None)
        found.append(
            InboxFile(
                path_field,
                text,
                site if site in plan.sites_by_code else "",
                period if _PERIOD.match(period) else "",
                stem if stem in kinds else "unknown",
                problem_en,
                problem_zh,
                skip,
            )
        )
    return found


INVISIBLE = re.compile(r"[\u0000-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")


def _visible(text: str) -> str:
    """``text`` quoted, with invisible characters (zero-width spaces, BOMs, controls) spelled out as
    ``\\u200b`` so a site code that looks right but is not says why."""
    return "'" + INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "'"


# Why a file is listed but not processed: the codes of intake_not_processed.reason_code, whose text
# is the catalogue's intake.not_processed.<code>.
SKIP_REASONS = (
    "link",
    "outside_inbox",
    "not_a_regular_file",
    "received_after_as_of",
    "processing_failed",
    "unreadable",
    "vanished",
)


def record_not_processed(engine: sa.Engine, items: list[tuple[InboxFile, str, str | None]], as_of: dt.date) -> int:
    """List files a run did not process, and why; one row per file (a rerun replaces its row)."""
    if not items:
        return 0
    t = warehouse.intake_not_processed
    now = warehouse.shanghai_now()
    rows = []
    for item, code, detail in items:
        en, zh = catalogue.text(f"intake.not_processed.{code}")
        rows.append(
            {
                "relative_path": item.relative_path,
                "reason_code": code,
                "reason_en": f"{item.relative_path}: {en}" + (f" ({detail})" if detail else ""),
                "reason_zh": f"{item.relative_path}: {zh}" + (f"({detail})" if detail else ""),
                "as_of": as_of,
                "seen_at": now,
            }
        )
    with engine.begin() as conn:
        paths = [r["relative_path"] for r in rows]
        for start in range(0, len(paths), 500):
            conn.execute(t.delete().where(t.c.relative_path.in_(paths[start : start + 500])))
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
    sized = sorted(
        ((sum(_size(f) for f in group), site, group) for site, group in by_site.items()), key=lambda t: (-t[0], t[1])
    )
    batches: list[tuple[int, list[str], list[InboxFile]]] = []
    for size, site, group in sized:
        for n, (total, sites, members) in enumerate(batches):
            if total + size <= task_bytes and len(sites) < task_max_sites:
                batches[n] = (total + size, [*sites, site], [*members, *group])
                break
        else:
            batches.append((size, [site], list(group)))
    return [members for _, _, members in batches]
