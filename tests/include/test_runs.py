"""Evaluation runs: the as-of guard, sign-off (draft → final), supersede, diff, and the
warehouse made before runs existed. On SQLite and PostgreSQL, from hand-made staging rows."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from test_models_and_evaluation import loaded  # noqa: F401 - the shared warehouse fixture
from yuhang_skills.evaluation import runs
from yuhang_skills.core import warehouse
from yuhang_skills.core.migrations import migrate
from yuhang_skills.evaluation.outputs import evaluate, write_evaluation
from yuhang_skills.watchdog.calendar import WorkingDays

AS_OF = dt.date(2027, 2, 15)


def test_data_is_complete_on_the_last_periods_due_date(plan):
    # 2025-2026 evaluated: December rosters and ledgers due 10 January 2027, Q4 surveys 15 January,
    # the 2026 village outcomes 31 January 2027 (a Sunday), all moved to the next working day.
    days = WorkingDays(plan.policy.alerts.working_days)
    latest = max(days.due_date(d)[0] for d in (dt.date(2027, 1, 10), dt.date(2027, 1, 15), dt.date(2027, 1, 31)))
    assert dt.date(2027, 1, 31).weekday() == 6
    assert runs.data_complete_on(plan, 2027) == latest == dt.date(2027, 2, 1)


def test_an_early_as_of_date_is_refused_unless_provisional(plan):
    with pytest.raises(runs.EvaluationRefused) as refused:
        runs.check_as_of(plan, 2027, dt.date(2026, 2, 15), provisional=False)
    assert "拒绝评价" in refused.value.zh and "2027-02-01" in refused.value.zh
    assert "evaluation refused" in refused.value.en and "provisional" in refused.value.en
    assert runs.check_as_of(plan, 2027, dt.date(2026, 2, 15), provisional=True) == "provisional"
    assert runs.check_as_of(plan, 2027, dt.date(2027, 1, 31), provisional=True) == "provisional"
    assert runs.check_as_of(plan, 2027, dt.date(2027, 2, 1), provisional=False) == "draft"
    assert runs.check_as_of(plan, 2027, AS_OF, provisional=True) == "draft"


def _status(engine, run_id: str) -> str:
    return runs.get_run(engine, run_id)["status"]


def test_sign_off_makes_a_run_final_and_a_second_final_needs_supersede(loaded, plan, tmp_path, capsys,  # noqa: F811
                                                                       monkeypatch):
    engine, _ = loaded
    result = evaluate(engine, plan, 2027, AS_OF)
    first = write_evaluation(engine, result, pii_key_is_demo=True)["run_id"]
    roles = plan.policy.signoff_roles
    assert roles == ["评价组", "复核", "负责人"]
    with pytest.raises(runs.EvaluationRefused, match="not one of the policy's sign-off roles"):
        runs.sign(engine, first, "局长", "王五", policy=plan.policy)
    signed = runs.sign(engine, first, "评价组", "张三", "数据已核对", signed_by="tester", policy=plan.policy)
    assert (signed.status, signed.missing_roles) == ("draft", ["复核", "负责人"])
    with pytest.raises(runs.EvaluationRefused, match="already signed"):
        runs.sign(engine, first, "评价组", "李四", policy=plan.policy)
    runs.sign(engine, first, "复核", "李四", policy=plan.policy)
    done = runs.sign(engine, first, "负责人", "王五", policy=plan.policy)
    assert done.became_final and _status(engine, first) == "final"
    assert runs.get_run(engine, first)["finalised_at"] is not None
    with pytest.raises(runs.EvaluationRefused, match="sign-off is closed"):
        runs.sign(engine, first, "评价组", "赵六", policy=plan.policy)

    second = write_evaluation(engine, result, pii_key_is_demo=True)["run_id"]
    runs.sign(engine, second, "评价组", "张三", policy=plan.policy)
    runs.sign(engine, second, "复核", "李四", policy=plan.policy)
    with pytest.raises(runs.SecondFinal) as blocked:
        runs.sign(engine, second, "负责人", "王五", policy=plan.policy)
    assert blocked.value.current == first and "supersede" in blocked.value.en
    assert _status(engine, second) == "draft" and _status(engine, first) == "final"
    assert len(runs.signoffs(engine, second)) == 3  # the signatures are kept
    with pytest.raises(runs.EvaluationRefused, match="reason is required"):
        runs.supersede(engine, second, "  ", policy=plan.policy)
    from yuhang_skills import cli

    for name in ("YUHANG_WAREHOUSE_URL", "YUHANG_OUTPUT_DIR", "YUHANG_VAR_DIR"):  # the CLI sets them
        monkeypatch.setenv(name, os.environ.get(name, ""))
    url = engine.url.render_as_string(hide_password=False)
    assert cli.main(["evaluation", "supersede", "--run", second, "--reason", "补报 S01 2026年12月花名册后重算",
                     "--warehouse", url, "--output-dir", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [f"evaluation_2027_final.{x}" for x in ("xlsx", "html", "docx", "pdf")]
        + [f"evaluation_2027_{second}_signed.{x}" for x in ("xlsx", "html", "docx", "pdf")])
    assert cli.main(["evaluation", "list", "--year", "2027", "--warehouse", url]) == 0
    assert first in capsys.readouterr().out
    listed = {r["run_id"]: r for r in runs.list_runs(engine, 2027)}
    assert (listed[first]["status"], listed[first]["superseded_by"]) == ("superseded", second)
    assert listed[first]["supersede_reason"] == "补报 S01 2026年12月花名册后重算"
    assert listed[second]["status"] == "final"
    assert [s["name"] for s in listed[first]["signoffs"]] == ["张三", "李四", "王五"]
    with engine.connect() as conn:  # both runs' rows stay readable
        per_run = dict(conn.execute(sa.text("select run_id, count(*) from eval_indicator group by run_id")).all())
        finals = conn.execute(sa.text("select count(*) from eval_runs where status = 'final'")).scalar_one()
    assert per_run == {first: 10, second: 10} and finals == 1
    text = runs.format_runs(runs.list_runs(engine, 2027))
    assert first in text and "superseded by " + second in text and "负责人 王五" in text


def test_a_provisional_run_cannot_be_signed(loaded, plan):  # noqa: F811
    engine, _ = loaded
    result = evaluate(engine, plan, 2027, dt.date(2026, 2, 15))
    run_id = write_evaluation(engine, result, pii_key_is_demo=True, status="provisional")["run_id"]
    assert run_id == "2027-20260215-01" and _status(engine, run_id) == "provisional"
    with pytest.raises(runs.EvaluationRefused, match="provisional run and cannot be signed"):
        runs.sign(engine, run_id, "评价组", "张三", policy=plan.policy)


def test_diff_names_added_files_and_changed_indicators(loaded, plan):  # noqa: F811
    engine, _ = loaded
    first = write_evaluation(engine, evaluate(engine, plan, 2027, AS_OF), pii_key_is_demo=True)["run_id"]
    with engine.begin() as conn:  # one more file: S02's 2025-10 roster, its 2025 target met
        from test_models_and_evaluation import _roster, _submission

        conn.execute(warehouse.submissions.insert(), [_submission("S02", "2025-10", "roster")])
        conn.execute(warehouse.raw_roster.insert(), _roster("S02", "2025-10", 250, 250, start=20000))
    from yuhang_skills.indicators import layers
    from yuhang_skills.core.settings import SQL_DIR

    layers.build_models(engine, SQL_DIR)
    second = write_evaluation(engine, evaluate(engine, plan, 2027, AS_OF), pii_key_is_demo=True)["run_id"]
    rows = runs.diff(engine, first, second)
    assert {"section": "input", "subject": "2025-10/S02/roster.csv", "change": "added", "value_a": None,
            "value_b": "sha-S02-2025-10-roster"} in rows
    changed = {r["subject"] for r in rows if r["section"] == "indicator"}
    assert "station_person_times.points" in changed and "station_person_times.actual" in changed
    assert any(r["section"] == "headline" and r["subject"] == "score" for r in rows)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("select count(*) from eval_diff where run_a = :a and run_b = :b"),
                              {"a": first, "b": second}).scalar_one()
    assert stored == len(rows)
    text = runs.format_diff(first, second, rows)
    assert "+ 2025-10/S02/roster.csv" in text and "~ station_person_times.points" in text
    assert runs.diff(engine, first, first) == []


def test_a_warehouse_made_before_runs_keeps_its_evaluation(warehouse_url):
    engine = warehouse.make_engine(warehouse_url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table eval_district (evaluation_year integer primary key, score numeric(6,2))"))
        conn.execute(sa.text("insert into eval_district values (2027, 96.03)"))
    migrate(engine)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("eval_district")}
    assert "run_id" in columns
    with engine.connect() as conn:
        old = conn.execute(sa.text("select evaluation_year, score from eval_district_before_runs")).one()
    assert old.evaluation_year == 2027 and float(old.score) == 96.03


def test_the_run_command_writes_a_provisional_run_only_when_asked(loaded, warehouse_url, settings_for):  # noqa: F811
    from yuhang_skills import cli
    from yuhang_skills.orchestration import tasks

    settings = settings_for(warehouse_url)
    with pytest.raises(runs.EvaluationRefused, match="拒绝评价"):
        tasks.run_evaluation(None, "2026-10-12")
    engine, _ = loaded
    assert runs.list_runs(engine) == []
    result = tasks.run_evaluation(None, "2026-10-12", provisional=True)
    assert (result["run_id"], result["status"]) == ("2027-20261012-01", "provisional")
    files = tasks.write_outputs(2027, result["run_id"])
    assert files["workbook"].endswith("evaluation_2027_2027-20261012-01.xlsx")
    assert (settings.output_dir / "evaluation_2027_latest.xlsx").read_bytes() == \
        (settings.output_dir / "evaluation_2027_2027-20261012-01.xlsx").read_bytes()
    with pytest.raises(FileExistsError):  # a run's files are written once
        tasks.write_outputs(2027, result["run_id"])
    # 预评估 / provisional on every page, sheet and table
    import openpyxl

    book = openpyxl.load_workbook(files["workbook"])
    for sheet in book.worksheets:
        assert "预评估" in sheet.oddHeader.right.text and "PROVISIONAL" in sheet.oddFooter.left.text, sheet.title
    markup = Path(files["report"]).read_text(encoding="utf-8")
    assert markup.count("<caption>预评估 PROVISIONAL</caption>") == markup.count("<table") > 5
    assert 'class="banner provisional"' in markup
    from docx import Document

    document = Document(files["official_docx"])
    assert document.paragraphs[0].text.startswith("【预评估】")
    assert "预评估" in document.sections[0].footer.paragraphs[1].text
    args = cli._parser().parse_args(["run", "--inbox", "in", "--as-of", "2026-10-12", "--provisional"])
    assert args.provisional is True


def test_outputs_interrupted_part_way_are_completed_by_a_retry_without_replacing_a_file(
        loaded, warehouse_url, settings_for, monkeypatch):  # noqa: F811
    """A transient failure while the run's files are written (here: the official report's writer)
    leaves only whole files under the run's name; the retry keeps them byte for byte and writes
    the rest; once recorded, the run's files are never written again."""
    from yuhang_skills.orchestration import tasks
    from yuhang_skills.evaluation import report_docx

    settings = settings_for(warehouse_url)
    run_id = tasks.run_evaluation(None, "2026-10-12", provisional=True)["run_id"]

    def broken(*args, **kwargs):
        raise ConnectionResetError("warehouse connection dropped")

    real = report_docx.write_report_docx
    monkeypatch.setattr(report_docx, "write_report_docx", broken)
    with pytest.raises(ConnectionResetError):
        tasks.write_outputs(2027, run_id)
    workbook = settings.output_dir / f"evaluation_2027_{run_id}.xlsx"
    first = workbook.read_bytes()
    assert not (settings.output_dir / f"evaluation_2027_{run_id}.docx").exists()
    assert not list(settings.output_dir.glob(".*.partial"))
    monkeypatch.setattr(report_docx, "write_report_docx", real)
    files = tasks.write_outputs(2027, run_id)
    assert Path(files["official_docx"]).is_file() and workbook.read_bytes() == first
    with pytest.raises(FileExistsError, match="written once"):
        tasks.write_outputs(2027, run_id)


