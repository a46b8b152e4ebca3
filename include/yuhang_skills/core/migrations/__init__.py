"""Schema migrations of the warehouse (Alembic), and ``migrate``: bring a warehouse to the head revision.

The revisions live in ``versions/`` beside this file and ship with the package; the Alembic
configuration is built here in code, so nothing but an engine is needed at run time (the
``alembic.ini`` at the project root is for developers writing a revision, see the README's
"Warehouse schema").

``migrate`` is called at the start of every DAG and of the command line. At head it costs one
query. Otherwise it takes the warehouse's migration lock (PostgreSQL: a transaction-level
advisory lock; SQLite: the database's write lock, taken when the transaction begins) and, in one
transaction, brings a warehouse made before migrations existed to the baseline, then upgrades to
head. Several processes may call it at once: the first migrates, the others wait and find the
warehouse at head.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent
VERSION_TABLE = "alembic_version"
BASELINE = "0001_baseline"  # the schema of the last release made without migrations
# Tables the SQL models build and replace on every run (include/sql): never in a revision.
MODEL_TABLE_PREFIXES = ("int_", "ind_")
MODEL_TABLES = frozenset({"base_subsidy"})


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """The Alembic configuration, in code: the script folder of this package and, when given, the
    connection the migrations run on (env.py uses it instead of opening one of its own)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_table", VERSION_TABLE)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = scripts().get_current_head()
    if head is None:
        raise RuntimeError(f"no migration revisions under {MIGRATIONS_DIR / 'versions'}")
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The warehouse's revision (None: made before migrations, or empty)."""
    with engine.connect() as conn:
        return _current(conn)


def _current(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """What the migrations own, for autogenerate and the test that the models match them: the tables
    of the warehouse's metadata. Tables only in the database (the SQL models' ``int_*``, ``ind_*``
    and ``base_subsidy``, ``*_before_runs`` set aside, the version table) are left alone."""
    if reflected and compare_to is None:
        # only in the database: the models' tables and views, the integrity checks' indexes
        return False
    if type_ != "table":
        return True
    return not (name or "").startswith(MODEL_TABLE_PREFIXES) and name not in MODEL_TABLES


def migrate(engine: sa.Engine) -> str:
    """Bring the warehouse to the head revision and return it; at head already, one query and no lock."""
    head = head_revision()
    if current_revision(engine) == head:
        return head
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        from yuhang_skills.core import warehouse

        locking = warehouse.make_engine(engine.url.render_as_string(hide_password=False), exclusive_transactions=True)
        try:
            return _migrate_locked(locking, head)
        finally:
            locking.dispose()
    return _migrate_locked(engine, head)


def _migrate_locked(engine: sa.Engine, head: str) -> str:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # One migration at a time per schema (tests give every warehouse a schema of its own);
            # released when this transaction ends.
            conn.execute(
                sa.text("select pg_advisory_xact_lock(hashtext('yuhang warehouse migrations ' || current_schema()))")
            )
        # SQLite: the engine's transactions begin immediate, so this one holds the write lock.
        current = _current(conn)
        if current == head:
            return head
        if current is None and _holds_warehouse_tables(conn):
            adopted = _bring_to_baseline(conn)
            log.warning(
                "warehouse made before migrations: brought to the baseline (%s), stamped %s",
                "; ".join(adopted) or "nothing to change",
                BASELINE,
            )
            command.stamp(alembic_config(conn), BASELINE)
        command.upgrade(alembic_config(conn), "head")
        log.info("warehouse migrated from %s to %s", current or "an empty database", head)
    return head


def _holds_warehouse_tables(conn: sa.Connection) -> bool:
    present = set(sa.inspect(conn).get_table_names())
    return bool(present & _baseline_module().BASELINE_TABLE_NAMES)


def _baseline_module() -> Any:
    return scripts().get_revision(BASELINE).module


def _bring_to_baseline(conn: sa.Connection) -> list[str]:
    """A warehouse made by ``create_schema`` of an earlier release: the baseline's own code brings
    it to the baseline schema without losing a row (see versions/0001_baseline.py)."""
    return _baseline_module().adopt(conn)
