"""Where the evaluator view finds the warehouse, and what it says when it cannot read it (the page
tests in test_evaluator_view.py run the same app in a real api-server)."""

from __future__ import annotations

import pytest

from tests.include.loopback_servers import free_port


def test_warehouse_url_follows_the_dags_settings(monkeypatch, tmp_path):
    from yuhang_skills.evaluator_view import data

    monkeypatch.delenv("YUHANG_WAREHOUSE_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_YUHANG_WAREHOUSE", "postgresql://warehouse:pw@db.example:5432/warehouse")
    assert data.warehouse_url() == "postgresql+psycopg2://warehouse:pw@db.example:5432/warehouse"
    assert data.describe_url(data.warehouse_url()) == "postgresql+psycopg2://warehouse:***@db.example:5432/warehouse"
    monkeypatch.setenv("YUHANG_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'w.sqlite'}")
    assert data.warehouse_url() == f"sqlite:///{tmp_path / 'w.sqlite'}"
    monkeypatch.delenv("YUHANG_WAREHOUSE_URL")
    monkeypatch.delenv("AIRFLOW_CONN_YUHANG_WAREHOUSE")
    monkeypatch.setenv("YUHANG_VAR_DIR", str(tmp_path / "var"))
    assert data.warehouse_url() == f"sqlite:///{(tmp_path / 'var' / 'warehouse.sqlite').resolve()}"


@pytest.fixture
def client(monkeypatch):
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.testclient import TestClient

    from yuhang_skills.evaluator_view.app import create_app

    class Evaluator:
        def get_name(self) -> str:
            return "evaluator"

    app = create_app()
    app.dependency_overrides[get_user] = Evaluator
    return TestClient(app)


def test_unreachable_warehouse_is_said_plainly(client, monkeypatch):
    port = free_port()  # nothing listens there
    monkeypatch.setenv("YUHANG_WAREHOUSE_URL", f"postgresql://warehouse:secret-pw@127.0.0.1:{port}/warehouse")
    for path in ("/", "/sites", "/sites/V01", "/submissions", "/runs/2027-20270215-01"):
        answer = client.get(path)
        assert answer.status_code == 503, path
        assert "the warehouse cannot be reached" in answer.text
        assert "secret-pw" not in answer.text and "Traceback" not in answer.text


def test_empty_warehouse_file_gives_the_run_the_dags_message(client, monkeypatch, tmp_path):
    import sqlalchemy as sa

    path = tmp_path / "warehouse.sqlite"
    sa.create_engine(f"sqlite:///{path}").connect().close()  # a file without tables
    monkeypatch.setenv("YUHANG_WAREHOUSE_URL", f"sqlite:///{path}")
    for url in ("/", "/sites", "/sites/V01", "/submissions"):
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert "no evaluation yet: run yuhang_intake and yuhang_evaluation" in answer.text
    assert path.stat().st_size == 0  # read only: not even a table was created


def test_every_intake_status_has_a_label_and_warnings_are_told_apart(tmp_path):
    """The site page labels every status the intake writes (no_rows_accepted included) and
    tells a warning (the row still counts) from an error (the row is left out)."""
    import datetime as dt

    import sqlalchemy as sa
    from jinja2 import Environment, FileSystemLoader

    from yuhang_skills.core import warehouse
    from yuhang_skills.evaluator_view import app, data
    from yuhang_skills.intake.publish import USABLE_STATUSES

    written = {"accepted", "partially_accepted", "no_rows_accepted", "rejected", "failed"}
    assert set(USABLE_STATUSES) <= written
    assert written <= set(app.SUBMISSION_LABELS) and written <= set(data.SUBMISSION_STATES)

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    warehouse.create_schema(engine)
    now = dt.datetime(2026, 6, 3, 9, 0)
    with engine.begin() as conn:
        conn.execute(warehouse.submissions.insert(), [{
            "submission_id": f"{'a' * 64}:V01:2026-05:roster", "sha256": "a" * 64, "site_code": "V01",
            "period": "2026-05", "kind": "roster", "original_name": "V01/2026-05/roster.csv",
            "archive_path": "x", "size_bytes": 10, "received_at": now, "ingested_at": now, "version": 1,
            "is_current": True, "status": "no_rows_accepted", "rows_read": 2, "rows_staged": 0,
            "rows_quarantined": 2, "message": "every row refused"}])
    reader = data.Reader(engine)
    assert reader.has_column("quarantine", "severity") and not reader.has_column("quarantine", "no_such")
    [row] = reader.site_submissions("V01")
    assert (row["state"], row["rows_read"], row["rows_quarantined"]) == ("no_rows_accepted", 2, 2)

    env = Environment(loader=FileSystemLoader(app.TEMPLATES), autoescape=True)
    env.filters.update({name: (lambda v, *a, **k: "" if v is None else str(v))
                        for name in ("submission", "moment", "day", "num", "short", "yuan", "pct", "wan")})
    source = (app.TEMPLATES / "site.html").read_text(encoding="utf-8")
    assert "q.severity == 'warning'" in source and "警告（行仍计入）" in source
