"""The README's way to the Airflow UI, run as written: ``./dev airflow standalone`` starts the
scheduler, dag-processor, triggerer and api-server, the api-server listens on 127.0.0.1 only, and
the health endpoint reports the components healthy. Its own AIRFLOW_HOME and a free port; the whole
process group is stopped at the end."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.include.loopback_servers import free_port, stop

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


def api(port: int, token: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"{}")


def wait_for(what: str, check, timeout: float, process: subprocess.Popen, log_path: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text(errors="replace")[-4000:]
        value = check()
        if value:
            return value
        time.sleep(2)
    pytest.fail(f"{what}: not within {timeout}s\n{log_path.read_text(errors='replace')[-4000:]}")


def test_dev_airflow_standalone_starts_healthy_on_localhost_only(tmp_path):
    """Start as the README says, wait for health, then run the evaluation from the REST API (as the
    UI's trigger button does) over an empty warehouse: it fails at once with "run yuhang_intake
    first" and the failure notifier, run by the real dag-processor, e-mails the district team."""
    from tests.include.loopback_servers import LoopbackSmtp

    port = free_port()
    home = tmp_path / "airflow"
    with LoopbackSmtp() as smtp:
        env = clean_env(
            AIRFLOW_HOME=str(home), AIRFLOW__API__PORT=str(port),
            # REST API tokens without a password (GET /auth/token), as the distributed test does
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            YUHANG_VAR_DIR=str(tmp_path / "var"),  # the default, empty warehouse of a fresh clone
            AIRFLOW_CONN_YUHANG_SMTP=json.dumps({
                "conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
                "extra": {"from_email": "pipeline@hrss.yuhang.example", "disable_ssl": True, "disable_tls": True,
                          "retry_limit": 0, "timeout": 5}}))
        log_path = tmp_path / "standalone.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(["./dev", "airflow", "standalone"], cwd=PROJECT_DIR, env=env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        try:
            def healthy():
                state = health(port)
                return state and all((state.get(c) or {}).get("status") == "healthy"
                                     for c in ("metadatabase", "scheduler", "dag_processor", "triggerer"))

            wait_for("scheduler, dag-processor and triggerer healthy", healthy, READY_TIMEOUT, process, log_path)
            assert listening_addresses(port) == {"127.0.0.1"}
            assert (home / "airflow.db").is_file()  # the metadata database is the test's own
            assert "FileNotFoundError" not in log_path.read_text(errors="replace")

            with urllib.request.urlopen(f"http://127.0.0.1:{port}/auth/token", timeout=30) as answer:
                token = json.loads(answer.read())["access_token"]

            def parsed():
                try:
                    return api(port, token, "GET", "/dags/yuhang_evaluation")
                except OSError:
                    return None

            dag = wait_for("yuhang_evaluation parsed", parsed, 120, process, log_path)
            assert dag["dag_display_name"] == "绩效评估 (yuhang_evaluation)"
            run = api(port, token, "POST", "/dags/yuhang_evaluation/dagRuns",
                      {"logical_date": dag["next_dagrun_logical_date"], "conf": {"as_of": "2027-02-15"}})
            api(port, token, "PATCH", "/dags/yuhang_evaluation", {"is_paused": False})
            run_path = f"/dags/yuhang_evaluation/dagRuns/{run['dag_run_id']}"

            def finished():
                state = api(port, token, "GET", run_path)["state"]
                return state if state in ("success", "failed") else None

            assert wait_for("the evaluation run to finish", finished, 180, process, log_path) == "failed"
            evaluate = api(port, token, "GET", f"{run_path}/taskInstances/evaluate")
            assert (evaluate["state"], evaluate["try_number"]) == ("failed", 1)  # no retries
            mail = wait_for("the failure alert", lambda: smtp.to("skills-data@hrss.yuhang.example"), 120, process,
                            log_path)
            assert "yuhang_evaluation" in mail[0].subject
            assert "run yuhang_intake first" in mail[0].html and run["dag_run_id"] in mail[0].html

            # The intake's Deadline Alert, end to end: a run whose logical date is 3 hours ago is past
            # its deadline (2 hours after it) when created; the scheduler marks it missed and the
            # triggerer's callback tells the district team.
            inbox = tmp_path / "inbox"
            inbox.mkdir()
            logical = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)).replace(microsecond=0)
            late = api(port, token, "POST", "/dags/yuhang_intake/dagRuns",
                       {"logical_date": logical.isoformat(), "conf": {"inbox": str(inbox)}})
            api(port, token, "PATCH", "/dags/yuhang_intake", {"is_paused": False})

            def deadline_mail():
                return [m for m in smtp.to("skills-data@hrss.yuhang.example")
                        if "not finished by its deadline" in m.subject and late["dag_run_id"] in m.html]

            assert wait_for("the deadline alert", deadline_mail, 180, process, log_path)
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
