"""Failures reach a person: a failed DAG run, or a daily intake past its deadline, tells the
district team on the watchdog's channels (e-mail, DingTalk group robot, webhook; Airflow
connections ``yuhang_smtp``, ``yuhang_dingtalk``, ``yuhang_webhook``).

- :func:`record_task_failure` (every task's ``on_failure_callback``) keeps the failed task's error,
  its first lines only, in the warehouse table ``task_failures``: a DAG-level callback does not
  see the exception.
- :class:`PipelineFailureNotifier` (every DAG's ``on_failure_callback``) sends one message per
  recipient and channel naming the DAG, each failed task, the run, the error's first lines and the
  log link.
- :func:`intake_deadline_missed` is the Deadline Alert's callback (runs in the triggerer).

De-duplicated like the watchdog's messages: the same failure (DAG, task, first error line) goes to
the same recipient on the same channel at most once per ``operations.failure_alerts.
resend_interval_hours``; every message and its outcome is in ``failure_alerts``; an undelivered one
does not count as told. Light at import (DAG files import it when parsed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

TASK_FAILURE = "task_failure"
DEADLINE_MISSED = "deadline_missed"


@dataclass(frozen=True)
class Failure:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    error: str | None  # the first lines, personal numbers masked; None when not recorded
    log_url: str | None

    @property
    def key(self) -> str:
        """What makes two failures the same for de-duplication: DAG, task and the first error line."""
        first = (self.error or "").splitlines()[0] if self.error else ""
        return f"{self.dag_id}/{self.task_id}/{hashlib.sha256(first.encode()).hexdigest()[:16]}"


def shanghai_time(value: Any) -> str | None:
    """A moment (datetime or ISO text, UTC when naive) as Asia/Shanghai wall time, for people."""
    from zoneinfo import ZoneInfo

    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S (Asia/Shanghai)")
    return str(value)


def _plan_and_engine() -> tuple[Any, Any]:
    from yuhang_skills.core import warehouse
    from yuhang_skills.core.migrations import migrate
    from yuhang_skills.core.policy import Plan
    from yuhang_skills.core.settings import load_settings

    settings = load_settings(use_airflow=True)
    plan = Plan.from_settings(settings)
    engine = warehouse.make_engine(settings.warehouse_url)
    migrate(engine)
    return plan, engine


def error_text(exc: BaseException | None, lines: int) -> str | None:
    """The error's first ``lines`` lines (type and message), personal numbers masked."""
    from airflow.sdk.exceptions import AirflowFailException

    from yuhang_skills.orchestration.operations import mask_personal_numbers

    if exc is None:
        return None
    text = str(exc) if isinstance(exc, AirflowFailException) and str(exc) else f"{type(exc).__name__}: {exc}"
    kept = [line.rstrip() for line in text.strip().splitlines()][:lines]
    return mask_personal_numbers("\n".join(kept))


def record_task_failure(context: Any) -> None:
    """Task callback: keep the failed task's error for the run's failure alert. Never raises: a
    warehouse that cannot be reached must not hide the task's own failure."""
    try:
        from yuhang_skills.core import warehouse

        plan, engine = _plan_and_engine()
        ti = context["ti"]
        lines = plan.policy.operations.failure_alerts.error_lines
        try:
            with engine.begin() as conn:
                conn.execute(
                    warehouse.task_failures.insert().values(
                        dag_id=ti.dag_id,
                        run_id=ti.run_id,
                        task_id=ti.task_id,
                        map_index=ti.map_index if ti.map_index is not None else -1,
                        try_number=ti.try_number or 0,
                        error=error_text(context.get("exception"), lines),
                        log_url=getattr(ti, "log_url", None),
                        failed_at=warehouse.shanghai_now(),
                    )
                )
        finally:
            engine.dispose()
    except Exception:  # noqa: BLE001 - bookkeeping only
        log.exception("could not record the task failure for the failure alert")


def run_failures(engine: Any, dag_id: str, run_id: str) -> list[Failure]:
    """The last recorded failure of each failed task (and map index) of a run."""
    import sqlalchemy as sa

    from yuhang_skills.core import warehouse

    t = warehouse.task_failures
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t).where(t.c.dag_id == dag_id, t.c.run_id == run_id).order_by(t.c.failure_id)
        ).all()
    latest: dict[tuple[str, int], Failure] = {}
    for r in rows:
        latest[(r.task_id, r.map_index)] = Failure(
            r.dag_id, r.run_id, r.task_id, r.map_index, r.try_number, r.error, r.log_url
        )
    return [latest[k] for k in sorted(latest)]


