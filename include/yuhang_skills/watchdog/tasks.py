"""What the ``yuhang_watchdog`` DAG's tasks call: rebuild the calendar, rebuild the missing list and
the early warnings, and send what each recipient is due to hear.

Only live runs send (D no more than ``backfill_grace_days`` before today); reruns and backfills
rebuild the tables and send nothing. What a channel could not deliver is recorded and, never
having been delivered, is due again at the next run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from yuhang_skills.core import warehouse
from yuhang_skills.core.policy import Plan
from yuhang_skills.core.settings import load_settings
from yuhang_skills.watchdog.calendar import expected_submissions
from yuhang_skills.watchdog.messages import Composed, Renderer, compose
from yuhang_skills.watchdog.missing import files_to_fix, find_missing, load_manifest
from yuhang_skills.watchdog.store import (
    as_date,
    latest_sent_as_of,
    load_history,
    missing_rows,
    read_calendar,
    read_missing,
    read_warnings,
    record,
    settle_no_longer_due,
    warehouse_engine,
    warning_rows,
    write_calendar,
)
from yuhang_skills.watchdog.warnings import early_warnings

log = logging.getLogger(__name__)


def build_calendar(as_of: str) -> dict[str, Any]:
    """Rebuild ``expected_submissions`` as of the run's date."""
    settings = load_settings(use_airflow=True)
    plan = Plan.from_settings(settings)
    day = dt.date.fromisoformat(as_of)
    expected = expected_submissions(plan, day)
    written = write_calendar(warehouse_engine(settings), expected, day)
    shifted = sum(e.due_date != e.nominal_due for e in expected)
    unofficial = sorted({e.due_date.year for e in expected if not e.calendar_official})
    if unofficial:
        log.info(
            "due dates in %s were computed without an official holiday calendar (policy provisional list)", unofficial
        )
    return {"as_of": as_of, "expected": written, "shifted": shifted, "unofficial_years": unofficial}


def build_missing_list(as_of: str) -> dict[str, Any]:
    """Rebuild ``missing_submissions`` and ``early_warnings`` as of the run's date (files received on
    or before it; alert state from the alerts delivered by then)."""
    settings = load_settings(use_airflow=True)
    plan = Plan.from_settings(settings)
    day = dt.date.fromisoformat(as_of)
    engine = warehouse_engine(settings)
    with engine.begin() as conn:
        expected = read_calendar(conn)
        manifest = load_manifest(conn, day)
        items = find_missing(expected, manifest, plan, day)
        warnings = early_warnings(conn, plan, day, expected)
        history = load_history(conn, day)
        warehouse.replace_rows(conn, warehouse.missing_submissions, missing_rows(items, history, day))
        warehouse.replace_rows(conn, warehouse.early_warnings, warning_rows(warnings, day))
    open_items = [m for m in items if m.status == "open"]
    return {
        "as_of": as_of,
        "open": len(open_items),
        "escalated": sum(m.escalated for m in open_items),
        "resolved_late": len(items) - len(open_items),
        "early_warnings_at_risk": sum(w.at_risk for w in warnings),
    }


def is_live(plan: Plan, as_of: dt.date, today: dt.date) -> bool:
    """A run speaks for the present when its as-of date is today or within the grace days before
    it (never a date still to come)."""
    return today - dt.timedelta(days=plan.policy.alerts.backfill_grace_days) <= as_of <= today


def send_alerts(as_of: str, today: str | None, send: bool, context: Any) -> dict[str, Any]:
    """Compose and send what each recipient is due to hear, record every message and its outcome,
    and bring the alert state of ``missing_submissions`` up to date. Runs for past dates
    (reruns, backfills) and runs with ``send`` false send nothing."""
    settings = load_settings(use_airflow=True)
    plan = Plan.from_settings(settings)
    day = dt.date.fromisoformat(as_of)
    now_day = dt.date.fromisoformat(today) if today else warehouse.shanghai_now().date()
    engine = warehouse_engine(settings)
    with engine.connect() as conn:
        newer = latest_sent_as_of(conn)
    reason = None
    if not send:
        reason = "send_alerts is off"
    elif not is_live(plan, day, now_day):
        reason = (
            f"as-of {day} is not between {plan.policy.alerts.backfill_grace_days} day(s) before today "
            f"{now_day} and today"
        )
    elif newer is not None and as_date(newer) > day:
        reason = f"a run as of {as_date(newer)} has already sent alerts; an earlier as-of speaks for the past"
    if reason:
        log.info("rebuild only, nothing sent: %s", reason)
        return {"as_of": as_of, "mode": "rebuild_only", "reason": reason, "messages": 0}
    with engine.connect() as conn:
        items = read_missing(conn)
        files = files_to_fix(conn, load_manifest(conn, day), plan)
        warnings = read_warnings(conn)
        history = load_history(conn, day)
    composed = compose(plan, day, items, files, warnings, history)
    outcomes = dispatch(engine, plan, day, composed, context)
    with engine.begin() as conn:
        history = load_history(conn, day)
        t = warehouse.missing_submissions
        for key, state in history.item_state.items():
            site_code, kind, period = key.split("/")
            conn.execute(
                t.update().where(t.c.site_code == site_code, t.c.kind == kind, t.c.period == period).values(**state)
            )
    return {"as_of": as_of, "mode": "live", "messages": len(composed), **outcomes}


def dispatch(engine: sa.Engine, plan: Plan, as_of: dt.date, composed: list[Composed], context: Any) -> dict[str, int]:
    """Send each composed message on its channel (with back-off), record it with its items, and
    settle earlier undelivered messages to the same recipient. A channel that failed every attempt
    (unreachable, timing out, answering with server errors) is not tried again in this run: its other
    messages are recorded as failed for the next run. A message the channel refuses on its own (a
    mailbox the mail server does not accept) fails alone."""
    from yuhang_skills.watchdog import channels

    alerts = plan.policy.alerts
    renderer = Renderer(plan, as_of)
    configured = {
        name: channels.channel_configured(ch)
        for name, ch in alerts.channels.items()
        if any(c.recipient.channel == name for c in composed)
    }
    down: dict[str, str] = {}
    counts: dict[str, int] = defaultdict(int)
    this_run: set[tuple[str, str]] = set()
    for c in composed:
        t = c.recipient
        subject, markdown, page, payload = renderer.render(c)
        message = channels.OutgoingMessage(t.address, subject, markdown, page, payload)
        if not configured[t.channel]:
            delivery = channels.Delivery(
                "not_configured", 0, f"no Airflow connection {alerts.channels[t.channel].connection_id!r}"
            )
        elif t.channel in down:
            delivery = channels.Delivery("failed", 0, f"channel failed earlier in this run: {down[t.channel]}")
        else:
            notifier = channels.build_notifier(alerts.channels[t.channel], message, alerts.retry)
            delivery = channels.deliver(notifier, context, alerts.retry)
            if delivery.outcome == "failed" and delivery.channel_down:
                down[t.channel] = delivery.error or "failed"
        counts[delivery.outcome] += 1
        this_run.add((t.channel, t.address))
        record(engine, as_of, c, subject, markdown, delivery)
    settle_no_longer_due(engine, as_of, this_run)
    for outcome in ("failed", "not_configured"):
        if counts.get(outcome):
            log.warning(
                "%d message(s) %s; recorded in the alerts table, due again at the next run", counts[outcome], outcome
            )
    return dict(counts)
