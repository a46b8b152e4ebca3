"""
### Intake of site submissions

Every morning (Asia/Shanghai) picks up the files sites dropped under the inbox
(`<inbox>/<YYYY-MM>/<site code>/<kind>.csv|xlsx`), archives each one by sha256, parses and
validates it against its Great Expectations suite (`expectations/<kind>_suite.json`), stages the
rows that pass and quarantines the rest with their reasons. One mapped task per site folder
(folders with little new data share one), and one transaction per file: a bad file never fails
the others. Files received after the run's as-of day wait for a later run.

Tables: `submissions`, `stg_roster`, `stg_finance`, `stg_survey`, `stg_outcomes`,
`quarantine`, `validation_runs`. Publishes the `yuhang_staging` asset.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from yuhang_skills.assets import DEFAULT_ARGS, STAGING, TAGS


@dag(
    dag_id="yuhang_intake",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2025, 7, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "intake"],
    doc_md=__doc__,
    params={
        "inbox": Param(None, type=["null", "string"], description="Inbox folder; default: variable yuhang_inbox"),
        "as_of": Param(None, type=["null", "string"], format="date",
                       description="As-of date (YYYY-MM-DD); default: the run's logical date"),
    },
)
def yuhang_intake():
    @task
    def discover() -> list[dict]:
        from yuhang_skills import pipeline

        context = get_current_context()
        return pipeline.discover_submissions(context["params"]["inbox"], pipeline.as_of_from_context(context))

    @task(map_index_template="{{ task.op_kwargs['site_code'] }}")
    def ingest_site(site_code: str, files: list[dict], as_of: str) -> dict:
        from yuhang_skills import pipeline

        return pipeline.ingest_site(site_code, files, as_of)

    @task(trigger_rule="all_done", outlets=[STAGING])
    def publish() -> dict:
        from yuhang_skills import pipeline

        return pipeline.publish_staging()

    @task
    def all_files_ingested(summary: dict) -> dict:
        """Leaf task: fails the run (after publishing what did go in) when any site failed."""
        return summary

    ingested = ingest_site.expand_kwargs(discover())
    published = publish()
    ingested >> published
    ingested >> all_files_ingested(published)


yuhang_intake()
