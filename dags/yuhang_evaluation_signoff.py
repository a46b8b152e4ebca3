"""
### 绩效评价签署 · Sign-off of an evaluation run

记录评价组、复核、负责人对某一评价运行的签署；政策规定的角色全部签署后，该运行成为正式评价，
生成签署版文件和 evaluation_<年度>_final.*。

Manual only (no schedule): the Airflow-native way to do what `yuhang-pipeline evaluation sign` does.
Trigger it with the params `run` (e.g. `2027-20270215-01`), `role` (a role of the policy's
`evaluation_runs.signoff_roles`: 评价组, 复核, 负责人), `name` and an optional `comment`; the
signature goes to `eval_signoffs` with the time and the Airflow user who triggered the run. The last
role to sign makes the run final (only a draft run can be signed; when the year has a final run the
sign-off stops with the command that supersedes it) and writes the signed edition and
`<outputs>/evaluation_<year>_final.*`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from yuhang_skills.orchestration.assets import DEFAULT_ARGS, ON_FAILURE, SIGNOFF_ROLES, TAGS, apply_operations


@dag(
    dag_id="yuhang_evaluation_signoff",
    dag_display_name="绩效评价签署 (yuhang_evaluation_signoff)",
    description="评价运行的签署与定稿 / Sign-off of an evaluation run; the last role makes it final",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "evaluation"],
    doc_md=__doc__,
    on_failure_callback=ON_FAILURE,
    params={
        "run": Param(
            "",
            type="string",
            minLength=1,
            title="评价运行 / Run",
            description="评价运行编号，如 2027-20270215-01 / The run id, e.g. 2027-20270215-01",
        ),
        "role": Param(
            SIGNOFF_ROLES[0],
            type="string",
            enum=SIGNOFF_ROLES,
            title="签署角色 / Role",
            description="签署角色（政策文件 evaluation_runs.signoff_roles） / "
            "Signing role (the policy's evaluation_runs.signoff_roles)",
        ),
        "name": Param(
            "", type="string", minLength=1, title="签署人 / Name", description="签署人姓名 / The signer's name"
        ),
        "comment": Param(
            None,
            type=["null", "string"],
            title="意见 / Comment",
            description="签署意见（可空） / The signer's comment (optional)",
        ),
    },
)
def yuhang_evaluation_signoff():
    @task
    def migrate() -> dict:
        """The warehouse at the schema's head revision before anything reads or writes it."""
        from yuhang_skills.orchestration import tasks

        return tasks.migrate_warehouse()

    @task
    def sign() -> dict:
        from yuhang_skills.orchestration import tasks

        context = get_current_context()
        params = context["params"]
        dag_run = context.get("dag_run")
        triggered_by = getattr(dag_run, "triggering_user_name", None) or "airflow"
        return tasks.sign_evaluation(
            params["run"], params["role"], params["name"], params.get("comment"), signed_by=f"airflow:{triggered_by}"
        )

    migrate() >> sign()


apply_operations(yuhang_evaluation_signoff())
