"""Schema migrations: every earlier shape of the warehouse reaches the head revision without losing a
row, the models (core/warehouse.py) match the migrations, and ``migrate`` is safe to call often and at once.

The previous release's warehouse is made from its frozen DDL (``previous_release/warehouse.<dialect>.sql``,
generated from that release's ``create_schema``), so these tests keep testing the upgrade from
that release after core/warehouse.py changes.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from yuhang_skills.core import warehouse
from yuhang_skills.core import migrations
from yuhang_skills.core.migrations import current_revision, head_revision, migrate

PREVIOUS_RELEASE = Path(__file__).resolve().parent / "previous_release"


def previous_release_warehouse(engine: sa.Engine) -> None:
    """The tables exactly as the last release's ``create_schema`` made them (no version table)."""
    ddl = (PREVIOUS_RELEASE / f"warehouse.{engine.dialect.name}.sql").read_text(encoding="utf-8")
    statements = [s.strip() for s in ddl.split(";\n")]
    with engine.begin() as conn:
        for statement in statements:
            body = "\n".join(line for line in statement.splitlines() if not line.startswith("--")).strip()
            if body:
                conn.exec_driver_sql(body)


def sample_value(column: sa.Column, row: int, position: int) -> object:
    """A value of the column's type, different per row and column; row 2 leaves optional columns empty."""
    if row == 2 and column.nullable and not column.primary_key:
        return None
    kind = column.type.python_type
    if kind is bool:
        return row == 1
    if kind is int:
        return row * 1000 + position if not isinstance(column.type, sa.BigInteger) else 12_345_678_901 * row + position
    if kind is Decimal:
        scale = column.type.scale or 0
        return Decimal(f"{row}{position}.123456789").quantize(Decimal(1).scaleb(-scale))
    if kind is dt.datetime:
        return dt.datetime(2026, 3 + row, 10 + position % 15, 9, 30, 15, 250000 * row)
    if kind is dt.date:
        return dt.date(2026, 3 + row, 1 + position % 27)
    text = f"{column.name}-第{position}列-余杭{row}"
    length = getattr(column.type, "length", None)
    return text[-length:] if length else text + " 多行\n文本"


def fill(engine: sa.Engine, names: list[str] | None = None) -> tuple[dict[str, list[str]], dict[str, list[tuple]]]:
    """Two rows in every table (or in ``names``); returns each table's columns and its rows as read back."""
    meta = sa.MetaData()
    meta.reflect(engine, only=names)
    with engine.begin() as conn:
        for table in meta.sorted_tables:
            rows = [{c.name: sample_value(c, row, i) for i, c in enumerate(table.columns)} for row in (1, 2)]
            conn.execute(table.insert(), rows)
    columns = {name: [c.name for c in table.columns] for name, table in meta.tables.items()}
    return columns, snapshot(engine, columns)


def snapshot(engine: sa.Engine, columns: dict[str, list[str]]) -> dict[str, list[tuple]]:
    """Each table's rows (the given columns, in a fixed order), as the database returns them."""
    meta = sa.MetaData()
    meta.reflect(engine, only=list(columns))
    out = {}
    with engine.connect() as conn:
        for name, names in columns.items():
            cols = [meta.tables[name].c[c] for c in names]
            out[name] = [tuple(r) for r in conn.execute(sa.select(*cols).order_by(*cols))]
    return out


def differences(engine: sa.Engine, metadata: sa.MetaData = warehouse.metadata) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "include_object": migrations.include_object, "compare_type": True, "compare_server_default": True})
        return compare_metadata(context, metadata)


def columns_of(engine: sa.Engine, table: str) -> set[str]:
    return set(_columns(engine, table))


def _columns(engine: sa.Engine, table: str) -> list[str]:
    return [c["name"] for c in sa.inspect(engine).get_columns(table)]


# --- (a) the previous release, with data -----------------------------------------------------------
def test_a_warehouse_of_the_previous_release_upgrades_with_every_row(warehouse_url):
    engine = warehouse.make_engine(warehouse_url)
    previous_release_warehouse(engine)
    columns, before = fill(engine)
    assert {"submissions", "stg_roster", "quarantine", "eval_runs", "eval_indicator", "eval_district",
            "alerts", "integrity_findings", "task_failures"} <= set(before)
    assert all(len(rows) == 2 for rows in before.values())
    assert current_revision(engine) is None

    assert migrate(engine) == head_revision()

    assert current_revision(engine) == head_revision()
    # 0002: the intake's tables are raw_* now (stg_* are the models' views), rows untouched
    renamed = {name: name.replace("stg_", "raw_", 1) if name.startswith("stg_") else name for name in columns}
    after = snapshot(engine, {renamed[name]: cols for name, cols in columns.items()})
    assert {name: after[renamed[name]] for name in columns} == before
    assert differences(engine) == []
    engine.dispose()


