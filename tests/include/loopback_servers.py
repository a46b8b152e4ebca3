"""Real servers on 127.0.0.1 for the alert channels: an SMTP server (aiosmtpd) and an HTTP server
standing in for a DingTalk group robot and a generic webhook. Both can be switched to refuse
(SMTP 421 / HTTP 500) and back, and both keep what they received for the tests to read."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """Stop a server started in its own process group (``start_new_session=True``): SIGTERM,
    then SIGKILL if it has not exited within 30 s; then SIGKILL to whatever of the group outlived
    its parent (``airflow standalone``'s components, an api-server's workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    subject: str
    html: str


class _SmtpHandler:
    def __init__(self, server: "LoopbackSmtp"):
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd hook
        if self.server.refusing:  # an outage: the server answers, but takes nothing for now
            return "421 4.3.2 Service not available, closing transmission channel"
        if address in self.server.unknown_mailboxes:  # this address only, for good
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        body = message.get_body(preferencelist=("html", "plain"))
        self.server.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), str(message["subject"]),
                                      body.get_content() if body is not None else ""))
        return "250 Message accepted for delivery"


class LoopbackSmtp:
    """aiosmtpd on 127.0.0.1 with an ephemeral port."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.mails: list[Mail] = []
        self.refusing = False
        self.unknown_mailboxes: set[str] = set()
        self.port = free_port()
        self.controller = Controller(_SmtpHandler(self), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> "LoopbackSmtp":
        self.controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.controller.stop()

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.mails if address in m.recipients]


@dataclass
class HttpCall:
    path: str
    query: dict[str, str]
    body: dict[str, Any]
    status: int
    signature_valid: bool | None = None


@dataclass
class _State:
    calls: list[HttpCall] = field(default_factory=list)
    failing: dict[str, int] = field(default_factory=dict)  # path -> status answered instead
    dingtalk_secret: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


def dingtalk_sign_is_valid(secret: str, timestamp: str, sign: str, now_ms: int | None = None) -> bool:
    """DingTalk's own check, done independently: HMAC-SHA256 keyed with the secret over
    "timestamp\\nsecret", base64; the timestamp within an hour of now."""
    if not timestamp.isdigit():
        return False
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    if abs(now_ms - int(timestamp)) > 3600 * 1000:
        return False
    expected = base64.b64encode(hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode("utf-8"),
                                         hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, sign)


class _Handler(BaseHTTPRequestHandler):
    state: _State

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        return

    def do_POST(self) -> None:  # noqa: N802 - http.server hook
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        state = self.state
        if parts.path in state.failing:
            status = state.failing[parts.path]
            self._answer(status, {"error": "server unavailable"})
            call = HttpCall(parts.path, query, body, status)
        elif parts.path == "/robot/send":
            valid = dingtalk_sign_is_valid(state.dingtalk_secret, query.get("timestamp", ""), query.get("sign", ""))
            ok = valid and query.get("access_token") == "robot-token" and body.get("msgtype") == "markdown"
            self._answer(200, {"errcode": 0, "errmsg": "ok"} if ok else {"errcode": 310000, "errmsg": "sign not match"})
            call = HttpCall(parts.path, query, body, 200, valid)
        else:
            self._answer(200, {"received": True})
            call = HttpCall(parts.path, query, body, 200)
        with state.lock:
            state.calls.append(call)

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class LoopbackHttp:
    """ThreadingHTTPServer on 127.0.0.1: ``/robot/send`` answers like a DingTalk robot (checking the
    signature itself), any other path like a generic webhook; ``fail(path, 500)`` makes a path
    answer with that status until ``recover()``."""

    def __init__(self, dingtalk_secret: str):
        self.state = _State(dingtalk_secret=dingtalk_secret)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "LoopbackHttp":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, path: str, status: int) -> None:
        self.state.failing[path] = status

    def recover(self) -> None:
        self.state.failing.clear()

    def calls(self, path: str, ok_only: bool = True) -> list[HttpCall]:
        with self.state.lock:
            return [c for c in self.state.calls if c.path == path and (c.status == 200 or not ok_only)]
