"""The intake against careless and hostile submissions (issue 11), class by class.

One shared inbox per database holds a poisoned file of every case next to good files of other
sites (``BYSTANDERS`` of test_intake); one intake run ingests it. Each test asserts the outcome of
its own file, the reason a site can act on (English and Chinese), that rows read = rows staged +
rows quarantined for every file, and that every other site's file is unchanged. Cases that need
runs of their own (versions in order of arrival, files the run does not process, a file rewritten
while it is read) use a box of their own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import stat
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa

from test_intake import (BYSTANDERS, KINDS, PERIOD, Box, box, finance_row, in_set, make_id, not_null, outcomes_row, regex,
                         roster_row, survey_row, write_csv, write_xlsx)  # noqa: F401 - box is a fixture
from yuhang_skills.intake import archive, prepare
from yuhang_skills.orchestration import tasks
from yuhang_skills.core import catalogue, warehouse
from yuhang_skills.intake.discover import MAX_NAME, discover

T1 = dt.datetime(2026, 4, 2, 9, 0).timestamp()
CASES: dict[str, Any] = {}


def case(build):
    CASES[build.__name__] = build
    return build


def csv_bytes(kind: str, rows: list[dict[str, Any]], delimiter: str = ",", encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    import csv

    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    columns = list(KINDS[kind].columns)
    writer.writerow([KINDS[kind].columns[c].aliases[0] for c in columns])
    for r in rows:
        writer.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    return buffer.getvalue().encode(encoding)


# ========================================================================= the shared inbox
# Sites: each case takes its own site folder so no case supersedes another.

@case
def huge_amount(b: Box):  # class 1: OverflowError before; a row error now
    return b.csv(f"{PERIOD}/S01/finance.csv", "finance",
                 [finance_row("S01"), finance_row("S01", amount="99999999999999999999.99"), finance_row("S01")])


@case
def huge_count(b: Box):
    return b.csv("2026-12/V02/outcomes.csv", "outcomes", [outcomes_row("V02", trainees="99999999999999")])


@case
def gbk_file_name(b: Box):
    folder = b.inbox / PERIOD / "S02"
    folder.mkdir(parents=True, exist_ok=True)
    name = "花名册.csv".encode("gbk")
    path = os.path.join(os.fsencode(folder), name)
    with open(path, "wb") as fh:
        fh.write(csv_bytes("roster", [roster_row("S02")]))
    return f"{PERIOD}/S02/花名册.csv"


@case
def nul_in_cell(b: Box):
    data = csv_bytes("survey", [survey_row("S03"), survey_row("S03", rating="满\x00意")])
    return b.raw(f"{PERIOD}/S03/survey.csv", data)


@case
def long_path(b: Box):
    rel = f"{PERIOD}/S05/" + "/".join(c * 200 for c in "abc") + "/roster.csv"
    write_csv(b.path(rel), "roster", [roster_row("S05")])
    b.csv(f"{PERIOD}/S05/finance.csv", "finance", [finance_row("S05")])  # a good file in the same folder
    return rel


@case
def survey_in_april(b: Box):  # class 2
    return b.csv("2026-04/S06/survey.csv", "survey", [survey_row("S06", survey_date="2026-03-15")])


@case
def outcomes_in_june(b: Box):
    return b.csv("2026-06/V03/outcomes.csv", "outcomes", [outcomes_row("V03")])


@case
def village_survey(b: Box):
    return b.csv(f"{PERIOD}/V04/survey.csv", "survey", [survey_row("V04")])


@case
def station_outcomes(b: Box):
    return b.csv("2026-12/S07/outcomes.csv", "outcomes", [outcomes_row("S07")])


@case
def period_2030(b: Box):
    return b.csv("2030-05/S08/roster.csv", "roster", [roster_row("S08", start_date="2030-05-02", end_date="2030-05-20")])


@case
def period_2024(b: Box):
    return b.csv("2024-05/S09/roster.csv", "roster", [roster_row("S09", start_date="2024-05-02", end_date="2024-05-20")])


@case
def period_not_begun(b: Box):  # the run's today is 2026-06-05
    return b.csv("2026-09/S10/roster.csv", "roster", [roster_row("S10", start_date="2026-09-02", end_date="2026-09-20")])


@case
def may_ledger_in_june(b: Box):
    june = b.csv("2026-06/S11/finance.csv", "finance", [finance_row("S11", pay_date="2026-06-02")], mtime=T1)
    may = b.csv("2026-06/S11/finance_v2.csv", "finance",
                [finance_row("S11", pay_date="2026-05-10"), finance_row("S11", pay_date="2026-05-31")], mtime=T1 + 60)
    return june, may


@case
def survey_after_quarter(b: Box):
    return b.csv(f"{PERIOD}/B01/survey.csv", "survey",
                 [survey_row("B01"), survey_row("B01", survey_date="2026-04-01"), survey_row("B01", survey_date="2025-12-31")])


@case
def decimal_comma(b: Box):  # class 4
    return b.csv(f"{PERIOD}/B02/finance.csv", "finance",
                 [finance_row("B02", amount="1,234.50"), finance_row("B02", amount="1234,50"),
                  finance_row("B02", amount="12,345"), finance_row("B02", amount="1,2,3"),
                  finance_row("B02", amount="12,34.00")])


@case
def grouped_hours(b: Box):
    return b.csv(f"{PERIOD}/V05/roster.csv", "roster",
                 [roster_row("V05", hours="1,2,3"), roster_row("V05", hours="40"), roster_row("V05", hours="4,0")])


@case
def xlsx_numeric_id(b: Box):
    good = roster_row("V06")
    typed = roster_row("V06")
    typed["id_number"] = int(make_id("19900101", 322)[:15] + "000")  # what Excel keeps of a typed 18-digit number
    return b.xlsx(f"{PERIOD}/V06/roster.xlsx", "roster", [good, typed])


@case
def unbalanced_quote(b: Box):  # class 5
    rows = [roster_row("V07") for _ in range(8)]
    data = csv_bytes("roster", rows).decode()
    lines = data.split("\r\n")
    lines[3] = lines[3].replace(",电工技能培训,", ',"电工技能培训,', 1)  # row 4 of the file opens a quote
    return b.raw(f"{PERIOD}/V07/roster.csv", "\r\n".join(lines).encode())


@case
def ten_mb_cell(b: Box):
    return b.csv(f"{PERIOD}/V08/finance.csv", "finance",
                 [finance_row("V08"), finance_row("V08", description="长" * (10 * 1024 * 1024 // 3)),
                  finance_row("V08", payee="收" * (4 * 1024 * 1024))])


@case
def hidden_draft_sheet(b: Box):
    path = b.path(b.claim(f"{PERIOD}/V09/roster.xlsx"))
    wb = openpyxl.Workbook()
    draft = wb.active
    draft.title = "草稿"
    columns = list(KINDS["roster"].columns)
    draft.append([KINDS["roster"].columns[c].aliases[0] for c in columns])
    draft.append([roster_row("V09", class_id="DRAFT").get(c) for c in columns])
    draft.sheet_state = "hidden"
    final = wb.create_sheet("正式")
    final.append([KINDS["roster"].columns[c].aliases[0] for c in columns])
    for _ in range(2):
        final.append([roster_row("V09", class_id="FINAL").get(c) for c in columns])
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return f"{PERIOD}/V09/roster.xlsx"


@case
def two_candidate_sheets(b: Box):
    path = b.path(b.claim(f"{PERIOD}/V10/roster.xlsx"))
    wb = openpyxl.Workbook()
    columns = list(KINDS["roster"].columns)
    for n, title in enumerate(["三月", "三月(修订)"]):
        ws = wb.active if n == 0 else wb.create_sheet()
        ws.title = title
        ws.append([KINDS["roster"].columns[c].aliases[0] for c in columns])
        ws.append([roster_row("V10").get(c) for c in columns])
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return f"{PERIOD}/V10/roster.xlsx"


@case
def understated_dimension(b: Box):
    """An XLSX whose stored dimension says A1:Q2 although it holds 4 data rows (openpyxl's
    read-only mode stops at the dimension)."""
    import re
    import zipfile

    rel = f"{PERIOD}/V21/roster.xlsx"
    path = b.path(b.claim(rel))
    write_xlsx(path, "roster", [roster_row("V21") for _ in range(4)])
    source = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet"):
                data = re.sub(rb'<dimension ref="[^"]+"', b'<dimension ref="A1:Q2"', data)
            target.writestr(item, data)
    path.write_bytes(out.getvalue())
    return rel


@case
def control_characters_in_xlsx_cells(b: Box):
    """XLSX text may carry control characters as _x0000_ escapes (PostgreSQL refuses a NUL in
    text): a payee with a NUL and a voucher number with a vertical tab."""
    import re
    import zipfile

    rel = f"{PERIOD}/V22/finance.xlsx"
    path = b.path(b.claim(rel))
    write_xlsx(path, "finance", [finance_row("V22"), finance_row("V22", payee="NULMARK"),
                                 finance_row("V22", voucher_no="VTMARK")])
    source = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            data = re.sub(rb"NULMARK", "杭州_x0000_培训公司".encode(), data)
            data = re.sub(rb"VTMARK", b"JZ_x000B_0001", data)
            target.writestr(item, data)
    path.write_bytes(out.getvalue())
    return rel


@case
def bad_optional_values(b: Box):  # class 6
    return b.csv(f"{PERIOD}/V11/roster.csv", "roster",
                 [roster_row("V11", satisfaction="一般"), roster_row("V11", satisfaction="5"),
                  roster_row("V11", low_income_household="不详"), roster_row("V11", satisfaction="4")])


@case
def every_row_bad(b: Box):
    return b.csv(f"{PERIOD}/V12/roster.csv", "roster", [roster_row("V12", hours="0"), roster_row("V12", level="特级")])


@case
def plain_utf8(b: Box):  # class 8
    return b.csv(f"{PERIOD}/V13/roster.csv", "roster", [roster_row("V13")])


@case
def xlsx_named_csv(b: Box):
    write_xlsx(b.path(b.claim(f"{PERIOD}/V14/finance.csv")), "finance", [finance_row("V14")])
    return f"{PERIOD}/V14/finance.csv"


@case
def stray_byte(b: Box):
    data = csv_bytes("finance", [finance_row("V15"), finance_row("V15")])
    data = data.replace("杭州".encode(), b"\xff\xfe", 1)
    return b.raw(f"{PERIOD}/V15/finance.csv", data)


@case
def zero_width_site_cell(b: Box):
    return b.csv(f"{PERIOD}/V16/roster.csv", "roster", [roster_row("V16", site_code="V16\u200b")])


@case
def zero_width_site_folder(b: Box):
    write_csv(b.path(f"{PERIOD}/V17\u200b/roster.csv"), "roster", [roster_row("V17")])
    return f"{PERIOD}/V17\\u200b/roster.csv"  # as recorded: the invisible character spelled out


@case
def semicolons(b: Box):
    return b.raw(f"{PERIOD}/V18/finance.csv", csv_bytes("finance", [finance_row("V18")], delimiter=";"))


@case
def tabs(b: Box):
    return b.raw(f"{PERIOD}/V19/finance.csv", csv_bytes("finance", [finance_row("V19")], delimiter="\t"))


@case
def utf16(b: Box):
    return b.raw(f"{PERIOD}/V20/finance.csv", b"\xff\xfe" + "站点编码,凭证号\r\n".encode("utf-16-le"))


_SHARED: dict[str, Box] = {}


@pytest.fixture
def run(warehouse_url, settings_for, plan, tmp_path):
    key = "postgresql" if warehouse_url.startswith("postgresql") else "sqlite"
    if key not in _SHARED:
        b = Box(tmp_path / "inbox", settings_for(warehouse_url), plan)
        for kind in KINDS:
            b.bystander(kind)
        for name, build in CASES.items():
            b.inputs[name] = build(b)
        b.run()
        b.dispose()
        _SHARED[key] = b
    return _SHARED[key]


def assert_others_unchanged(b: Box) -> None:
    for kind, rel in BYSTANDERS.items():
        b.assert_lands(rel, kind, 1 if kind == "outcomes" else 2)
    b.assert_nothing_lost()


def refused(b: Box, rel: str, expectation: str, en: str, zh: str) -> dict[str, Any]:
    sub = b.sub(rel)
    assert (sub["status"], sub["rows_read"], sub["rows_staged"], sub["rows_quarantined"], bool(sub["is_current"])) == (
        "rejected", 0, 0, 0, False), sub
    q = b.quarantined(rel)
    assert len(q) == 1 and q.loc[0, "expectation"] == expectation, q.to_dict("records")
    assert en in q.loc[0, "reason_en"] and q.loc[0, "reason_en"].startswith(rel), q.loc[0, "reason_en"]
    assert zh in q.loc[0, "reason_zh"] and q.loc[0, "reason_zh"].startswith(rel), q.loc[0, "reason_zh"]
    assert q.loc[0, "severity"] == "error"
    assert_others_unchanged(b)
    return sub


def counts(b: Box, rel: str) -> tuple[str, int, int, int]:
    sub = b.sub(rel)
    assert sub["rows_read"] == sub["rows_staged"] + sub["rows_quarantined"]
    return sub["status"], sub["rows_read"], sub["rows_staged"], sub["rows_quarantined"]


# ------------------------------------------------------------------------- 1. one file never stops everyone

def test_every_file_is_recorded_and_nothing_failed(run):
    statuses = run.tables["submissions"]["status"].value_counts().to_dict()
    assert "failed" not in statuses, run.tables["submissions"][run.tables["submissions"]["status"] == "failed"]
    written = {r if isinstance(r, str) else r[0] for r in run.inputs.values()}
    recorded = set(run.tables["submissions"]["original_name"])
    assert {w for w in written if len(w) <= MAX_NAME} <= recorded
    assert_others_unchanged(run)


def test_an_amount_too_large_is_an_error_in_its_cell(run):
    rel = run.inputs["huge_amount"]
    assert counts(run, rel) == ("partially_accepted", 3, 2, 1)
    q = run.quarantined(rel)
    assert q[["source_row", "column_name", "value"]].values.tolist() == [[3, "amount", "99999999999999999999.99"]]
    assert "at most 12 digits before the point" in q.loc[0, "reason_en"] and "整数部分不超过12位" in q.loc[0, "reason_zh"]
    assert_others_unchanged(run)


def test_a_count_too_large_is_an_error_in_its_cell(run):
    rel = run.inputs["huge_count"]
    assert counts(run, rel) == ("no_rows_accepted", 1, 0, 1)
    assert run.failures(rel) == {(2, "trainees", not_null("trainees"))}


def test_a_file_name_that_is_not_utf8_is_recorded_readably(run):
    sub = refused(run, run.inputs["gbk_file_name"], "file_location", "the file name is not valid UTF-8",
                  "文件名不是 UTF-8 编码")
    assert "花名册.csv" in sub["message"] and sub["site_code"] == "S02"


def test_a_nul_byte_refuses_the_file_with_its_line(run):
    refused(run, run.inputs["nul_in_cell"], "file_encoding", "NUL byte at line 3", "第 3 行")


def test_a_path_over_the_limit_is_recorded_and_its_neighbour_lands(run):
    long = run.inputs["long_path"]
    shown = long[:240] + "…" + long[-240:]
    sub = refused(run, shown, "file_location", "the path is longer than 500 characters", "文件路径超过 500 个字符")
    assert len(sub["original_name"]) <= MAX_NAME
    run.assert_lands(f"{PERIOD}/S05/finance.csv", "finance", 1)


def test_a_processing_error_fails_that_file_only_and_the_run_names_it(box, monkeypatch):
    """A bug hit by one file's rows: that file is `failed` with the error; the others of the same kind
    (validated in the same suite run) land, and the run's verdict names the file and is not retried."""
    poisoned = box.csv(f"{PERIOD}/S04/survey.csv", "survey", [survey_row("S04", rating="非常满意")])
    good = box.csv(f"{PERIOD}/B03/survey.csv", "survey", [survey_row("B03"), survey_row("B03")])
    real = prepare.PREPARERS["survey"]

    def breaks_on_s04(frame, ctx):
        if (frame["_folder_site"] == "S04").any():
            raise ZeroDivisionError("a bug")
        return real(frame, ctx)

    monkeypatch.setitem(prepare.PREPARERS, "survey", breaks_on_s04)
    results = box.run()
    sub = box.sub(poisoned)
    assert (sub["status"], bool(sub["is_current"])) == ("failed", False)
    assert "ZeroDivisionError: a bug" in sub["message"] and "retried on the next run" in sub["message"]
    box.assert_lands(good, "survey", 2)
    box.assert_nothing_lost()
    summary = {"site_code": "S04,B03", "files": 2, "failed_files": [{"file": r["file"], "message": r.get("message")}
                                                                     for r in results if r["status"] == "failed"]}
    with pytest.raises(tasks.IntakeIncomplete, match="S04/survey.csv"):
        tasks.intake_verdict([summary], {"submissions": 2})
    from airflow.sdk.exceptions import AirflowFailException

    from yuhang_skills.orchestration.operations import fail_fast_unless_transient

    with pytest.raises(AirflowFailException, match="1 file\\(s\\) failed"):
        fail_fast_unless_transient(tasks.intake_verdict)([summary], {"submissions": 2})
    assert tasks.intake_verdict([{"site_code": "B03", "files": 1, "accepted": 1, "failed_files": []}],
                                   {"submissions": 1})["accepted"] == 1


