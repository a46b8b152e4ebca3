"""Where things are: project paths and runtime settings, resolved in one place.

Every setting can come from the environment (for the command line and tests) or, inside a
running Airflow task, from Airflow's own mechanisms: the warehouse from the connection
``yuhang_warehouse`` and the rest from variables ``yuhang_*``. The embedded default needs
none of them: a SQLite warehouse under ``var/`` in the project folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The SQL models, the policy files and the expectation suites ship inside the package (package
# data), so a normal install finds them as an editable checkout does.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
SQL_DIR = PACKAGE_DIR / "sql"
POLICY_DIR = PACKAGE_DIR / "policy"
EXPECTATIONS_DIR = PACKAGE_DIR / "expectations"


def _default_project_dir() -> Path:
    """The checkout (the package lies in its include/ beside pyproject.toml) when run from one; the
    current folder for an installed package, so runs never write inside site-packages."""
    checkout = PACKAGE_DIR.parents[1]
    if PACKAGE_DIR.parent.name == "include" and (checkout / "pyproject.toml").is_file():
        return checkout
    return Path.cwd()


# The project folder: the checkout or, for an installed package, the current folder, unless
# YUHANG_PROJECT_DIR says otherwise; runs write under its var/ by default.
PROJECT_DIR = Path(os.environ.get("YUHANG_PROJECT_DIR") or _default_project_dir())
DEFAULT_VAR_DIR = PROJECT_DIR / "var"

WAREHOUSE_CONN_ID = "yuhang_warehouse"
# Demo-only key for the keyed hash of personal data. Production sets YUHANG_PII_KEY (or the
# Airflow variable yuhang_pii_key) to a secret; runs with the demo key are marked in the output.
DEMO_PII_KEY = "yuhang-demo-key-not-secret"


def _in_airflow_task() -> bool:
    """True inside a running Airflow task (the task runner talks to its supervisor)."""
    import sys

    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return runner is not None and getattr(runner, "SUPERVISOR_COMMS", None) is not None


def _airflow_variable(name: str) -> str | None:
    """An Airflow variable inside a running task; None when it is not set or outside a task.

    A lookup that fails for any other reason raises: falling back to a default (above all the
    demo hashing key) would mix keys or warehouses silently.
    """
    if not _in_airflow_task():
        return None
    from airflow.sdk import Variable

    return Variable.get(name, default=None)


def _airflow_connection_uri(conn_id: str) -> str | None:
    if not _in_airflow_task():
        return None
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id).get_uri()
    except AirflowNotFoundException:
        return None


@dataclass(frozen=True)
class Settings:
    warehouse_url: str
    var_dir: Path
    inbox_dir: Path
    output_dir: Path
    archive_dir: Path
    data_docs_dir: Path
    expectations_dir: Path
    policy_path: Path
    sites_path: Path
    contract_path: Path
    rectifications_path: Path  # evaluators' rectification decisions (CSV); a missing file means none
    pii_key: str

    @property
    def pii_key_is_demo(self) -> bool:
        return self.pii_key == DEMO_PII_KEY


def normalise_warehouse_url(url: str) -> str:
    """Airflow connection URIs say ``postgres://``; SQLAlchemy wants ``postgresql+psycopg2://``."""
    if url.startswith("postgres://"):
        url = "postgresql+psycopg2://" + url[len("postgres://") :]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def load_settings(use_airflow: bool = False) -> Settings:
    """Settings from the environment, then (``use_airflow``, inside tasks) Airflow's variables and
    the ``yuhang_warehouse`` connection, then the embedded defaults."""

    def setting(env_name: str, variable_name: str) -> str | None:
        return os.environ.get(env_name) or (_airflow_variable(variable_name) if use_airflow else None)

    var_dir = Path(setting("YUHANG_VAR_DIR", "yuhang_var_dir") or DEFAULT_VAR_DIR)
    warehouse = (
        os.environ.get("YUHANG_WAREHOUSE_URL")
        or (_airflow_connection_uri(WAREHOUSE_CONN_ID) if use_airflow else None)
        or f"sqlite:///{(var_dir / 'warehouse.sqlite').resolve()}"
    )
    return Settings(
        warehouse_url=normalise_warehouse_url(warehouse),
        var_dir=var_dir,
        inbox_dir=Path(setting("YUHANG_INBOX", "yuhang_inbox") or var_dir / "inbox"),
        output_dir=Path(setting("YUHANG_OUTPUT_DIR", "yuhang_output_dir") or var_dir / "outputs"),
        archive_dir=Path(setting("YUHANG_ARCHIVE_DIR", "yuhang_archive_dir") or var_dir / "archive"),
        data_docs_dir=Path(setting("YUHANG_DATA_DOCS_DIR", "yuhang_data_docs_dir") or var_dir / "data_docs"),
        expectations_dir=Path(setting("YUHANG_EXPECTATIONS_DIR", "yuhang_expectations_dir") or EXPECTATIONS_DIR),
        policy_path=Path(setting("YUHANG_POLICY_PATH", "yuhang_policy_path") or POLICY_DIR / "yuhang.yaml"),
        sites_path=Path(setting("YUHANG_SITES_PATH", "yuhang_sites_path") or POLICY_DIR / "sites.csv"),
        contract_path=Path(setting("YUHANG_CONTRACT_PATH", "yuhang_contract_path") or POLICY_DIR / "contract.yaml"),
        rectifications_path=Path(
            setting("YUHANG_RECTIFICATIONS_PATH", "yuhang_rectifications_path") or var_dir / "rectifications.csv"
        ),
        pii_key=setting("YUHANG_PII_KEY", "yuhang_pii_key") or DEMO_PII_KEY,
    )
