"""Readers get in while an intake writes, and see whole files only.

Two intake processes (as an executor runs two mapped site tasks at once) write the sample into a
warehouse while this process reads it the way the evaluator page and ``yuhang-pipeline status``
do: the page's own engine (read-only on SQLite) and the status report. Every read must succeed,
some must land while the writers are half way, and each must see a consistent warehouse: the
staged rows of every kind are exactly the rows the submissions it can see say were staged, and
every file's rows add up (one transaction per file).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

AS_OF = "2027-02-15"

WRITER = """
import sys
from pathlib import Path
from yuhang_skills.core.policy import Plan
from yuhang_skills.core.settings import load_settings
from yuhang_skills.intake.discover import discover, site_batches
from yuhang_skills.orchestration import tasks

inbox, part, parts = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
plan = Plan.from_settings(load_settings())
batches = site_batches(discover(inbox, plan), plan.policy.intake.task_bytes, plan.policy.intake.task_max_sites)
for batch in sorted(batches, key=tasks.batch_label)[part::parts]:
    tasks.ingest_site(tasks.batch_label(batch), [f.to_dict() for f in batch], sys.argv[4])
"""

CONSISTENT = """
select
  (select count(*) from raw_roster) as roster_rows,
  (select coalesce(sum(rows_staged), 0) from submissions where kind = 'roster') as roster_staged,
  (select count(*) from raw_finance) as finance_rows,
  (select coalesce(sum(rows_staged), 0) from submissions where kind = 'finance') as finance_staged,
  (select count(*) from submissions where rows_read <> rows_staged + rows_quarantined) as not_adding_up,
  (select count(*) from submissions) as files
"""


def test_the_evaluator_page_and_status_read_while_two_intake_processes_write(tmp_path, warehouse_url):
    from yuhang_sample.generator import SampleOptions, generate
    from yuhang_skills.cli.ops import status_report
    from yuhang_skills.core import warehouse
    from yuhang_skills.core.migrations import migrate
    from yuhang_skills.core.policy import Plan
    from yuhang_skills.core.settings import load_settings
    from yuhang_skills.evaluator_view import data

    inbox = tmp_path / "inbox"
    generate(inbox, SampleOptions.clean(scale=0.3))
    engine = warehouse.make_engine(warehouse_url)
    migrate(engine)
    engine.dispose()
    env = {**os.environ, "YUHANG_VAR_DIR": str(tmp_path / "var"), "YUHANG_WAREHOUSE_URL": warehouse_url,
           "GX_ANALYTICS_ENABLED": "false"}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(inbox), str(part), "2", AS_OF], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for part in range(2)]
    reader_engine = data._engine(warehouse_url)  # the page's engine: read-only on SQLite
    plan = Plan.from_settings(load_settings())
    snapshots, status_reads = [], 0
    try:
        while any(w.poll() is None for w in writers):
            reader = data.Reader(reader_engine)
            if reader.has("submissions"):
                (snapshot,) = reader.rows(CONSISTENT)
                snapshots.append(snapshot)
                reader.site_submissions("S01")
            if status_reads < 3:
                report = status_report(warehouse_url, plan, dt.date(2027, 2, 15), "sqlite:///nowhere.db")
                assert "data" in report, report
                status_reads += 1
            time.sleep(0.05)
    finally:
        for w in writers:
            w.wait(timeout=600)
    assert [w.returncode for w in writers] == [0, 0], [w.stderr.read()[-2000:] for w in writers if w.stderr]
    with sa.create_engine(warehouse_url).connect() as conn:
        (final,) = conn.execute(sa.text(CONSISTENT)).mappings().all()
    assert final["files"] > 100 and final["roster_rows"] > 0
    for s in snapshots:
        assert s["roster_rows"] == s["roster_staged"] and s["finance_rows"] == s["finance_staged"], s
        assert s["not_adding_up"] == 0, s
    halfway = [s for s in snapshots if 0 < s["files"] < final["files"]]
    assert len(halfway) >= 5, f"only {len(halfway)} of {len(snapshots)} reads landed while the writers were busy"
    assert status_reads == 3
    reader_engine.dispose()


def test_the_page_engine_cannot_write_to_the_embedded_warehouse(tmp_path):
    """The page reads SQLite read-only, so a reader can never hold the write lock an intake needs."""
    from yuhang_skills.core import warehouse
    from yuhang_skills.core.migrations import migrate
    from yuhang_skills.evaluator_view import data

    url = f"sqlite:///{Path(tmp_path) / 'warehouse.sqlite'}"
    migrate(warehouse.make_engine(url))
    with data._engine(url).connect() as conn:
        try:
            conn.execute(sa.text("delete from submissions"))
        except sa.exc.OperationalError as exc:
            assert "readonly" in str(exc).replace("-", "").lower()
        else:
            raise AssertionError("the page's engine wrote to the warehouse")