def test_a_file_that_cannot_be_written_fails_alone_though_its_suite_run_is_written_together(box, monkeypatch):
    """The files of one suite run are written in one transaction; when that fails, each is written on
    its own, so only the file whose rows cannot be written is `failed` and the others land."""
    poisoned = box.csv(f"{PERIOD}/S04/survey.csv", "survey", [survey_row("S04")])
    good = box.csv(f"{PERIOD}/B03/survey.csv", "survey", [survey_row("B03"), survey_row("B03")])
    real = warehouse.bulk_insert
    tried: list[int] = []

    def refuses_s04(conn, table, frame):
        frames = frame if isinstance(frame, list) else [frame]
        if table is warehouse.raw_survey and any((f["site_code"] == "S04").any() for f in frames):
            tried.append(len(frames))
            raise ValueError("value too long for the column")
        return real(conn, table, frame)

    monkeypatch.setattr(warehouse, "bulk_insert", refuses_s04)
    box.run()
    assert len(tried) == 2  # the suite run's files together, then the file on its own
    sub = box.sub(poisoned)
    assert (sub["status"], bool(sub["is_current"])) == ("failed", False)
    assert "ValueError: value too long for the column" in sub["message"]
    box.assert_lands(good, "survey", 2)
    box.assert_nothing_lost()


