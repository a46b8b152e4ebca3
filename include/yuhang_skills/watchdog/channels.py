"""Airflow notifiers for the submissions watchdog, and delivery with back-off.

Three channels, each configured by an Airflow connection (ids in the policy file, ``alerts.channels``):

- e-mail through the SMTP provider's :class:`SmtpNotifier` (connection type ``smtp``);
- a DingTalk group robot (自定义机器人): :class:`DingTalkNotifier` posts a markdown message to the
  robot's webhook, signed with the robot's secret (加签) as DingTalk specifies;
- a generic webhook: :class:`WebhookNotifier` posts the alert as JSON.

Message text contains what sites sent (file names, masked cell values), so it is never rendered as
a Jinja template: the watchdog calls ``notify`` directly, and these notifiers declare no template
fields. :func:`deliver` retries a channel that is down with exponential back-off and reports what
happened instead of raising, so the watchdog can record it and try again on its next run.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow.providers.http.hooks.http import HttpHook
from airflow.providers.http.notifications.http import HttpNotifier
from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.sdk import BaseNotifier

from yuhang_skills.core.policy import AlertChannel, RetryPolicy

log = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    """A channel accepted the request but said it did not deliver (e.g. DingTalk errcode != 0)."""


def dingtalk_signature(secret: str, timestamp_ms: int) -> str:
    """DingTalk robot signature (加签): base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")).

    The value goes into the webhook URL as ``sign`` next to ``timestamp`` (URL-encoded once, which
    the HTTP client does); DingTalk rejects timestamps more than an hour off its clock.
    """
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, digestmod=hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


TRUNCATED_NOTE = "……（内容过长，以下从略；完整清单见邮件或数据平台 missing_submissions 表）"


def fit_text(text: str, max_bytes: int | None) -> str:
    """``text`` cut at a line boundary so that it and a note saying so fit in ``max_bytes`` (UTF-8)."""
    if not max_bytes or len(text.encode()) <= max_bytes:
        return text
    budget = max_bytes - len(("\n\n" + TRUNCATED_NOTE).encode())
    kept: list[str] = []
    used = 0
    for line in text.split("\n"):
        size = len(line.encode()) + 1
        if used + size > budget:
            break
        kept.append(line)
        used += size
    return "\n".join(kept).rstrip() + "\n\n" + TRUNCATED_NOTE


class DingTalkNotifier(BaseNotifier):
    """Post a markdown message to a DingTalk group robot.

    The HTTP connection holds the robot's webhook URL as its host (with ``access_token`` in the
    query, e.g. ``https://oapi.dingtalk.com/robot/send?access_token=…``) and the robot's secret
    (SEC…) as its password; without a password the message goes unsigned (robots secured by
    keywords or IP lists). DingTalk answers HTTP 200 with ``{"errcode": 0}``; any other errcode is
    a failed delivery.
    """

    template_fields = ()

    def __init__(
        self,
        *,
        dingtalk_conn_id: str,
        title: str,
        text: str,
        timeout_seconds: float = 20,
        max_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.dingtalk_conn_id = dingtalk_conn_id
        self.title = title
        self.text = fit_text(text, max_bytes)
        self.timeout_seconds = timeout_seconds
        self.clock = clock

    def payload(self) -> dict[str, Any]:
        return {"msgtype": "markdown", "markdown": {"title": self.title, "text": self.text}}

    def notify(self, context: Any) -> None:
        hook = HttpHook(method="POST", http_conn_id=self.dingtalk_conn_id)
        secret = hook.get_connection(self.dingtalk_conn_id).password
        params: dict[str, str] = {}
        if secret:
            timestamp = int(self.clock() * 1000)
            params = {"timestamp": str(timestamp), "sign": dingtalk_signature(secret, timestamp)}
        response = hook.run(
            json=self.payload(), params=params, extra_options={"timeout": self.timeout_seconds, "check_response": True}
        )
        try:
            answer = response.json()
        except ValueError:
            raise DeliveryError(f"DingTalk answered HTTP {response.status_code} without JSON") from None
        if answer.get("errcode") != 0:
            raise DeliveryError(f"DingTalk errcode {answer.get('errcode')}: {answer.get('errmsg')}")


class WebhookNotifier(HttpNotifier):
    """POST the alert as JSON to a generic webhook (an HTTP connection: host = URL; login/password
    for basic auth, or headers such as ``Authorization`` in the connection's extra). Any answer
    outside 2xx/3xx is a failed delivery."""

    # BaseNotifier declares Sequence[str]; the provider's class narrows it to its own fields' tuple.
    template_fields = ()  # type: ignore[assignment]

    def __init__(self, *, http_conn_id: str, payload: dict[str, Any], timeout_seconds: float = 20, **kwargs: Any):
        super().__init__(
            http_conn_id=http_conn_id,
            method="POST",
            json=payload,
            headers={"Content-Type": "application/json; charset=utf-8"},
            extra_options={"timeout": timeout_seconds, "check_response": True},
            **kwargs,
        )


class AlertEmailNotifier(SmtpNotifier):
    """The SMTP provider's notifier with its message taken as given (no template rendering)."""

    template_fields = ()  # type: ignore[assignment]  # as WebhookNotifier's


@dataclass(frozen=True)
class OutgoingMessage:
    """One message for one recipient on one channel, in the forms the channels need."""

    recipient: str  # e-mail address (smtp) or the channel's connection id
    subject: str
    markdown: str
    html: str
    payload: dict[str, Any]  # the webhook's JSON body


def build_notifier(channel: AlertChannel, message: OutgoingMessage, retry: RetryPolicy) -> BaseNotifier:
    """The notifier that sends ``message`` on ``channel`` (its kind decides which)."""
    if channel.kind == "smtp":
        return AlertEmailNotifier(
            to=message.recipient, subject=message.subject, html_content=message.html, smtp_conn_id=channel.connection_id
        )
    if channel.kind == "dingtalk":
        return DingTalkNotifier(
            dingtalk_conn_id=channel.connection_id,
            title=message.subject,
            text=message.markdown,
            timeout_seconds=retry.timeout_seconds,
            max_bytes=channel.max_message_bytes,
        )
    if channel.kind == "webhook":
        return WebhookNotifier(
            http_conn_id=channel.connection_id, payload=message.payload, timeout_seconds=retry.timeout_seconds
        )
    raise ValueError(f"unknown channel kind {channel.kind!r}")


def channel_configured(channel: AlertChannel) -> bool:
    """Whether the channel's Airflow connection exists (environment, secrets backend or metadata DB)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(channel.connection_id)
    except AirflowNotFoundException:
        return False
    return True


@dataclass(frozen=True)
class Delivery:
    outcome: str  # sent / failed
    attempts: int
    error: str | None = None
    channel_down: bool = False  # failed every attempt for a reason that is the channel's, not the message's


def refused_message(exc: BaseException) -> bool:
    """Whether the failure is this message's alone: the mail server refused its recipients or its
    content (a permanent 5xx answer to the message). Retrying cannot help, and the channel works."""
    import smtplib

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, smtplib.SMTPRecipientsRefused):  # 4xx answers are an outage, 5xx are for good
            return all(500 <= code < 600 for code, _ in seen.recipients.values())
        if isinstance(seen, smtplib.SMTPDataError) and 500 <= seen.smtp_code < 600:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def deliver(
    notifier: BaseNotifier, context: Any, retry: RetryPolicy, sleep: Callable[[float], None] = time.sleep
) -> Delivery:
    """Send with ``retry.attempts`` tries and growing waits between them; never raises for a
    channel failure (the error of the last attempt is returned for the alerts log). A message the
    server refuses on its own is not retried and does not mark the channel down."""
    waits = retry.waits()
    error = None
    for attempt in range(1, retry.attempts + 1):
        try:
            notifier.notify(context)
            return Delivery("sent", attempt)
        except Exception as exc:  # noqa: BLE001 - any failure of the channel is recorded, not raised
            error = f"{type(exc).__name__}: {exc}"[:2000]
            if refused_message(exc):
                log.warning("message refused, not retried: %s", error)
                return Delivery("failed", attempt, error)
            log.warning("delivery attempt %d/%d failed: %s", attempt, retry.attempts, error)
            if attempt < retry.attempts:
                sleep(waits[attempt - 1])
    return Delivery("failed", retry.attempts, error, channel_down=True)
