"""Every DAG imports cleanly, follows the house rules, and does no work when parsed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
APPROVED_TAGS = {"yuhang", "intake", "indicators", "evaluation", "alerts"}
HEAVY_MODULES = ("great_expectations", "pandas", "openpyxl", "xlsxwriter", "numpy", "yuhang_skills.orchestration.tasks",
                 "yuhang_skills.intake.discover", "yuhang_skills.intake.ingest", "yuhang_skills.intake.prepare",
                 "yuhang_skills.intake.validate", "yuhang_skills.intake.publish")


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_no_import_errors(dag_bag):
    assert dag_bag.import_errors == {}


def test_one_dag_per_file_named_after_its_dag_id(dag_bag):
    assert sorted(Path(d.fileloc).stem for d in dag_bag.dags.values()) == sorted(p.stem for p in DAG_FILES)
    for dag_id, dag in dag_bag.dags.items():
        assert Path(dag.fileloc).stem == dag_id


@pytest.mark.parametrize("dag_id", [p.stem for p in DAG_FILES])
def test_dag_house_rules(dag_bag, dag_id):
    dag = dag_bag.dags[dag_id]
    assert dag.tags and set(dag.tags) <= APPROVED_TAGS, dag.tags
    assert dag.doc_md and len(dag.doc_md) > 100
    assert str(dag.timezone.name) == "Asia/Shanghai"
    for task in dag.tasks:
        assert task.owner == "yuhang-data", task.task_id
        assert task.retries >= 2, task.task_id


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _has_latin_words(text: str) -> bool:
    return sum(ch.isascii() and ch.isalpha() for ch in text) >= 10


@pytest.mark.parametrize("dag_id", [p.stem for p in DAG_FILES])
def test_dag_speaks_chinese_and_english(dag_bag, dag_id):
    """The UI shows a Chinese display name with the English id, a bilingual description, and
    every param described in both languages."""
    dag = dag_bag.dags[dag_id]
    assert dag.dag_display_name.endswith(f"({dag_id})") and _has_cjk(dag.dag_display_name), dag.dag_display_name
    assert dag.description and _has_cjk(dag.description) and _has_latin_words(dag.description)
    assert _has_cjk(dag.doc_md.splitlines()[1])  # the heading
    for name, param in dag.params.items():
        description = param.description or ""
        assert _has_cjk(description) and _has_latin_words(description), (name, description)


@pytest.mark.parametrize("dag_id", [p.stem for p in DAG_FILES])
def test_failures_are_told_fail_fast_and_time_out(dag_bag, dag_id):
    """Every DAG has the failure notifier; every task records its error for it, retries only
    transient errors (its callable is wrapped by the classifier) and has the policy's timeout."""
    from yuhang_skills.orchestration.assets import TASK_TIMEOUTS
    from yuhang_skills.orchestration.failure_alerts import PipelineFailureNotifier, record_task_failure

    dag = dag_bag.dags[dag_id]
    callbacks = dag.on_failure_callback if isinstance(dag.on_failure_callback, list) else [dag.on_failure_callback]
    assert any(isinstance(c, PipelineFailureNotifier) for c in callbacks)
    for task in dag.tasks:
        partial = getattr(task, "partial_kwargs", None)
        assert getattr(task.python_callable, "_yuhang_fail_fast", False), task.task_id
        timeout = partial["execution_timeout"] if partial is not None else task.execution_timeout
        assert timeout == TASK_TIMEOUTS.get(task.task_id, TASK_TIMEOUTS["default"]), task.task_id
        callbacks = task.on_failure_callback if isinstance(task.on_failure_callback, list) else [task.on_failure_callback]
        assert record_task_failure in callbacks, task.task_id