# ------------------------------------------------------------------------- 2. nothing counted twice

@pytest.mark.parametrize("name,en,zh", [
    ("survey_in_april", "survey is filed under months 03, 06, 09, 12 only", "survey 只能放在 03, 06, 09, 12 月的目录下"),
    ("outcomes_in_june", "outcomes is filed under months 12 only", "outcomes 只能放在 12 月的目录下"),
    ("village_survey", "a village site does not submit survey", "village 类站点不报送 survey"),
    ("station_outcomes", "a station site does not submit outcomes", "station 类站点不报送 outcomes"),
    ("period_2030", "period 2030-05 lies outside the periods the programme reports", "期间 2030-05 不在项目报送期间"),
    ("period_2024", "period 2024-05 lies outside the periods the programme reports", "期间 2024-05 不在项目报送期间"),
    ("period_not_begun", "period 2026-09 has not begun on 2026-06-05", "期间 2026-09 在 2026-06-05 尚未开始"),
])
def test_layout_per_kind_programme_and_period(run, name, en, zh):
    refused(run, run.inputs[name], "file_location", en, zh)


def test_a_may_ledger_in_the_june_folder_cannot_replace_june(run):
    june, may = run.inputs["may_ledger_in_june"]
    assert counts(run, may) == ("no_rows_accepted", 2, 0, 2)
    assert run.failures(may) == {(2, "pay_date", in_set("dates_in_period")), (3, "pay_date", in_set("dates_in_period"))}
    assert "every one of the 2 row(s) has an error" in run.sub(may)["message"]
    assert bool(run.sub(june)["is_current"]) and not bool(run.sub(may)["is_current"])
    assert len(run.staged("finance", june)) == 1
    assert_others_unchanged(run)


