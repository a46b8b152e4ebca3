"""A real, multi-process Airflow cluster for the distributed test (tests/test_distributed.py).

The same topology as docker-compose.yaml, built from the services this machine runs: PostgreSQL
for Airflow's metadata (plus the Celery result backend) and for the warehouse, Redis as the
Celery broker, and one OS process per Airflow component (api-server, scheduler, dag-processor,
triggerer, Celery workers). Every process runs in its own session (process group) with its output
in a log file, so that it can be stopped completely and its log shown when something fails.

Nothing here is specific to a test framework: failures raise ``ClusterError`` with the tail of
every process log attached.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa

T = TypeVar("T")

PROJECT_DIR = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_URL = os.environ.get("YUHANG_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
REDIS_HOST = os.environ.get("YUHANG_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("YUHANG_TEST_REDIS_PORT", "6379"))
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
# Environment of the calling process that must not leak into the cluster: the test session's own
# Airflow configuration (conftest.py) and the pipeline's environment overrides, which would win over
# the Airflow variables and connection the cluster is configured with.
_INHERITED_PREFIXES_DROPPED = ("AIRFLOW", "_AIRFLOW", "YUHANG_")
_REDIS_CLAIM_KEY = "yuhang:distributed-test:owner"


class ClusterError(AssertionError):
    """The cluster did not start or did not do what was asked; the message carries the process logs."""


# ---------------------------------------------------------------------------------------------------
# services this machine runs: PostgreSQL and Redis
# ---------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on at the moment (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_admin_engine() -> sa.Engine:
    """An AUTOCOMMIT engine on the PostgreSQL server; raises ClusterError when it is not reachable."""
    engine = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise ClusterError(
            f"PostgreSQL at {engine.url.render_as_string(hide_password=True)} is not reachable ({exc.orig}); "
            "start it (.ci/run does) or point YUHANG_TEST_POSTGRES_URL at a server"
        ) from exc
    return engine


def create_database(admin: sa.Engine, prefix: str) -> str:
    """Create an empty database named ``<prefix>_<random>`` and return its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    return admin.url.set(database=name).render_as_string(hide_password=False)


def drop_database(admin: sa.Engine, url: str) -> None:
    """Drop a database made by ``create_database``, disconnecting whoever is still connected."""
    name = sa.engine.make_url(url).database
    with admin.connect() as conn:
        conn.execute(
            sa.text("select pg_terminate_backend(pid) from pg_stat_activity where datname = :n and pid <> pg_backend_pid()"),
            {"n": name},
        )
        conn.execute(sa.text(f'drop database if exists "{name}"'))


