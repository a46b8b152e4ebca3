"""Integrity-check and indicator-model benchmark: run every check of include/yuhang_skills/sql/integrity and
every model over a staged warehouse, then the same SQL in an in-process DuckDB over the same rows, and print
the seconds of each side by side.

    .venv/bin/python scripts/benchmark_intake.py --scale 115 --workdir /tmp/bench   # stage ≈ 1,100,000 rows
    .venv/bin/python scripts/benchmark_integrity.py --warehouse sqlite:////tmp/bench/var/warehouse.sqlite
    .venv/bin/python scripts/benchmark_integrity.py --warehouse postgresql+psycopg2://postgres@127.0.0.1/bench

Runs what the ``integrity_checks`` task of ``yuhang_indicators`` runs (reference tables first, as
its ``reference`` task does), ``--runs`` times: the first run also builds the indexes the checks
use, the last is what a daily run pays. Then the models, as the ``models`` task builds them.

The floor: the tables the SQL reads are copied into DuckDB (not timed; no extension, nothing
downloaded) and the same check and model files run there unchanged, each check seeing the
exclusions of the checks before it, as in the warehouse. Only the SQL is timed on both sides (a
check until its last row is fetched, a model's ``create``), and the ratio is warehouse / DuckDB,
on wall seconds (the DuckDB run uses every core; its CPU seconds are printed beside). On SQLite,
which works in this process too, the ratio of CPU seconds follows: other load on the machine
barely moves it, and the warehouse's side counts its whole last checks run (statistics, findings)
and the models, so it errs against the warehouse. Each check's row count is compared across the
two, so the floor is known to do the same work. A figure, not a pass/fail: timing tests flake,
benchmarks are read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    import duckdb
    import sqlalchemy as sa

CHUNK_ROWS = 100_000  # rows per copy into DuckDB: memory stays bounded by a chunk, not by the table


def duck_type(column: sa.Column) -> str:
    """The DuckDB type of a warehouse column."""
    import sqlalchemy as sa

    kind = column.type
    if isinstance(kind, sa.Boolean):
        return "boolean"
    if isinstance(kind, sa.BigInteger):
        return "bigint"
    if isinstance(kind, sa.Integer):
        return "integer"
    if isinstance(kind, sa.Numeric):
        return f"decimal({kind.precision}, {kind.scale})"
    if isinstance(kind, sa.DateTime):
        return "timestamp"
    if isinstance(kind, sa.Date):
        return "date"
    return "varchar"


def copy_table(engine: sa.Engine, duck: duckdb.DuckDBPyConnection, table: sa.Table, where: str = "") -> int:
    """Create ``table`` in DuckDB with its warehouse types and copy its rows (those ``where`` picks)."""
    import pandas as pd

    names = [c.name for c in table.columns]
    duck.execute(f"create table {table.name} ({', '.join(f'{c.name} {duck_type(c)}' for c in table.columns)})")
    casts = ", ".join(f'cast("{c.name}" as {duck_type(c)})' for c in table.columns)
    copied = 0
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"select {', '.join(names)} from {table.name} {where}")
        while rows := cursor.fetchmany(CHUNK_ROWS):
            chunk = pd.DataFrame.from_records(rows, columns=names)
            duck.register("chunk", chunk)
            duck.execute(f"insert into {table.name} select {casts} from chunk")
            duck.unregister("chunk")
            copied += len(rows)
        cursor.close()
    finally:
        raw.close()
    return copied


def tables_read(sqls: Iterable[str], built: set[str]) -> set[str]:
    """The warehouse tables the SQL reads that no model builds."""
    from yuhang_skills.core import warehouse
    from yuhang_skills.indicators import layers

    names = set().union(*(layers.reads(sql) for sql in sqls))
    return {n for n in names - built if n in warehouse.metadata.tables}


def timed(fn: Any) -> tuple[Any, float, float]:
    """fn()'s result, wall seconds and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def duckdb_floor(engine: sa.Engine, check_names: list[str], sql_dir: Path) -> dict[str, Any]:
    """The checks and models in DuckDB over a copy of the warehouse's rows: per check its seconds and
    rows, per model its seconds, and the CPU seconds of each part."""
    import duckdb
    import pandas as pd
    import sqlalchemy as sa

    from yuhang_skills.core import warehouse
    from yuhang_skills.indicators import integrity, layers

    models = layers.build_order(layers.discover(sql_dir))
    checks = {name: integrity.check_sql(sql_dir, name) for name in check_names}
    later = {"integrity_exclusions", "integrity_findings"}  # the checks' own output, filled as they run
    duck = duckdb.connect()
    started = time.perf_counter()
    for name in sorted(tables_read([*checks.values(), *(m.sql for m in models)], {m.name for m in models}) - later):
        copy_table(engine, duck, warehouse.metadata.tables[name])
    with engine.connect() as conn:
        exclusions = pd.read_sql(sa.select(warehouse.integrity_exclusions), conn)
    copy_table(engine, duck, warehouse.integrity_exclusions, "where 1 = 0")
    copied = time.perf_counter() - started

    out: dict[str, Any] = {"copy_seconds": copied, "checks": {}, "models": {}, "errors": {}}
    for model in models:  # the staging views the checks read
        if model.layer == "staging":
            duck.execute(f"create {model.materialized} {model.name} as {model.sql}")
    cpu = 0.0
    for name, sql in checks.items():
        try:
            rows, wall, used = timed(lambda sql=sql: duck.execute(sql).fetchall())
        except duckdb.Error as error:
            out["errors"][name] = str(error).splitlines()[0]
        else:
            out["checks"][name] = (wall, len(rows))
            cpu += used
        mine = exclusions[exclusions["check_name"] == name]  # what the warehouse run excluded for this check
        if not mine.empty:
            duck.register("mine", mine)
            duck.execute(
                "insert into integrity_exclusions select kind, submission_id, source_row, check_name, "
                "finding_id from mine"
            )
            duck.unregister("mine")
    out["checks_cpu"] = cpu
    copy_table(engine, duck, warehouse.integrity_findings)
    cpu = 0.0
    for model in models:
        if model.layer == "staging":
            continue
        try:
            _, wall, used = timed(
                lambda model=model: duck.execute(f"create {model.materialized} {model.name} as {model.sql}")
            )
        except duckdb.Error as error:
            out["errors"][model.name] = str(error).splitlines()[0]
        else:
            out["models"][model.name] = wall
            cpu += used
    out["models_cpu"] = cpu
    duck.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", required=True, help="SQLAlchemy URL of a warehouse with staged data")
    parser.add_argument("--runs", type=int, default=2, help="how many times to run the checks (default 2)")
    parser.add_argument("--no-floor", action="store_true", help="skip the DuckDB run")
    args = parser.parse_args(argv)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

    import sqlalchemy as sa

    from yuhang_skills.core import warehouse
    from yuhang_skills.core.policy import Plan
    from yuhang_skills.core.settings import SQL_DIR, load_settings
    from yuhang_skills.indicators import integrity, layers, models

    plan = Plan.from_settings(load_settings())
    engine = warehouse.make_engine(args.warehouse)
    in_process = engine.dialect.name == "sqlite"  # PostgreSQL works in its server: this process's CPU says nothing
    with engine.connect() as conn:
        roster = conn.execute(sa.text("select count(*) from raw_roster")).scalar_one()
        finance = conn.execute(sa.text("select count(*) from raw_finance")).scalar_one()
    started = time.perf_counter()
    models.load_reference(engine, plan)
    print(f"warehouse          {args.warehouse.split('@')[-1]}")
    print(f"staged rows        roster {roster:,}, finance {finance:,}")
    print(f"reference tables   {time.perf_counter() - started:.1f} s")
    results: list[integrity.CheckResult] = []
    checks_cpu = 0.0
    for run in range(1, args.runs + 1):
        results, total, checks_cpu = timed(lambda: integrity.run_checks(engine, plan, SQL_DIR))
        print(f"run {run}: {total:.1f} s in all" + (" (includes building the check indexes)" if run == 1 else ""))
        for r in results:
            print(
                f"  {r.name:<30} {r.seconds:6.1f} s  {r.findings:>7,} finding(s)  {r.excluded_rows:>7,} row(s) "
                f"excluded ({r.severity})"
            )
    seconds: dict[str, float] = {}
    _, total, models_cpu = timed(lambda: layers.build_models(engine, SQL_DIR, seconds=seconds))
    print(f"models             {total:.1f} s (indicators without the excluded rows)")
    if args.no_floor:
        return 0

    from yuhang_skills.indicators.integrity import check_names

    floor = duckdb_floor(engine, check_names(plan), SQL_DIR)
    rows = {r.name: r for r in results}
    ours_label = engine.dialect.name
    print(f"\nthe same SQL in DuckDB {_duck_version()} (tables copied in {floor['copy_seconds']:.1f} s, not timed)")
    print(f"  {'check (SQL only, last run)':<32} {ours_label:>10} {'duckdb':>8} {'ratio':>7}  rows (both)")
    ours_checks = duck_checks = 0.0
    for name, r in rows.items():
        if name not in floor["checks"]:
            print(f"  {name:<32} {r.query_seconds:9.2f}s {'—':>8} {'':>7}  DuckDB: {floor['errors'].get(name)}")
            continue
        wall, n = floor["checks"][name]
        ours_checks += r.query_seconds
        duck_checks += wall
        same = f"{n:,}" if n == r.query_rows else f"DIFFER: {r.query_rows:,} here, {n:,} in DuckDB"
        print(f"  {name:<32} {r.query_seconds:9.2f}s {wall:7.2f}s {_ratio(r.query_seconds, wall):>7}  {same}")
    print(f"  {'checks':<32} {ours_checks:9.2f}s {duck_checks:7.2f}s {_ratio(ours_checks, duck_checks):>7}")
    ours_models = duck_models = 0.0
    for name, wall in floor["models"].items():
        ours_models += seconds[name]
        duck_models += wall
        print(f"  {name:<32} {seconds[name]:9.2f}s {wall:7.2f}s {_ratio(seconds[name], wall):>7}")
    for name, error in floor["errors"].items():
        if name in seconds:
            print(f"  {name:<32} {seconds[name]:9.2f}s {'—':>8} {'':>7}  DuckDB: {error}")
    print(f"  {'models':<32} {ours_models:9.2f}s {duck_models:7.2f}s {_ratio(ours_models, duck_models):>7}")
    ours_all, duck_all = ours_checks + ours_models, duck_checks + duck_models
    print(f"  {'checks + models':<32} {ours_all:9.2f}s {duck_all:7.2f}s {_ratio(ours_all, duck_all):>7}")
    duck_cpu = floor["checks_cpu"] + floor["models_cpu"]
    print(f"ratio              {ours_label} / DuckDB = {_ratio(ours_all, duck_all)} (wall seconds of the SQL)")
    if in_process:  # both in this process: CPU seconds, which other load on the machine barely moves
        ours_cpu = checks_cpu + models_cpu
        print(
            f"ratio (CPU)        {ours_label} {ours_cpu:.2f} s / DuckDB {duck_cpu:.2f} s = "
            f"{_ratio(ours_cpu, duck_cpu)} "
            f"({ours_label}: the whole last checks run and the models, statistics and findings included; "
            "DuckDB: its SQL, every thread)"
        )
    else:
        print(f"DuckDB CPU         {duck_cpu:.2f} s (its SQL, every thread)")
    return 0


def _ratio(ours: float, floor: float) -> str:
    return f"{ours / floor:.1f}x" if floor > 0 else "—"


def _duck_version() -> str:
    import duckdb

    return str(duckdb.__version__)


if __name__ == "__main__":
    sys.exit(main())
