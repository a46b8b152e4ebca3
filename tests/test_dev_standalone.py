"""The README's way to the Airflow UI, run as written: ``./dev airflow standalone`` starts the
scheduler, dag-processor, triggerer and api-server, the api-server listens on 127.0.0.1 only, and
the health endpoint reports the components healthy. Its own AIRFLOW_HOME and a free port; the whole
process group is stopped at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.include.loopback_servers import free_port

PROJECT_DIR = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 240  # seconds; a fresh metadata database is migrated first


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without this test session's Airflow and pipeline settings, as a
    new shell would have it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "YUHANG_", "PYTEST", "VIRTUAL_ENV"))}
    env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":") if ".venv" not in p) or "/usr/bin:/bin"
    return {**env, **extra}


def health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5) as answer:
            return json.loads(answer.read())
    except OSError:
        return None


def listening_addresses(port: int) -> set[str]:
    import psutil

    return {c.laddr.ip for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    try:  # components that outlived their parent
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_dev_airflow_standalone_starts_healthy_on_localhost_only(tmp_path):
    port = free_port()
    home = tmp_path / "airflow"
    env = clean_env(AIRFLOW_HOME=str(home), AIRFLOW__API__PORT=str(port))
    log_path = tmp_path / "standalone.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(["./dev", "airflow", "standalone"], cwd=PROJECT_DIR, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        state = None
        while time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text(errors="replace")[-4000:]
            state = health(port)
            if state and all((state.get(c) or {}).get("status") == "healthy"
                             for c in ("metadatabase", "scheduler", "dag_processor", "triggerer")):
                break
            time.sleep(2)
        else:
            pytest.fail(f"not healthy after {READY_TIMEOUT}s: {state}\n{log_path.read_text(errors='replace')[-4000:]}")
        assert listening_addresses(port) == {"127.0.0.1"}
        assert (home / "airflow.db").is_file()  # the metadata database is the test's own
        output = log_path.read_text(errors="replace")
        assert "FileNotFoundError" not in output
    finally:
        stop(process)
    assert health(port) is None


def test_local_and_compose_configuration_speak_asia_shanghai():
    """Schedules and the trigger form's dates are Asia/Shanghai locally and under docker-compose.
    Airflow 3 removed [webserver] default_ui_timezone (the UI uses the browser's zone): setting it
    would only earn a lint warning, so neither configuration does."""
    import yaml

    dev = (PROJECT_DIR / "dev").read_text()
    assert 'AIRFLOW__CORE__DEFAULT_TIMEZONE="${AIRFLOW__CORE__DEFAULT_TIMEZONE:-Asia/Shanghai}"' in dev
    assert 'AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"' in dev
    compose = yaml.safe_load((PROJECT_DIR / "docker-compose.yaml").read_text())
    assert compose["x-airflow-common"]["environment"]["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == "Asia/Shanghai"
    for text in (dev, (PROJECT_DIR / "docker-compose.yaml").read_text()):
        assert "DEFAULT_UI_TIMEZONE" not in text.upper()
