"""How tasks fail: retries for transient errors only, bilingual "run that DAG first" errors.

Light on purpose (standard library only at import): DAG files import it when they are parsed.

A task's error is *transient* when trying again later can succeed without anyone changing
anything: the network (refused or reset connections, timeouts, DNS), the database connection
(PostgreSQL restarting, a dropped connection, a locked SQLite or DuckDB file). Everything else is
deterministic (bad data, a missing table, a policy error, a bug): it is re-raised as
``AirflowFailException``, which fails the task at once without using its retries.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

# Text of database errors that a later try can get past (the driver's message, lower case).
_TRANSIENT_DB_TEXT = (
    "database is locked",
    "could not connect",
    "connection refused",
    "connection reset",
    "server closed the connection",
    "terminating connection",
    "connection timed out",
    "could not translate host name",
    "the database system is starting up",
    "the database system is shutting down",
    "too many clients",
    "could not serialize access",
    "deadlock detected",
    "could not set lock",
    "conflicting lock",
    "timeout expired",
    "ssl syscall error",
    "connection already closed",
)


class PrerequisiteMissing(RuntimeError):
    """What a task needs is not in the warehouse yet; the message names the DAG to run first, in
    Chinese and English. Deterministic: retrying cannot help."""

    def __init__(self, dag_id: str, what_zh: str, what_en: str):
        self.dag_id = dag_id
        super().__init__(f"{what_zh}：请先运行 {dag_id}。 / {what_en}: run {dag_id} first.")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _transient_one(exc: BaseException) -> bool:
    import smtplib
    import socket

    if isinstance(exc, PrerequisiteMissing):
        return False
    if isinstance(
        exc,
        (
            ConnectionError,
            TimeoutError,
            socket.gaierror,
            socket.timeout,
            smtplib.SMTPServerDisconnected,
            smtplib.SMTPConnectError,
        ),
    ):
        return True
    module = type(exc).__module__ or ""
    name = type(exc).__name__
    if module.startswith(("requests", "urllib3", "httpx", "httpcore")):
        if name in (
            "ConnectionError",
            "Timeout",
            "ConnectTimeout",
            "ReadTimeout",
            "ProxyError",
            "NewConnectionError",
            "MaxRetryError",
            "ProtocolError",
            "ConnectError",
            "ReadError",
            "RemoteProtocolError",
            "PoolTimeout",
            "ConnectTimeout",
            "ChunkedEncodingError",
        ):
            return True
        response = getattr(exc, "response", None)  # requests.HTTPError: a server error may pass
        status = getattr(response, "status_code", None)
        return name == "HTTPError" and status is not None and (status >= 500 or status == 429)
    if module.startswith("sqlalchemy"):
        if name in ("DisconnectionError", "TimeoutError"):  # pool exhausted, connection dropped
            return True
        if getattr(exc, "connection_invalidated", False):
            return True
        if name in ("OperationalError", "InterfaceError"):
            text = str(getattr(exc, "orig", exc)).lower()
            return any(t in text for t in _TRANSIENT_DB_TEXT)
        return False
    if module.startswith(("psycopg2", "psycopg", "sqlite3", "duckdb")):
        text = str(exc).lower()
        return any(t in text for t in _TRANSIENT_DB_TEXT)
    return False


def is_transient(exc: BaseException) -> bool:
    """Whether a later try of the same task can succeed: the error, or an error it was raised
    from, is a network or database-connection failure."""
    return any(_transient_one(e) for e in _chain(exc))


def first_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0] if text else type(exc).__name__


def fail_fast_unless_transient(function: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a task's callable: transient errors propagate (Airflow retries them), deterministic ones
    become ``AirflowFailException`` (no retries) with the original type and message, chained."""
    if getattr(function, "_yuhang_fail_fast", False):
        return function

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        try:
            return function(*args, **kwargs)
        except AirflowException:  # Airflow's own signals (fail, skip, reschedule) keep their meaning
            raise
        except Exception as exc:
            if is_transient(exc):
                raise
            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc

    wrapper._yuhang_fail_fast = True  # type: ignore[attr-defined]
    return wrapper


_ID_LIKE = re.compile(r"(?<![0-9A-Za-z])\d{6}(\d{8})\d{3}[\dXx](?![0-9A-Za-z])|(?<!\d)1\d{10}(?!\d)")


def mask_personal_numbers(text: str) -> str:
    """ID-card-like (18 characters) and mobile-number-like (11 digits) runs in error text, masked
    before the text leaves the pipeline."""
    return _ID_LIKE.sub("[masked]", text)
