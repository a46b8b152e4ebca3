"""The missing list, as of a day D in Asia/Shanghai: an expected submission with no file received
(accepted, partially accepted, or failed on our side) by its due date is overdue from the next day;
it stays open until a file arrives (then ``resolved_at``). Only files received on or before D
count, so a rerun for a past day rebuilds that day's picture. Also the files to send back: the
latest file of a site/period/kind when it was rejected or partially accepted, with the rows to fix.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from yuhang_skills.core import warehouse
from yuhang_skills.core.policy import Plan
from yuhang_skills.watchdog.calendar import ExpectedSubmission, item_key

# A file in one of these states means the site did submit (failed = our processing error, retried).
RECEIVED_STATUSES = ("accepted", "partially_accepted", "failed")
# The latest file of a site/period/kind in one of these states is sent back to the site's contact.
# no_rows_accepted: the file was read but every row was refused; for the site it is a refusal.
REFUSED_STATUSES = ("rejected", "no_rows_accepted")
FIX_STATUSES = ("rejected", "no_rows_accepted", "partially_accepted")


# --- the missing list ---------------------------------------------------------------------------
@dataclass
class MissingItem:
    site_code: str
    kind: str
    period: str
    programme: str
    town: str
    nominal_due: dt.date
    due_date: dt.date
    calendar_official: bool
    status: str  # open / resolved
    days_overdue: int
    escalated: bool
    last_rejected_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None

    @property
    def key(self) -> str:
        return item_key(self.site_code, self.kind, self.period)


def cutoff(as_of: dt.date) -> dt.datetime:
    """The end of the as-of day, as the naive Asia/Shanghai wall time the warehouse stores."""
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())


def load_manifest(conn: sa.Connection, as_of: dt.date) -> list[dict[str, Any]]:
    """Every file version received on or before the as-of day (Asia/Shanghai)."""
    s = warehouse.submissions
    rows = conn.execute(
        sa.select(
            s.c.submission_id,
            s.c.site_code,
            s.c.period,
            s.c.kind,
            s.c.original_name,
            s.c.received_at,
            s.c.status,
            s.c.rows_read,
            s.c.rows_quarantined,
        )
        .where(s.c.received_at < cutoff(as_of))
        .order_by(s.c.received_at, s.c.original_name, s.c.submission_id)
    ).mappings()
    return [dict(r) for r in rows]


def find_missing(
    expected: Iterable[ExpectedSubmission], manifest: list[dict[str, Any]], plan: Plan, as_of: dt.date
) -> list[MissingItem]:
    """Expected submissions overdue as of ``as_of``: still open, or received after the due date."""
    escalation = plan.policy.alerts.escalation_days
    first_received: dict[str, dt.datetime] = {}
    rejected: dict[str, list[dt.datetime]] = defaultdict(list)
    for row in manifest:
        key = item_key(row["site_code"], row["kind"], row["period"])
        if row["status"] in RECEIVED_STATUSES:
            first_received.setdefault(key, row["received_at"])
        elif row["status"] in REFUSED_STATUSES:
            rejected[key].append(row["received_at"])
    items = []
    for e in expected:
        if e.due_date >= as_of:
            continue  # not overdue yet
        received = first_received.get(e.key)
        if received is not None and received.date() <= e.due_date:
            continue  # in time
        if received is None:
            status, days = "open", (as_of - e.due_date).days
        else:
            status, days = "resolved", (received.date() - e.due_date).days
        refused = [r for r in rejected.get(e.key, []) if received is None or r <= received]
        items.append(
            MissingItem(
                site_code=e.site_code,
                kind=e.kind,
                period=e.period,
                programme=e.programme,
                town=plan.sites_by_code[e.site_code].town,
                nominal_due=e.nominal_due,
                due_date=e.due_date,
                calendar_official=e.calendar_official,
                status=status,
                days_overdue=days,
                escalated=days >= escalation,
                last_rejected_at=max(refused) if refused else None,
                resolved_at=received,
            )
        )
    return items


# --- rejected and partially accepted files --------------------------------------------------------
@dataclass
class FileToFix:
    submission_id: str
    site_code: str
    period: str
    kind: str
    original_name: str
    received_at: dt.datetime
    status: str
    rows_read: int
    rows_quarantined: int
    problems: list[tuple[int | None, str | None, str, str, str | None]] = field(default_factory=list)
    # (row in the original file or None for the whole file, column, reason_zh, reason_en, masked value)


def files_to_fix(conn: sa.Connection, manifest: list[dict[str, Any]], plan: Plan) -> list[FileToFix]:
    """The latest file of each site/period/kind received so far, when it was rejected or partially
    accepted (a later file supersedes it), with the quarantined rows and reasons."""
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in manifest:  # ordered by received time, then name: the last one wins
        latest[(row["site_code"], row["period"], row["kind"])] = row
    files = {
        r["submission_id"]: FileToFix(
            r["submission_id"],
            r["site_code"],
            r["period"],
            r["kind"],
            r["original_name"],
            r["received_at"],
            r["status"],
            int(r["rows_read"]),
            int(r["rows_quarantined"]),
        )
        for r in latest.values()
        if r["status"] in FIX_STATUSES and r["site_code"] in plan.sites_by_code
    }
    if not files:
        return []
    q = warehouse.quarantine
    ids = sorted(files)
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            sa.select(q.c.submission_id, q.c.source_row, q.c.column_name, q.c.reason_zh, q.c.reason_en, q.c.value)
            .where(q.c.submission_id.in_(ids[start : start + 500]))
            .order_by(q.c.submission_id, q.c.source_row, q.c.column_name, q.c.quarantine_id)
        )
        for sid, source_row, column, reason_zh, reason_en, value in rows:
            files[sid].problems.append((source_row, column, reason_zh, reason_en, value))
    return sorted(files.values(), key=lambda f: (f.site_code, f.received_at, f.original_name))
