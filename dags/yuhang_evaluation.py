"""
### 绩效评估 · Performance evaluation of the remaining provincial tranche

按年度指标对实施期进行百分制绩效评分，确定等级、剩余省级资金的拨付额度、整改追回和全额拨付的差距。

Yearly (Asia/Shanghai), scores the implementation years before the evaluation year in the
财预〔2020〕10号 100-point frame from the indicator tables, grades it, decides how much of the
performance tranche is released under the policy's rule (banded, linear or DLI tranches), deducts
recoveries from sites that did not rectify a missed target by its deadline (decisions from the
evaluators' rectifications file), shows which sites of the 2027 build plan keep provincial
funding, names the excellent stations and lists the gap to full release. Weights, targets, grade
bands and every rule come from `include/yuhang_skills/policy/yuhang.yaml`.

Every evaluation is a run (`eval_runs`) whose rows in the eval_* tables carry its `run_id` and are
never changed; an as-of date before the evaluated period's data can be complete (the last period's
due date) is refused unless `provisional` is set, so the yearly schedule cannot produce a wrong
final. Outputs `<outputs>/evaluation_<year>_<run_id>.*`, written once, and
`evaluation_<year>_latest.*`. Params `evaluation_year` (default: the policy's), `as_of` and
`provisional`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from yuhang_skills.orchestration.assets import DEFAULT_ARGS, EVALUATION, ON_FAILURE, TAGS, apply_operations


@dag(
    dag_id="yuhang_evaluation",
    dag_display_name="绩效评估 (yuhang_evaluation)",
    description="绩效评分、等级、拨付与差距 / Performance evaluation: score, grade, release and gap to full release",
    schedule="0 9 15 2 *",
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "evaluation"],
    doc_md=__doc__,
    on_failure_callback=ON_FAILURE,
    params={
        "evaluation_year": Param(
            None,
            type=["null", "integer"],
            title="评估年度 / Evaluation year",
            description="评估年度，默认取政策文件的 evaluation_year / "
            "Year of the evaluation; default: evaluation_year in the policy",
        ),
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            title="截止日期 / As-of date",
            description="截止日期（YYYY-MM-DD），默认为本次运行的逻辑日期 / "
            "As-of date (YYYY-MM-DD); default: the run's logical date",
        ),
        "provisional": Param(
            False,
            type="boolean",
            title="预评估 / Provisional",
            description="截止日期早于评价期数据齐全之日时，生成标注“预评估”的运行而不是拒绝 / "
            "Before the evaluated period's data can be complete, write a run marked "
            "provisional instead of refusing",
        ),
    },
)
def yuhang_evaluation():
    @task
    def migrate() -> dict:
        """The warehouse at the schema's head revision before anything reads or writes it."""
        from yuhang_skills.orchestration import tasks

        return tasks.migrate_warehouse()

    @task
    def evaluate() -> dict:
        from yuhang_skills.orchestration import tasks

        context = get_current_context()
        params = context["params"]
        return tasks.run_evaluation(
            params["evaluation_year"], tasks.as_of_from_context(context), bool(params.get("provisional"))
        )

    @task(outlets=[EVALUATION])
    def write_outputs(headline: dict) -> dict:
        from yuhang_skills.orchestration import tasks

        return {**headline, **tasks.write_outputs(headline["evaluation_year"], headline["run_id"])}

    evaluated = evaluate()
    migrate() >> evaluated
    # a task's output (XComArg) is its return value by run time; Airflow ships no mypy plugin for that
    write_outputs(evaluated)  # type: ignore[arg-type]


apply_operations(yuhang_evaluation())
