"""Failures reach a person, and only transient errors are retried.

The story test runs the real ``yuhang_evaluation`` DAG with ``dag.test()`` over an empty
warehouse (SQLite and PostgreSQL): its first task fails at once (no retries) with the bilingual
"run yuhang_intake first", and the DAG's failure notifier tells the district team through a real
SMTP server and a real HTTP server on 127.0.0.1 (DingTalk robot, checking the signature, and a
webhook). A second failing run with the same error is not told again.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopback_servers import free_port

PROJECT = Path(__file__).resolve().parents[2]
DISTRICT = "skills-data@hrss.yuhang.example"


# --- the classifier ------------------------------------------------------------------------------
def test_network_and_connection_errors_are_transient_everything_else_is_not(tmp_path):
    from yuhang_skills.orchestration.operations import PrerequisiteMissing, is_transient

    # A real refused connection to PostgreSQL (nothing listens on this port).
    engine = sa.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/test")
    with pytest.raises(sa.exc.OperationalError) as refused:
        engine.connect()
    assert is_transient(refused.value)
    # A real missing table on SQLite: deterministic.
    sqlite = sa.create_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with pytest.raises(sa.exc.OperationalError) as missing, sqlite.connect() as conn:
        conn.execute(sa.text("select * from ind_site_year"))
    assert not is_transient(missing.value)
    # A locked SQLite file is worth another try; the driver's error as SQLAlchemy wraps it.
    locked = sa.exc.OperationalError("insert …", {}, sqlite3.OperationalError("database is locked"))
    assert is_transient(locked)
    assert is_transient(ConnectionRefusedError(111, "Connection refused"))
    assert is_transient(TimeoutError("timed out"))
    try:  # a transient cause under a generic error still counts
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError as exc:
            raise RuntimeError("upload failed") from exc
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    for deterministic in (ValueError("bad header"), KeyError("roster"), FileNotFoundError("inbox"),
                          PrerequisiteMissing("yuhang_intake", "没有数据", "no data")):
        assert not is_transient(deterministic), deterministic


def test_deterministic_errors_fail_at_once_transient_ones_propagate():
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from yuhang_skills.orchestration.operations import fail_fast_unless_transient

    @fail_fast_unless_transient
    def task(error: BaseException):
        raise error

    with pytest.raises(AirflowFailException, match="ValueError: bad header") as failed:
        task(ValueError("bad header"))
    assert isinstance(failed.value.__cause__, ValueError)
    with pytest.raises(ConnectionRefusedError):
        task(ConnectionRefusedError(111, "Connection refused"))
    with pytest.raises(AirflowSkipException):
        task(AirflowSkipException("nothing to do"))


def test_personal_numbers_are_masked_in_error_text():
    from yuhang_skills.orchestration.failure_alerts import error_text

    text = error_text(ValueError("row 7: id 33010619900101123X phone 13912345678 bad\nline 2\nline 3"), 2)
    assert "33010619900101123X" not in text and "13912345678" not in text
    assert text == "ValueError: row 7: id [masked] phone [masked] bad\nline 2"


# --- prerequisites --------------------------------------------------------------------------------
def test_empty_warehouse_names_the_dag_to_run_first(warehouse_url, settings_for):
    from yuhang_skills.orchestration import tasks
    from yuhang_skills.core import warehouse
    from yuhang_skills.core.migrations import migrate
    from yuhang_skills.orchestration.operations import PrerequisiteMissing

    settings_for(warehouse_url)
    with pytest.raises(PrerequisiteMissing, match="run yuhang_intake first") as empty:
        tasks.run_evaluation(None, "2027-02-15")
    assert "请先运行 yuhang_intake" in str(empty.value)
    with pytest.raises(PrerequisiteMissing, match="run yuhang_intake first"):
        tasks.run_integrity_checks()
    with pytest.raises(PrerequisiteMissing, match="run yuhang_intake first"):
        tasks.build_models()
    engine = warehouse.make_engine(warehouse_url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(warehouse.submissions.insert().values(**_submission_row()))
    with pytest.raises(PrerequisiteMissing, match="run yuhang_indicators first") as no_indicators:
        tasks.run_evaluation(None, "2027-02-15")
    assert no_indicators.value.dag_id == "yuhang_indicators" and "请先运行 yuhang_indicators" in str(no_indicators.value)
    engine.dispose()


def _submission_row() -> dict:
    """One accepted submission; columns this test does not care about get a value of their type."""
    from yuhang_skills.core import warehouse

    known = {"submission_id": "0" * 64 + ":S01:2026-01:roster", "sha256": "0" * 64, "site_code": "S01",
             "period": "2026-01", "kind": "roster", "status": "accepted", "received_at": dt.datetime(2026, 2, 5, 9),
             "ingested_at": dt.datetime(2026, 2, 6, 6)}
    filler = {str: "x", int: 0, bool: False, dt.datetime: dt.datetime(2026, 2, 6, 6), dt.date: dt.date(2026, 2, 6)}
    return {c.name: known.get(c.name, filler.get(c.type.python_type)) for c in warehouse.submissions.columns
            if c.name in known or not c.nullable}


# --- the failure notifier on a real failing run ----------------------------------------------------
def test_a_failed_run_tells_the_district_team_once(airflow_db, warehouse_url, tmp_path, monkeypatch, alert_channels):
    from zoneinfo import ZoneInfo

    from airflow.dag_processing.dagbag import DagBag

    smtp, web = alert_channels
    monkeypatch.setenv("YUHANG_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("YUHANG_VAR_DIR", str(tmp_path / "var"))
    dag = DagBag(dag_folder=str(PROJECT / "dags" / "yuhang_evaluation.py")).get_dag("yuhang_evaluation")
    assert dag.default_args["retries"] == 2  # the real retry policy: the failure below must not use them

    def failing_run(minute: int):
        logical = dt.datetime(2027, 2, 15, 9, minute, tzinfo=ZoneInfo("Asia/Shanghai"))
        dag_run = dag.test(logical_date=logical, run_conf={"as_of": "2027-02-15"})
        assert dag_run.state == "failed"
        evaluate = dag_run.get_task_instance("evaluate")
        assert (evaluate.state, evaluate.try_number) == ("failed", 1)  # deterministic: no retry
        return dag_run

    dag_run = failing_run(0)
    mails = smtp.to(DISTRICT)
    assert len(mails) == 1
    mail = mails[0]
    assert "yuhang_evaluation" in mail.subject and "evaluate" in mail.subject
    for text in ("绩效评估 (yuhang_evaluation)", dag_run.run_id, "2027-02-15 09:00:00 (Asia/Shanghai)", "run yuhang_intake first",
                 "请先运行 yuhang_intake", "/dags/yuhang_evaluation/runs/", "/tasks/evaluate"):
        assert text in mail.html or text in _unescape(mail.html), text
    robot = web.calls("/robot/send")
    assert len(robot) == 1 and robot[0].signature_valid
    markdown = robot[0].body["markdown"]["text"]
    assert "run yuhang_intake first" in markdown and dag_run.run_id in markdown and "try 1" in markdown
    hook = web.calls("/hook")
    assert len(hook) == 1
    payload = hook[0].body
    assert (payload["event"], payload["dag_id"], payload["run_id"]) == ("dag_run_failed", "yuhang_evaluation",
                                                                         dag_run.run_id)
    assert [t["task_id"] for t in payload["tasks"]] == ["evaluate"]
    assert payload["tasks"][0]["error"].startswith("PrerequisiteMissing: ")
    assert "/dags/yuhang_evaluation/runs/" in payload["tasks"][0]["log_url"]

    engine = sa.create_engine(warehouse_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select channel, recipient, outcome from failure_alerts order by channel")).all()
    assert sorted(tuple(r) for r in rows) == [("dingtalk", "yuhang_dingtalk", "sent"),
                                               ("email", DISTRICT, "sent"), ("webhook", "yuhang_webhook", "sent")]

    failing_run(1)  # the same failure again within the resend interval: nobody is told twice
    assert len(smtp.to(DISTRICT)) == 1 and len(web.calls("/robot/send")) == 1 and len(web.calls("/hook")) == 1
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from task_failures")).scalar() == 2
    engine.dispose()


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_deadline_alert_goes_out_once_per_run(warehouse_url, monkeypatch, tmp_path, alert_channels):
    from yuhang_skills.orchestration.failure_alerts import send_deadline_alert

    smtp, web = alert_channels
    monkeypatch.setenv("YUHANG_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("YUHANG_VAR_DIR", str(tmp_path / "var"))
    context = {"dag_run": {"dag_id": "yuhang_intake", "dag_run_id": "scheduled__2026-12-03T06:00:00+08:00",
                           "logical_date": "2026-12-02T22:00:00Z"},
               "deadline": {"id": "d1", "deadline_time": "2026-12-03T00:00:00Z"}}
    assert send_deadline_alert(context) == {"sent": 3}
    assert send_deadline_alert(context) == {"deduplicated": 3}
    mail = smtp.to(DISTRICT)
    assert len(mail) == 1 and "yuhang_intake" in mail[0].subject and "not finished by its deadline" in mail[0].subject
    assert "2026-12-03 06:00:00 (Asia/Shanghai)" in mail[0].html and "2026-12-03 08:00:00" in mail[0].html
    assert web.calls("/robot/send")[0].signature_valid
    assert web.calls("/hook")[0].body["event"] == "deadline_missed"


def test_a_transient_error_is_retried_and_still_told_when_the_warehouse_is_down(airflow_db, tmp_path, monkeypatch,
                                                                                  alert_channels):
    """The warehouse (PostgreSQL) refuses connections: the run's first task (migrate, the first to reach
    the warehouse) is retried (transient), fails after its last try, the evaluation does not start,
    and the failure alert still goes out without the warehouse."""
    from zoneinfo import ZoneInfo

    from airflow.dag_processing.dagbag import DagBag

    smtp, web = alert_channels
    monkeypatch.setenv("YUHANG_WAREHOUSE_URL", f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/test")
    monkeypatch.setenv("YUHANG_VAR_DIR", str(tmp_path / "var"))
    dag = DagBag(dag_folder=str(PROJECT / "dags" / "yuhang_evaluation.py")).get_dag("yuhang_evaluation")
    for task in dag.tasks:
        task.retry_delay = dt.timedelta(seconds=1)  # the real retries, without 5 minutes between them
    dag_run = dag.test(logical_date=dt.datetime(2027, 2, 15, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai")),
                       run_conf={"as_of": "2027-02-15"})
    assert dag_run.state == "failed"
    migrate = dag_run.get_task_instance("migrate")
    assert (migrate.state, migrate.try_number) == ("failed", dag.default_args["retries"] + 1)
    assert dag_run.get_task_instance("evaluate").state == "upstream_failed"
    mails = smtp.to(DISTRICT)
    assert len(mails) == 1 and dag_run.run_id in _unescape(mails[0].html)
    assert "error not recorded: see the log" in _unescape(mails[0].html)  # the warehouse kept nothing
    assert len(web.calls("/hook")) == 1 and web.calls("/robot/send")[0].signature_valid


def test_times_in_messages_are_shanghai_wall_times():
    from yuhang_skills.orchestration.failure_alerts import shanghai_time

    assert shanghai_time("2026-12-02T22:00:00Z") == "2026-12-03 06:00:00 (Asia/Shanghai)"
    assert shanghai_time(dt.datetime(2026, 12, 3, 0, 0, tzinfo=dt.timezone.utc)) == "2026-12-03 08:00:00 (Asia/Shanghai)"
    assert shanghai_time(None) is None