def test_survey_dates_stay_in_their_quarter(run):
    rel = run.inputs["survey_after_quarter"]
    assert counts(run, rel) == ("partially_accepted", 3, 1, 2)
    assert {r for r, _, _ in run.failures(rel)} == {3, 4}


# ------------------------------------------------------------------------- 4. numbers read right

def test_thousands_separators_only_in_groups_of_three(run):
    rel = run.inputs["decimal_comma"]
    assert counts(run, rel) == ("partially_accepted", 5, 2, 3)
    assert run.failures(rel) == {(r, "amount", regex("amount_text")) for r in (3, 5, 6)}
    assert run.staged("finance", rel)["amount_fen"].tolist() == [123450, 1234500]
    values = run.quarantined(rel)["value"].tolist()
    assert values == ["1234,50", "1,2,3", "12,34.00"]
    assert all("a decimal comma (1234,50) is not accepted" in r for r in run.quarantined(rel)["reason_en"])


def test_hours_with_a_malformed_grouping_are_an_error(run):
    rel = run.inputs["grouped_hours"]
    assert counts(run, rel) == ("partially_accepted", 3, 1, 2)
    assert run.failures(rel) == {(2, "hours", not_null("hours")), (4, "hours", not_null("hours"))}


def test_an_xlsx_id_typed_as_a_number_says_so(run):
    rel = run.inputs["xlsx_numeric_id"]
    assert counts(run, rel) == ("partially_accepted", 2, 1, 1)
    q = run.quarantined(rel)
    assert q[["source_row", "column_name", "expectation"]].values.tolist() == [[3, "id_number", in_set("id_is_text")]]
    assert "cell is a number in Excel" in q.loc[0, "reason_en"] and "format the column as text" in q.loc[0, "reason_en"]
    assert "数字格式" in q.loc[0, "reason_zh"] and "check character" not in q.loc[0, "reason_en"]


