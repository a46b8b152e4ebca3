"""The production topology, for real: Airflow with CeleryExecutor on PostgreSQL and Redis.

docker-compose.yaml cannot run here (no Docker engine), so this test builds the same cluster out of
the services the machine has: a fresh PostgreSQL database for Airflow's metadata and the Celery
results, another for the warehouse, a Redis database as the Celery broker, and the api-server,
scheduler, dag-processor, triggerer and two Celery workers as separate processes, each started with
the command of its docker-compose.yaml service. The pipeline is configured the way compose
configures it, through Airflow only: the warehouse is the connection
``AIRFLOW_CONN_YUHANG_WAREHOUSE``; the policy file, PII key, inbox, outputs and working folder are
``AIRFLOW_VAR_YUHANG_*`` variables (no ``YUHANG_*`` setting reaches the processes).

Then it does what an operator does, through the REST API only: gets a token, unpauses the DAGs,
triggers ``yuhang_intake`` over a generated inbox, lets the scheduler start ``yuhang_indicators``
from the staging asset event, triggers ``yuhang_evaluation`` and waits for each run. It checks that
both workers executed task instances (each worker's own Celery log names the task instances it
ran, and their task logs are in that worker's log folder only) and that the evaluation is in the
PostgreSQL warehouse. A second test runs docker-compose.yaml's health checks of the Airflow services
against the components. Every process, both databases and the Redis database are removed afterwards.

Select it alone with ``./dev test -m distributed``. It fails (never skips) when PostgreSQL or
Redis is not reachable: CI starts both (.ci/run).
"""

from __future__ import annotations

import secrets
import shlex
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
import yaml

from distributed_helpers import (
    PROJECT_DIR,
    AirflowCluster,
    as_airflow_connection_uri,
    claim_redis_database,
    compose_health_check_command,
    create_database,
    drop_database,
    executed_task_instance_ids,
    postgres_admin_engine,
    prune_inbox,
    task_log_files,
)

pytestmark = pytest.mark.distributed

AS_OF = "2027-02-15"
EVALUATION_YEAR = 2027
# A small inbox: two months of three stations, two bases and three villages, messy as sites send it
# (GBK, XLSX with title rows, bad ID numbers …); the policy copy gives every two site folders their
# own mapped intake task, so the two workers have four of them to share.
SAMPLE_MONTHS = ("2026-11", "2026-12")
SAMPLE_SCALE = 0.1
SITES = ("S01", "S02", "S03", "B01", "B02", "V01", "V02", "V03")
TASK_MAX_SITES = 2
WORKERS = 2
WORKER_CONCURRENCY = 1
COMPOSE_FILE = PROJECT_DIR / "docker-compose.yaml"
# The long-running Airflow services of docker-compose.yaml: this cluster runs their commands and
# their health checks; the component each one is.
COMPOSE_AIRFLOW_SERVICES = {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                            "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer",
                            "airflow-worker": "worker"}


def compose_services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]