def as_airflow_connection_uri(sqlalchemy_url: str) -> str:
    """``postgresql+psycopg2://…`` as an Airflow connection URI (``postgresql://…``, conn type postgres)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", sqlalchemy_url)


@dataclass
class RedisDatabase:
    """One Redis logical database claimed for a test run (flushed on release)."""

    client: Any  # redis.Redis
    number: int

    @property
    def url(self) -> str:
        return f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.number}"

    def release(self) -> None:
        self.client.flushdb()
        self.client.close()


CLAIM_SECONDS = 3600  # a run killed before it could release its database frees it after this


def claim_redis_database(token: str) -> RedisDatabase:
    """An empty Redis database (1…15) for this run's broker, claimed with a marker key so that two
    runs of the test on one machine never share a broker. A database holding nothing but a claim
    older than ``CLAIM_SECONDS`` (a run killed before its cleanup) is taken over. Raises
    ClusterError when Redis is down."""
    import redis

    probe = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=0, socket_connect_timeout=3)
    try:
        probe.ping()
        databases = int(probe.config_get("databases").get("databases", 16))
    except redis.exceptions.RedisError as exc:
        raise ClusterError(
            f"Redis at {REDIS_HOST}:{REDIS_PORT} is not reachable ({exc}); start it (.ci/run does)"
        ) from exc
    finally:
        probe.close()
    for number in range(1, databases):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number, socket_connect_timeout=3)
        if client.dbsize() == 1 and client.exists(_REDIS_CLAIM_KEY) and client.ttl(_REDIS_CLAIM_KEY) == -1:
            client.delete(_REDIS_CLAIM_KEY)  # a claim from before claims expired, its run long gone
        if client.dbsize() == 0 and client.set(_REDIS_CLAIM_KEY, token, nx=True, ex=CLAIM_SECONDS):
            if client.dbsize() == 1:  # nobody else started using it between the two calls
                return RedisDatabase(client, number)
            client.delete(_REDIS_CLAIM_KEY)
        client.close()
    raise ClusterError(f"no empty Redis database left on {REDIS_HOST}:{REDIS_PORT} (1…{databases - 1} all in use)")


# ---------------------------------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------------------------------


@dataclass
class ManagedProcess:
    """One started command, its own process group and its log file."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    def tail(self, lines: int) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_seconds: float) -> None:
        """SIGTERM to the whole process group, then SIGKILL to whatever is left of it."""
        try:
            pgid = os.getpgid(self.popen.pid)
        except ProcessLookupError:
            pgid = None
        if pgid is not None and pgid == self.popen.pid:  # started with start_new_session: its own group
            _signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + grace_seconds
            while time.monotonic() < deadline and _group_alive(pgid):
                self.popen.poll()
                time.sleep(0.2)
            if _group_alive(pgid):
                _signal_group(pgid, signal.SIGKILL)
        try:
            self.popen.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    """True while any process of the group exists (zombies of our direct child are reaped by poll)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class ProcessSet:
    """The processes of one cluster, started in order and stopped in reverse order."""

    log_dir: Path
    processes: list[ManagedProcess] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> ManagedProcess:
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(
                args, env=env, cwd=self.log_dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = ManagedProcess(name, popen, log_path)
        self.processes.append(process)
        return process

    def run(self, name: str, args: list[str], env: dict[str, str], timeout: float) -> None:
        """Run a one-shot command to completion; raise ClusterError with its log if it fails."""
        process = self.start(name, args, env)
        try:
            code = process.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.stop(grace_seconds=5)
            raise ClusterError(f"{name} did not finish within {timeout:.0f}s\n{process.tail(60)}")
        finally:
            self.processes.remove(process)
        if code != 0:
            raise ClusterError(f"{name} exited with {code}\n{process.tail(80)}")

    def check_running(self) -> None:
        """Raise ClusterError when a long-running process has exited."""
        dead = [p for p in self.processes if p.popen.poll() is not None]
        if dead:
            names = ", ".join(f"{p.name} (exit {p.popen.returncode})" for p in dead)
            raise ClusterError(f"process(es) exited: {names}\n{self.logs()}")

    def logs(self, lines: int = 60) -> str:
        return "\n".join(
            f"----- {p.name} (pid {p.popen.pid}, log {p.log_path}) last {lines} lines -----\n{p.tail(lines)}"
            for p in self.processes
        )

    def stop_all(self, grace_seconds: float = 20) -> None:
        for process in reversed(self.processes):
            process.stop(grace_seconds)


# ---------------------------------------------------------------------------------------------------
# the cluster
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Worker:
    """A Celery worker of the cluster: its Celery node name and its own task-log folder.

    The node name is ``celery@<host>`` as in a container, where ``<host>`` stands for the machine
    the worker would run on (``worker1-<cluster token>``), so two workers on this one machine are
    told apart."""

    label: str
    host: str
    log_folder: Path
    process: ManagedProcess

    @property
    def node_name(self) -> str:
        return f"celery@{self.host}"


@dataclass
class AirflowCluster:
    """Airflow with CeleryExecutor: PostgreSQL metadata, Redis broker, one process per component."""

    home: Path
    metadata_url: str
    broker_url: str
    api_port: int
    scheduler_health_port: int
    env: dict[str, str]
    processes: ProcessSet
    workers: list[Worker] = field(default_factory=list)
    bearer_token: str | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    # -- configuration ------------------------------------------------------------------------------

    @classmethod
    def configure(cls, home: Path, metadata_url: str, broker_url: str, extra_env: dict[str, str]) -> AirflowCluster:
        """Airflow's configuration for every component, as environment variables (no airflow.cfg)."""
        from cryptography.fernet import Fernet

        home.mkdir(parents=True, exist_ok=True)
        (home / "logs").mkdir(exist_ok=True)
        api_port = free_port()
        scheduler_health_port = free_port()
        token = uuid.uuid4().hex[:8]
        env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES_DROPPED)}
        env.update({
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Shanghai",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            # A failed attempt is retried after seconds, not the default five minutes
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "5",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__WORKERS": "1",
            # Shared by every component: signs the Execution API's task tokens and log requests
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(48),
            "AIRFLOW__CELERY__BROKER_URL": broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + re.sub(r"^postgresql\+\w+://", "postgresql://", metadata_url),
            # A queue of this cluster's own, so that no other Celery worker on the broker takes its tasks
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"yuhang-{token}",
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # The scheduler's /health endpoint, which docker-compose.yaml's health check calls
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(scheduler_health_port),
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "GX_ANALYTICS_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
            # `airflow`, `celery` … of this interpreter's environment first, as in the image
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)]),
            **extra_env,
        })
        return cls(home, metadata_url, broker_url, api_port, scheduler_health_port, env,
                   ProcessSet(home / "process-logs"))

    @property
    def token(self) -> str:
        """The random part of this cluster's queue and worker names."""
        return self.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"].rsplit("-", 1)[-1]

    def airflow(self, *args: str) -> list[str]:
        """The command line of an Airflow CLI command, with this interpreter."""
        return [sys.executable, "-m", "airflow", *args]

    # -- processes ----------------------------------------------------------------------------------

    def migrate(self, timeout: float = 300) -> None:
        self.processes.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes.run("db-migrate", self.airflow("db", "migrate"), self.env, timeout)

    def start_components(self, commands: dict[str, list[str]], worker_count: int, worker_concurrency: int) -> None:
        """Start the api-server, scheduler, dag-processor, triggerer and ``worker_count`` Celery workers.

        ``commands`` gives each component's Airflow command (keys ``api-server``, ``scheduler``,
        ``dag-processor``, ``triggerer``, ``worker``; e.g. ``["celery", "worker"]``), to which the
        options of this machine are added: the api-server's address, and each worker's Celery node
        name and concurrency (each worker also gets its own log-server port and task-log folder)."""
        start = self.processes.start
        start("api-server", self.airflow(*commands["api-server"], "--host", "127.0.0.1", "--port", str(self.api_port),
                                         "--workers", "1"), self.env)
        for component in ("scheduler", "dag-processor", "triggerer"):
            start(component, self.airflow(*commands[component]), self.env)
        for n in range(1, worker_count + 1):
            label = f"worker{n}"
            host = f"{label}-{self.token}"
            log_folder = self.home / f"{label}-task-logs"
            log_folder.mkdir(parents=True, exist_ok=True)
            env = {
                **self.env,
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                # As on separate machines: each worker keeps the logs of the tasks it ran
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(log_folder),
            }
            process = start(label, self.airflow(*commands["worker"], "--celery-hostname", f"celery@{host}",
                                                "--concurrency", str(worker_concurrency)), env)
            self.workers.append(Worker(label, host, log_folder, process))

    def stop(self) -> None:
        self.processes.stop_all()

    # -- waiting ------------------------------------------------------------------------------------

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout: float, interval: float = 1.0) -> T:
        """Call ``probe`` until it returns something other than None/False; fail with every process's
        log when the time is up or a component died."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            self.processes.check_running()
            try:
                result = probe()
                if result is not None and result is not False:
                    return result
            except (httpx.HTTPError, ConnectionError) as exc:
                last_error = exc
            if time.monotonic() > deadline:
                detail = f" (last error: {last_error!r})" if last_error else ""
                raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}{detail}\n{self.processes.logs()}")
            time.sleep(interval)

    def wait_until_healthy(self, timeout: float) -> dict[str, Any]:
        """The api-server answers, and its health endpoint reports the metadata database, scheduler,
        triggerer and dag-processor healthy."""

        def healthy() -> dict[str, Any] | None:
            response = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5)
            if response.status_code != 200:
                return None
            body = response.json()
            parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
            ok = all((body.get(part) or {}).get("status") == "healthy" for part in parts)
            return body if ok else None

        return self.wait_for("api-server health: metadatabase, scheduler, triggerer, dag_processor", healthy, timeout)

    def wait_for_workers(self, timeout: float) -> list[str]:
        """Every Celery worker answers a broker ping; returns their node names."""
        from celery import Celery

        app = Celery("yuhang-distributed-test-probe", broker=self.broker_url)
        try:
            def all_answer() -> list[str] | None:
                replies = app.control.ping(timeout=1.0) or []
                answered = {name for reply in replies for name in reply}
                ours = sorted(answered & {w.node_name for w in self.workers})
                return ours if len(ours) == len(self.workers) else None

            return self.wait_for(f"{len(self.workers)} Celery workers to answer a ping", all_answer, timeout)
        finally:
            app.close()

    # -- REST API -----------------------------------------------------------------------------------

    def login(self) -> None:
        """A bearer token from SimpleAuthManager (``GET /auth/token`` with all users admins)."""
        response = httpx.get(f"{self.api_url}/auth/token", timeout=30)
        response.raise_for_status()
        self.bearer_token = response.json()["access_token"]

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the public REST API (``/api/v2``) and return the JSON answer; ClusterError otherwise."""
        assert self.bearer_token, "login() first"
        response = httpx.request(method, f"{self.api_url}/api/v2{path}",
                                 headers={"Authorization": f"Bearer {self.bearer_token}"}, timeout=30, **kwargs)
        if response.status_code >= 400:
            raise ClusterError(f"{method} /api/v2{path} -> {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def wait_for_dag_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        """Poll a DAG run until it finishes; ClusterError with its task states and the logs unless it succeeded."""

        def finished() -> dict[str, Any] | None:
            run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            return run if run["state"] in ("success", "failed") else None

        run = self.wait_for(f"DAG run {dag_id}/{run_id} to finish", finished, timeout)
        if run["state"] != "success":
            states = [(ti["task_id"], ti["map_index"], ti["state"]) for ti in self.task_instances(dag_id, run_id)]
            raise ClusterError(f"{dag_id}/{run_id} ended {run['state']}; task states {states}\n{self.processes.logs()}")
        return run

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        body = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return body["task_instances"]

    def run_commands(self, commands: dict[str, tuple[list[str], dict[str, str]]],
                     timeout: float) -> dict[str, tuple[int | None, str]]:
        """Run one-shot commands side by side with the cluster's environment (plus each one's extra
        variables); return each one's exit code (None: timed out) and output."""
        started = {name: self.processes.start(name, args, {**self.env, **extra})
                   for name, (args, extra) in commands.items()}
        deadline = time.monotonic() + timeout
        results: dict[str, tuple[int | None, str]] = {}
        try:
            for name, process in started.items():
                try:
                    code: int | None = process.popen.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    code = None
                results[name] = (code, process.tail(40))
        finally:
            for process in started.values():
                process.stop(grace_seconds=5)
                self.processes.processes.remove(process)
        return results

    @contextmanager
    def logs_on_failure(self) -> Iterator[None]:
        """Print every process log (pytest shows it with the failure) when the block raises."""
        try:
            yield
        except BaseException:
            if not isinstance(sys.exc_info()[1], ClusterError):  # ClusterError carries the logs already
                print(self.processes.logs(lines=80))
            raise


