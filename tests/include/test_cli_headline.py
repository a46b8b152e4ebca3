"""The command line's headline shows the release, the recoveries and the net release."""

from __future__ import annotations

from yuhang_skills.cli import format_headline


def test_headline_prints_recoveries_and_net_release():
    headline = {"evaluation_year": 2027, "as_of": "2027-02-15", "score": "88.33", "grade": "良",
                "released_yuan": "1766600.00", "tranche_yuan": "2000000.00", "release_rule": "banded",
                "policy_version": "yuhang-2025-12-18/v1", "recoveries_yuan": "60000.00",
                "net_released_yuan": "1706600.00", "workbook": "/out/evaluation_2027.xlsx",
                "report": "/out/evaluation_2027.html"}
    lines = format_headline({"headline": headline, "seconds": {"yuhang_evaluation": 1.2}}, "sqlite:///w.sqlite")
    assert "  released     1,766,600.00 of 2,000,000.00 yuan (rule: banded, policy yuhang-2025-12-18/v1)" in lines
    assert "  recoveries   60,000.00 yuan (sites not rectified by their deadline)" in lines
    assert "  net release  1,706,600.00 yuan" in lines
    assert "  report       /out/evaluation_2027.html" in lines


def test_the_demo_starts_from_a_kept_copy_of_airflows_migrated_metadata(tmp_path):
    """The demo rebuilds its sandbox, Airflow metadata included, on every run: the first run migrates
    Airflow's database and keeps a copy; the next starts from it without migrating again."""
    import os
    import sqlite3
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from airflow.utils import db\n"
        "if sys.argv[2] == 'no-migration':\n"
        "    def refuse(*a, **k):\n"
        "        raise SystemExit('migrated again')\n"
        "    db.upgradedb = refuse\n"
        "from yuhang_skills.cli import migrate_airflow_db\n"
        "migrate_airflow_db(template_dir=Path(sys.argv[1]))\n"
    )
    cache = tmp_path / "cache"
    tables = []
    for run, mode in (("first", "migrate"), ("second", "no-migration")):
        home = tmp_path / run
        home.mkdir()
        env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
               "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}"}
        done = subprocess.run([sys.executable, "-c", script, str(cache), mode], env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        with sqlite3.connect(home / "airflow.db") as conn:
            tables.append(sorted(r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")))
            assert conn.execute("select version_num from alembic_version").fetchone()
    assert [p.name.startswith("airflow-metadata-") for p in cache.iterdir()] == [True]
    assert tables[0] == tables[1] and "dag_run" in tables[1]