# ------------------------------------------------------------------------- 5. no row lost before it is read

def test_an_unbalanced_quote_refuses_the_file_naming_the_line(run):
    refused(run, run.inputs["unbalanced_quote"], "file_readable", "an unbalanced quote (\") in line 4 makes lines 4-9",
            "第 4 行有未闭合的引号")


def test_a_huge_cell_is_a_row_error_not_a_file_error(run):
    rel = run.inputs["ten_mb_cell"]
    assert counts(run, rel) == ("partially_accepted", 3, 2, 1)
    assert run.failures(rel) == {(4, "payee", "expect_column_value_lengths_to_be_between(payee)")}


def test_control_characters_become_visible_replacement_characters():
    from yuhang_skills.intake.parse import clean_text

    cleaned = clean_text(pd.Series(["杭州\x00培训", "JZ\x0b0001", "a\tb", " ok ", None]))
    assert list(cleaned) == ["杭州\ufffd培训", "JZ\ufffd0001", "a\tb", "ok", None]


def test_control_characters_in_xlsx_cells_are_shown_not_fatal(run):
    rel = run.inputs["control_characters_in_xlsx_cells"]
    sub = run.sub(rel)
    assert sub["status"] != "failed", sub
    payees = list(run.staged("finance", rel)["payee"])
    # openpyxl leaves the escape as written, so no control character reaches the warehouse
    assert "杭州_x0000_培训公司" in payees and not any("\x00" in (p or "") for p in payees)
    assert counts(run, rel)[1] == 3
    assert_others_unchanged(run)


