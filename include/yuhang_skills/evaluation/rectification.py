"""Rectification decisions (整改): the CSV file evaluators maintain, read and validated.

The plan (四、绩效管理) tells sites whose targets fall short to rectify by a deadline and
recovers money from those that have not by then. The evaluation lists every missed yearly target
with its deadline (:meth:`yuhang_skills.core.policy.Policy.rectification_deadline`); whether and when a
site rectified is the evaluators' decision, one row per site, year and target indicator:

    site_code,year,indicator,rectified_on,note
    S03,2025,person_times,2026-03-20,补训10人次，区人社局复核通过

``rectified_on`` is an ISO date (YYYY-MM-DD) or blank (decision recorded, not rectified yet);
``note`` is optional free text. Columns other than these are ignored. The file may be UTF-8 (with or
without BOM) or GBK/GB18030, as Excel saves it. A missing file means no decisions. Anything that
cannot be used as written (unknown site, a year the site was not active, an indicator that is not
one of the site's yearly targets, a bad date, a second row for the same target) stops the
evaluation with every problem named by file, row and column.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from yuhang_skills.core.policy import Plan

REQUIRED_COLUMNS = ("site_code", "year", "indicator", "rectified_on")
NOTE_COLUMN = "note"
ENCODINGS = ("utf-8-sig", "gb18030")

Key = tuple[str, int, str]  # (site_code, year, indicator)


@dataclass(frozen=True)
class Problem:
    row: int  # line in the file as a spreadsheet shows it (the header is row 1)
    column: str
    message: str


class RectificationFileError(ValueError):
    """The rectifications file cannot be used as written; ``problems`` lists every reason."""

    def __init__(self, path: Path, problems: list[Problem]):
        self.path = path
        self.problems = problems
        super().__init__(
            f"rectifications file {path}: "
            + "; ".join(f"row {p.row}, column {p.column}: {p.message}" for p in problems)
        )


@dataclass(frozen=True)
class Decision:
    site_code: str
    year: int
    indicator: str
    rectified_on: dt.date | None
    note: str
    row: int


@dataclass(frozen=True)
class Decisions:
    """Every decision in the file, by (site_code, year, indicator); ``sha256`` of the file bytes
    (None when there is no file) goes into the evaluation's input fingerprint."""

    path: Path | None
    sha256: str | None
    by_key: dict[Key, Decision]

    @classmethod
    def none(cls) -> Decisions:
        return cls(path=None, sha256=None, by_key={})

    def get(self, site_code: str, year: int, indicator: str) -> Decision | None:
        return self.by_key.get((site_code, year, indicator))


def _decode(path: Path, data: bytes) -> str:
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise RectificationFileError(path, [Problem(1, "-", f"not readable as {' or '.join(ENCODINGS)} text")])


def load_decisions(path: Path, plan: Plan) -> Decisions:
    """Read and validate the rectifications file at ``path`` against the site registry and the
    policy's yearly targets; a missing file gives no decisions."""
    if not path.exists():
        return Decisions.none()
    data = path.read_bytes()
    reader = csv.DictReader(io.StringIO(_decode(path, data), newline=""))
    header = [(name or "").strip() for name in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise RectificationFileError(path, [Problem(1, c, "required column is missing") for c in missing])
    reader.fieldnames = header
    targets: dict[str, list[str]] = {}
    for t in plan.policy.target_rows():
        targets.setdefault(t["programme"], []).append(t["indicator"])
    years = plan.policy.implementation_years
    problems: list[Problem] = []
    by_key: dict[Key, Decision] = {}
    for record in reader:
        row = reader.line_num
        values = {k: (v or "").strip() for k, v in record.items() if k is not None}
        if not any(values.values()):
            continue
        before = len(problems)
        site = plan.sites_by_code.get(values["site_code"])
        if site is None:
            problems.append(
                Problem(row, "site_code", f"unknown site code {values['site_code']!r} (not in the site registry)")
            )
        try:
            year = int(values["year"])
        except ValueError:
            problems.append(Problem(row, "year", f"{values['year']!r} is not a year"))
            year = None
        if year is not None and year not in years:
            problems.append(
                Problem(row, "year", f"{year} is not a year of the implementation period ({years[0]}-{years[-1]})")
            )
        elif year is not None and site is not None and site.months_active(year) == 0:
            problems.append(Problem(row, "year", f"site {site.site_code} was not active in {year}"))
        indicator = values["indicator"]
        if site is not None and indicator not in targets.get(site.programme, []):
            problems.append(
                Problem(
                    row,
                    "indicator",
                    f"{indicator!r} is not a yearly target of a {site.programme} "
                    f"(targets: {', '.join(targets.get(site.programme, []))})",
                )
            )
        rectified_on: dt.date | None = None
        if values["rectified_on"]:
            try:
                rectified_on = dt.date.fromisoformat(values["rectified_on"])
            except ValueError:
                problems.append(
                    Problem(
                        row,
                        "rectified_on",
                        f"{values['rectified_on']!r} is not a date (YYYY-MM-DD, or blank when not rectified)",
                    )
                )
        if len(problems) > before or site is None or year is None:
            continue
        key = (site.site_code, year, indicator)
        if key in by_key:
            problems.append(
                Problem(
                    row,
                    "site_code",
                    f"a second decision for {site.site_code} {year} {indicator} (first on row {by_key[key].row})",
                )
            )
            continue
        by_key[key] = Decision(site.site_code, year, indicator, rectified_on, values.get(NOTE_COLUMN, ""), row)
    if problems:
        raise RectificationFileError(path, problems)
    return Decisions(path=path, sha256=hashlib.sha256(data).hexdigest(), by_key=by_key)


def status(deadline: dt.date, rectified_on: dt.date | None, as_of: dt.date) -> str:
    """``rectified`` when rectified on or before the deadline (and known by the as-of date),
    ``open`` while the deadline has not passed, else ``overdue`` (a late rectification included)."""
    if rectified_on is not None and rectified_on <= min(deadline, as_of):
        return "rectified"
    return "open" if as_of <= deadline else "overdue"
