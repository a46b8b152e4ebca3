"""Fixtures shared by the tests of the alert channels."""

from __future__ import annotations

import contextlib
import json

import pytest

from loopback_servers import LoopbackHttp, LoopbackSmtp

ROBOT_SECRET = "SECtest-robot-secret-operations"


@contextlib.contextmanager
def loopback_channels(monkeypatch, robot_secret: str, from_email: str):
    """A real SMTP server and a real HTTP server (DingTalk robot at /robot/send, webhook at /hook) on
    127.0.0.1, and the three Airflow connections pointing at them."""
    with LoopbackSmtp() as smtp, LoopbackHttp(robot_secret) as web:
        monkeypatch.setenv("AIRFLOW_CONN_YUHANG_SMTP", json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
            "extra": {"from_email": from_email, "disable_ssl": True, "disable_tls": True,
                      "retry_limit": 0, "timeout": 5}}))
        monkeypatch.setenv("AIRFLOW_CONN_YUHANG_DINGTALK", json.dumps({
            "conn_type": "http", "host": f"http://127.0.0.1:{web.port}/robot/send?access_token=robot-token",
            "password": robot_secret}))
        monkeypatch.setenv("AIRFLOW_CONN_YUHANG_WEBHOOK", json.dumps({
            "conn_type": "http", "host": f"http://127.0.0.1:{web.port}/hook"}))
        yield smtp, web


@pytest.fixture
def alert_channels(monkeypatch):
    """The loopback servers and connections, for the failure alerts."""
    with loopback_channels(monkeypatch, ROBOT_SECRET, "pipeline@hrss.yuhang.example") as servers:
        yield servers