@dataclass(frozen=True)
class Message:
    subject: str
    markdown: str
    html: str
    payload: dict[str, Any]


def failure_message(
    plan: Any, dag_id: str, dag_name: str | None, run_id: str, logical_date: Any, failures: list[Failure]
) -> Message:
    """The failed run's message (templates ``run_failed.*.j2`` of the watchdog)."""
    from yuhang_skills.watchdog.messages import render

    values = {
        "prefix": plan.policy.alerts.subject_prefix,
        "dag_id": dag_id,
        "run_id": run_id,
        "title": f"{dag_name} ({dag_id})" if dag_name and dag_name != dag_id else dag_id,
        "logical_date": logical_date,
        "failures": failures,
    }
    payload = {
        "source": "yuhang-pipeline",
        "event": "dag_run_failed",
        "dag_id": dag_id,
        "dag_display_name": dag_name,
        "run_id": run_id,
        "logical_date": str(logical_date),
        "tasks": [
            {
                "task_id": f.task_id,
                "map_index": f.map_index,
                "try_number": f.try_number,
                "error": f.error,
                "log_url": f.log_url,
            }
            for f in failures
        ],
    }
    return Message(
        render("run_failed.subject.j2", **values),
        render("run_failed.md.j2", **values),
        render("run_failed.html.j2", **values),
        payload,
    )


def tell_district(
    plan: Any, engine: Any, kind: str, dag_id: str, run_id: str, keys: list[str], message: Message, context: Any
) -> dict[str, int]:
    """Send ``message`` to the district team on each of its channels, unless every key in it was
    told to that recipient on that channel within the resend interval; record each outcome."""
    import sqlalchemy as sa

    from yuhang_skills.core import warehouse
    from yuhang_skills.watchdog import channels

    alerts = plan.policy.alerts
    interval = dt.timedelta(hours=plan.policy.operations.failure_alerts.resend_interval_hours)
    now = warehouse.shanghai_now()
    role = alerts.recipients["district_team"]
    counts: dict[str, int] = {}
    for name in role.channels:
        channel = alerts.channels[name]
        recipients = list(role.emails) if channel.kind == "smtp" else [channel.connection_id]
        for recipient in recipients:
            told: set[str] = set()
            if engine is not None:
                t = warehouse.failure_alerts
                with engine.connect() as conn:
                    told = {
                        r[0]
                        for r in conn.execute(
                            sa.select(t.c.item_key).where(
                                t.c.channel == name,
                                t.c.recipient == recipient,
                                t.c.outcome == "sent",
                                t.c.sent_at >= now - interval,
                                t.c.item_key.in_(keys),
                            )
                        )
                    }
            if keys and set(keys) <= told:
                counts["deduplicated"] = counts.get("deduplicated", 0) + 1
                continue
            if not channels.channel_configured(channel):
                delivery = channels.Delivery("not_configured", 0, f"no Airflow connection {channel.connection_id!r}")
            else:
                outgoing = channels.OutgoingMessage(
                    recipient, message.subject, message.markdown, message.html, message.payload
                )
                delivery = channels.deliver(
                    channels.build_notifier(channel, outgoing, alerts.retry), context, alerts.retry
                )
            counts[delivery.outcome] = counts.get(delivery.outcome, 0) + 1
            if engine is None:
                continue
            with engine.begin() as conn:
                conn.execute(
                    warehouse.failure_alerts.insert(),
                    [
                        {
                            "kind": kind,
                            "dag_id": dag_id,
                            "run_id": run_id,
                            "item_key": key,
                            "channel": name,
                            "recipient": recipient,
                            "subject": message.subject[:300],
                            "message": message.markdown,
                            "attempts": delivery.attempts,
                            "outcome": delivery.outcome,
                            "error": delivery.error,
                            "created_at": now,
                            "sent_at": now if delivery.outcome == "sent" else None,
                        }
                        for key in keys
                    ],
                )
    log.info("failure alert %s for %s %s: %s", kind, dag_id, run_id, counts)
    return counts


