"""Integrity-check benchmark: run every check of include/yuhang_skills/sql/integrity over a staged warehouse
and print the seconds per check, the findings and the rows excluded.

    .venv/bin/python scripts/benchmark_intake.py --scale 115 --workdir /tmp/bench   # stage ≈ 1,100,000 rows
    .venv/bin/python scripts/benchmark_integrity.py --warehouse sqlite:////tmp/bench/var/warehouse.sqlite
    .venv/bin/python scripts/benchmark_integrity.py --warehouse postgresql+psycopg2://postgres@127.0.0.1/bench

Runs what the ``integrity_checks`` task of ``yuhang_indicators`` runs (reference tables first, as
its ``reference`` task does), twice: the first run also builds the indexes the checks use, the
second is what a daily run pays. A figure, not a pass/fail: timing tests flake, benchmarks are read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", required=True, help="SQLAlchemy URL of a warehouse with staged data")
    parser.add_argument("--runs", type=int, default=2, help="how many times to run the checks (default 2)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

    import sqlalchemy as sa

    from yuhang_skills.core import warehouse
    from yuhang_skills.core.policy import Plan
    from yuhang_skills.core.settings import SQL_DIR, load_settings
    from yuhang_skills.indicators import integrity, layers, models

    plan = Plan.from_settings(load_settings())
    engine = warehouse.make_engine(args.warehouse)
    with engine.connect() as conn:
        roster = conn.execute(sa.text("select count(*) from raw_roster")).scalar_one()
        finance = conn.execute(sa.text("select count(*) from raw_finance")).scalar_one()
    started = time.perf_counter()
    models.load_reference(engine, plan)
    print(f"warehouse          {args.warehouse.split('@')[-1]}")
    print(f"staged rows        roster {roster:,}, finance {finance:,}")
    print(f"reference tables   {time.perf_counter() - started:.1f} s")
    for run in range(1, args.runs + 1):
        started = time.perf_counter()
        results = integrity.run_checks(engine, plan, SQL_DIR)
        total = time.perf_counter() - started
        print(f"run {run}: {total:.1f} s in all" + (" (includes building the check indexes)" if run == 1 else ""))
        for r in results:
            print(
                f"  {r.name:<30} {r.seconds:6.1f} s  {r.findings:>7,} finding(s)  {r.excluded_rows:>7,} row(s) "
                f"excluded ({r.severity})"
            )
    started = time.perf_counter()
    layers.build_models(engine, SQL_DIR)
    print(f"models             {time.perf_counter() - started:.1f} s (indicators without the excluded rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
