"""
### 年度指标计算 · Yearly indicators

入库数据更新后：重载参考表、运行数据真实性核查、重算年度指标（SQL 模型）。

Runs whenever intake publishes new staging data. Reloads the reference tables from the policy
folder (`include/yuhang_skills/policy`: sites, targets, code lists, money received, integrity thresholds), runs
the integrity checks over the staging views `stg_*` (`include/yuhang_skills/sql/integrity`: double counting
and subsidy-fraud patterns, into `integrity_findings`, with the rows they exclude in
`integrity_exclusions`), then rebuilds the SQL models under `include/yuhang_skills/sql` (staging `stg_*`,
intermediate `int_*` with the site-year targets `int_site_year_targets`, marts `ind_site_year`,
`ind_site_year_spending`, `ind_programme_year`, `base_subsidy` and the summaries), each after the
models it reads, counted without the excluded rows and reported with them. The same SQL runs on
SQLite and PostgreSQL. Publishes `yuhang_indicators`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from yuhang_skills.orchestration.assets import DEFAULT_ARGS, INDICATORS, ON_FAILURE, STAGING, TAGS, apply_operations


@dag(
    dag_id="yuhang_indicators",
    dag_display_name="年度指标计算 (yuhang_indicators)",
    description="真实性核查与年度指标 / Integrity checks and yearly indicators, on every new staging data",
    schedule=[STAGING],
    start_date=pendulum.datetime(2025, 7, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "indicators"],
    doc_md=__doc__,
    on_failure_callback=ON_FAILURE,
)
def yuhang_indicators():
    @task
    def migrate() -> dict:
        """The warehouse at the schema's head revision before anything reads or writes it."""
        from yuhang_skills.orchestration import tasks

        return tasks.migrate_warehouse()

    @task
    def reference() -> dict:
        from yuhang_skills.orchestration import tasks

        return tasks.load_reference()

    @task
    def integrity_checks() -> dict:
        from yuhang_skills.orchestration import tasks

        return tasks.run_integrity_checks()

    @task(outlets=[INDICATORS])
    def models() -> dict:
        from yuhang_skills.orchestration import tasks

        return tasks.build_models()

    migrate() >> reference() >> integrity_checks() >> models()


apply_operations(yuhang_indicators())