def test_a_hidden_draft_sheet_is_never_read(run):
    rel = run.inputs["hidden_draft_sheet"]
    assert counts(run, rel) == ("accepted", 2, 2, 0)
    assert run.staged("roster", rel)["class_id"].tolist() == ["FINAL", "FINAL"]


def test_a_wrong_sheet_dimension_hides_no_row(run):
    assert counts(run, run.inputs["understated_dimension"]) == ("accepted", 4, 4, 0)


def test_several_candidate_sheets_are_refused_by_name(run):
    refused(run, run.inputs["two_candidate_sheets"], "file_readable", "several visible sheets with a header row ('三月', "
            "'三月(修订)')", "多个带表头的可见工作表")


# ------------------------------------------------------------------------- 6. a bad optional value keeps its row

def test_an_invalid_optional_value_is_a_warning_and_the_row_counts(run):
    rel = run.inputs["bad_optional_values"]
    assert counts(run, rel) == ("accepted", 4, 4, 0)
    staged = run.staged("roster", rel)
    assert [None if pd.isna(v) else v for v in staged["satisfaction"]] == [None, "very_satisfied", "satisfied", "satisfied"]
    assert staged["low_income_household"].isna().tolist() == [False, False, True, False]
    q = run.quarantined(rel)
    assert q[["source_row", "column_name", "severity"]].values.tolist() == [
        [2, "satisfaction", "warning"], [4, "low_income_household", "warning"]]
    assert "1 row" not in (run.sub(rel)["message"] or "") and "2 row(s) with an invalid optional value" in run.sub(rel)["message"]


def test_a_file_whose_every_row_failed_is_no_rows_accepted(run):
    rel = run.inputs["every_row_bad"]
    assert counts(run, rel) == ("no_rows_accepted", 2, 0, 2)
    assert not bool(run.sub(rel)["is_current"])


# ------------------------------------------------------------------------- 8. say why

def test_plain_utf8_is_recorded_as_utf8(run):
    assert run.sub(run.inputs["plain_utf8"])["encoding"] == "utf-8"


@pytest.mark.parametrize("name,expectation,en,zh", [
    ("xlsx_named_csv", "file_type", "this is an Excel workbook named .csv; rename it to .xlsx", "这是一个 Excel 工作簿"),
    ("stray_byte", "file_encoding", "first bad byte 0xff at line 2", "首个无法识别的字节 0xff 位于第 2 行"),
    ("semicolons", "header_found", "the columns are separated by ';', not by commas", "各列以 ';' 分隔"),
    ("tabs", "header_found", "the columns are separated by tab, not by commas", "各列以 tab 分隔"),
    ("utf16", "file_encoding", "the file is UTF-16", "UTF-16 编码"),
    ("zero_width_site_folder", "file_location", "site folder 'V17\\u200b' is not a registered site code", "站点目录"),
])
def test_the_reason_says_what_is_wrong_and_how_to_fix_it(run, name, expectation, en, zh):
    refused(run, run.inputs[name], expectation, en, zh)


def test_a_zero_width_space_in_a_site_code_is_shown(run):
    rel = run.inputs["zero_width_site_cell"]
    assert counts(run, rel) == ("rejected", 1, 0, 1)
    assert run.quarantined(rel)["value"].tolist() == ["V16\\u200b"]


# ------------------------------------------------------------------------- 3. corrections always win

def test_a_resend_of_earlier_bytes_is_the_current_version(box):
    rel = f"{PERIOD}/S04/roster.csv"
    v1_rows = [roster_row(class_id="V1") for _ in range(2)]
    box.csv(rel, "roster", v1_rows, mtime=T1)
    v1 = box.path(rel).read_bytes()
    box.run()
    box.csv(rel, "roster", [roster_row(class_id="V2")], mtime=T1 + 60)
    box.run()
    assert box.staged("roster")["class_id"].tolist() == ["V2"]
    box.raw(rel, v1, mtime=T1 + 120)  # v3: v1's exact bytes again
    box.run()
    assert box.staged("roster")["class_id"].tolist() == ["V1", "V1"]
    s = box.tables["submissions"].sort_values("version")
    assert s["is_current"].astype(bool).tolist() == [False, True]
    with box.intake.engine.connect() as conn:
        arrivals = conn.execute(sa.select(warehouse.submission_arrivals.c.sha256)
                                .order_by(warehouse.submission_arrivals.c.arrival_id)).scalars().all()
    assert len(arrivals) == 3 and arrivals[0] == arrivals[2] != arrivals[1]
    box.assert_nothing_lost()


