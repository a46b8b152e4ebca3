"""The watchdog's tables: the calendar, the missing list and the early warnings it rebuilds, and
the alerts log (every message, its items and its outcome) that is its memory of who was told what.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from yuhang_skills.core import warehouse
from yuhang_skills.core.settings import Settings
from yuhang_skills.watchdog.calendar import ExpectedSubmission
from yuhang_skills.watchdog.messages import MISSING, RESOLVED, Composed, History
from yuhang_skills.watchdog.missing import MissingItem
from yuhang_skills.watchdog.warnings import EarlyWarning


def load_history(conn: sa.Connection, as_of: dt.date) -> History:
    a, i = warehouse.alerts, warehouse.alert_items
    rows = conn.execute(
        sa.select(
            a.c.channel,
            a.c.recipient,
            i.c.item_type,
            i.c.item_key,
            sa.func.max(a.c.as_of),
            sa.func.min(a.c.sent_at),
            sa.func.max(a.c.sent_at),
        )
        .join(i, i.c.alert_id == a.c.alert_id)
        .where(a.c.outcome == "sent", a.c.as_of <= as_of)
        .group_by(a.c.channel, a.c.recipient, i.c.item_type, i.c.item_key)
    )
    last: dict[tuple[str, str, str, str], dt.date] = {}
    state: dict[str, dict[str, dt.datetime | None]] = defaultdict(
        lambda: {"first_alerted": None, "last_alerted": None, "resolution_announced_at": None}
    )
    for channel, recipient, item_type, key, last_as_of, first_sent, last_sent in rows:
        last[(channel, recipient, item_type, key)] = as_date(last_as_of)
        if item_type == MISSING:
            s = state[key]
            s["first_alerted"] = min(filter(None, [s["first_alerted"], first_sent]), default=None)
            s["last_alerted"] = max(filter(None, [s["last_alerted"], last_sent]), default=None)
        elif item_type == RESOLVED:
            s = state[key]
            s["resolution_announced_at"] = min(filter(None, [s["resolution_announced_at"], first_sent]), default=None)
    return History(last, dict(state))


def as_date(value: Any) -> dt.date:
    """A date column as read back (SQLite may return text)."""
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def warehouse_engine(settings: Settings) -> sa.Engine:
    return warehouse.make_engine(settings.warehouse_url)


def write_calendar(engine: sa.Engine, expected: list[ExpectedSubmission], as_of: dt.date) -> int:
    rows = [
        {
            "site_code": e.site_code,
            "kind": e.kind,
            "period": e.period,
            "programme": e.programme,
            "period_start": e.period_start,
            "period_end": e.period_end,
            "nominal_due": e.nominal_due,
            "due_date": e.due_date,
            "shifted": e.due_date != e.nominal_due,
            "calendar_source": e.calendar_source,
            "calendar_official": e.calendar_official,
            "as_of": as_of,
        }
        for e in expected
    ]
    with engine.begin() as conn:
        return warehouse.replace_rows(conn, warehouse.expected_submissions, rows)


def read_calendar(conn: sa.Connection) -> list[ExpectedSubmission]:
    t = warehouse.expected_submissions
    return [
        ExpectedSubmission(
            r.site_code,
            r.kind,
            r.period,
            r.programme,
            as_date(r.period_start),
            as_date(r.period_end),
            as_date(r.nominal_due),
            as_date(r.due_date),
            r.calendar_source,
            bool(r.calendar_official),
        )
        for r in conn.execute(sa.select(t).order_by(t.c.site_code, t.c.kind, t.c.period))
    ]


def missing_rows(items: list[MissingItem], history: History, as_of: dt.date) -> list[dict[str, Any]]:
    empty = {"first_alerted": None, "last_alerted": None, "resolution_announced_at": None}
    return [
        {
            "site_code": m.site_code,
            "kind": m.kind,
            "period": m.period,
            "programme": m.programme,
            "town": m.town,
            "nominal_due": m.nominal_due,
            "due_date": m.due_date,
            "calendar_official": m.calendar_official,
            "status": m.status,
            "days_overdue": m.days_overdue,
            "escalated": m.escalated,
            "last_rejected_at": m.last_rejected_at,
            "resolved_at": m.resolved_at,
            **history.item_state.get(m.key, empty),
            "as_of": as_of,
        }
        for m in items
    ]


def warning_rows(warnings: list[EarlyWarning], as_of: dt.date) -> list[dict[str, Any]]:
    return [
        {
            "site_code": w.site_code,
            "year": w.year,
            "indicator": w.indicator,
            "programme": w.programme,
            "months_active": w.months_active,
            "months_reported": w.months_reported,
            "actual_to_date": w.actual_to_date,
            "numerator": w.numerator,
            "denominator": w.denominator,
            "run_rate_per_month": w.run_rate_per_month,
            "projected": w.projected,
            "target": w.target,
            "projected_shortfall": w.projected_shortfall,
            "at_risk": w.at_risk,
            "as_of": as_of,
        }
        for w in warnings
    ]


def read_missing(conn: sa.Connection) -> list[MissingItem]:
    t = warehouse.missing_submissions
    return [
        MissingItem(
            r.site_code,
            r.kind,
            r.period,
            r.programme,
            r.town,
            as_date(r.nominal_due),
            as_date(r.due_date),
            bool(r.calendar_official),
            r.status,
            int(r.days_overdue),
            bool(r.escalated),
            r.last_rejected_at,
            r.resolved_at,
        )
        for r in conn.execute(sa.select(t).order_by(t.c.site_code, t.c.period, t.c.kind))
    ]


def read_warnings(conn: sa.Connection) -> list[EarlyWarning]:
    t = warehouse.early_warnings
    return [
        EarlyWarning(
            r.site_code,
            int(r.year),
            r.indicator,
            r.programme,
            int(r.months_active),
            int(r.months_reported),
            Decimal(r.actual_to_date),
            Decimal(r.projected),
            Decimal(r.target),
            Decimal(r.run_rate_per_month) if r.run_rate_per_month is not None else None,
            r.numerator,
            r.denominator,
        )
        for r in conn.execute(sa.select(t).order_by(t.c.site_code, t.c.indicator))
    ]


def latest_sent_as_of(conn: sa.Connection) -> dt.date | None:
    """The as-of date of the newest run that delivered anything."""
    a = warehouse.alerts
    return conn.execute(sa.select(sa.func.max(a.c.as_of)).where(a.c.outcome == "sent")).scalar()


def record(engine: sa.Engine, as_of: dt.date, c: Composed, subject: str, markdown: str, delivery: Any) -> int:
    """One message in the alerts log with its items (its own transaction: what went out stays
    recorded whatever happens next), and the earlier undelivered messages it now carries."""
    t = c.recipient
    a = warehouse.alerts
    now = warehouse.shanghai_now()
    with engine.begin() as conn:
        key = conn.execute(
            a.insert().values(
                as_of=as_of,
                channel=t.channel,
                recipient=t.address,
                recipient_role=t.role,
                site_code=",".join(t.sites)[:40] if t.role == "site_contact" else None,
                subject=subject[:300],
                message=markdown,
                items=len(c.items),
                attempts=delivery.attempts,
                outcome=delivery.outcome,
                error=delivery.error,
                created_at=now,
                sent_at=now if delivery.outcome == "sent" else None,
            )
        ).inserted_primary_key
        assert key is not None  # an INSERT of one row reports its key
        alert_id = key[0]
        conn.execute(
            warehouse.alert_items.insert(),
            [{"alert_id": alert_id, "item_type": kind, "item_key": key} for kind, key in dict.fromkeys(c.items)],
        )
        if delivery.outcome == "sent":
            conn.execute(
                a.update()
                .where(
                    a.c.channel == t.channel,
                    a.c.recipient == t.address,
                    a.c.outcome != "sent",
                    a.c.follow_up.is_(None),
                    a.c.alert_id != alert_id,
                )
                .values(follow_up="resent", follow_up_alert_id=alert_id)
            )
    return int(alert_id)


def settle_no_longer_due(engine: sa.Engine, as_of: dt.date, this_run: set[tuple[str, str]]) -> None:
    """Undelivered messages to recipients with nothing due any more (their items were resolved
    before delivery) are marked so: nothing of them is left to send."""
    a = warehouse.alerts
    with engine.begin() as conn:
        pending = conn.execute(
            sa.select(a.c.alert_id, a.c.channel, a.c.recipient).where(
                a.c.outcome != "sent", a.c.follow_up.is_(None), a.c.as_of <= as_of
            )
        ).all()
        stale = [r.alert_id for r in pending if (r.channel, r.recipient) not in this_run]
        if stale:
            conn.execute(a.update().where(a.c.alert_id.in_(stale)).values(follow_up="no_longer_due"))