class PipelineFailureNotifier(BaseNotifier):
    """DAG-level failure notifier: the failed tasks of the run, their errors' first lines and log
    links, to the district team on the watchdog's channels, de-duplicated."""

    template_fields = ()  # error text is data, never rendered as a template

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Nothing to render; and the DAG a run's callback receives may be the serialized one,
        which has no template environment."""
        return None

    def notify(self, context: Any) -> None:
        from yuhang_skills.orchestration.operations import mask_personal_numbers

        dag_run = context.get("dag_run")
        ti = context.get("ti") or context.get("task_instance")
        dag = context.get("dag")
        dag_id = str(getattr(dag_run, "dag_id", None) or getattr(ti, "dag_id", None) or getattr(dag, "dag_id", "?"))
        run_id = str(getattr(dag_run, "run_id", None) or context.get("run_id") or getattr(ti, "run_id", "?"))
        plan, engine = None, None
        try:
            plan, engine = _plan_and_engine()
            failures = run_failures(engine, dag_id, run_id)
        except Exception:  # noqa: BLE001 - the warehouse may be what failed: tell without the record
            log.exception("warehouse unavailable: the failure alert goes out without de-duplication")
            failures = []
            if engine is not None:
                engine.dispose()
            engine = None
            if plan is None:
                from yuhang_skills.core.policy import Plan
                from yuhang_skills.core.settings import load_settings

                plan = Plan.from_settings(load_settings(use_airflow=True))
        if not failures and ti is not None:
            failures = [
                Failure(
                    dag_id,
                    run_id,
                    ti.task_id,
                    ti.map_index if ti.map_index is not None else -1,
                    ti.try_number or 0,
                    None,
                    getattr(ti, "log_url", None),
                )
            ]
        name = getattr(dag, "dag_display_name", None)
        logical = shanghai_time(context.get("logical_date") or getattr(dag_run, "logical_date", None))
        message = failure_message(plan, dag_id, name, run_id, logical, failures)
        message = Message(mask_personal_numbers(message.subject), message.markdown, message.html, message.payload)
        try:
            tell_district(plan, engine, TASK_FAILURE, dag_id, run_id, [f.key for f in failures], message, context)
        finally:
            if engine is not None:
                engine.dispose()


def deadline_message(plan: Any, dag_id: str, run_id: str, logical_date: Any, deadline_time: Any) -> Message:
    """The message of a run past its deadline (templates ``deadline_missed.*.j2`` of the watchdog)."""
    from yuhang_skills.watchdog.messages import render

    values = {
        "prefix": plan.policy.alerts.subject_prefix,
        "dag_id": dag_id,
        "run_id": run_id,
        "logical_date": logical_date,
        "deadline_time": deadline_time,
    }
    payload = {
        "source": "yuhang-pipeline",
        "event": "deadline_missed",
        "dag_id": dag_id,
        "run_id": run_id,
        "logical_date": str(logical_date),
        "deadline": str(deadline_time),
    }
    return Message(
        render("deadline_missed.subject.j2", **values),
        render("deadline_missed.md.j2", **values),
        render("deadline_missed.html.j2", **values),
        payload,
    )


def send_deadline_alert(context: dict[str, Any]) -> dict[str, int]:
    """What the Deadline Alert's callback does, synchronously: tell the district team once per run."""
    dag_run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    dag_id, run_id = dag_run.get("dag_id", "?"), dag_run.get("dag_run_id") or dag_run.get("run_id", "?")
    try:
        plan, engine = _plan_and_engine()
    except Exception:  # noqa: BLE001 - tell without de-duplication rather than not at all
        log.exception("warehouse unavailable: the deadline alert goes out without de-duplication")
        from yuhang_skills.core.policy import Plan
        from yuhang_skills.core.settings import load_settings

        plan, engine = Plan.from_settings(load_settings(use_airflow=True)), None
    message = deadline_message(
        plan, dag_id, run_id, shanghai_time(dag_run.get("logical_date")), shanghai_time(deadline.get("deadline_time"))
    )
    try:
        return tell_district(
            plan, engine, DEADLINE_MISSED, dag_id, run_id, [f"deadline/{dag_id}/{run_id}"], message, context
        )
    finally:
        if engine is not None:
            engine.dispose()


async def intake_deadline_missed(context: dict[str, Any], **_: Any) -> None:
    """Deadline Alert callback (the triggerer awaits it): the daily intake has not finished in time."""
    import asyncio

    await asyncio.to_thread(send_deadline_alert, context)
