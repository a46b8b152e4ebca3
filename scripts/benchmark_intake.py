"""Intake benchmark: parse + validate + stage a large generated inbox and print the figures.

    .venv/bin/python scripts/benchmark_intake.py --scale 115          # ≈ 1,100,000 roster rows
    .venv/bin/python scripts/benchmark_intake.py --inbox DIR --warehouse URL

Runs the same code path as the ``yuhang_intake`` DAG: the same site batches (one per site folder,
small folders packed together by the policy), spread over
``--workers`` processes as the executor spreads the mapped tasks over the machine's cores (2
here), then publish. Prints roster rows, seconds, rows/s and peak resident memory (the largest
worker and the sum of all), then runs the bare floor (``scripts/benchmark_floor.py``) over the same
inbox in a fresh process and prints intake CPU / floor CPU and intake CPU per file.
A figure, not a pass/fail: timing tests flake, benchmarks are read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path


def warm_up() -> None:
    """What a long-lived worker has already paid: importing GX and building the suites."""
    from yuhang_skills.core.settings import load_settings
    from yuhang_skills.intake.validate import runner_for

    runner_for(str(load_settings().expectations_dir))


def _ingest_group(files: list[dict]) -> float:
    """One mapped task's work: a site folder's files, in a worker process; returns the CPU
    seconds it used (a figure that, unlike wall time, other load on the machine barely moves)."""
    cpu = time.process_time()
    from yuhang_skills.core.policy import Plan
    from yuhang_skills.core.settings import load_settings
    from yuhang_skills.intake.discover import InboxFile
    from yuhang_skills.intake.ingest import Intake

    settings = load_settings()
    runner = Intake(settings, Plan.from_settings(settings), today=dt.date(2027, 2, 15))
    runner.ingest_many([InboxFile(**f) for f in files])
    return time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inbox", type=Path, help="existing inbox (default: generate one with --scale)")
    parser.add_argument("--scale", type=float, default=115.0, help="generator scale when no --inbox (default 115)")
    parser.add_argument(
        "--warehouse", help="warehouse URL (default: $YUHANG_WAREHOUSE_URL, else a new SQLite file in --workdir)"
    )
    parser.add_argument("--workdir", type=Path, help="where to put the warehouse and archive (default: temp)")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="parallel mapped tasks, as an executor would run them (default: CPU count)",
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the bare floor (scripts/benchmark_floor.py)")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="yuhang-bench-"))
    os.environ["YUHANG_VAR_DIR"] = str(workdir / "var")
    if args.warehouse:
        os.environ["YUHANG_WAREHOUSE_URL"] = args.warehouse
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

    from yuhang_sample.generator import SampleOptions, generate
    from yuhang_skills.core import warehouse
    from yuhang_skills.core.migrations import migrate
    from yuhang_skills.core.policy import Plan
    from yuhang_skills.core.settings import load_settings
    from yuhang_skills.intake.discover import discover, site_batches
    from yuhang_skills.intake.publish import publish, reconcile

    settings = load_settings()
    plan = Plan.from_settings(settings)
    inbox = args.inbox
    if inbox is None:
        inbox = workdir / "inbox"
        started = time.perf_counter()
        generate(inbox, SampleOptions.clean(scale=args.scale, start="2026-01", end="2026-12"), plan)
        print(f"generated {inbox} in {time.perf_counter() - started:.1f} s")
    engine = warehouse.make_engine(settings.warehouse_url)
    migrate(engine)  # as every DAG's first task does
    files = discover(inbox, plan)
    groups = site_batches(files, plan.policy.intake.task_bytes, plan.policy.intake.task_max_sites)
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn"), initializer=warm_up) as pool:
        warm = time.perf_counter()
        list(pool.map(time.sleep, [0.5] * args.workers * 2))  # every worker started and warmed up
        print(f"worker warm-up      {time.perf_counter() - warm:.1f} s (Great Expectations import, suites; not timed)")
        started = time.perf_counter()
        cpu_seconds = sum(pool.map(_ingest_group, [[f.to_dict() for f in g] for g in groups]))
        published = publish(engine)
        elapsed = time.perf_counter() - started

    lost = reconcile(engine)
    with engine.connect() as conn:
        import sqlalchemy as sa

        roster_read = conn.execute(
            sa.text("select coalesce(sum(rows_read), 0) from submissions where kind = 'roster'")
        ).scalar_one()
        all_read = conn.execute(sa.text("select coalesce(sum(rows_read), 0) from submissions")).scalar_one()
    worker_peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"warehouse          {settings.warehouse_url.split('@')[-1]}")
    print(f"files              {len(files):,} ({published['current']:,} current)")
    print(f"roster rows        {roster_read:,} (all kinds {all_read:,})")
    print(f"intake seconds     {elapsed:.1f}")
    print(f"roster rows/s      {roster_read / elapsed:,.0f}")
    print(
        f"workers            {args.workers} ({cpu_seconds:.1f} CPU seconds in all, "
        f"{roster_read / cpu_seconds:,.0f} roster rows per CPU second)"
    )
    print(
        f"peak RSS           {worker_peak_mb:,.0f} MB largest worker, {parent_mb:,.0f} MB coordinator, "
        f"{worker_peak_mb * args.workers + parent_mb:,.0f} MB all together at most"
    )
    print(f"intake per file    {1000 * cpu_seconds / len(files):.1f} ms CPU ({len(files):,} files)")
    print(f"rows reconcile     {'yes' if not lost else f'NO: {lost}'}")
    if not args.no_floor:
        import benchmark_floor

        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            floor = pool.submit(
                benchmark_floor.floor_of_inbox, str(inbox), str(workdir / "floor.sqlite"), settings.pii_key
            ).result()
        print(
            f"bare floor         {floor.rows:,} roster rows of {floor.files:,} files: {floor.cpu_seconds:.1f} CPU "
            f"seconds, {floor.wall_seconds:.1f} s, peak RSS {floor.peak_rss_mb:,.0f} MB (one process)"
        )
        print(f"intake / floor     {cpu_seconds / floor.cpu_seconds:.2f} (CPU seconds)")
    return 0 if not lost else 1


if __name__ == "__main__":
    sys.exit(main())
