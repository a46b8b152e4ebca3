"""A run with a poisoned file of every class next to the sample inbox still evaluates everyone else.

The clean sample's headline is computed independently from its files first (tests/test_end_to_end
``independent_headline``); then one file per class of bad input is added, the three real DAGs run
through ``dag.test()``, and the headline must be the clean one while every poisoned file is
recorded with its status and reason (or listed as not processed) and every row adds up.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from test_end_to_end import AS_OF, assert_headline_is, embedded_warehouse, independent_headline

WHEN = dt.datetime(2027, 2, 1, 10, 0).timestamp()  # before the as-of day: every file is due for this run


def _csv(header: list[str], rows: list[list[str]], delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


FINANCE = ["站点编码", "凭证号", "支付日期", "金额(元)", "资金来源", "支出类别", "收款单位", "发票号", "摘要"]
SURVEY = ["站点编码", "调查对象", "调查日期", "评价"]


def poison(inbox: Path, outside: Path) -> dict[str, str]:
    """One poisoned file per class; returns relative path (as recorded) -> expected status."""
    files: dict[str, tuple[bytes, str]] = {
        # 1: an amount that overflowed, alone in a resubmission: no row accepted, March stays as it was
        "2026-03/S01/finance_v9.csv": (_csv(FINANCE, [["S01", "记-X1", "2026-03-10", "99999999999999999999.99", "省级",
                                                       "师资培训", "某公司", "FPX1", ""]]), "no_rows_accepted"),
        "2026-03/S02/survey_v9.csv": (_csv(SURVEY, [["S02", "劳动者", "2026-03-1\x005", "满意"]]), "rejected"),
        # 2: layout: a village's survey, a survey in a non-quarter month, a period outside the programme
        "2026-03/V01/survey.csv": (_csv(SURVEY, [["V01", "劳动者", "2026-03-15", "满意"]]), "rejected"),
        "2026-04/S01/survey.csv": (_csv(SURVEY, [["S01", "劳动者", "2026-03-15", "满意"]]), "rejected"),
        "2030-05/S01/finance.csv": (_csv(FINANCE, [["S01", "记-X2", "2030-05-10", "100.00", "省级", "师资培训", "某公司",
                                                    "FPX2", ""]]), "rejected"),
        # 2: a May ledger in the June folder
        "2026-06/S03/finance_v9.csv": (_csv(FINANCE, [["S03", "记-X3", "2026-05-10", "100.00", "省级", "师资培训",
                                                       "某公司", "FPX3", ""]]), "no_rows_accepted"),
        # 4: a decimal comma
        "2026-06/S04/finance_v9.csv": (_csv(FINANCE, [["S04", "记-X4", "2026-06-10", "1234,50", "省级", "师资培训",
                                                       "某公司", "FPX4", ""]]), "no_rows_accepted"),
        # 5: an unbalanced quote
        "2026-06/S05/finance_v9.csv": (_csv(FINANCE, [["S05", f"记-Y{i}", "2026-06-10", "10.00", "省级", "师资培训",
                                                       "某公司", f"FPY{i}", ""] for i in range(6)]).replace(
            b",\xe6\x9f\x90\xe5\x85\xac\xe5\x8f\xb8,FPY1", b',"\xe6\x9f\x90\xe5\x85\xac\xe5\x8f\xb8,FPY1'), "rejected"),
        # 8: an Excel file named .csv, a ;-separated file
        "2026-06/S06/finance_v9.csv": (b"PK\x03\x04" + b"\x00" * 64, "rejected"),
        "2026-06/S07/finance_v9.csv": (_csv(FINANCE, [["S07", "记-X7", "2026-06-10", "10.00", "省级", "师资培训", "某公司",
                                                       "FPX7", ""]], delimiter=";"), "rejected"),
        # a file name holding Jinja markup: handed to a task as a name, never rendered as a template
        "2026-06/S10/{{ 1 / 0 }}.csv": (_csv(FINANCE, [["S10", "记-X8", "2026-06-10", "10.00", "省级", "师资培训",
                                                        "某公司", "FPX8", ""]]), "rejected"),
    }
    expected = {}
    for rel, (data, status) in files.items():
        path = inbox / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (WHEN, WHEN))
        expected[rel] = status
    # 1: a file name that is not UTF-8
    gbk = os.path.join(os.fsencode(inbox / "2026-06" / "S08"), "台账.csv".encode("gbk"))
    os.makedirs(os.path.dirname(gbk), exist_ok=True)
    with open(gbk, "wb") as fh:
        fh.write(files["2026-03/S01/finance_v9.csv"][0])
    os.utime(gbk, (WHEN, WHEN))
    expected["2026-06/S08/台账.csv"] = "rejected"
    # 7: a link to a file outside the inbox
    outside.write_bytes(files["2026-03/S01/finance_v9.csv"][0])
    (inbox / "2026-06" / "S09").mkdir(parents=True, exist_ok=True)
    (inbox / "2026-06" / "S09" / "finance_v9.csv").symlink_to(outside)
    expected["2026-06/S09/finance_v9.csv"] = "not_processed"
    return expected


@pytest.fixture(scope="module")
def run(tmp_path_factory, airflow_db):
    from yuhang_skills import cli
    from yuhang_sample.generator import SampleOptions, generate

    root = tmp_path_factory.mktemp("poisoned")
    inbox = root / "inbox"
    generate(inbox, SampleOptions.clean(scale=0.5))
    clean = independent_headline(inbox)
    expected = poison(inbox, root / "outside.csv")
    with embedded_warehouse(root) as url:
        result = cli.run_dags(AS_OF, None, inbox)
        engine = sa.create_engine(url)
        yield {"result": result, "clean": clean, "expected": expected, "engine": engine}
        engine.dispose()


def test_the_evaluation_runs_for_everyone_else_unchanged(run):
    assert_headline_is(run["engine"], run["result"]["headline"], run["clean"])


def test_every_poisoned_file_is_recorded_with_its_status_and_rows_add_up(run):
    with run["engine"].connect() as conn:
        subs = {r.original_name: r for r in conn.execute(sa.text(
            "select original_name, status, rows_read, rows_staged, rows_quarantined, is_current, message "
            "from submissions"))}
        skipped = {r.relative_path: r.reason_code for r in conn.execute(sa.text(
            "select relative_path, reason_code from intake_not_processed"))}
        failed = conn.execute(sa.text("select count(*) from submissions where status = 'failed'")).scalar_one()
    assert failed == 0
    for rel, status in run["expected"].items():
        if status == "not_processed":
            assert skipped.get(rel) == "link", skipped
            continue
        sub = subs[rel]
        assert sub.status == status and not sub.is_current and sub.rows_staged == 0, (rel, sub)
        assert sub.rows_read == sub.rows_staged + sub.rows_quarantined and sub.message.startswith(rel), sub
    assert all(s.rows_read == s.rows_staged + s.rows_quarantined for s in subs.values())


def test_a_site_task_that_fails_for_good_is_named_and_everyone_else_is_published(tmp_path, airflow_db, monkeypatch):
    """One site's mapped task keeps losing its database connection (transient: retried, then
    failed for good). Publish still runs for every other site, and the intake's last task fails
    the run naming that site's task and its files, not an error about a missing result."""
    from zoneinfo import ZoneInfo

    from airflow.dag_processing.dagbag import DagBag

    from yuhang_skills.orchestration import tasks
    from yuhang_sample.generator import SampleOptions, generate

    inbox = tmp_path / "inbox"
    generate(inbox, SampleOptions.clean(scale=0.05))
    monkeypatch.setenv("YUHANG_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("YUHANG_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'var' / 'warehouse.sqlite'}")
    real = tasks.ingest_site
    labels: list[str] = []

    def drops_for_s02(site_code, files, as_of):
        labels.append(site_code)
        if "S02" in site_code.split(","):
            raise sa.exc.OperationalError("insert into raw_roster", {}, ConnectionResetError("connection dropped"))
        return real(site_code, files, as_of)

    monkeypatch.setattr(tasks, "ingest_site", drops_for_s02)
    dag = DagBag(dag_folder=str(Path(__file__).parents[1] / "dags" / "yuhang_intake.py")).get_dag("yuhang_intake")
    dag.deadline = None  # see cli.run_dags: dag.test() of 3.3.2 cannot finish a run with a Deadline Alert
    for task in dag.tasks:
        task.retry_delay = dt.timedelta(seconds=1)
    dag_run = dag.test(logical_date=dt.datetime(2027, 2, 15, 23, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
                       run_conf={"inbox": str(inbox), "as_of": AS_OF.isoformat()})
    assert str(dag_run.state) == "failed"
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances() if ti.task_id != "ingest_site"}
    assert states["publish"] == "success" and states["all_files_ingested"] == "failed"
    mapped = [ti for ti in dag_run.get_task_instances() if ti.task_id == "ingest_site"]
    assert sorted(str(ti.state) for ti in mapped).count("failed") == 1
    s02 = next(label for label in labels if "S02" in label.split(","))
    verdict = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "all_files_ingested")
    assert verdict.try_number == 1  # deterministic: not retried
    engine = sa.create_engine(os.environ["YUHANG_WAREHOUSE_URL"])
    with engine.connect() as conn:
        sites = {r.site_code for r in conn.execute(sa.text("select distinct site_code from submissions"))}
        staged = conn.execute(sa.text("select count(*) from raw_roster")).scalar_one()
        told_team = conn.execute(sa.text(
            "select error from task_failures where task_id = 'all_files_ingested'")).scalar_one()
    engine.dispose()
    assert f"  {s02}: " in told_team and "1 site task(s) did not finish" in told_team
    assert "S02" not in sites and len(sites) > 10 and staged > 0
    batches = tasks.discover_submissions(str(inbox), AS_OF.isoformat())
    summaries = [{"site_code": b["site_code"], "files": len(b["files"]), "failed_files": []}
                 for b in batches if b["site_code"] != s02]
    with pytest.raises(tasks.IntakeIncomplete) as told:
        tasks.intake_verdict(summaries, {"submissions": 1}, batches)
    files = next(len(b["files"]) for b in batches if b["site_code"] == s02)
    assert f"  {s02}: {files} file(s) not ingested" in str(told.value)
    assert "0 file(s) failed in processing and 1 site task(s) did not finish" in str(told.value)
    assert tasks.intake_verdict(summaries + [{"site_code": s02, "files": files, "failed_files": []}],
                                   {"submissions": 1}, batches)["unfinished_tasks"] == []
