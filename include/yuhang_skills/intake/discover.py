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

from yuhang_skills.core import warehouse
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
    problem: str | None = None  # set when the place or name breaks the contract
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


INVISIBLE = re.compile(r"[\u0000-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")


def _visible(text: str) -> str:
    """``text`` quoted, with invisible characters (zero-width spaces, BOMs, controls) spelled out as
    ``\\u200b`` so a site code that looks right but is not says why."""
    return "'" + INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "'"


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