@pytest.fixture(scope="module")
def pipeline_files(tmp_path_factory) -> dict[str, Path]:
    """The generated inbox and the policy copy the cluster's variables point at."""
    from yuhang_sample.generator import SampleOptions, generate
    from yuhang_skills.core.settings import POLICY_DIR

    root = tmp_path_factory.mktemp("distributed-data")
    inbox = root / "inbox"
    generate(inbox, SampleOptions(start=SAMPLE_MONTHS[0], end=SAMPLE_MONTHS[-1], scale=SAMPLE_SCALE))
    prune_inbox(inbox, SITES)
    policy_text = (POLICY_DIR / "yuhang.yaml").read_text(encoding="utf-8")
    assert policy_text.count("task_max_sites: 12\n") == 1, "policy intake.task_max_sites moved; update the test"
    policy = root / "policy" / "yuhang.yaml"
    policy.parent.mkdir()
    policy.write_text(policy_text.replace("task_max_sites: 12\n", f"task_max_sites: {TASK_MAX_SITES}\n"),
                      encoding="utf-8")
    return {"root": root, "inbox": inbox, "policy": policy, "outputs": root / "outputs", "var": root / "var"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pipeline_files) -> Iterator[dict[str, Any]]:
    """A running cluster (healthy, both workers answering) and its warehouse; torn down afterwards."""
    admin = postgres_admin_engine()
    metadata_url = warehouse_url = None
    redis_db = None
    airflow: AirflowCluster | None = None
    started = time.monotonic()
    try:
        metadata_url = create_database(admin, "yuhang_af")
        warehouse_url = create_database(admin, "yuhang_wh")
        redis_db = claim_redis_database(token=sa.engine.make_url(metadata_url).database)
        pii_key = secrets.token_hex(32)
        airflow = AirflowCluster.configure(
            home=tmp_path_factory.mktemp("distributed-airflow"),
            metadata_url=metadata_url,
            broker_url=redis_db.url,
            extra_env={
                "AIRFLOW_CONN_YUHANG_WAREHOUSE": as_airflow_connection_uri(warehouse_url),
                "AIRFLOW_VAR_YUHANG_POLICY_PATH": str(pipeline_files["policy"]),
                "AIRFLOW_VAR_YUHANG_PII_KEY": pii_key,
                "AIRFLOW_VAR_YUHANG_INBOX": str(pipeline_files["inbox"]),
                "AIRFLOW_VAR_YUHANG_OUTPUT_DIR": str(pipeline_files["outputs"]),
                "AIRFLOW_VAR_YUHANG_VAR_DIR": str(pipeline_files["var"]),
            },
        )
        airflow.migrate()
        migrated = time.monotonic()
        services = compose_services()
        commands = {component: shlex.split(services[name]["command"])
                    for name, component in COMPOSE_AIRFLOW_SERVICES.items()}
        airflow.start_components(commands, worker_count=WORKERS, worker_concurrency=WORKER_CONCURRENCY)
        health = airflow.wait_until_healthy(timeout=180)
        nodes = airflow.wait_for_workers(timeout=120)
        airflow.login()
        print(f"cluster: migrated in {migrated - started:.0f}s, healthy after {time.monotonic() - started:.0f}s; "
              f"workers {nodes}; health {health}")
        yield {"airflow": airflow, "warehouse_url": warehouse_url, "started": started}
    finally:  # every step on its own: one failing must not leave the others' resources behind
        steps = [airflow.stop] if airflow is not None else []
        steps += [redis_db.release] if redis_db is not None else []
        steps += [(lambda u=url: drop_database(admin, u)) for url in (metadata_url, warehouse_url) if url]
        problems = []
        for step in [*steps, admin.dispose]:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - reported below, after every step has run
                problems.append(f"{type(exc).__name__}: {exc}")
        if problems:
            raise RuntimeError("cluster cleanup incomplete:\n" + "\n".join(problems))


def test_compose_health_checks_pass_on_the_cluster(cluster):
    """docker-compose.yaml's health checks of the Airflow services, run as Docker would run them
    inside each container (HOSTNAME = the container's host name; ports of this cluster), succeed
    against the running components of the pinned Airflow: the commands and job types they name
    exist and report healthy."""
    from airflow.utils.net import get_hostname

    airflow: AirflowCluster = cluster["airflow"]
    services = compose_services()
    ports = {"localhost:8080": f"127.0.0.1:{airflow.api_port}",
             "localhost:8974": f"127.0.0.1:{airflow.scheduler_health_port}"}
    commands: dict[str, tuple[list[str], dict[str, str]]] = {}
    for name in COMPOSE_AIRFLOW_SERVICES:
        command = compose_health_check_command(services[name]["healthcheck"]["test"], ports)
        if name == "airflow-worker":  # one check per worker, each in "its own container"
            for worker in airflow.workers:
                commands[f"healthcheck-{worker.label}"] = (command, {"HOSTNAME": worker.host})
        else:
            commands[f"healthcheck-{name}"] = (command, {"HOSTNAME": get_hostname()})
    results = airflow.run_commands(commands, timeout=240)
    failed = {name: result for name, result in results.items() if result[0] != 0}
    assert not failed, "\n".join(
        f"{name}: {' '.join(commands[name][0])} -> exit {code}\n{output}" for name, (code, output) in failed.items()
    )