def test_a_correction_with_an_older_file_time_still_wins(box):
    v1 = box.csv(f"{PERIOD}/S04/roster.csv", "roster", [roster_row(class_id="V1")], mtime=T1)
    box.run()
    v2 = box.csv(f"{PERIOD}/S04/roster_v2.csv", "roster", [roster_row(class_id="V2")], mtime=T1 - 86400)
    box.run()
    assert (box.sub(v1)["version"], box.sub(v2)["version"]) == (1, 2)
    assert bool(box.sub(v2)["is_current"]) and box.staged("roster")["class_id"].tolist() == ["V2"]


def test_files_the_run_does_not_process_are_listed_with_why(box, monkeypatch, tmp_path):
    monkeypatch.setenv("YUHANG_INBOX_DIR", str(box.inbox))
    future = dt.datetime.now().timestamp() + 30 * 86400
    on_time = box.csv(f"{PERIOD}/S04/roster.csv", "roster", [roster_row()], mtime=T1)
    future_file = box.csv(f"{PERIOD}/S05/roster.csv", "roster", [roster_row("S05")], mtime=future)
    outside = tmp_path / "secret.csv"
    write_csv(outside, "roster", [roster_row("S06")])
    (box.inbox / PERIOD / "S06").mkdir(parents=True)
    (box.inbox / PERIOD / "S06" / "roster.csv").symlink_to(outside)
    (box.inbox / PERIOD / "S07").symlink_to(tmp_path)  # a linked folder
    today = tasks.as_of_date(None).isoformat()  # the run's day in Asia/Shanghai, not the machine's
    tasks.migrate_warehouse()  # the DAG's first task
    batches = tasks.discover_submissions(str(box.inbox), today)
    handed = {f["relative_path"] for b in batches for f in b["files"]}
    assert handed == {on_time, future_file}  # a file time in the future is evidence, not a reason to wait
    backfill = tasks.discover_submissions(str(box.inbox), "2026-04-05")  # T1 is 2026-04-02
    assert {f["relative_path"] for t in backfill for f in t["files"]} == {on_time}
    engine = warehouse.make_engine(box.settings.warehouse_url)
    with engine.connect() as conn:
        listed = {r.relative_path: r.reason_code for r in conn.execute(sa.select(warehouse.intake_not_processed))}
    engine.dispose()
    assert listed == {future_file: "received_after_as_of", f"{PERIOD}/S06/roster.csv": "link", f"{PERIOD}/S07": "link"}
    box.run()
    assert set(box.tables["submissions"]["original_name"]) == {on_time, future_file}
    from yuhang_skills.cli import ops

    report = {"today": today, "warehouse": "x", "airflow": {"source": "none", "error": None, "runs": {}}, "data": {},
              "missing_today": [], "failed_files": []}
    with warehouse.make_engine(box.settings.warehouse_url).connect() as conn:
        report["not_processed"] = ops.not_processed_files(conn)
    text = ops.format_status(report)
    assert "not processed  3 file(s)" in text and "S06/roster.csv: a link" in text


def test_a_file_that_vanishes_or_a_folder_that_cannot_be_listed_is_listed_not_fatal(box, monkeypatch):
    """An upload renamed between the folder listing and the look at the file (``.part`` → final
    name), and a site folder the service may not list: both are listed as not processed with why,
    and every other file is handed on."""
    import os

    from yuhang_skills.intake import discover as discovery

    good = box.csv(f"{PERIOD}/S04/roster.csv", "roster", [roster_row()], mtime=T1)
    part = box.csv(f"{PERIOD}/S05/roster.csv", "roster", [roster_row("S05")], mtime=T1)
    hidden = box.csv(f"{PERIOD}/S08/roster.csv", "roster", [roster_row("S08")], mtime=T1)
    real_lstat, real_scandir = os.lstat, os.scandir
    vanishing = os.fsencode(box.inbox / part)
    locked = os.fsencode(box.inbox / PERIOD / "S08")

    def lstat(path, *args, **kwargs):
        if os.fsencode(path) == vanishing:
            raise FileNotFoundError(2, "No such file or directory", path)
        return real_lstat(path, *args, **kwargs)

    def scandir(path=".", *args, **kwargs):
        if os.fsencode(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path, *args, **kwargs)

    monkeypatch.setattr(discovery.os, "lstat", lstat)
    monkeypatch.setattr(os, "scandir", scandir)
    found = {f.relative_path: f.skip for f in discover(box.inbox, box.plan)}
    monkeypatch.setattr(discovery.os, "lstat", real_lstat)
    monkeypatch.setattr(os, "scandir", real_scandir)
    assert found[good] is None
    assert found[part] == "vanished"
    assert found[f"{PERIOD}/S08"] == "unreadable" and hidden not in found
    assert "disappeared while the inbox was read" in catalogue.text("intake.not_processed.vanished")[0]