def test_the_database_holds_one_final_run_per_year_and_a_stuck_draft_can_be_finalised(loaded, plan):  # noqa: F811
    """Two last signatures at once can leave a fully signed draft and no final run: supersede then
    makes it final. A second final row is refused by the warehouse itself, whatever the code does."""
    engine, _ = loaded
    result = evaluate(engine, plan, 2027, AS_OF)
    first = write_evaluation(engine, result, pii_key_is_demo=True)["run_id"]
    with engine.begin() as conn:  # the signatures as two concurrent signers leave them: all three, still draft
        conn.execute(warehouse.eval_signoffs.insert(), [
            {"run_id": first, "role": role, "name": name, "signed_at": dt.datetime(2027, 2, 20, 9, i)}
            for i, (role, name) in enumerate(zip(plan.policy.signoff_roles, ("张三", "李四", "王五")))])
    assert _status(engine, first) == "draft"
    assert runs.supersede(engine, first, "两位签署人同时签署后定稿", policy=plan.policy) is None
    assert _status(engine, first) == "final"
    second = write_evaluation(engine, result, pii_key_is_demo=True)["run_id"]
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            conn.execute(warehouse.eval_runs.update().where(warehouse.eval_runs.c.run_id == second)
                         .values(status="final"))
    assert _status(engine, second) == "draft"


