"""The end-to-end benchmark script runs as the README shows it (on a tiny sample) and prints its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).parents[2]


def test_pipeline_benchmark_prints_one_row_per_scale_with_the_evaluations_score(tmp_path):
    done = subprocess.run(
        [sys.executable, str(PROJECT / "scripts" / "benchmark_pipeline.py"), "--scales", "0.05", "--workers", "1",
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    header, row = done.stdout.strip().splitlines()[-2:]
    assert header.split()[:3] == ["scale", "files", "roster"]
    cells = row.split()
    assert cells[0] == "0.05" and int(cells[2].replace(",", "")) > 0
    assert 0 < float(cells[-1]) <= 100  # the evaluation ran and scored
    assert (tmp_path / "scale-0.05" / "var" / "warehouse.sqlite").is_file()