def wait_for_dags_parsed(airflow: AirflowCluster, dag_ids: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The DAGs as the API lists them, once the dag-processor has serialised every one of them."""

    def listed() -> dict[str, dict[str, Any]] | None:
        dags = {d["dag_id"]: d for d in airflow.api("GET", "/dags", params={"limit": 100})["dags"]}
        return dags if set(dag_ids) <= dags.keys() else None

    dags = airflow.wait_for(f"the dag-processor to parse {dag_ids}", listed, timeout=120)
    errors = airflow.api("GET", "/importErrors")
    assert errors["total_entries"] == 0, f"DAG import errors: {errors}"
    return dags


def trigger(airflow: AirflowCluster, dag: dict[str, Any], conf: dict[str, Any]) -> str:
    """Trigger a run of a paused, time-scheduled DAG at its next scheduled logical date, then unpause it.

    Unpausing a DAG with ``catchup=False`` makes the scheduler create the run of the latest schedule
    tick at once. Triggering that very logical date first turns it into this run (the scheduler
    skips a date that already has a run), so the pipeline runs once, with these parameters.
    """
    dag_id = dag["dag_id"]
    run = airflow.api("POST", f"/dags/{dag_id}/dagRuns",
                      json={"logical_date": dag["next_dagrun_logical_date"], "conf": conf,
                            "note": "distributed test"})
    airflow.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    return run["dag_run_id"]


def test_pipeline_on_celery_cluster(cluster, pipeline_files):
    airflow: AirflowCluster = cluster["airflow"]
    inbox_files = sorted(p for p in pipeline_files["inbox"].rglob("*") if p.is_file())
    with airflow.logs_on_failure():
        dags = wait_for_dags_parsed(airflow, ("yuhang_intake", "yuhang_indicators", "yuhang_evaluation"))
        assert all(d["is_paused"] for d in dags.values()), "DAGs must start paused (dags_are_paused_at_creation)"

        # intake, triggered; indicators, started by the scheduler from intake's staging asset event
        airflow.api("PATCH", "/dags/yuhang_indicators", json={"is_paused": False})
        intake_run = trigger(airflow, dags["yuhang_intake"], {"inbox": str(pipeline_files["inbox"]), "as_of": AS_OF})
        airflow.wait_for_dag_run("yuhang_intake", intake_run, timeout=300)

        def indicators_run() -> dict[str, Any] | None:
            runs = airflow.api("GET", "/dags/yuhang_indicators/dagRuns")["dag_runs"]
            done = [r for r in runs if r["run_type"] == "asset_triggered" and r["state"] in ("success", "failed")]
            return done[-1] if done else None

        indicators = airflow.wait_for("yuhang_indicators to run on the staging asset event", indicators_run, 300)
        assert indicators["state"] == "success", f"yuhang_indicators ended {indicators['state']}"

        evaluation_run = trigger(airflow, dags["yuhang_evaluation"],
                                 {"evaluation_year": EVALUATION_YEAR, "as_of": AS_OF})
        airflow.wait_for_dag_run("yuhang_evaluation", evaluation_run, timeout=180)

        runs = {"yuhang_intake": intake_run, "yuhang_indicators": indicators["dag_run_id"],
                "yuhang_evaluation": evaluation_run}
        task_instances = [ti for dag_id, run_id in runs.items() for ti in airflow.task_instances(dag_id, run_id)]
        check_both_workers_ran_tasks(airflow, task_instances)
        headline = airflow.api(
            "GET", f"/dags/yuhang_evaluation/dagRuns/{evaluation_run}/taskInstances/write_outputs/xcomEntries/return_value"
        )["value"]
    check_warehouse(cluster["warehouse_url"], inbox_files, headline)
    assert Path(headline["workbook"]).parent == pipeline_files["outputs"], "output folder variable not used"
    assert Path(headline["workbook"]).is_file()
    print(f"distributed pipeline: {len(task_instances)} task instances, "
          f"{time.monotonic() - cluster['started']:.0f}s from an empty database to the evaluation")


def check_both_workers_ran_tasks(airflow: AirflowCluster, task_instances: list[dict[str, Any]]) -> None:
    """Each task instance was executed by exactly one worker (its Celery log says so and the task log
    is in that worker's folder only) and each worker executed at least one."""
    assert task_instances and all(ti["state"] == "success" for ti in task_instances), [
        (ti["dag_id"], ti["task_id"], ti["map_index"], ti["state"]) for ti in task_instances
    ]
    mapped = [ti for ti in task_instances if ti["task_id"] == "ingest_site"]
    assert len(mapped) >= 4, f"expected several mapped ingest_site tasks, got {len(mapped)}"
    assert {ti["queue"] for ti in task_instances} == {airflow.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]}
    executed = {w.label: executed_task_instance_ids(w.process.log_path.read_text(errors="replace"))
                for w in airflow.workers}
    ran_on: dict[str, list[str]] = {w.label: [] for w in airflow.workers}
    for ti in task_instances:
        name = f"{ti['dag_id']}.{ti['task_id']}" + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
        by_celery_log = [label for label, ids in executed.items() if ti["id"] in ids]
        assert len(by_celery_log) == 1, f"{name} ({ti['id']}) executed by {by_celery_log or 'no worker'}"
        with_task_log = [w.label for w in airflow.workers
                         if task_log_files(w.log_folder, ti["dag_id"], ti["dag_run_id"], ti["task_id"], ti["map_index"])]
        assert with_task_log == by_celery_log, f"{name}: task log in {with_task_log}, executed by {by_celery_log}"
        ran_on[by_celery_log[0]].append(name)
    print("task instances per worker:", {label: len(names) for label, names in ran_on.items()}, ran_on)
    idle = [label for label, names in ran_on.items() if not names]
    assert not idle, f"worker(s) {idle} executed no task instance: {ran_on}"


def check_warehouse(warehouse_url: str, inbox_files: list[Path], headline: dict[str, Any]) -> None:
    """The evaluation of the year is in the PostgreSQL warehouse, consistent with the run's headline,
    computed from every file of the inbox and with the PII key from the Airflow variable."""
    engine = sa.create_engine(warehouse_url)
    try:
        with engine.connect() as conn:
            def scalar(sql: str, **params: Any) -> Any:
                return conn.execute(sa.text(sql), params).scalar_one()

            district = conn.execute(sa.text("select * from eval_district where evaluation_year = :y"),
                                    {"y": EVALUATION_YEAR}).mappings().one()
            assert str(district["as_of"]) == AS_OF
            assert district["pii_key_is_demo"] is False, "the PII key variable did not reach the workers"
            assert f"{district['score']:.2f}" == str(headline["score"]) and district["grade"] == headline["grade"]
            for table in ("eval_indicator", "eval_release", "eval_site", "eval_gap", "eval_plan_2027"):
                count = scalar(f"select count(*) from {table} where evaluation_year = :y", y=EVALUATION_YEAR)
                assert count > 0, f"{table} has no rows for {EVALUATION_YEAR}"
            assert scalar("select count(*) from submissions") == len(inbox_files)
            assert scalar("select count(distinct site_code) from submissions") == len(SITES)
            assert scalar("select count(*) from submissions where status = 'failed'") == 0
            assert scalar("select count(*) from raw_roster") > 0
            assert scalar("select count(*) from ind_site_year") > 0
    finally:
        engine.dispose()