# ---------------------------------------------------------------------------------------------------
# which worker ran which task
# ---------------------------------------------------------------------------------------------------

# What the Celery provider logs when a worker starts a task instance, e.g.
#   [<celery task id>] Executing workload in Celery: … ti=TaskInstanceDTO(id=UUID('01a2…'), task_id='discover', …
_WORKLOAD_LINE = re.compile(
    r"\[[0-9a-f-]{36}\] Executing workload in Celery: .*?\bti=\w+\(id=UUID\('(?P<ti_id>[0-9a-f-]{36})'\)"
)


def executed_task_instance_ids(worker_log: str) -> set[str]:
    """Ids of the task instances a Celery worker's own log says it executed."""
    return {match["ti_id"] for match in _WORKLOAD_LINE.finditer(worker_log)}


def compose_health_check_command(test: list[str] | str, replacements: dict[str, str]) -> list[str]:
    """The command a docker-compose ``healthcheck.test`` runs, with Compose's ``$$`` escapes undone
    and the given text replacements (e.g. container ports → this cluster's ports)."""

    def resolve(text: str) -> str:
        text = text.replace("$$", "$")
        for old, new in replacements.items():
            text = text.replace(old, new)
        return text

    if isinstance(test, str):
        return ["/bin/sh", "-c", resolve(test)]
    kind, *rest = test
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", resolve(" ".join(rest))]
    if kind == "CMD":
        return [resolve(part) for part in rest]
    raise ValueError(f"unsupported health check {test!r}")


def task_log_files(log_folder: Path, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[Path]:
    """The attempt log files Airflow's default log template gives one task instance under a log folder."""
    folder = log_folder / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    if map_index >= 0:
        folder = folder / f"map_index={map_index}"
    return sorted(folder.glob("attempt=*.log"))


def prune_inbox(inbox: Path, keep_sites: Iterable[str]) -> list[Path]:
    """Delete the site folders of a generated inbox that are not in ``keep_sites``; return what is left."""
    import shutil

    keep = set(keep_sites)
    for site_dir in [d for d in inbox.glob("*/*") if d.is_dir()]:
        if site_dir.name not in keep:
            shutil.rmtree(site_dir)
    return sorted(p for p in inbox.rglob("*") if p.is_file())