def test_signing_again_publishes_a_signed_edition_that_failed(loaded, plan, warehouse_url, settings_for,  # noqa: F811
                                                              monkeypatch):
    """The last signature is committed, then writing the signed edition fails (LibreOffice, a
    dropped connection): the run is final without its edition. Signing again (the DAG's retry or
    the CLI) writes it instead of answering 'sign-off closed'; a final copy the new edition has no
    file for is removed rather than left pointing at the replaced run."""
    from yuhang_skills.orchestration import tasks
    from yuhang_skills.evaluation import report_docx

    settings = settings_for(warehouse_url)
    engine, _ = loaded
    run_id = tasks.run_evaluation(None, AS_OF.isoformat())["run_id"]
    stale = settings.output_dir / "evaluation_2027_final.pdf"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"%PDF- a replaced run's final copy")
    for role, name in zip(plan.policy.signoff_roles[:-1], ("张三", "李四")):
        tasks.sign_evaluation(run_id, role, name, None, "tester")

    def broken(*args, **kwargs):
        raise ConnectionResetError("warehouse connection dropped")

    real = report_docx.write_report_docx
    monkeypatch.setattr(report_docx, "write_report_docx", broken)
    with pytest.raises(ConnectionResetError):
        tasks.sign_evaluation(run_id, plan.policy.signoff_roles[-1], "王五", None, "tester")
    assert _status(engine, run_id) == "final" and tasks.signed_edition_missing(engine, run_id)
    monkeypatch.setattr(report_docx, "soffice", lambda: None)  # this time without LibreOffice: no PDF
    monkeypatch.setattr(report_docx, "write_report_docx", real)
    again = tasks.sign_evaluation(run_id, plan.policy.signoff_roles[-1], "王五", None, "tester")
    assert again["status"] == "final" and Path(again["files"]["official_docx"]).is_file()
    assert not tasks.signed_edition_missing(engine, run_id)
    assert not stale.exists() and (settings.output_dir / "evaluation_2027_final.docx").is_file()
    assert [s["name"] for s in runs.signoffs(engine, run_id)] == ["张三", "李四", "王五"]