def test_operations_settings_match_the_policy(dag_bag):
    """assets.py repeats the policy's operations section (DAG files may not read files when parsed)."""
    import datetime as dt

    import yaml
    from airflow.sdk import DeadlineReference

    from yuhang_skills.orchestration import assets

    ops = yaml.safe_load((DAGS_DIR.parent / "include" / "yuhang_skills" / "policy" / "yuhang.yaml").read_text(encoding="utf-8"))["operations"]
    assert assets.RETRIES == ops["retries"] and assets.DEFAULT_ARGS["retries"] == ops["retries"]
    assert assets.RETRY_DELAY == dt.timedelta(minutes=ops["retry_delay_minutes"])
    assert assets.TASK_TIMEOUTS == {k: dt.timedelta(minutes=v) for k, v in ops["task_timeout_minutes"].items()}
    task_ids = {t.task_id for d in dag_bag.dags.values() for t in d.tasks}
    assert set(assets.TASK_TIMEOUTS) - {"default"} <= task_ids  # no timeout for a task that does not exist
    assert assets.INTAKE_DEADLINE == dt.time.fromisoformat(ops["intake_deadline"])
    intake = dag_bag.dags["yuhang_intake"]
    minute, hour = str(intake.schedule).split()[:2]  # the schedule the deadline's interval counts from
    assert assets.INTAKE_SCHEDULE_TIME == dt.time(int(hour), int(minute))
    (alert,) = intake.deadline
    assert isinstance(alert.reference, type(DeadlineReference.DAGRUN_LOGICAL_DATE))
    finish_by = dt.datetime.combine(dt.date(2026, 12, 3), dt.time.fromisoformat(ops["intake_deadline"]))
    assert alert.interval == finish_by - dt.datetime.combine(dt.date(2026, 12, 3), dt.time(int(hour), int(minute)))
    assert alert.callback.path == "yuhang_skills.orchestration.failure_alerts.intake_deadline_missed"
    policy = yaml.safe_load((DAGS_DIR.parent / "include" / "yuhang_skills" / "policy" / "yuhang.yaml").read_text(encoding="utf-8"))
    assert assets.SIGNOFF_ROLES == policy["evaluation_runs"]["signoff_roles"]
    assert dag_bag.dags["yuhang_evaluation_signoff"].params.get_param("role").schema["enum"] == assets.SIGNOFF_ROLES


PROBE = r"""
import importlib.util, json, sys, os
# Baseline: a trivial DAG with the same constructs pays Airflow's own one-time lazy loading
# (zoneinfo files, provider modules) before the hook is installed; what is left is the DAG file's.
import pendulum
from airflow.sdk import Asset, Param, dag, task
@dag(schedule="0 6 * * *", start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
     params={"p": Param(None, type=["null", "string"])})
def _baseline():
    @task(outlets=[Asset(name="baseline")])
    def one() -> list:
        return []
    @task
    def two(x: int) -> None:
        return None
    two.expand(x=one())
_baseline()
before = set(sys.modules)
events = []
allowed_prefixes = tuple(sys.argv[2:])
def hook(event, args):
    if event == "open":
        path = str(args[0])
        if path.endswith((".py", ".pyc")) or path.startswith(allowed_prefixes):
            return
        events.append(["open", path])
    elif event in ("socket.connect", "socket.getaddrinfo", "sqlite3.connect", "subprocess.Popen", "os.system"):
        events.append([event, repr(args)[:200]])
sys.addaudithook(hook)
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({"events": events, "new_modules": sorted(set(sys.modules) - before)}))
"""


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_parsing_a_dag_file_does_no_io_and_no_heavy_imports(dag_file, tmp_path):
    """Import the file in a fresh interpreter with an audit hook: no file, database or network
    access and no heavy library import may happen at parse time."""
    import sysconfig

    allowed = [sysconfig.get_paths()["stdlib"], "/dev/urandom", "/proc/", "/sys/", "/etc/localtime",
               "/usr/share/zoneinfo", os.path.dirname(pytest.__file__).rsplit("site-packages", 1)[0]]
    result = subprocess.run([sys.executable, "-c", PROBE, str(dag_file), *allowed], capture_output=True, text=True,
                            env={**os.environ}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["events"] == []
    heavy = [m for m in report["new_modules"] if m.split(".")[0] in HEAVY_MODULES or m in HEAVY_MODULES]
    assert heavy == []
