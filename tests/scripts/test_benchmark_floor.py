"""The bare floor of ``scripts/benchmark_floor.py`` reads the rows intake reads."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sqlite3
import sys
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

SCRIPT = Path(__file__).parents[2] / "scripts" / "benchmark_floor.py"


def _floor_module():
    spec = importlib.util.spec_from_file_location("benchmark_floor", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmark_floor"] = module
    spec.loader.exec_module(module)
    return module


def test_check_character_over_a_column():
    floor = _floor_module()
    ids = pd.Series(["11010519491231002X", "11010519491231002x ", "110105194912310021", "1101051949", None])
    assert floor.id_check_ok(ids).tolist() == [True, True, False, False, False]


def test_floor_reads_as_many_roster_rows_as_intake(tmp_path, settings_for):
    from yuhang_sample.generator import SampleOptions, generate
    from yuhang_skills.core import warehouse
    from yuhang_skills.core.migrations import migrate
    from yuhang_skills.core.policy import Plan
    from yuhang_skills.intake.discover import discover
    from yuhang_skills.intake.ingest import Intake

    settings = settings_for(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    plan = Plan.from_settings(settings)
    inbox = tmp_path / "inbox"
    generate(inbox, SampleOptions.clean(scale=0.05, start="2026-01", end="2026-03"), plan)
    engine = warehouse.make_engine(settings.warehouse_url)
    migrate(engine)
    Intake(settings, plan, today=dt.date(2027, 2, 15)).ingest_many(discover(inbox, plan))
    with engine.connect() as conn:
        intake_rows = conn.execute(
            sa.text("select sum(rows_staged + rows_quarantined) from submissions where kind = 'roster'")
        ).scalar_one()

    floor = _floor_module()
    database = tmp_path / "floor.sqlite"
    run = floor.floor_of_inbox(str(inbox), str(database), "test-key")
    assert intake_rows > 0
    assert run.rows == intake_rows
    assert run.files == len(floor.roster_files(inbox))
    with sqlite3.connect(database) as db:
        stored = db.execute("select count(*), sum(id_check_ok), count(distinct person_key) from roster").fetchone()
        columns = [row[1] for row in db.execute("pragma table_info(roster)")]
    assert stored[0] == intake_rows
    assert stored[1] == intake_rows  # a clean inbox: every ID has its right check character
    assert stored[2] > 1
    assert "id_number" not in columns and "name" not in columns
