"""End-to-end benchmark: intake, indicators and evaluation over the sample at several scales, side by side.

    .venv/bin/python scripts/benchmark_pipeline.py --scales 12 115 350 --workdir /tmp/e2e

For each scale it generates the sample inbox with every mess and fraud pattern on (the generator's
defaults, seed 20251218; an inbox already under ``--workdir`` is reused) and then, in a fresh
process, times what the three DAGs do over a new warehouse: the intake (the DAG's site batches
over ``--workers`` processes, as the executor spreads the mapped tasks, then publish), the
indicators (reference tables, integrity checks, models) and the evaluation (scores, the run, the
workbook, report and official document). Prints, per scale: roster rows, seconds per stage, CPU
seconds, microseconds per roster row (flat when the cost grows no faster than the rows) and the
peak resident memory of the largest process (an upper bound: Linux starts a child's peak from its
parent's at the fork). A figure, not a pass/fail: timing tests flake, benchmarks are read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

AS_OF = dt.date(2027, 2, 15)
SEED = 20251218


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _ingest_batch(files: list[dict]) -> None:
    from yuhang_skills.orchestration import tasks

    label = ",".join(sorted({f["site_code"] or "(no site)" for f in files}))
    tasks.ingest_site(label, files, AS_OF.isoformat())


def run_one(inbox: Path, workdir: Path, workers: int) -> dict:
    """The three stages over ``inbox`` into a new SQLite warehouse under ``workdir``, in this process
    (and ``workers`` intake processes)."""
    os.environ["YUHANG_VAR_DIR"] = str(workdir)
    os.environ.pop("YUHANG_WAREHOUSE_URL", None)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import benchmark_intake

    from yuhang_skills.orchestration import tasks

    figures: dict[str, float] = {}
    wall, cpu = time.perf_counter(), _cpu()
    tasks.migrate_warehouse()
    batches = tasks.discover_submissions(str(inbox), AS_OF.isoformat())
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=benchmark_intake.warm_up
    ) as pool:
        list(pool.map(_ingest_batch, [b["files"] for b in batches]))
    published = tasks.publish_staging()
    figures["intake"] = time.perf_counter() - wall
    for stage, steps in (
        ("indicators", (tasks.load_reference, tasks.run_integrity_checks, tasks.build_models)),
        (
            "evaluation",
            (lambda: tasks.write_outputs(None, tasks.run_evaluation(None, AS_OF.isoformat())["run_id"]),),
        ),
    ):
        started = time.perf_counter()
        for step in steps:
            step()
        figures[stage] = time.perf_counter() - started
    figures["total"] = time.perf_counter() - wall
    figures["cpu"] = _cpu() - cpu

    import sqlalchemy as sa

    from yuhang_skills.core import warehouse
    from yuhang_skills.core.settings import load_settings

    engine = warehouse.make_engine(load_settings(use_airflow=False).warehouse_url)
    with engine.connect() as conn:
        roster = conn.execute(sa.text("select coalesce(sum(rows_read), 0) from submissions where kind = 'roster'"))
        figures["roster_rows"] = roster.scalar_one()
        score = conn.execute(sa.text("select score from eval_runs order by run_id desc limit 1")).scalar_one()
        figures["score"] = float(score)
    engine.dispose()
    figures["files"] = sum(len(b["files"]) for b in batches)
    figures["current"] = published.get("current", 0)
    figures["peak_mb"] = (
        max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        / 1024
    )
    return figures


def _generate(inbox: Path, scale: float) -> float:
    if (inbox / ".complete").is_file():
        return 0.0
    from yuhang_sample.generator import SampleOptions, generate

    started = time.perf_counter()
    generate(inbox, SampleOptions(seed=SEED, scale=scale))
    (inbox / ".complete").write_text(f"scale {scale}, seed {SEED}\n", encoding="utf-8")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[12, 115, 350], help="generator scales")
    parser.add_argument("--workdir", type=Path, required=True, help="inboxes and warehouses go here (reused)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="intake processes (default: cores)")
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)  # a child run: one scale, JSON out
    args = parser.parse_args(argv)
    if args.one is not None:
        folder = args.workdir / f"scale-{args.one:g}"
        print(json.dumps(run_one(folder / "inbox", folder / "var", args.workers)))
        return 0

    rows = []
    for scale in args.scales:
        folder = args.workdir / f"scale-{scale:g}"
        generated = _generate(folder / "inbox", scale)
        if generated:
            print(f"scale {scale:g}: sample generated in {generated:.0f} s", flush=True)
        import shutil

        shutil.rmtree(folder / "var", ignore_errors=True)
        child = subprocess.run(
            [sys.executable, __file__, "--one", f"{scale:g}", "--workdir", str(args.workdir), "--workers",
             str(args.workers)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        rows.append((scale, figures))
        print(f"scale {scale:g}: {figures['total']:.1f} s end to end", flush=True)

    print()
    print(f"{'scale':>6} {'files':>6} {'roster rows':>12} {'intake s':>9} {'indic. s':>9} {'eval s':>7} "
          f"{'total s':>8} {'CPU s':>7} {'µs/row':>7} {'peak MB':>8} {'score':>6}")  # fmt: skip
    for scale, f in rows:
        print(
            f"{scale:>6g} {f['files']:>6,.0f} {f['roster_rows']:>12,.0f} {f['intake']:>9.1f} {f['indicators']:>9.1f} "
            f"{f['evaluation']:>7.1f} {f['total']:>8.1f} {f['cpu']:>7.1f} "
            f"{f['total'] * 1e6 / max(f['roster_rows'], 1):>7.1f} {f['peak_mb']:>8,.0f} {f['score']:>6.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