def test_reference_targets_keep_their_rows_with_the_target_as_an_exact_fraction(warehouse_url):
    engine = warehouse.make_engine(warehouse_url)
    previous_release_warehouse(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("insert into ref_targets (programme, indicator, target, per_year) values "
                             "('station', 'pass_rate', 0.9000, false), ('village', 'person_times', 150, true)"))
    migrate(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select programme, indicator, target, per_year, target_numerator, "
                                    "target_denominator from ref_targets order by programme")).all()
    assert [(r[0], r[1], Decimal(str(r[2])).normalize(), bool(r[3]), r[4], r[5]) for r in rows] == [
        ("station", "pass_rate", Decimal("0.9"), False, 9, 10), ("village", "person_times", Decimal(150).normalize(), True, 150, 1)]
    engine.dispose()



def test_revision_0002_goes_back_and_forth_keeping_the_staged_rows(warehouse_url):
    """Downgrading 0002 gives the intake's tables their old names back (the staging views go first),
    and upgrading again keeps every row."""
    from alembic import command

    engine = warehouse.make_engine(warehouse_url)
    migrate(engine)
    columns, before = fill(engine, ["raw_roster", "raw_finance", "ref_targets"])
    with engine.begin() as conn:  # a staging view of the current layout, as the indicators run builds it
        conn.execute(sa.text("create view stg_roster as select * from raw_roster"))
    with engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), migrations.BASELINE)
    tables = set(sa.inspect(engine).get_table_names())
    assert {"stg_roster", "stg_finance"} <= tables and not {"raw_roster", "raw_finance"} & tables
    assert "target_numerator" not in columns_of(engine, "ref_targets")
    assert snapshot(engine, {"stg_roster": columns["raw_roster"]})["stg_roster"] == before["raw_roster"]

    assert migrate(engine) == head_revision()
    kept = {name: cols for name, cols in columns.items() if name != "ref_targets"}
    assert snapshot(engine, kept) == {name: before[name] for name in kept}
    assert differences(engine) == []
    engine.dispose()

# --- (b) older shapes: before evaluation runs, before quarantine.severity and the newer eval_gap columns
def test_a_warehouse_made_before_evaluation_runs_keeps_its_evaluation_beside_the_new_tables(warehouse_url):
    engine = warehouse.make_engine(warehouse_url)
    old = sa.MetaData()
    sa.Table("eval_district", old, sa.Column("evaluation_year", sa.Integer, primary_key=True),
             sa.Column("score", sa.Numeric(6, 2), nullable=False), sa.Column("grade", sa.String(4), nullable=False),
             sa.Column("released_fen", sa.BigInteger, nullable=False), sa.Column("evaluated_at", sa.DateTime))
    sa.Table("eval_indicator", old, sa.Column("evaluation_year", sa.Integer, primary_key=True),
             sa.Column("indicator", sa.String(60), primary_key=True), sa.Column("points", sa.Numeric(6, 2)))
    sa.Table("quarantine", old, sa.Column("quarantine_id", sa.Integer, primary_key=True),
             sa.Column("submission_id", sa.String(120), nullable=False), sa.Column("sha256", sa.String(64), nullable=False),
             sa.Column("source_file", sa.String(500), nullable=False), sa.Column("source_row", sa.Integer),
             sa.Column("expectation", sa.String(120), nullable=False), sa.Column("reason_zh", sa.Text, nullable=False),
             sa.Column("reason_en", sa.Text, nullable=False))
    old.create_all(engine)
    _, before = fill(engine)

    migrate(engine)

    assert current_revision(engine) == head_revision()
    for name in ("eval_district", "eval_indicator"):
        assert snapshot(engine, {f"{name}_before_runs": _old_columns(old, name)}) \
            == {f"{name}_before_runs": before[name]}
        assert "run_id" in columns_of(engine, name)
        with engine.connect() as conn:
            assert conn.execute(sa.text(f"select count(*) from {name}")).scalar() == 0
    assert columns_of(engine, "quarantine") == set(warehouse.quarantine.c.keys())
    assert snapshot(engine, {"quarantine": _old_columns(old, "quarantine")}) == {"quarantine": before["quarantine"]}
    with engine.connect() as conn:  # earlier rows have no severity, as add_missing_columns left them
        assert conn.execute(sa.text("select count(*) from quarantine where severity is null")).scalar() == 2
    assert differences(engine, _without(warehouse.metadata, "quarantine")) == []
    migrate(engine)  # the tables set aside stay as they are
    assert snapshot(engine, {"eval_district_before_runs": _old_columns(old, "eval_district")}) \
        == {"eval_district_before_runs": before["eval_district"]}
    engine.dispose()


