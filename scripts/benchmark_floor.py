"""Bare floor of intake: the least any intake must do with an inbox's roster files, in one process.

    .venv/bin/python scripts/benchmark_floor.py --inbox DIR

Reads every roster file (CSV bytes decoded as UTF-8, with or without BOM, else GB18030; XLSX with
openpyxl, the reader intake uses), finds the header row, checks the ID numbers' GB 11643 check
character over the whole column at once, replaces the ID by its HMAC-SHA256, drops the clear ID
and name and appends the rows to one SQLite table. Prints files, rows, CPU and wall seconds and
peak resident memory. None of intake's other checks, no manifest, no quarantine: the figure
``scripts/benchmark_intake.py`` divides intake's CPU seconds by, on the same inbox in the same run.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import hmac
import io
import itertools
import os
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# GB 11643-1999: weights 2**(17-i) mod 11 of the first 17 digits; the check character is
# "10X98765432"[sum mod 11].
_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)


@dataclass(frozen=True)
class FloorRun:
    files: int
    rows: int
    cpu_seconds: float
    wall_seconds: float
    peak_rss_mb: float


def id_check_ok(ids: pd.Series) -> np.ndarray:
    """True where a value is 17 digits and the right GB 11643 check character, over the column at once."""
    text = ids.fillna("").astype(str).str.strip().str.upper()
    shaped = text.str.fullmatch(r"[0-9]{17}[0-9X]").to_numpy(dtype=bool)
    ok = np.zeros(len(text), dtype=bool)
    if shaped.any():
        chars = text[shaped].to_numpy(dtype="S18").view(np.uint8).reshape(-1, 18)
        digits = chars[:, :17].astype(np.int64) - ord("0")
        ok[shaped] = chars[:, 17] == _CHECK[(digits @ _WEIGHTS) % 11]
    return ok


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def _header(rows: Sequence[Sequence[Any]], lookup: dict[str, str], need: int) -> int | None:
    """Index of the first row naming at least ``need`` roster columns."""
    from yuhang_skills.intake.parse import fold

    for i, row in enumerate(rows):
        if len({lookup[fold(c)] for c in row if c is not None and fold(c) in lookup}) >= need:
            return i
    return None


def _read(path: Path, lookup: dict[str, str], need: int, search: int) -> pd.DataFrame | None:
    """The file's data rows under canonical column names (None when no header row is found)."""
    if path.suffix.lower() == ".xlsx":
        import openpyxl

        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            grid: list[list[Any]] = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
        finally:
            wb.close()
        at = _header(grid[:search], lookup, need)
        if at is None:
            return None
        header: list[Any] = grid[at]
        body = pd.DataFrame(grid[at + 1 :], columns=range(len(header)), dtype=object)
        body = body.dropna(how="all").astype(str).where(body.notna(), None)
    else:
        text = _decode(path.read_bytes())
        at = _header(list(itertools.islice(csv.reader(io.StringIO(text, newline="")), search)), lookup, need)
        if at is None:
            return None
        header = next(itertools.islice(csv.reader(io.StringIO(text, newline="")), at, None))
        body = pd.read_csv(
            io.StringIO(text), header=None, skiprows=at + 1, names=list(range(len(header))), dtype=str, na_filter=False
        )
    from yuhang_skills.intake.parse import fold

    names = {j: lookup[fold(c)] for j, c in enumerate(header) if c is not None and fold(c) in lookup}
    return body[list(names)].rename(columns=names)


def run_floor(files: list[Path], database: Path, key: str | bytes) -> FloorRun:
    """The floor over ``files`` (roster files), appending to table ``roster`` of the SQLite file
    ``database``; returns the counts, the CPU and wall seconds of this work and the process's peak RSS."""
    from yuhang_skills.core.policy import Plan
    from yuhang_skills.core.settings import load_settings
    from yuhang_skills.intake.parse import header_lookup

    contract = Plan.from_settings(load_settings()).contract
    roster = contract.kind("roster")
    lookup = header_lookup(roster)
    kept = [c for c in roster.columns if c not in ("id_number", "name")]
    columns = ["person_key", "id_check_ok", *kept]
    keyed = hmac.new(key.encode("utf-8") if isinstance(key, str) else key, digestmod=hashlib.sha256)

    def digest(value: str) -> str:
        mac = keyed.copy()
        mac.update(value.encode("utf-8"))
        return mac.hexdigest()

    cpu, wall = time.process_time(), time.perf_counter()
    rows = 0
    db = sqlite3.connect(database)
    try:
        db.execute(f"create table if not exists roster ({', '.join(f'[{c}]' for c in columns)})")
        insert = f"insert into roster values ({', '.join('?' for _ in columns)})"
        for path in files:
            frame = _read(path, lookup, contract.inbox.header_min_matches, contract.inbox.header_search_rows)
            if frame is None or not len(frame):
                continue
            ids = frame["id_number"] if "id_number" in frame else pd.Series("", index=frame.index)
            values = {
                "person_key": [digest(v.strip().upper()) if v else None for v in ids.fillna("").tolist()],
                "id_check_ok": id_check_ok(ids).tolist(),
                **{c: (frame[c].tolist() if c in frame else [None] * len(frame)) for c in kept},
            }
            db.executemany(insert, zip(*(values[c] for c in columns), strict=True))
            db.commit()
            rows += len(frame)
    finally:
        db.close()
    return FloorRun(
        files=len(files),
        rows=rows,
        cpu_seconds=time.process_time() - cpu,
        wall_seconds=time.perf_counter() - wall,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


def roster_files(inbox: Path) -> list[Path]:
    """The inbox's roster files, as intake's discovery finds them (files it would not read left out)."""
    from yuhang_skills.core.policy import Plan
    from yuhang_skills.core.settings import load_settings
    from yuhang_skills.intake.discover import discover

    found = discover(inbox, Plan.from_settings(load_settings()))
    return [f.fs_path() for f in found if f.kind == "roster" and not f.skip and not f.problem]


def floor_of_inbox(inbox: str, database: str, key: str) -> FloorRun:
    """:func:`run_floor` over an inbox's roster files (what a fresh process runs for the benchmark)."""
    return run_floor(roster_files(Path(inbox)), Path(database), key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inbox", type=Path, required=True)
    parser.add_argument("--database", type=Path, help="SQLite file to append to (default: a new temp file)")
    args = parser.parse_args(argv)
    database = args.database or Path(tempfile.mkdtemp(prefix="yuhang-floor-")) / "floor.sqlite"
    run = floor_of_inbox(str(args.inbox), str(database), os.environ.get("YUHANG_PII_KEY", "floor-benchmark-key"))
    print(f"files              {run.files:,}")
    print(f"roster rows        {run.rows:,}")
    print(f"CPU seconds        {run.cpu_seconds:.1f}")
    print(f"wall seconds       {run.wall_seconds:.1f}")
    print(f"peak RSS           {run.peak_rss_mb:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
