"""``yuhang-pipeline watchdog`` and ``yuhang-pipeline status`` on SQLite and PostgreSQL.

A small registry (three sites) and a manifest written the way intake writes it; the watchdog command
runs the real ``yuhang_watchdog`` DAG and talks to real SMTP and HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import sqlalchemy as sa

REGISTRY = """site_code,programme,name_zh,town,batch_year,active_from,industry_focus,contact_name,contact_email,partners
S01,station,五常街道技能培训站点,五常街道,2026,2026-07-01,,五常站联络员,s01@sites.test,浙江某职业技术学院
V01,village,五常街道技能型乡村(社区)1号,五常街道,2026,2026-07-01,,V01联络员,v01@sites.test,共富工坊
B02,base,数字经济技能实训基地,仁和街道,2026,2026-03-01,digital_economy,B02联络员,b02@sites.test,某数字企业
"""
TODAY = "2026-10-12"


def _file(site: str, period: str, kind: str, received: str, status: str, message: str | None = None) -> dict:
    sha = f"{site}{period}{kind}{received}".encode().hex()[:64].ljust(64, "0")
    return {"submission_id": f"{sha}:{site}:{period}:{kind}", "sha256": sha, "site_code": site, "period": period,
            "kind": kind, "original_name": f"{period}/{site}/{kind}.csv", "archive_path": f"archive/{sha}.csv",
            "size_bytes": 100, "received_at": dt.datetime.fromisoformat(received),
            "ingested_at": dt.datetime.fromisoformat(received) + dt.timedelta(hours=12), "version": 1,
            "is_current": status != "rejected", "status": status, "rows_read": 10,
            "rows_staged": 10 if status == "accepted" else 0, "rows_quarantined": 10 if status == "rejected" else 0,
            "message": message}


FILES = [
    _file("S01", "2026-07", "roster", "2026-08-05T10:00", "accepted"),
    _file("S01", "2026-08", "roster", "2026-09-08T10:00", "rejected", "表头缺少必填列 id_number / missing column"),
    _file("B02", "2026-09", "finance", "2026-10-09T16:00", "failed", "processing error: ValueError"),
    _file("B02", "2026-08", "finance", "2026-09-01T09:00", "rejected"),
    _file("B02", "2026-08", "finance", "2026-09-02T09:00", "accepted"),  # a good file after the rejected one
]


@pytest.fixture
def env(airflow_db, warehouse_url, tmp_path, monkeypatch):
    sites = tmp_path / "sites.csv"
    sites.write_text(REGISTRY, encoding="utf-8")
    monkeypatch.setenv("YUHANG_SITES_PATH", str(sites))
    monkeypatch.delenv("YUHANG_WAREHOUSE_URL", raising=False)
    return {"url": warehouse_url, "var": tmp_path / "var",
            "args": ["--warehouse", warehouse_url, "--var-dir", str(tmp_path / "var"), "--today", TODAY]}


def _seed(url: str) -> None:
    from yuhang_skills.core import warehouse
    from yuhang_skills.core.migrations import migrate

    engine = warehouse.make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(warehouse.submissions.insert(), FILES)
    engine.dispose()


def test_status_on_an_empty_warehouse_says_what_to_run(env, capsys):
    from yuhang_skills.cli import main

    assert main(["status", *env["args"]]) == 0
    out = capsys.readouterr().out
    assert "no data yet: run yuhang_intake first" in out and "请先运行 yuhang_intake" in out
    for dag_id in ("yuhang_intake", "yuhang_indicators", "yuhang_evaluation", "yuhang_watchdog"):
        assert f"    {dag_id}" in out
    assert "missing today" not in out


def test_status_shows_missing_today_and_failed_files_in_one_screen(env, capsys):
    from yuhang_skills.cli import main

    _seed(env["url"])
    assert main(["status", *env["args"], "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    missing = {(m["site_code"], m["kind"], m["period"]) for m in report["missing_today"]}
    assert ("S01", "roster", "2026-08") in missing  # only a rejected file came
    assert ("S01", "roster", "2026-07") not in missing  # accepted
    assert ("B02", "finance", "2026-08") not in missing and ("B02", "finance", "2026-09") not in missing
    assert ("S01", "survey", "2026-09") not in missing  # due 15 October: not overdue yet
    failed = {(f["site_code"], f["period"], f["kind"], f["status"]) for f in report["failed_files"]}
    assert failed == {("S01", "2026-08", "roster", "rejected"), ("B02", "2026-09", "finance", "failed")}
    assert report["data"]["submissions"] == len(FILES)
    if env["url"].startswith("postgresql"):
        assert report["warehouse"].startswith("postgresql")

    assert main(["status", *env["args"]]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) <= 40 and max(len(line) for line in lines) <= 160  # one screen
    assert f"missing today  {len(missing)} overdue submission(s)" in out
    s01 = [m for m in report["missing_today"] if m["site_code"] == "S01"]
    assert f"    S01   {len(s01)} overdue, oldest due {s01[0]['due_date']}" in out
    assert "roster ×" in [line for line in lines if line.startswith("    S01")][0]
    assert "failed files   2" in out and "2026-08/S01/roster.csv: rejected — 表头缺少必填列" in out
    assert "5 file(s), last received 2026-10-09 16:00" in out
    assert "no evaluation yet" in out

    from yuhang_skills.core import warehouse

    engine = warehouse.make_engine(env["url"])
    with engine.begin() as conn:  # the newest evaluation run is what status shows
        conn.execute(warehouse.eval_runs.insert(), [
            {"run_id": run_id, "evaluation_year": 2027, "as_of": dt.date(2027, 2, 15), "input_fingerprint": "f" * 64,
             "policy_version": "v1", "status": status, "created_at": dt.datetime(2027, 2, 15, 9, minute),
             "score": Decimal("96.03"), "grade": "优"}
            for run_id, status, minute in (("2027-20270215-01", "final", 0), ("2027-20270215-02", "draft", 5))])
    engine.dispose()
    assert main(["status", *env["args"]]) == 0
    assert "2027: score 96.03, grade 优, as of 2027-02-15, run 2027-20270215-02 (draft)" in capsys.readouterr().out


def test_watchdog_command_rebuilds_only_unless_send(env, alert_channels, capsys):
    from yuhang_skills.cli import main

    smtp, web = alert_channels
    _seed(env["url"])
    assert main(["watchdog", "--as-of", TODAY, *env["args"]]) == 0
    out = capsys.readouterr().out
    assert f"Submissions watchdog as of {TODAY}" in out and "none sent: send_alerts is off" in out
    engine = sa.create_engine(env["url"])
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select site_code, kind, period, status from missing_submissions")).all()
        assert ("S01", "roster", "2026-08", "open") in {tuple(r) for r in rows}
        assert conn.execute(sa.text("select count(*) from alerts")).scalar() == 0
    assert smtp.mails == [] and web.calls("/hook") == []
    open_items = sum(r.status == "open" for r in rows)
    assert f"missing      {open_items} open" in out

    assert main(["watchdog", "--as-of", TODAY, "--send", *env["args"]]) == 0
    out = capsys.readouterr().out
    assert "message(s)" in out and "sent" in out
    assert smtp.to("s01@sites.test") and web.calls("/hook")
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from alerts where outcome = 'sent'")).scalar() > 0
    engine.dispose()


def test_watchdog_command_for_a_past_date_sends_nothing_even_with_send(env, alert_channels, capsys):
    from yuhang_skills.cli import main

    smtp, _ = alert_channels
    _seed(env["url"])
    assert main(["watchdog", "--as-of", "2026-09-30", "--send", *env["args"]]) == 0
    assert "none sent: as-of 2026-09-30 is not between" in capsys.readouterr().out
    assert smtp.mails == []