def test_a_warehouse_without_the_newer_eval_gap_columns_gets_them_as_nullable(warehouse_url):
    engine = warehouse.make_engine(warehouse_url)
    old = sa.MetaData()
    sa.Table("eval_gap", old, sa.Column("run_id", sa.String(40), primary_key=True),
             sa.Column("evaluation_year", sa.Integer, primary_key=True), sa.Column("gap_id", sa.Integer, primary_key=True),
             sa.Column("indicator", sa.String(60), nullable=False), sa.Column("missing_points", sa.Numeric(6, 2)))
    old.create_all(engine)
    _, before = fill(engine)

    migrate(engine)

    assert columns_of(engine, "eval_gap") == set(warehouse.eval_gap.c.keys())
    assert not sa.inspect(engine).has_table("eval_gap_before_runs")
    assert snapshot(engine, {"eval_gap": _old_columns(old, "eval_gap")}) == before
    new = [c.name for c in warehouse.eval_gap.columns if c.name not in old.tables["eval_gap"].c]
    assert "release_gain_fen" in new and "unit" in new
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"select {', '.join(new)} from eval_gap")).all() == [(None,) * len(new)] * 2
    engine.dispose()


def _old_columns(meta: sa.MetaData, name: str) -> list[str]:
    return [c.name for c in meta.tables[name].columns]


def _without(metadata: sa.MetaData, *names: str) -> sa.MetaData:
    copy = sa.MetaData()
    for table in metadata.sorted_tables:
        if table.name not in names:
            table.to_metadata(copy)
    return copy


# --- (c) the models match the migrations ----------------------------------------------------------
def test_the_models_match_the_migrations(warehouse_url):
    engine = warehouse.make_engine(warehouse_url)
    migrate(engine)
    with engine.begin() as conn:  # tables the SQL models build, and one set aside: not the migrations' business
        conn.execute(sa.text("create table ind_site_year (site_code varchar(8), year integer)"))
        conn.execute(sa.text("create table base_subsidy (site_code varchar(8))"))
        conn.execute(sa.text("create table eval_district_before_runs (evaluation_year integer)"))
    assert differences(engine) == []

    changed = _without(warehouse.metadata)
    changed.tables["eval_signoffs"].append_column(sa.Column("reviewer", sa.String(100)))
    assert [d[0] for d in differences(engine, changed)] == ["add_column"]  # the comparison does see a change
    engine.dispose()


def test_the_baseline_is_the_previous_release(warehouse_url):
    """The previous release's warehouse, migrated, differs only by the revisions after the baseline
    (0002: the intake's stg_* tables renamed raw_*, ref_targets' exact fraction)."""
    engine = warehouse.make_engine(warehouse_url)
    previous_release_warehouse(engine)
    previous = {name: _columns(engine, name) for name in sa.inspect(engine).get_table_names()}
    migrate(engine)
    expected = {name.replace("stg_", "raw_", 1) if name.startswith("stg_") else name: cols
                for name, cols in previous.items()}
    expected["ref_targets"] = [*previous["ref_targets"], "target_numerator", "target_denominator"]
    assert {name: _columns(engine, name) for name in expected} == expected
    assert set(sa.inspect(engine).get_table_names()) == set(expected) | {migrations.VERSION_TABLE}
    engine.dispose()


# --- (d) often and at once ---------------------------------------------------------------------------
def test_migrate_at_head_changes_nothing_and_is_fast(warehouse_url):
    engine = warehouse.make_engine(warehouse_url)
    assert migrate(engine) == head_revision()
    with engine.begin() as conn:
        conn.execute(sa.text("insert into ref_codes (code_list, code) values ('key_groups', 'veteran')"))
    started = time.perf_counter()
    for _ in range(10):
        assert migrate(engine) == head_revision()
    assert (time.perf_counter() - started) / 10 < 0.25
    with engine.connect() as conn:
        assert conn.execute(sa.text("select code from ref_codes")).scalars().all() == ["veteran"]
        assert conn.execute(sa.text(f"select version_num from {migrations.VERSION_TABLE}")).scalars().all() \
            == [head_revision()]
    engine.dispose()


MIGRATE_IN_A_PROCESS = """
import sys
from yuhang_skills.core import warehouse
from yuhang_skills.core.migrations import migrate
engine = warehouse.make_engine(sys.argv[1])
print(migrate(engine))
"""


@pytest.mark.parametrize("shape", ["empty", "previous_release"])
def test_processes_migrating_at_once_take_turns(warehouse_url, shape):
    engine = warehouse.make_engine(warehouse_url)
    if shape == "previous_release":
        previous_release_warehouse(engine)
        columns, before = fill(engine, ["submissions", "eval_runs"])
    env = {**os.environ, "PYTHONPATH": str(Path(warehouse.__file__).resolve().parents[1])}
    processes = [subprocess.Popen([sys.executable, "-c", MIGRATE_IN_A_PROCESS, warehouse_url], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [p.communicate(timeout=240) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], [err[-1500:] for _, err in results]
    assert [out.strip() for out, _ in results] == [head_revision()] * 3
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"select version_num from {migrations.VERSION_TABLE}")).scalars().all() \
            == [head_revision()]
    if shape == "previous_release":
        assert snapshot(engine, columns) == before
    assert differences(engine) == []
    engine.dispose()
