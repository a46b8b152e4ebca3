"""Shared test set-up.

Airflow reads its configuration when first imported, so this file points it at a private
AIRFLOW_HOME with a SQLite metadata database before anything imports Airflow, and migrates that
database once per session (``airflow_db``). Warehouse tests run on SQLite and on the local
PostgreSQL (127.0.0.1:5432, user postgres, trust auth; override with YUHANG_TEST_POSTGRES_URL):
each session gets its own PostgreSQL database, dropped at the end.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="yuhang-tests-"))
os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_SESSION_DIR / 'airflow' / 'airflow.db'}"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_DIR / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PROJECT_DIR / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DEFAULT_TIMEZONE"] = "Asia/Shanghai"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ["YUHANG_VAR_DIR"] = str(_SESSION_DIR / "var")
(_SESSION_DIR / "airflow").mkdir(parents=True, exist_ok=True)

POSTGRES_ADMIN_URL = os.environ.get("YUHANG_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database, migrated once for the session."""
    from airflow.utils import db

    db.upgradedb()
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """A fresh PostgreSQL database for this session (dropped afterwards)."""
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"yuhang_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'create database "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL} is not reachable ({exc.orig}); start it (see .ci/run)")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = :n and pid <> pg_backend_pid()"
        ), {"n": name})
        conn.execute(sa.text(f'drop database if exists "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def new_postgres_schema(postgres_server_url):
    """Returns a function that creates an empty schema in the session's PostgreSQL database and
    gives a URL whose search_path is that schema (one warehouse per test, no cleanup needed)."""
    import sqlalchemy as sa

    def make() -> str:
        schema = f"t_{uuid.uuid4().hex[:10]}"
        engine = sa.create_engine(postgres_server_url)
        with engine.begin() as conn:
            conn.execute(sa.text(f'create schema "{schema}"'))
        engine.dispose()
        sep = "&" if "?" in postgres_server_url else "?"
        return f"{postgres_server_url}{sep}options=-csearch_path%3D{schema}"

    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request, tmp_path) -> str:
    """An empty warehouse on each supported database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    return request.getfixturevalue("new_postgres_schema")()


@pytest.fixture
def plan():
    from yuhang_skills.core.policy import Plan
    from yuhang_skills.core.settings import load_settings

    return Plan.from_settings(load_settings())


@pytest.fixture
def settings_for(tmp_path, monkeypatch):
    """Settings pointing at ``tmp_path`` and the given warehouse URL."""

    def make(warehouse_url: str):
        from yuhang_skills.core.settings import load_settings

        monkeypatch.setenv("YUHANG_VAR_DIR", str(tmp_path / "var"))
        monkeypatch.setenv("YUHANG_WAREHOUSE_URL", warehouse_url)
        return load_settings()

    return make