# ------------------------------------------------------------------------- 7. security

def test_archive_is_readable_by_the_service_only(run):
    for path in run.settings.archive_dir.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, (path, oct(mode))


def test_a_file_rewritten_while_it_is_read_is_hashed_archived_and_parsed_as_one_copy(box, monkeypatch):
    rel = box.csv(f"{PERIOD}/S04/roster.csv", "roster", [roster_row(class_id="FIRST") for _ in range(3)])
    write_csv(box.path("replacement.tmp"), "roster", [roster_row(class_id="OTHER")])
    other = box.path("replacement.tmp").read_bytes()
    box.path("replacement.tmp").unlink()
    real_open = open

    def rewriting_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if str(path).endswith("S04/roster.csv") and "b" in mode:
            first = handle.read()
            box.path(rel).write_bytes(other)  # the site's tool rewrites the file meanwhile
            return io.BytesIO(first)
        return handle

    monkeypatch.setattr(archive, "open", rewriting_open, raising=False)
    box.run()
    sub = box.sub(rel)
    archived = Path(sub["archive_path"]).read_bytes()
    assert hashlib.sha256(archived).hexdigest() == sub["sha256"] == Path(sub["archive_path"]).name.split(".")[0]
    assert box.path(rel).read_bytes() == other != archived
    assert box.staged("roster", rel)["class_id"].tolist() == ["FIRST"] * 3


def test_a_task_splits_its_suite_runs_at_the_policys_row_limit_and_stages_the_same_rows(tmp_path, plan):
    """A suite run takes a kind's files until the next would pass ``intake.suite_run_rows``, so a
    task's memory is bounded by that and its largest file; the rows staged and quarantined, with
    their reasons and row numbers, are the same as in one run per kind."""
    import dataclasses

    from yuhang_sample.generator import SampleOptions, generate
    from yuhang_skills.core.migrations import migrate
    from yuhang_skills.core.policy import Plan
    from yuhang_skills.core.settings import load_settings
    from yuhang_skills.intake.ingest import Intake

    inbox = tmp_path / "inbox"
    generate(inbox, SampleOptions(scale=0.05, start="2026-01", end="2026-06"))  # with the usual mess
    files = [f for f in discover(inbox, plan) if f.site_code in ("B01", "S01", "V01") and not f.skip]
    limit = 60
    small = Plan(plan.policy.model_copy(update={"intake": plan.policy.intake.model_copy(
        update={"suite_run_rows": limit})}), plan.sites, plan.contract)
    dumps, runs = {}, {}
    for label, run_plan in (("whole", plan), ("split", small)):
        url = f"sqlite:///{tmp_path / label}.sqlite"
        settings = dataclasses.replace(load_settings(), warehouse_url=url, var_dir=tmp_path / label,
                                       archive_dir=tmp_path / "archive", data_docs_dir=tmp_path / label / "docs")
        engine = warehouse.make_engine(url)
        migrate(engine)
        intake = Intake(settings, run_plan, engine=engine, today=dt.date(2027, 2, 15))
        real, sizes = intake._validate_batch, []

        def counted(kind, batch, real=real, sizes=sizes):
            sizes.append((kind, [len(p.parsed.frame) for p in batch]))
            return real(kind, batch)

        intake._validate_batch = counted
        intake.ingest_many(files)
        runs[label] = sizes
        with engine.connect() as conn:
            def table(sql):
                frame = pd.read_sql(sa.text(sql), conn)
                return frame.drop(columns=[c for c in frame.columns if c.endswith("_at") or c == "quarantine_id"])
            dumps[label] = {
                "submissions": table("select * from submissions order by submission_id"),
                "raw_roster": table("select * from raw_roster order by submission_id, source_row"),
                "raw_finance": table("select * from raw_finance order by submission_id, source_row"),
                "quarantine": table("select * from quarantine order by submission_id, source_row, column_name, "
                                    "expectation"),
            }
        engine.dispose()
    assert len(runs["split"]) > len(runs["whole"]) >= 2
    for _, rows in runs["split"]:
        assert sum(rows) <= limit or len(rows) == 1, rows  # only a file larger than the limit runs alone
    assert (dumps["whole"]["quarantine"]["source_row"].notna()).any()  # the mess is there: rows were quarantined
    for name, frame in dumps["whole"].items():
        pd.testing.assert_frame_equal(frame, dumps["split"][name], obj=name)
