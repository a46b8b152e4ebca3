"""Assets the DAGs hand to each other and the settings every DAG shares (light: safe to import
when a DAG file is parsed).

The numbers below are the policy file's ``operations`` section (include/yuhang_skills/policy/yuhang.yaml),
repeated here because a DAG file must not open files while it is parsed;
tests/dags/test_dag_integrity.py fails when the two disagree.
"""

import datetime as dt
from collections.abc import Callable

# task-sdk 1.3.2's airflow/sdk/__init__.pyi lacks these three names that its __init__.py exports.
from airflow.sdk import Asset, AsyncCallback, Context, DeadlineAlert, DeadlineReference  # type: ignore[attr-defined]

from yuhang_skills.orchestration.failure_alerts import (
    PipelineFailureNotifier,
    intake_deadline_missed,
    record_task_failure,
)
from yuhang_skills.orchestration.operations import fail_fast_unless_transient

STAGING = Asset(name="yuhang_staging", uri="file://yuhang/warehouse/staging")
INDICATORS = Asset(name="yuhang_indicators", uri="file://yuhang/warehouse/indicators")
EVALUATION = Asset(name="yuhang_evaluation", uri="file://yuhang/warehouse/evaluation")

TAGS = ["yuhang"]

# policy operations.retries / retry_delay_minutes / task_timeout_minutes
RETRIES = 2
RETRY_DELAY = dt.timedelta(minutes=5)
TASK_TIMEOUTS = {
    "default": dt.timedelta(minutes=30),
    "ingest_site": dt.timedelta(minutes=60),
    "integrity_checks": dt.timedelta(minutes=60),
    "models": dt.timedelta(minutes=60),
    "write_outputs": dt.timedelta(minutes=30),
    "send_alerts": dt.timedelta(minutes=30),
}
# policy operations.intake_deadline, and the intake's schedule time (Asia/Shanghai)
INTAKE_DEADLINE = dt.time(8, 0)
INTAKE_SCHEDULE_TIME = dt.time(6, 0)

# policy evaluation_runs.signoff_roles: the sign-off DAG's role choices
SIGNOFF_ROLES = ["评价组", "复核", "负责人"]

DEFAULT_ARGS = {
    "owner": "yuhang-data",
    "retries": RETRIES,  # used by transient errors only: apply_operations makes the others fail at once
    "retry_delay": RETRY_DELAY,
    "execution_timeout": TASK_TIMEOUTS["default"],
    "on_failure_callback": record_task_failure,  # keeps the error's first lines for the run's alert
}

# The DAG-level failure notifier: one message per failed run to the district team.
ON_FAILURE: list[Callable[[Context], None]] = [PipelineFailureNotifier()]


def intake_deadline() -> DeadlineAlert:
    """Deadline Alert of the daily intake: not finished by INTAKE_DEADLINE of its day."""
    interval = dt.datetime.combine(dt.date(2025, 1, 1), INTAKE_DEADLINE) - dt.datetime.combine(
        dt.date(2025, 1, 1), INTAKE_SCHEDULE_TIME
    )
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=interval,
        callback=AsyncCallback(intake_deadline_missed),
        name="intake_not_finished",
    )


def apply_operations(dag):  # noqa: ANN001, ANN201 - an Airflow DAG, returned as given
    """Per-task timeouts from TASK_TIMEOUTS, and every task's callable wrapped so that only
    transient errors are retried (see :mod:`yuhang_skills.orchestration.operations`)."""
    for task in dag.tasks:
        timeout = TASK_TIMEOUTS.get(task.task_id, TASK_TIMEOUTS["default"])
        partial = getattr(task, "partial_kwargs", None)
        if partial is not None:  # a mapped task: its instances are made from these arguments
            partial["execution_timeout"] = timeout
        else:
            task.execution_timeout = timeout
        if getattr(task, "python_callable", None) is not None:
            task.python_callable = fail_fast_unless_transient(task.python_callable)
    return dag
