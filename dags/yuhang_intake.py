"""
### 站点报送入库 · Intake of site submissions

每天早上接收各站点报送的文件：存档、解析、按数据规范校验，合格的行入库，不合格的行连同原因隔离。

Every morning (Asia/Shanghai) picks up the files sites dropped under the inbox
(`<inbox>/<YYYY-MM>/<site code>/<kind>.csv|xlsx`), archives each one by sha256, parses and
validates it against its Great Expectations suite (`include/yuhang_skills/expectations/<kind>_suite.json`), stages the
rows that pass and quarantines the rest with their reasons. One mapped task per site folder
(folders with little new data share one). A kind's files are validated together in suite runs of
up to `intake.suite_run_rows` rows and written in one transaction per suite run, so a crash leaves
each file whole or absent; a bad file never fails the others: a file that cannot be written is
written again on its own and, if it breaks, recorded as `failed`, and the last task fails the run
naming it, after everything else was published. Files received after the run's as-of day wait for a later
run; they and anything else not processed (links, special files) are listed in
`intake_not_processed`.

Tables: `submissions`, `submission_arrivals`, `intake_not_processed`, `raw_roster`, `raw_finance`, `raw_survey`,
`raw_outcomes`, `quarantine`, `validation_runs`. Publishes the `yuhang_staging` asset.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from yuhang_skills.orchestration.assets import (
    DEFAULT_ARGS,
    ON_FAILURE,
    STAGING,
    TAGS,
    apply_operations,
    intake_deadline,
)


def task_arguments(batch: dict) -> dict:
    """What a mapped ``ingest_site`` is given: its batch's label and position, not its files."""
    return {"site_code": batch["site_code"], "batch": batch["batch"], "as_of": batch["as_of"]}


@dag(
    dag_id="yuhang_intake",
    dag_display_name="站点报送入库 (yuhang_intake)",
    description="每日接收、校验、入库站点报送文件 / Daily intake: archive, validate and stage the sites' files",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2025, 7, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "intake"],
    doc_md=__doc__,
    on_failure_callback=ON_FAILURE,
    deadline=intake_deadline(),
    params={
        "inbox": Param(
            None,
            type=["null", "string"],
            title="收件箱 / Inbox",
            description="收件箱目录，默认取变量 yuhang_inbox / Inbox folder; default: variable yuhang_inbox",
        ),
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            title="截止日期 / As-of date",
            description="截止日期（YYYY-MM-DD），此日之后收到的文件留待以后处理；默认为本次运行的逻辑日期 / "
            "As-of date (YYYY-MM-DD): files received later wait for a later run; "
            "default: the run's logical date",
        ),
    },
)
def yuhang_intake():
    @task
    def migrate() -> dict:
        """The warehouse at the schema's head revision before anything reads or writes it."""
        from yuhang_skills.orchestration import tasks

        return tasks.migrate_warehouse()

    @task
    def discover() -> list[dict]:
        from yuhang_skills.orchestration import tasks

        context = get_current_context()
        return tasks.discover_submissions(context["params"]["inbox"], tasks.as_of_from_context(context))

    @task(map_index_template="{{ task.op_kwargs['site_code'] }}")
    def ingest_site(site_code: str, batch: int, as_of: str) -> dict:
        """One batch of site folders. Its file list is read from ``discover``'s result rather than
        handed in as an argument: Airflow renders every string of a task's arguments as a Jinja
        template and stores the result, which for a thousand file paths costs seconds and would
        break on a file name holding ``{{``."""
        from yuhang_skills.orchestration import tasks

        handed_out = get_current_context()["ti"].xcom_pull(task_ids="discover")
        return tasks.ingest_site(site_code, tasks.batch_files(handed_out, batch, site_code), as_of)

    @task(trigger_rule="all_done", outlets=[STAGING])
    def publish() -> dict:
        from yuhang_skills.orchestration import tasks

        return tasks.publish_staging()

    @task(trigger_rule="all_done")
    def all_files_ingested(summaries: list[dict] | None, published: dict | None, batches: list[dict]) -> dict:
        """Leaf task: fails the run (at once: the error is deterministic) naming every file that failed
        and every site task that did not finish, after everything good was published."""
        from yuhang_skills.orchestration import tasks

        return tasks.intake_verdict(tasks.mapped_results(summaries), published, batches)

    batches = discover()
    migrate() >> batches
    ingested = ingest_site.expand_kwargs(batches.map(task_arguments))
    published = publish()
    ingested >> published
    # a task's output (XComArg) is its return value by run time; Airflow ships no mypy plugin for that
    all_files_ingested(ingested, published, batches)  # type: ignore[arg-type]


apply_operations(yuhang_intake())
