"""
### 报送监测与预警 · Submissions watchdog: missing and rejected submissions, alerts, early warning

每天早上核对应报未报、被退回的文件和年度目标预警，按站点、街镇和区数据组分别提醒（邮件、钉钉、Webhook），同一事项不重复打扰。

Every morning (Asia/Shanghai) builds the expected-submission calendar from the site registry and
the policy's cadence and due dates (a due date on a weekend or public holiday moves to the next
working day; years without an official holiday calendar use the policy's provisional list and are
marked so), compares it with the submissions manifest as of the run's date, and keeps the missing
list. Then it tells, in one message per recipient and channel: each site's contact what the site
owes, which of its files were rejected or partially accepted (rows and reasons) and which late
files resolved an alert; after `alerts.escalation_days` the town/street office and the district
data team too; the district also gets the early warnings (stations and bases projected to miss a
yearly target). The same item is not resent within `alerts.resend_interval_days`.

Channels are Airflow connections (`yuhang_smtp`, `yuhang_dingtalk`, `yuhang_webhook`; a missing
one is skipped and recorded as `not_configured`); a channel that is down is retried with back-off,
and what could not be sent is recorded and goes out with the next run. Runs for past dates
(reruns, backfills) rebuild the tables and send nothing.

Tables: `expected_submissions`, `missing_submissions`, `early_warnings`, `alerts`, `alert_items`.
Params `as_of` (default: the run's logical date), `today` (default: today in Asia/Shanghai; decides
whether the run is live) and `send_alerts` (false: rebuild only).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from yuhang_skills.orchestration.assets import DEFAULT_ARGS, ON_FAILURE, TAGS, apply_operations


@dag(
    dag_id="yuhang_watchdog",
    dag_display_name="报送监测与预警 (yuhang_watchdog)",
    description="应报未报、退回文件与目标预警提醒 / Missing and rejected submissions, early warnings, alerts",
    schedule="0 9 * * *",
    start_date=pendulum.datetime(2025, 7, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "alerts"],
    doc_md=__doc__,
    on_failure_callback=ON_FAILURE,
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            title="截止日期 / As-of date",
            description="截止日期（YYYY-MM-DD），默认为本次运行的逻辑日期 / "
            "As-of date (YYYY-MM-DD); default: the run's logical date",
        ),
        "today": Param(
            None,
            type=["null", "string"],
            format="date",
            title="今天 / Today",
            description="用来判断本次运行是否为当日运行（是否发送提醒），默认为上海时间今天 / "
            "Today (YYYY-MM-DD) for deciding whether the run is live; default: "
            "today in Asia/Shanghai",
        ),
        "send_alerts": Param(
            True,
            type="boolean",
            title="发送提醒 / Send alerts",
            description="当日运行时发送提醒；false 只重建表，不发送 / "
            "Send alerts when the run is live; false rebuilds the tables only",
        ),
    },
)
def yuhang_watchdog():
    @task
    def migrate() -> dict:
        """The warehouse at the schema's head revision before anything reads or writes it."""
        from yuhang_skills.orchestration import tasks

        return tasks.migrate_warehouse()

    @task
    def expected_calendar() -> dict:
        from yuhang_skills.orchestration import tasks
        from yuhang_skills.watchdog.tasks import build_calendar

        return build_calendar(tasks.as_of_from_context(get_current_context()))

    @task
    def missing_list(calendar: dict) -> dict:
        from yuhang_skills.watchdog.tasks import build_missing_list

        return build_missing_list(calendar["as_of"])

    @task
    def send_alerts(missing: dict) -> dict:
        from yuhang_skills.watchdog.tasks import send_alerts as send

        context = get_current_context()
        params = context["params"]
        return send(missing["as_of"], params.get("today"), bool(params.get("send_alerts", True)), context)

    calendar = expected_calendar()
    migrate() >> calendar
    # a task's output (XComArg) is its return value by run time; Airflow ships no mypy plugin for that
    send_alerts(missing_list(calendar))  # type: ignore[arg-type]


apply_operations(yuhang_watchdog())