def test_a_file_left_by_an_earlier_warehouse_is_not_taken_as_the_runs(loaded, warehouse_url, settings_for):  # noqa: F811
    """Run ids start again at -01 in a new warehouse; a workbook of that name already in the output
    folder, older than the run, is refused instead of being recorded and served as the new run's."""
    from yuhang_skills.orchestration import tasks

    settings = settings_for(warehouse_url)
    run_id = tasks.run_evaluation(None, "2026-10-12", provisional=True)["run_id"]
    old = settings.output_dir / f"evaluation_2027_{run_id}.xlsx"
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(b"an earlier warehouse's workbook")
    day_before = dt.datetime.now().timestamp() - 86400
    os.utime(old, (day_before, day_before))
    with pytest.raises(FileExistsError, match="before this run existed"):
        tasks.write_outputs(2027, run_id)
    assert old.read_bytes() == b"an earlier warehouse's workbook"


def test_a_runs_documents_keep_the_evidence_it_was_reviewed_on(loaded, plan, warehouse_url, settings_for):  # noqa: F811
    """The report tables not keyed by run (integrity findings, spending, quarantine and submissions
    summaries) are kept with the run when first rendered: after another intake changes them, the
    run's later editions (the signed one at sign-off) still show what was reviewed."""
    import pandas as pd

    from yuhang_skills.orchestration import tasks
    from yuhang_skills.evaluation import reporting

    settings_for(warehouse_url)
    engine, _ = loaded
    run_id = tasks.run_evaluation(None, AS_OF.isoformat())["run_id"]
    live = reporting.build_report_frames(engine, 2027, run_id)
    first = reporting.report_frames(engine, 2027, run_id)
    assert list(first) == list(live) and "submissions_summary" in first
    for name, frame in live.items():  # kept exactly: values and dtypes
        pd.testing.assert_frame_equal(reporting.load_evidence(engine, run_id)[name], frame, check_exact=True)
    with engine.begin() as conn:  # a later intake: one more file of a site
        conn.execute(sa.text("update submissions set rows_read = rows_read + 5, rows_quarantined = rows_quarantined + 5"
                             " where submission_id = (select min(submission_id) from submissions)"))
    changed = reporting.build_report_frames(engine, 2027, run_id)["submissions_summary"]
    assert not changed.equals(live["submissions_summary"])
    later = reporting.report_frames(engine, 2027, run_id)
    pd.testing.assert_frame_equal(later["submissions_summary"], live["submissions_summary"])
