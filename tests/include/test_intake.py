"""Tests for yuhang_skills.intake: from a site's file in the inbox to staging or quarantine.

Every test builds a small inbox under ``tmp_path`` (``<inbox>/<YYYY-MM>/<site>/<kind>.<ext>``),
runs ``discover`` + ``Intake.ingest_many`` + ``publish`` against the ``warehouse_url`` fixture
(SQLite and PostgreSQL) and judges the tables the way a data officer would: the reason a row was
refused (English and Chinese, the column, the row number seen in the original file, the
expectation), that the good rows of the same file and other sites' files still arrive, and that
nothing is lost (``reconcile`` is empty and every file's rows add up).

Files are written here from the published contract (``include/yuhang_skills/policy/contract.yaml``: Chinese
headers are each column's first alias) and ID numbers are built with valid check characters, so
each bad input differs from a good one in exactly the way the test names.

Great Expectations costs about half a second per suite run, so most cases share one inbox and one
intake run per database: each case writes its own file(s) at a site of its own (a ``RowCase`` or a
builder registered with ``@shared_input`` next to its test), ``shared_run`` ingests the lot on
first use, and every test then asserts on its own files only. Cases that need runs of their own
(idempotency, a resubmission in a later run) use ``box``.

"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import itertools
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa

from yuhang_skills.core import warehouse
from yuhang_skills.core.migrations import migrate
from yuhang_skills.intake.identity import check_character
from yuhang_skills.intake.discover import discover
from yuhang_skills.intake.ingest import Intake
from yuhang_skills.intake.publish import publish, reconcile
from yuhang_skills.core.policy import Plan
from yuhang_skills.core.settings import load_settings

PLAN = Plan.from_settings(load_settings())
CONTRACT = PLAN.contract
KINDS = CONTRACT.kinds
TOLERANCE_DAYS = PLAN.policy.intake.tolerance("roster").before  # roster: a class may start this many days before its month
FINANCE_AFTER_DAYS = PLAN.policy.intake.tolerance("finance").after
MAX_HOURS = float(PLAN.policy.intake.max_class_hours)
TODAY = dt.date(2026, 6, 5)  # the intake's "today": every class below lies in the past
PERIOD = "2026-03"
INTAKE_TABLES = ("submissions", "quarantine", "validation_runs", *(t.name for t in warehouse.RAW_TABLES.values()))
BLANK = None  # a blank line / empty row in a written file


# ------------------------------------------------------------------------- people and rows

_people = itertools.count(1)
_GIVEN = "安邦昌达飞刚浩杰俊凯乐明鹏强荣胜涛伟翔勇"


def make_id(birth: str = "19900101", seq: int = 123, region: str = "330110") -> str:
    """A resident ID number with a correct GB 11643-1999 check character."""
    first17 = f"{region}{birth}{seq:03d}"
    return first17 + check_character(first17)


def wrong_check(id_number: str) -> str:
    """The same ID number with a wrong check character."""
    return id_number[:-1] + ("0" if id_number[-1] != "0" else "1")


def id_with_x(birth: str = "19880808", region: str = "330110") -> str:
    """An ID number whose check character is X (upper case)."""
    for seq in range(1000):
        candidate = make_id(birth, seq, region)
        if candidate.endswith("X"):
            return candidate
    raise AssertionError("no sequence number gives check character X")


def fresh_person(birth: str | None = None, male: bool = True) -> tuple[str, str]:
    """(name, ID number) of a person no other row uses (adults born from 1975 on, one birth
    date each unless given); the name is distinctive enough to be searched for in every table."""
    n = next(_people)
    assert n < 8000, "ran out of distinct people"
    birth = birth or (dt.date(1975, 1, 1) + dt.timedelta(days=n)).strftime("%Y%m%d")
    name = "欧阳" + _GIVEN[n % 20] + _GIVEN[n // 20 % 20] + ("" if n < 400 else _GIVEN[n // 400 % 20])
    return name, make_id(birth, 2 * (n % 500) + (1 if male else 0))


def roster_row(site: str = "S04", **changes: Any) -> dict[str, Any]:
    name, id_number = fresh_person()
    row = {
        "site_code": site, "class_id": "PX2026-031", "course": "电工技能培训", "occupation": "电工",
        "level": "初级", "industry": "先进制造业", "start_date": "2026-03-02", "end_date": "2026-03-20",
        "hours": "40", "name": name, "id_number": id_number, "group": "农村转移劳动力",
        "low_income_household": "否", "assessed": "是", "passed": "合格",
        "certificate_no": f"ZS{id_number[-6:]}", "satisfaction": "满意",
    }
    row.update(changes)
    return row


_vouchers = itertools.count(1)


def finance_row(site: str = "S04", **changes: Any) -> dict[str, Any]:
    n = next(_vouchers)
    row = {
        "site_code": site, "voucher_no": f"记-{n:04d}", "pay_date": "2026-03-10", "amount": "1200.00",
        "fund_source": "省级", "category": "师资培训", "payee": "杭州技能培训服务有限公司",
        "invoice_no": f"FP{n:08d}", "description": "师资培训费",
    }
    row.update(changes)
    return row


def survey_row(site: str = "S04", **changes: Any) -> dict[str, Any]:
    row = {"site_code": site, "respondent_type": "劳动者", "survey_date": "2026-03-15", "rating": "满意"}
    row.update(changes)
    return row


def outcomes_row(site: str = "V01", **changes: Any) -> dict[str, Any]:
    row = {"site_code": site, "year": "2026", "low_income_households": "20", "households_with_skill": "15",
           "trainees": "32", "avg_income_gain": "1800.00"}
    row.update(changes)
    return row


ROW_MAKERS = {"roster": roster_row, "finance": finance_row, "survey": survey_row, "outcomes": outcomes_row}
BYSTANDERS = {"roster": f"{PERIOD}/S12/roster.csv", "finance": f"{PERIOD}/S12/finance.csv",
              "survey": f"{PERIOD}/B03/survey.csv", "outcomes": "2026-12/V52/outcomes.csv"}


# ------------------------------------------------------------------------- writing files


def header_names(kind: str, style: str | dict[str, str] = "zh") -> dict[str, str]:
    """Header text per contract column: ``zh`` = first alias, ``en`` = canonical name, or a
    mapping that overrides single columns of the Chinese headers."""
    columns = KINDS[kind].columns
    if style == "en":
        return {c: c for c in columns}
    names = {c: spec.aliases[0] for c, spec in columns.items()}
    if isinstance(style, dict):
        names.update(style)
    return names


def _grid(kind: str, rows: list[dict[str, Any] | None], headers: str | dict[str, str],
          drop: tuple[str, ...]) -> list[list[Any] | None]:
    names = header_names(kind, headers)
    columns = [c for c in KINDS[kind].columns if c not in drop]
    extra = list(dict.fromkeys(k for r in rows if r for k in r if k not in KINDS[kind].columns))
    grid: list[list[Any] | None] = [[names[c] for c in columns] + extra]
    for r in rows:
        grid.append(None if r is None else [r.get(c) for c in columns + extra])
    return grid


def _touch(path: Path, mtime: float | None) -> Path:
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def write_csv(path: Path, kind: str, rows: list[dict[str, Any] | None], *, headers: str | dict[str, str] = "zh",
              encoding: str = "utf-8", preamble: list[list[Any]] = (), drop: tuple[str, ...] = (),
              mtime: float | None = None) -> Path:
    """A CSV as sites send it; ``None`` rows become blank lines, ``preamble`` rows go above the header."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for line in [*preamble, *_grid(kind, rows, headers, drop)]:
        if line is None:
            out.write("\r\n")
        else:
            writer.writerow(["" if v is None else v for v in line])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out.getvalue().encode(encoding))
    return _touch(path, mtime)


def write_xlsx(path: Path, kind: str, rows: list[dict[str, Any] | None], *, headers: str | dict[str, str] = "zh",
               preamble: list[list[Any] | None] = (), drop: tuple[str, ...] = (), mtime: float | None = None) -> Path:
    """An XLSX written with openpyxl; cell values keep their Python type (str, int, float, date)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = KINDS[kind].name_zh
    for line in [*preamble, *_grid(kind, rows, headers, drop)]:
        ws.append([] if line is None else line)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return _touch(path, mtime)


def write_bytes(path: Path, data: bytes, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return _touch(path, mtime)


def excel_serial(day: dt.date) -> int:
    return (day - dt.date(1899, 12, 30)).days


# ------------------------------------------------------------------------- expectation labels


def in_set(column: str) -> str:
    return f"expect_column_values_to_be_in_set({column})"


def not_null(column: str) -> str:
    return f"expect_column_values_to_not_be_null({column})"


def between(column: str) -> str:
    return f"expect_column_values_to_be_between({column})"


def regex(column: str) -> str:
    return f"expect_column_values_to_match_regex({column})"


def unique(*columns: str) -> str:
    return f"expect_compound_columns_to_be_unique({','.join(columns)})"


def a_ge_b(a: str, b: str) -> str:
    return f"expect_column_pair_values_a_to_be_greater_than_b({a},{b})"


# ------------------------------------------------------------------------- running the intake


def read_tables(engine: sa.Engine) -> dict[str, pd.DataFrame]:
    """Every intake table, in a stable order."""
    out = {}
    with engine.connect() as conn:
        for name in INTAKE_TABLES:
            table = warehouse.metadata.tables[name]
            keys = [c.name for c in table.primary_key.columns]
            frame = pd.DataFrame([dict(r._mapping) for r in conn.execute(sa.select(table).order_by(*keys))],
                                 columns=[c.name for c in table.columns])
            out[name] = frame
    return out


def all_text(engine: sa.Engine) -> list[tuple[str, str, str]]:
    """(table, column, value) of every non-null value of every table in the warehouse, as text."""
    found = []
    names = sa.inspect(engine).get_table_names()
    assert {"submissions", "quarantine", "raw_roster"} <= set(names)
    with engine.connect() as conn:
        for name in names:
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            for row in conn.execute(sa.select(table)):
                for column, value in row._mapping.items():
                    if value is not None:
                        found.append((name, column, str(value)))
    return found


def as_date(value: Any) -> dt.date | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).date()


@dataclass(repr=False)
class Box:
    """An inbox, its settings and the warehouse after the last run."""

    inbox: Path
    settings: Any
    plan: Plan
    intake: Intake | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    unbalanced: list[dict[str, Any]] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)  # what each shared case wrote
    people: list[tuple[str, str]] = field(default_factory=list)  # (name, ID number) of every roster row written
    _taken: set[tuple[str, str, str]] = field(default_factory=set)  # (period, site, kind) in use

    def __repr__(self) -> str:
        return f"Box({self.inbox})"

    def path(self, rel: str) -> Path:
        return self.inbox / rel

    def claim(self, rel: str) -> str:
        """Reserve the (period, site, kind) of a fixed file so no other case writes there."""
        parts = rel.split("/")
        if len(parts) == 3:
            self._taken.add((parts[0], parts[1].upper(), parts[2].split(".")[0].split("_")[0]))
        return rel

    def site(self, kind: str, period: str = PERIOD) -> str:
        """A registered site of a programme that submits ``kind`` and has no ``kind`` file for ``period``
        yet (so no case supersedes another)."""
        programmes = self.plan.policy.submissions[kind].programmes
        for code in sorted(self.plan.sites_by_code):
            if self.plan.sites_by_code[code].programme not in programmes:
                continue
            if (period, code, kind) not in self._taken:
                self._taken.add((period, code, kind))
                return code
        raise AssertionError(f"no site left for another {kind} file in {period}")

    def _remember(self, kind: str, rows: list) -> None:
        if kind == "roster":
            self.people += [(str(r.get("name") or ""), str(r.get("id_number") or "")) for r in rows if r]

    def csv(self, rel: str, kind: str, rows: list, **kw: Any) -> str:
        write_csv(self.path(self.claim(rel)), kind, rows, **kw)
        self._remember(kind, rows)
        return rel

    def xlsx(self, rel: str, kind: str, rows: list, **kw: Any) -> str:
        write_xlsx(self.path(self.claim(rel)), kind, rows, **kw)
        self._remember(kind, rows)
        return rel

    def raw(self, rel: str, data: bytes, mtime: float | None = None) -> str:
        write_bytes(self.path(self.claim(rel)), data, mtime)
        return rel

    def bystander(self, kind: str) -> str:
        """A good file of another site (two rows; one for outcomes), which must land whatever else happens."""
        rel = BYSTANDERS[kind]
        site = rel.split("/")[1]
        rows = [ROW_MAKERS[kind](site)] if kind == "outcomes" else [ROW_MAKERS[kind](site), ROW_MAKERS[kind](site)]
        if kind == "survey":
            rows[1]["respondent_type"] = "企业"
        return self.csv(rel, kind, rows)

    def run(self, new_intake: bool = False) -> list[dict[str, Any]]:
        if self.intake is None or new_intake:
            self.dispose()
            self.intake = Intake(self.settings, self.plan, today=TODAY)
            migrate(self.intake.engine)  # as the DAG's first task does
        self.results = self.intake.ingest_many(discover(self.inbox, self.plan))
        publish(self.intake.engine)
        self.tables = read_tables(self.intake.engine)
        self.unbalanced = reconcile(self.intake.engine)
        return self.results

    def dispose(self) -> None:
        if self.intake is not None:
            self.intake.engine.dispose()

    # --- reading the warehouse after a run
    def sub(self, rel: str) -> dict[str, Any]:
        s = self.tables["submissions"]
        found = s[s["original_name"] == rel]
        assert len(found) == 1, f"{rel}: {len(found)} submissions rows; files recorded: {sorted(s['original_name'])}"
        return found.iloc[0].to_dict()

    def quarantined(self, rel: str) -> pd.DataFrame:
        q = self.tables["quarantine"]
        return q[q["source_file"] == rel].reset_index(drop=True)

    def staged(self, kind: str, rel: str | None = None) -> pd.DataFrame:
        stg = self.tables[f"raw_{kind}"]
        if rel is not None:
            stg = stg[stg["submission_id"] == self.sub(rel)["submission_id"]]
        return stg.sort_values(["submission_id", "source_row"]).reset_index(drop=True)

    def failures(self, rel: str) -> set[tuple[Any, ...]]:
        q = self.quarantined(rel)
        return {(None if pd.isna(r.source_row) else int(r.source_row), r.column_name, r.expectation)
                for r in q.itertuples()}

    def assert_lands(self, rel: str, kind: str, rows: int) -> None:
        """``rel`` was accepted whole: ``rows`` rows staged, nothing quarantined."""
        sub = self.sub(rel)
        assert (sub["status"], sub["rows_read"], sub["rows_staged"], sub["rows_quarantined"]) == (
            "accepted", rows, rows, 0), (sub, self.quarantined(rel).to_dict("records"))
        assert bool(sub["is_current"])
        assert len(self.staged(kind, rel)) == rows

    def assert_nothing_lost(self) -> None:
        """Every row of every file is in exactly one place, and the manifest says so."""
        assert self.unbalanced == []
        s, q = self.tables["submissions"], self.tables["quarantine"]
        for sub in s.to_dict("records"):
            name = sub["original_name"]
            assert sub["rows_read"] == sub["rows_staged"] + sub["rows_quarantined"], sub
            mine = q[q["submission_id"] == sub["submission_id"]]
            errors = mine[mine["severity"] != "warning"]  # a warning keeps its row staged
            assert errors["source_row"].dropna().nunique() == sub["rows_quarantined"], name
            if sub["status"] == "rejected":
                assert sub["rows_staged"] == 0, name
                assert len(mine) > 0, f"{name}: rejected without any reason in quarantine"
            if sub["kind"] in warehouse.RAW_TABLES:
                stg = self.tables[f"raw_{sub['kind']}"]
                in_staging = int((stg["submission_id"] == sub["submission_id"]).sum())
                assert in_staging == (sub["rows_staged"] if sub["is_current"] else 0), name


# <sha256>:<site>:<period>:<kind>, the longest for outcomes: 64 + 1 + 3 + 1 + 7 + 1 + 8 = 85 characters.
LONGEST_SUBMISSION_ID = 64 + len(":V01:2026-12:") + max(len(kind) for kind in KINDS)


@pytest.fixture
def box(warehouse_url, settings_for, plan, tmp_path):
    b = Box(tmp_path / "inbox", settings_for(warehouse_url), plan)
    b.inbox.mkdir()
    yield b
    b.dispose()


def backend(warehouse_url: str) -> str:
    return "postgresql" if warehouse_url.startswith("postgresql") else "sqlite"


def assert_masked_id(value: Any) -> None:
    """A quarantined ID number shows at most its first 6 and last 4 characters (or nothing)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return
    assert isinstance(value, str) and re.fullmatch(r"\d{6}\*{8}[\dX]{4}|\*{8}", value), value


# ========================================================================= the shared inbox
#
# A builder registered with @shared_input writes its files into the shared inbox (at sites it gets
# from ``b.site(kind)``) and returns what its test needs; the test reads ``b.inputs[<name>]``.

SHARED_INPUTS: dict[str, Callable[[Box], Any]] = {}


def shared_input(build: Callable[[Box], Any]) -> Callable[[Box], Any]:
    SHARED_INPUTS[build.__name__] = build
    return build


_SHARED: dict[str, tuple[Box, list[tuple[str, str, str]]]] = {}  # backend -> (run, every text value stored)
_SHARED_FAILED: dict[str, str] = {}


@pytest.fixture
def shared_run(warehouse_url, settings_for, plan, tmp_path):
    """The shared inbox, ingested once per database (the first test that asks builds it)."""
    key = backend(warehouse_url)
    if key in _SHARED_FAILED:
        pytest.fail(f"the shared {key} run failed in an earlier test: {_SHARED_FAILED[key]}")
    if key not in _SHARED:
        b = Box(tmp_path / "inbox", settings_for(warehouse_url), plan)
        try:
            for rel in FIXED_FILES:
                b.claim(rel)
            _write_fixed_files(b)
            for case in ROW_CASES:
                rel = f"{case.period}/{b.site(case.kind, case.period)}/{case.kind}.csv"
                site = rel.split("/")[1]
                b.inputs[case.id] = b.csv(rel, case.kind, [ROW_MAKERS[case.kind](site, **change) for change in case.rows])
            for name, build in SHARED_INPUTS.items():
                b.inputs[name] = build(b)
            b.run()
            texts = all_text(b.intake.engine)
        except Exception as exc:
            _SHARED_FAILED[key] = f"{type(exc).__name__}: {exc}"[:2000]  # fail the other tests fast
            raise
        finally:
            b.dispose()
        _SHARED[key] = (b, texts)
    return _SHARED[key][0]


def shared_texts(b: Box) -> list[tuple[str, str, str]]:
    return next(texts for box_, texts in _SHARED.values() if box_ is b)


# ========================================================================= row-level cases
#
# One case = one file at a site of its own: its rows (``{}`` = a good row, otherwise the columns
# changed from a good row) and, for each bad row, the failures expected (column_name, expectation).
# Every other row must be staged. CSV with the header in row 1: data row i is row i + 2 of the file.


@dataclass(frozen=True)
class RowCase:
    id: str
    kind: str
    rows: tuple[dict[str, Any], ...]
    bad: dict[int, frozenset[tuple[str, str]]]
    reason_en: str
    reason_zh: str
    period: str = PERIOD

    @property
    def status(self) -> str:
        if len(self.bad) == len(self.rows):
            return "no_rows_accepted"
        return "partially_accepted" if self.bad else "accepted"


def one_bad(case_id: str, kind: str, change: dict[str, Any], failures: set[tuple[str, str]], reason_en: str,
            reason_zh: str, period: str = PERIOD, good: int = 2) -> RowCase:
    """A file of ``good`` good rows with the bad row second (file row 3)."""
    rows = [{}, change, *[{}] * (good - 1)] if good else [change]
    return RowCase(case_id, kind, tuple(rows), {1 if good else 0: frozenset(failures)}, reason_en, reason_zh, period)


ID_REASON_FORMAT = ("id_number missing or malformed (18 characters, last may be X)", "身份证号缺失或格式错误")
ID_REASON_BIRTH = ("id_number birth date is not a real date or lies in the future", "出生日期不存在或晚于今天")
AGE_REASON = ("trainee outside legal working age (16 to statutory retirement age) on the start date",
              "开班日不在法定劳动年龄内")
PERIOD_REASON = ("start_date falls outside the submitted month (with tolerance)", "开班日期不在提交月份内(含容差)")
HOURS_REASON = ("hours must be positive and within the policy maximum", "课时须大于0且不超过上限")
START_REASON = ("start_date is missing or not a date (use 2026-03-05, 2026/3/5 or 2026年3月5日)", "开班日期缺失或无法识别")
PASSED_REASON = ("passed is given without assessment, or missing for an assessed trainee", "未参加考核却填写了考核结果")
EARLIEST = dt.date(2026, 3, 1) - dt.timedelta(days=TOLERANCE_DAYS)  # first day a 2026-03 class may start
LATEST = dt.date(2026, 3, 31) + dt.timedelta(days=TOLERANCE_DAYS)  # last day it may end

ROW_CASES = [
    # 8: unreadable dates
    *[one_bad(f"roster-start-date-{label}", "roster", {"start_date": value}, {("start_date", not_null("start_date"))},
              *START_REASON)
      for label, value in [("feb-30", "2026-02-30"), ("month-first", "3/5/2026"), ("words", "下周一")]],
    one_bad("roster-end-date-unreadable", "roster", {"end_date": "2026-03-32"}, {("end_date", not_null("end_date"))},
            "end_date is missing or not a date", "结业日期缺失或无法识别"),
    # 9-12: ID numbers
    one_bad("roster-id-checksum", "roster", {"id_number": wrong_check(make_id("19900101", 457))},
            {("id_number", in_set("id_checksum_ok"))},
            "id_number check character is wrong (GB 11643-1999)", "身份证号校验码错误"),
    one_bad("roster-id-feb-30", "roster", {"id_number": make_id("19900230", 459)},
            {("id_number", in_set("id_birth_date_ok"))}, *ID_REASON_BIRTH),
    one_bad("roster-id-born-after-today", "roster", {"id_number": make_id((TODAY + dt.timedelta(days=1)).strftime("%Y%m%d"), 461)},
            {("id_number", in_set("id_birth_date_ok"))}, *ID_REASON_BIRTH),
    one_bad("roster-id-province-99", "roster", {"id_number": make_id("19900101", 463, region="990101")},
            {("id_number", in_set("id_province_ok"))},
            "id_number province code does not exist", "身份证号的省级行政区划代码不存在"),
    one_bad("roster-id-17-characters", "roster", {"id_number": make_id("19900101", 465)[:17]},
            {("id_number", in_set("id_format_ok"))}, *ID_REASON_FORMAT),
    one_bad("roster-id-missing", "roster", {"id_number": ""}, {("id_number", in_set("id_format_ok"))}, *ID_REASON_FORMAT),
    # 14, 15: working age (boundaries in test_working_age_boundaries)
    one_bad("roster-aged-15", "roster", {"id_number": make_id("20100615", 467)}, {("id_number", in_set("in_working_age"))},
            *AGE_REASON),
    one_bad("roster-man-retired", "roster", {"id_number": make_id("19640615", 469)}, {("id_number", in_set("in_working_age"))},
            *AGE_REASON),
    # 16, 17: class dates
    one_bad("roster-end-before-start", "roster", {"start_date": "2026-03-10", "end_date": "2026-03-09"},
            {("end_date", a_ge_b("end_date", "start_date"))}, "end_date is before start_date", "结业日期早于开班日期"),
    one_bad("roster-starts-too-early", "roster", {"start_date": str(EARLIEST - dt.timedelta(days=1))},
            {("start_date", in_set("start_in_period"))}, *PERIOD_REASON),
    # (a class ending too late: see test_end_date_outside_the_period_points_at_end_date)
    # 18: hours
    *[one_bad(f"roster-hours-{label}", "roster", {"hours": value}, {("hours", between("hours"))}, *HOURS_REASON)
      for label, value in [("zero", "0"), ("negative", "-8"), ("above-maximum", str(int(MAX_HOURS) + 1))]],
    one_bad("roster-hours-not-a-number", "roster", {"hours": "四十"}, {("hours", not_null("hours"))},
            "hours is missing or not a number", "课时缺失或不是数字"),
    # 19: enumerations
    one_bad("roster-industry-unknown", "roster", {"industry": "文旅产业"}, {("industry", in_set("industry"))},
            "industry is not one of the contract's values", "产业领域不在规定取值内"),
    one_bad("roster-group-unknown", "roster", {"group": "在校学生"}, {("group", in_set("person_group"))},
            "group is not one of the contract's values", "人员类别不在规定取值内"),
    one_bad("roster-level-unknown", "roster", {"level": "特级"}, {("level", in_set("level"))},
            "level is not one of the contract's values", "等级不在规定取值内"),
    one_bad("roster-level-missing", "roster", {"level": ""}, {("level", not_null("level"))}, "level is missing", "等级缺失"),
    # (an invalid optional value, satisfaction or low_income_household, is a warning: test_optional_value_is_a_warning)
    # 20: assessment
    one_bad("roster-passed-without-assessment", "roster", {"assessed": "否", "passed": "合格"},
            {("passed", in_set("passed_consistent"))}, *PASSED_REASON),
    one_bad("roster-assessed-without-result", "roster", {"assessed": "是", "passed": ""},
            {("passed", in_set("passed_consistent"))}, *PASSED_REASON),
    one_bad("roster-assessed-unknown", "roster", {"assessed": "待定", "passed": ""}, {("assessed", in_set("assessed"))},
            "assessed must be yes/no (是/否)", "是否参加考核应为 是/否"),
    one_bad("roster-name-missing", "roster", {"name": " "}, {("name", not_null("name_number"))}, "name is missing", "姓名缺失"),
    one_bad("roster-class-id-missing", "roster", {"class_id": ""}, {("class_id", not_null("class_id"))},
            "class_id is missing", "培训班编号缺失"),
    # 21: the same person twice in one class (both rows); the same person in another class is fine
    RowCase("roster-same-person-twice-in-class", "roster",
            ({}, {"id_number": make_id("19850505", 471), "name": "欧阳重复"},
             {"id_number": make_id("19850505", 471), "name": "欧阳重复"},
             {"id_number": make_id("19850505", 471), "name": "欧阳重复", "class_id": "PX2026-032"}),
            {1: frozenset({("id_number", unique("file_key", "class_id", "person_number"))}),
             2: frozenset({("id_number", unique("file_key", "class_id", "person_number"))})},
            "the same person appears twice in one class", "同一人在同一培训班中重复出现"),
    RowCase("roster-same-person-lower-and-upper-x", "roster",
            ({}, {"id_number": id_with_x("19860606")}, {"id_number": id_with_x("19860606").lower()}),
            {1: frozenset({("id_number", unique("file_key", "class_id", "person_number"))}),
             2: frozenset({("id_number", unique("file_key", "class_id", "person_number"))})},
            "the same person appears twice in one class", "同一人在同一培训班中重复出现"),
    # 22: finance
    one_bad("finance-amount-3-decimals", "finance", {"amount": "1200.125"}, {("amount", regex("amount_text"))},
            "amount must be a positive number with at most 2 decimals", "金额须为正数且最多两位小数"),
    one_bad("finance-amount-negative", "finance", {"amount": "-300.00"}, {("amount", regex("amount_text"))},
            "amount must be a positive number with at most 2 decimals", "金额须为正数且最多两位小数"),
    one_bad("finance-amount-zero", "finance", {"amount": "0.00"}, {("amount", between("amount_fen"))},
            "amount must be greater than 0", "金额须大于0"),
    one_bad("finance-amount-missing", "finance", {"amount": ""}, {("amount", not_null("amount_text"))},
            "amount is missing", "金额缺失"),
    one_bad("finance-fund-source-unknown", "finance", {"fund_source": "市级"}, {("fund_source", in_set("fund_source"))},
            "fund_source must be 省级/区级/镇街/自筹", "资金来源应为 省级/区级/镇街/自筹"),
    one_bad("finance-category-unknown", "finance", {"category": "招待费"}, {("category", in_set("category"))},
            "category is not one of the contract's values", "支出类别不在规定取值内"),
    one_bad("finance-pay-date-outside-period", "finance",
            {"pay_date": str(dt.date(2026, 3, 31) + dt.timedelta(days=FINANCE_AFTER_DAYS + 1))},
            {("pay_date", in_set("dates_in_period"))},
            "pay_date falls outside the submitted month (with tolerance)", "支付日期不在提交月份内(含容差)"),
    one_bad("finance-payee-missing", "finance", {"payee": ""}, {("payee", not_null("payee"))},
            "payee is missing", "收款单位缺失"),
    RowCase("finance-voucher-twice", "finance",
            ({}, {"voucher_no": "记-0999"}, {}, {"voucher_no": "记-0999"}),
            {1: frozenset({("voucher_no", unique("file_key", "voucher_no"))}),
             3: frozenset({("voucher_no", unique("file_key", "voucher_no"))})},
            "voucher_no repeats within the file", "同一文件中凭证号重复"),
    RowCase("finance-invoice-twice", "finance",
            ({}, {"invoice_no": "FP99999999"}, {"invoice_no": "FP99999999"}),
            {1: frozenset({("invoice_no", unique("file_key", "invoice_no"))}),
             2: frozenset({("invoice_no", unique("file_key", "invoice_no"))})},
            "invoice_no repeats within the file", "同一文件中发票号重复"),
    # 23: survey (quarterly: the 2026-03 folder holds the first quarter)
    one_bad("survey-rating-unknown", "survey", {"rating": "一般"}, {("rating", in_set("rating"))},
            "rating is not one of the five rating values", "评价不在 非常满意/满意/基本满意/不满意/非常不满意 之内"),
    one_bad("survey-respondent-unknown", "survey", {"respondent_type": "政府部门"},
            {("respondent_type", in_set("respondent_type"))}, "respondent_type must be 企业/劳动者", "调查对象应为 企业/劳动者"),
    one_bad("survey-date-before-quarter", "survey",
            {"survey_date": str(dt.date(2026, 1, 1) - dt.timedelta(days=TOLERANCE_DAYS + 1))},
            {("survey_date", in_set("dates_in_period"))},
            "survey_date falls outside the submitted quarter (with tolerance)", "调查日期不在提交季度内(含容差)"),
    # 24: outcomes (yearly, one row per file: the bad row is the whole file)
    one_bad("outcomes-skill-exceeds-low-income", "outcomes", {"low_income_households": "12", "households_with_skill": "13"},
            {("households_with_skill", a_ge_b("low_income_households", "households_with_skill"))},
            "households_with_skill exceeds low_income_households", "一户一技户数超过低收入农户数", period="2026-12", good=0),
    one_bad("outcomes-year-not-period", "outcomes", {"year": "2025"}, {("year", in_set("year_matches_period"))},
            "year differs from the submitted period's year", "年度与提交目录的年份不一致", period="2026-12", good=0),
    one_bad("outcomes-year-not-whole", "outcomes", {"year": "2026.5"}, {("year", not_null("year"))},
            "year is missing or not a whole number", "年度缺失或不是整数", period="2026-12", good=0),
    one_bad("outcomes-negative-trainees", "outcomes", {"trainees": "-3"}, {("trainees", between("trainees"))},
            "trainees cannot be negative", "培训人次不能为负", period="2026-12", good=0),
    one_bad("outcomes-gain-3-decimals", "outcomes", {"avg_income_gain": "1800.001"},
            {("avg_income_gain", regex("avg_income_gain_text"))},
            "avg_income_gain must be a non-negative number with at most 2 decimals", "人均增收须为非负数且最多两位小数",
            period="2026-12", good=0),
]


@pytest.mark.parametrize("case", ROW_CASES, ids=[c.id for c in ROW_CASES])
def test_bad_row_is_quarantined_with_its_reason(shared_run, case):
    b, rel = shared_run, shared_run.inputs[case.id]
    sub = b.sub(rel)
    n_bad = len(case.bad)
    assert (sub["status"], sub["rows_read"], sub["rows_staged"], sub["rows_quarantined"]) == (
        case.status, len(case.rows), len(case.rows) - n_bad, n_bad), sub["message"]
    expected = {(i + 2, column, expectation) for i, failures in case.bad.items() for column, expectation in failures}
    assert b.failures(rel) == expected
    for q in b.quarantined(rel).itertuples():
        assert case.reason_en in q.reason_en and case.reason_zh in q.reason_zh, (q.reason_en, q.reason_zh)
        assert (q.source_file, q.kind, q.site_code, q.period) == (rel, case.kind, rel.split("/")[1], case.period)
        if q.column_name == "id_number":
            assert_masked_id(q.value)
    good_rows = [i + 2 for i in range(len(case.rows)) if i not in case.bad]
    assert b.staged(case.kind, rel)["source_row"].tolist() == good_rows
    assert bool(sub["is_current"]) == (case.status not in ("rejected", "no_rows_accepted"))
    b.assert_lands(BYSTANDERS[case.kind], case.kind, 1 if case.kind == "outcomes" else 2)


def test_quarantine_shows_the_value_as_written(shared_run):
    b = shared_run
    q = b.quarantined(b.inputs["roster-hours-negative"])
    assert q[["source_row", "column_name", "value"]].values.tolist() == [[3, "hours", "-8"]]
    q = b.quarantined(b.inputs["finance-amount-3-decimals"])
    assert q[["source_row", "column_name", "value"]].values.tolist() == [[3, "amount", "1200.125"]]


def test_shared_inbox_loses_nothing_and_other_sites_land(shared_run):
    b = shared_run
    for kind, rel in BYSTANDERS.items():
        b.assert_lands(rel, kind, 1 if kind == "outcomes" else 2)
    assert len(b.tables["submissions"]) > 80
    b.assert_nothing_lost()


def test_no_clear_id_number_or_name_in_any_table(shared_run):
    """9: no ID number or name of any roster row written (accepted or not) is stored in clear."""
    b = shared_run
    texts = shared_texts(b)
    needles = {v for name, id_number in b.people
               for v in (name.strip(), name.strip()[1:], id_number.strip(), id_number.strip().upper()) if len(v) >= 2}
    assert len(b.people) > 100 and len(texts) > 1000
    assert [(t, c, v) for t, c, v in texts if any(n in v for n in needles)] == []


@shared_input
def checksum_masking(b: Box) -> dict[str, str]:
    good_name, good_id = fresh_person("19930303")
    bad_id, x_id = wrong_check(make_id("19910709", 123)), id_with_x("19890909")
    site = b.site("roster")
    rel = b.csv(f"{PERIOD}/{site}/roster.csv", "roster",
                [roster_row(site, name=good_name, id_number=good_id), roster_row(site, name="司马相如", id_number=bad_id),
                 roster_row(site, name="", id_number=x_id.lower())])
    return {"rel": rel, "bad_id": bad_id}


def test_invalid_checksum_is_masked_in_quarantine(shared_run):
    """9: the quarantine shows 330110********123X-style values, a missing name shows nothing."""
    b, got = shared_run, shared_run.inputs["checksum_masking"]
    q = b.quarantined(got["rel"]).set_index(["source_row", "column_name"])
    assert sorted(q.index) == [(3, "id_number"), (4, "name")]
    assert q.loc[(3, "id_number"), "value"] == f"330110********{got['bad_id'][-4:]}"
    assert q.loc[(3, "id_number"), "reason_en"] == "id_number check character is wrong (GB 11643-1999)"
    assert pd.isna(q.loc[(4, "name"), "value"])
    assert b.staged("roster", got["rel"])["source_row"].tolist() == [2]
    texts = shared_texts(b)
    for needle in ("司马相如", "马相如", got["bad_id"]):
        assert [(t, c, v) for t, c, v in texts if needle in v] == [], needle


# Working-age boundaries (14, 15): (birth date, sex, class start) -> accepted. Retirement under the
# NPC Standing Committee decision of 2024-09-13: men born 1965-12 retire at 60y3m, women (base 55)
# born 1970-12 at 55y3m and born 1971-01 at 55y4m; on the retirement day itself a person is out.
# Intake accepts a start within the policy's working_age_grace_days of a limit (the
# outside_working_age integrity check reports those rows); one day further is quarantined.
GRACE = dt.timedelta(days=PLAN.policy.intake.working_age_grace_days)
DAY = dt.timedelta(days=1)


def _age_case(label: str, birth: str, sex: str, start: dt.date, accepted: bool) -> tuple[str, str, str, str, bool]:
    return label, birth, sex, start.isoformat(), accepted


AGE_CASES = [
    _age_case("man-born-1964-06-class-2026-03", "19640615", "M", dt.date(2026, 3, 2), False),
    _age_case("man-born-1965-12-retirement-day", "19651210", "M", dt.date(2026, 3, 10), True),
    _age_case("man-born-1965-12-last-day-of-grace", "19651210", "M", dt.date(2026, 3, 10) + GRACE - DAY, True),
    _age_case("man-born-1965-12-after-grace", "19651210", "M", dt.date(2026, 3, 10) + GRACE, False),
    _age_case("woman-born-1971-01-class-2026-03", "19710115", "F", dt.date(2026, 3, 2), True),
    _age_case("woman-born-1970-12-last-day-of-grace", "19701210", "F", dt.date(2026, 3, 10) + GRACE - DAY, True),
    _age_case("woman-born-1970-12-after-grace", "19701210", "F", dt.date(2026, 3, 10) + GRACE, False),
    _age_case("16th-birthday-on-start", "20100302", "M", dt.date(2026, 3, 2), True),
    _age_case("16th-birthday-at-end-of-grace", (dt.date(2026, 3, 2) + GRACE).strftime("%Y%m%d").replace("2026", "2010", 1),
              "F", dt.date(2026, 3, 2), True),
    _age_case("16th-birthday-after-grace", (dt.date(2026, 3, 2) + GRACE + DAY).strftime("%Y%m%d").replace("2026", "2010", 1),
              "F", dt.date(2026, 3, 2), False),
    # the 55y4m retirement of a woman born 1971-01, in the period it falls in
    _age_case("woman-born-1971-01-last-day-of-grace", "19710115", "F", dt.date(2026, 5, 15) + GRACE - DAY, True),
    _age_case("woman-born-1971-01-after-grace", "19710115", "F", dt.date(2026, 5, 15) + GRACE, False),
]


@shared_input
def working_age(b: Box) -> dict[str, tuple[str, int]]:
    """One file per period, one row per case: label -> (file, row)."""
    where = {}
    for period in sorted({c[3][:7] for c in AGE_CASES}):
        cases = [c for c in AGE_CASES if c[3].startswith(period)]
        rel = f"{period}/{b.site('roster', period)}/roster.csv"
        b.csv(rel, "roster", [roster_row(rel.split("/")[1], id_number=make_id(birth, 300 + 2 * i + (sex == "M")),
                                         start_date=start, end_date=start)
                              for i, (_, birth, sex, start, _) in enumerate(cases)])
        where.update({c[0]: (rel, i + 2) for i, c in enumerate(cases)})
    return where


@pytest.mark.parametrize("label,birth,sex,start,accepted", AGE_CASES, ids=[c[0] for c in AGE_CASES])
def test_working_age_boundaries(shared_run, label, birth, sex, start, accepted):
    b = shared_run
    rel, row = b.inputs["working_age"][label]
    staged = b.staged("roster", rel).set_index("source_row")
    born, starts = dt.datetime.strptime(birth, "%Y%m%d").date(), dt.date.fromisoformat(start)
    if accepted:
        assert row in staged.index, b.quarantined(rel).to_dict("records")
        got = staged.loc[row]
        assert (as_date(got["birth_date"]), got["sex"], as_date(got["start_date"])) == (born, sex, starts)
        assert int(got["age_on_start"]) == starts.year - born.year - ((starts.month, starts.day) < (born.month, born.day))
    else:
        assert row not in staged.index
        q = b.quarantined(rel)
        mine = q[q["source_row"] == row]
        assert mine[["column_name", "expectation"]].values.tolist() == [["id_number", in_set("in_working_age")]]
        assert AGE_REASON[0] == mine["reason_en"].iloc[0] and AGE_REASON[1] in mine["reason_zh"].iloc[0]


@shared_input
def period_tolerance(b: Box) -> str:
    site = b.site("roster")
    return b.csv(f"{PERIOD}/{site}/roster.csv", "roster", [
        roster_row(site, start_date=str(EARLIEST), end_date=str(LATEST)),
        roster_row(site, start_date=str(EARLIEST - dt.timedelta(days=1))),
        roster_row(site, end_date=str(LATEST + dt.timedelta(days=1))),
    ])


def test_boundaries_of_the_period_tolerance(shared_run):
    """17: a class may start ``period_tolerance_days`` before the month and end as many days after it."""
    b, rel = shared_run, shared_run.inputs["period_tolerance"]
    assert b.staged("roster", rel)["source_row"].tolist() == [2]
    q = b.quarantined(rel)
    assert sorted(q["source_row"]) == [3, 4]
    assert q.loc[q["source_row"] == 3, ["column_name", "expectation", "value"]].values.tolist() == [
        ["start_date", in_set("start_in_period"), str(EARLIEST - dt.timedelta(days=1))]]
    assert q.loc[q["source_row"] == 4, ["column_name", "expectation"]].values.tolist() == [
        ["end_date", in_set("end_in_period")]]
    assert (q.loc[q["source_row"] == 3, "reason_en"] == PERIOD_REASON[0]).all()
    assert q.loc[q["source_row"] == 3, "reason_zh"].str.startswith(PERIOD_REASON[1]).all()


@shared_input
def end_date_too_late(b: Box) -> str:
    site = b.site("roster")
    return b.csv(f"{PERIOD}/{site}/roster.csv", "roster",
                 [roster_row(site), roster_row(site, end_date=str(LATEST + dt.timedelta(days=1))), roster_row(site)])


def test_end_date_outside_the_period_points_at_end_date(shared_run):
    """17: the end date is what is wrong, so the quarantine names end_date and shows its value."""
    b, rel = shared_run, shared_run.inputs["end_date_too_late"]
    assert b.staged("roster", rel)["source_row"].tolist() == [2, 4]
    q = b.quarantined(rel)
    assert q["reason_en"].str.contains("outside the submitted month").all()
    assert q[["source_row", "column_name", "value"]].values.tolist() == [[3, "end_date", str(LATEST + dt.timedelta(days=1))]]


# ========================================================================= whole files refused

PLACE_CASES = [  # (id, relative path, reason_en, reason_zh)
    ("unknown-site-folder", "2026-03/X99/roster.csv", "site folder 'X99' is not a registered site code",
     "站点目录不是已登记的站点编码"),
    ("unregistered-site-code", "2026-03/V53/roster.csv", "site folder 'V53' is not a registered site code",
     "站点目录不是已登记的站点编码"),
    ("period-without-leading-zero", "2026-3/S02/roster.csv", "period folder '2026-3' is not YYYY-MM",
     "期间目录不是 YYYY-MM 格式"),
    ("period-month-13", "2026-13/S02/roster.csv", "period folder '2026-13' is not YYYY-MM", "期间目录不是 YYYY-MM 格式"),
    ("unknown-kind", "2026-03/S02/payroll.csv", "file name 'payroll.csv' does not start with a submission kind",
     "文件名不是 roster/finance/survey/outcomes 之一"),
    ("txt-file", "2026-03/S02/roster.txt", "file type '.txt' is not one of ['.csv', '.xlsx']", "文件类型不是 csv 或 xlsx"),
    ("at-inbox-root", "roster.csv", "file is not at <YYYY-MM>/<site code>/<kind>.<csv|xlsx>",
     "文件位置不符合 <年-月>/<站点编码>/<类型>.<csv|xlsx> 的约定"),
    ("one-folder-too-deep", "2026-03/S02/old/roster.csv", "file is not at <YYYY-MM>/<site code>/<kind>.<csv|xlsx>",
     "文件位置不符合 <年-月>/<站点编码>/<类型>.<csv|xlsx> 的约定"),
]
UNREADABLE_CASES = [  # (id, relative path, bytes, expectation, reason_en, reason_zh)
    ("random-bytes-xlsx", f"{PERIOD}/B01/roster.xlsx", bytes(range(256)) * 8, "file_readable",
     "cannot open as an Excel workbook", "无法作为 Excel 工作簿打开"),
    ("undecodable-csv", f"{PERIOD}/B02/roster.csv", b"\xff\xfe\xfa" + "站点编码,姓名\r\n".encode("utf-16-le"),
     "file_encoding", "cannot decode as any of utf-8-sig, gb18030", "无法识别文件编码"),
    ("empty-csv", f"{PERIOD}/S05/finance.csv", b"", "header_found", "no header row found in the first 15 rows",
     "前 15 行中未找到表头"),
]
SITE_MISMATCH_FILE = f"{PERIOD}/S03/roster.csv"
MISSING_COLUMN_FILE = f"{PERIOD}/S06/roster.csv"
NO_HEADER_FILE = f"{PERIOD}/S07/roster.csv"
DUPLICATE_HEADER_FILE = f"{PERIOD}/S08/survey.csv"
IGNORED_FILES = [f"{PERIOD}/S09/.~lock.roster.csv#", f"{PERIOD}/S09/~$roster.xlsx", ".DS_Store", f"{PERIOD}/.hidden/roster.csv"]
FIXED_FILES = [*BYSTANDERS.values(), *(c[1] for c in PLACE_CASES), *(c[1] for c in UNREADABLE_CASES),
               SITE_MISMATCH_FILE, MISSING_COLUMN_FILE, NO_HEADER_FILE, DUPLICATE_HEADER_FILE]


def _write_fixed_files(b: Box) -> None:
    for kind in KINDS:
        b.bystander(kind)
    for _, rel, _, _ in PLACE_CASES:  # good content, wrong place
        b.csv(rel, "roster", [roster_row("S02"), roster_row("S02")])
    # 25: one row names another site, one the right site in lower case
    b.csv(SITE_MISMATCH_FILE, "roster", [roster_row("S03"), roster_row("S13"), roster_row("s03")])
    for _, rel, data, *_ in UNREADABLE_CASES:
        b.raw(rel, data)
    b.csv(MISSING_COLUMN_FILE, "roster", [roster_row("S06")], drop=("hours",))
    b.csv(NO_HEADER_FILE, "roster", [roster_row("S07")], headers={c: f"列{i}" for i, c in enumerate(KINDS["roster"].columns)})
    b.csv(DUPLICATE_HEADER_FILE, "survey", [survey_row("S08")], headers={"rating": "调查日期"})
    for rel in IGNORED_FILES:
        write_bytes(b.path(rel), b"not a submission")


def assert_refused(b: Box, rel: str, expectation: str, reason_en: str, reason_zh: str) -> None:
    """The whole file is refused: recorded, archived, not current, one reason naming the file."""
    sub = b.sub(rel)
    assert (sub["status"], sub["rows_read"], sub["rows_staged"], bool(sub["is_current"])) == ("rejected", 0, 0, False)
    q = b.quarantined(rel)
    assert len(q) == 1 and pd.isna(q.loc[0, "source_row"]) and pd.isna(q.loc[0, "column_name"]), q.to_dict("records")
    assert q.loc[0, "expectation"] == expectation
    assert q.loc[0, "reason_en"].startswith(f"{rel}: {reason_en}"), q.loc[0, "reason_en"]
    assert q.loc[0, "reason_zh"].startswith(f"{rel}: {reason_zh}"), q.loc[0, "reason_zh"]
    assert sub["message"] == q.loc[0, "reason_en"]
    assert Path(sub["archive_path"]).read_bytes() == b.path(rel).read_bytes()


@pytest.mark.parametrize("label,rel,reason_en,reason_zh", PLACE_CASES, ids=[c[0] for c in PLACE_CASES])
def test_file_at_a_wrong_place_is_recorded_as_rejected(shared_run, label, rel, reason_en, reason_zh):
    """29: a file outside the layout is archived and recorded as rejected with the reason, not read."""
    assert_refused(shared_run, rel, "file_location", reason_en, reason_zh)
    shared_run.assert_lands(BYSTANDERS["roster"], "roster", 2)


@pytest.mark.parametrize("label,rel,data,expectation,reason_en,reason_zh", UNREADABLE_CASES,
                         ids=[c[0] for c in UNREADABLE_CASES])
def test_unreadable_file_is_rejected_naming_it(shared_run, label, rel, data, expectation, reason_en, reason_zh):
    """26: the message names the file; other sites' files of the same kind still land."""
    assert_refused(shared_run, rel, expectation, reason_en, reason_zh)
    kind = rel.rsplit("/", 1)[1].split(".")[0]
    shared_run.assert_lands(BYSTANDERS[kind], kind, 2)


def test_missing_required_column_is_named_in_english_and_chinese(shared_run):
    """27."""
    assert_refused(shared_run, MISSING_COLUMN_FILE, "required_columns_present",
                   "required columns missing from the header (row 1): hours (课时)", "表头(第 1 行)缺少必填列: hours (课时)")


def test_file_without_a_recognisable_header_is_rejected(shared_run):
    """28."""
    assert_refused(shared_run, NO_HEADER_FILE, "header_found",
                   "no header row found in the first 15 rows (need at least 3 known column names)",
                   "前 15 行中未找到表头(至少需要 3 个可识别的列名)")


def test_column_given_twice_in_the_header_is_rejected(shared_run):
    assert_refused(shared_run, DUPLICATE_HEADER_FILE, "header_unique",
                   "column 'survey_date' appears twice in the header (row 1)", "表头(第 1 行)中列 survey_date 重复出现")


def test_site_code_of_another_site_rejects_the_whole_file(shared_run):
    """25: one row naming another site makes every row of the file untrustworthy."""
    b, rel = shared_run, SITE_MISMATCH_FILE
    sub = b.sub(rel)
    assert (sub["status"], sub["rows_read"], sub["rows_staged"], sub["rows_quarantined"]) == ("rejected", 3, 0, 3)
    assert not sub["is_current"]
    assert sub["message"] == f"{rel}: site_code column differs from site folder S03; file rejected"
    assert b.failures(rel) == {
        (2, "site_code", "site_code_matches_folder"),
        (3, "site_code", in_set("site_code_matches_folder")),
        (4, "site_code", "site_code_matches_folder"),  # "s03": the right site in lower case
    }
    q = b.quarantined(rel).set_index("source_row")
    assert q.loc[3, "value"] == "S13"
    assert (q.loc[3, "reason_en"], q.loc[3, "reason_zh"]) == (
        "site_code differs from the site folder the file was submitted in", "站点编码与提交目录的站点不一致")
    assert q.loc[2, "reason_zh"] == "文件中其他行的站点编码与提交目录不一致,整份文件退回"
    assert q.loc[4, "reason_en"] == "other rows of this file name another site than its folder; the whole file is rejected"
    assert b.staged("roster", rel).empty
    b.assert_lands(BYSTANDERS["roster"], "roster", 2)


def test_hidden_and_lock_files_are_not_submissions(shared_run):
    names = set(shared_run.tables["submissions"]["original_name"])
    assert not names & set(IGNORED_FILES)
    assert {rel for _, rel, *_ in PLACE_CASES} <= names


# ========================================================================= accepted formats


@shared_input
def gbk_csv(b: Box) -> str:
    rel = f"{PERIOD}/{b.site('roster')}/roster.csv"
    site = rel.split("/")[1]
    return b.csv(rel, "roster", [roster_row(site), roster_row(site, level="中级工", industry="“一老一小”")], encoding="gbk")


def test_gbk_csv_with_chinese_headers(shared_run):
    """1: GBK bytes, Chinese headers and Chinese values."""
    b, rel = shared_run, shared_run.inputs["gbk_csv"]
    data = b.path(rel).read_bytes()
    assert data.decode("gbk").startswith("站点编码,")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    b.assert_lands(rel, "roster", 2)
    assert b.sub(rel)["encoding"] == "gb18030"
    stg = b.staged("roster", rel)
    assert stg["course"].tolist() == ["电工技能培训"] * 2
    assert stg["level"].tolist() == ["primary", "intermediate"]
    assert stg["industry"].tolist() == ["advanced_manufacturing", "elderly_childcare"]
    assert stg["person_group"].tolist() == ["rural_migrant"] * 2


@shared_input
def bom_csv(b: Box) -> dict[str, str]:
    out = {}
    for headers in ("zh", "en"):
        site = b.site("finance")
        out[headers] = b.csv(f"{PERIOD}/{site}/finance.csv", "finance", [finance_row(site), finance_row(site)],
                             encoding="utf-8-sig", headers=headers)
    return out


@pytest.mark.parametrize("headers", ["zh", "en"])
def test_utf8_bom_csv(shared_run, headers):
    """2: the BOM must not spoil the first header (site_code)."""
    b, rel = shared_run, shared_run.inputs["bom_csv"][headers]
    assert b.path(rel).read_bytes().startswith(b"\xef\xbb\xbf" + ("站点编码" if headers == "zh" else "site_code").encode())
    b.assert_lands(rel, "finance", 2)
    assert b.sub(rel)["encoding"] == "utf-8-bom"
    assert b.staged("finance", rel)["amount_fen"].tolist() == [120000, 120000]


@shared_input
def xlsx_title_rows(b: Box) -> str:
    site = b.site("roster")
    return b.xlsx(f"{PERIOD}/{site}/roster.xlsx", "roster",
                  [roster_row(site), BLANK, roster_row(site, hours="-1"), roster_row(site)],
                  preamble=[["余杭区技能培训站点培训花名册(2026年3月)"], BLANK])


def test_xlsx_with_title_row_and_blank_row_above_the_header(shared_run):
    """3: source_row counts the title, the blank row above the header and blank rows between data rows."""
    b, rel = shared_run, shared_run.inputs["xlsx_title_rows"]
    sub = b.sub(rel)
    assert (sub["status"], sub["encoding"], sub["header_row"]) == ("partially_accepted", "xlsx", 3)
    assert (sub["rows_read"], sub["rows_staged"], sub["rows_quarantined"]) == (3, 2, 1)
    assert b.staged("roster", rel)["source_row"].tolist() == [4, 7]
    assert b.failures(rel) == {(6, "hours", between("hours"))}
    assert b.quarantined(rel).loc[0, "value"] == "-1"


@shared_input
def xlsx_typed_cells(b: Box) -> dict[str, str]:
    name, id_number = fresh_person("19880808")
    site = b.site("roster")
    r_rel = b.xlsx(f"{PERIOD}/{site}/roster.xlsx", "roster", [
        roster_row(site, start_date=dt.date(2026, 3, 2), end_date=dt.datetime(2026, 3, 20), hours=40),
        roster_row(site, start_date=excel_serial(dt.date(2026, 3, 5)), end_date=float(excel_serial(dt.date(2026, 3, 6))),
                   hours=12.5, name=name, id_number=id_number),
    ])
    site = b.site("finance")
    f_rel = b.xlsx(f"{PERIOD}/{site}/finance.xlsx", "finance", [
        finance_row(site, pay_date=dt.datetime(2026, 3, 10), amount=1234.5),
        finance_row(site, pay_date=excel_serial(dt.date(2026, 3, 11)), amount=800),
    ])
    return {"roster": r_rel, "finance": f_rel, "id_number": id_number}


def test_xlsx_with_typed_cells(shared_run):
    """4: date cells, Excel serial day numbers, numeric hours and amounts, the ID typed as text."""
    b, got = shared_run, shared_run.inputs["xlsx_typed_cells"]
    b.assert_lands(got["roster"], "roster", 2)
    b.assert_lands(got["finance"], "finance", 2)
    stg = b.staged("roster", got["roster"])
    assert [as_date(d) for d in stg["start_date"]] == [dt.date(2026, 3, 2), dt.date(2026, 3, 5)]
    assert [as_date(d) for d in stg["end_date"]] == [dt.date(2026, 3, 20), dt.date(2026, 3, 6)]
    assert [float(h) for h in stg["hours"]] == [40.0, 12.5]
    assert as_date(stg.loc[1, "birth_date"]) == dt.date(1988, 8, 8)
    fin = b.staged("finance", got["finance"])
    assert fin["amount_fen"].tolist() == [123450, 80000]
    assert [as_date(d) for d in fin["pay_date"]] == [dt.date(2026, 3, 10), dt.date(2026, 3, 11)]


@shared_input
def english_headers(b: Box) -> dict[str, str]:
    odd = {"site_code": "Site_Code", "start_date": " START_DATE ", "id_number": "Id_Number"}
    site = b.site("roster")
    r_rel = b.csv(f"{PERIOD}/{site}/roster.csv", "roster", [roster_row(site), roster_row(site)],
                  headers={c: odd.get(c, c) for c in KINDS["roster"].columns})
    site = b.site("survey")
    s_rel = b.csv(f"{PERIOD}/{site}/survey.csv", "survey", [survey_row(site), survey_row(site, rating="非常满意")],
                  headers="en")
    return {"roster": r_rel, "survey": s_rel}


def test_english_canonical_headers_in_any_case_and_spacing(shared_run):
    """5."""
    b, got = shared_run, shared_run.inputs["english_headers"]
    b.assert_lands(got["roster"], "roster", 2)
    b.assert_lands(got["survey"], "survey", 2)
    assert b.staged("survey", got["survey"])["rating"].tolist() == ["satisfied", "very_satisfied"]


@shared_input
def full_width(b: Box) -> dict[str, str]:
    fw = str.maketrans("0123456789-.,", "０１２３４５６７８９－．，")
    name, id_number = fresh_person("19920202")
    site = b.site("roster")
    r_rel = b.csv(f"{PERIOD}/{site}/roster.csv", "roster", [roster_row(
        site, hours="\u3000" + "40".translate(fw) + "\u3000", start_date="2026-03-02".translate(fw),
        end_date="2026年3月20日".translate(fw), level="\u3000初级 ", name=f"\u3000{name}", id_number=id_number.translate(fw))],
        headers={"occupation": "职业（工种）", "site_code": "站点编码\u3000"})
    site = b.site("finance")
    f_rel = b.csv(f"{PERIOD}/{site}/finance.csv", "finance", [finance_row(
        site, amount="1,234.50".translate(fw) + "元", pay_date=" 2026/3/10 ".translate(fw))], headers={"amount": "金额（元）"})
    site = b.site("outcomes", "2026-12")
    o_rel = b.csv(f"2026-12/{site}/outcomes.csv", "outcomes", [outcomes_row(
        site, year="2026".translate(fw), low_income_households="２０", households_with_skill="１５",
        avg_income_gain="1,800".translate(fw))])
    return {"roster": r_rel, "finance": f_rel, "outcomes": o_rel, "name": name, "id_number": id_number}


def test_full_width_digits_and_spaces_are_read(shared_run):
    """6: what a Chinese input method types: full-width digits, punctuation, spaces and brackets."""
    b, got = shared_run, shared_run.inputs["full_width"]
    b.assert_lands(got["roster"], "roster", 1)
    b.assert_lands(got["finance"], "finance", 1)
    b.assert_lands(got["outcomes"], "outcomes", 1)
    stg = b.staged("roster", got["roster"]).iloc[0]
    assert (float(stg["hours"]), as_date(stg["start_date"]), as_date(stg["end_date"]), stg["level"]) == (
        40.0, dt.date(2026, 3, 2), dt.date(2026, 3, 20), "primary")
    id_number, key = got["id_number"], b.settings.pii_key.encode()
    assert stg["person_key"] == hmac.new(key, id_number.encode(), hashlib.sha256).hexdigest()
    assert stg["name_key"] == hmac.new(key, got["name"].encode(), hashlib.sha256).hexdigest()
    fin = b.staged("finance", got["finance"]).iloc[0]
    assert (int(fin["amount_fen"]), as_date(fin["pay_date"])) == (123450, dt.date(2026, 3, 10))
    out = b.staged("outcomes", got["outcomes"]).iloc[0]
    assert (int(out["year"]), int(out["low_income_households"]), int(out["households_with_skill"]),
            int(out["avg_income_gain_fen"])) == (2026, 20, 15, 180000)


DATE_SPELLINGS = ["2026-03-05", "2026/3/5", "2026年3月5日", "2026年03月05日", "2026.3.5", "20260305",
                  "2026-03-05 00:00:00", "2026/03/05", "2026-3-5"]


@shared_input
def date_spellings(b: Box) -> str:
    site = b.site("roster")
    return b.csv(f"{PERIOD}/{site}/roster.csv", "roster", [roster_row(site, start_date=s, end_date=s) for s in DATE_SPELLINGS])


def test_date_spellings_are_read(shared_run):
    """7: every unambiguous spelling of 5 March 2026 is that day."""
    b, rel = shared_run, shared_run.inputs["date_spellings"]
    b.assert_lands(rel, "roster", len(DATE_SPELLINGS))
    stg = b.staged("roster", rel)
    assert [as_date(d) for d in stg["start_date"]] == [dt.date(2026, 3, 5)] * len(DATE_SPELLINGS)
    assert [as_date(d) for d in stg["end_date"]] == [dt.date(2026, 3, 5)] * len(DATE_SPELLINGS)


@shared_input
def lowercase_x(b: Box) -> dict[str, str]:
    id_number = id_with_x("19870707")
    site = b.site("roster")
    return {"rel": b.csv(f"{PERIOD}/{site}/roster.csv", "roster", [roster_row(site, id_number=id_number.lower())]),
            "id_number": id_number}


def test_lowercase_x_is_accepted_as_upper_case(shared_run):
    """13: the same person whatever the case of X."""
    b, got = shared_run, shared_run.inputs["lowercase_x"]
    b.assert_lands(got["rel"], "roster", 1)
    stg = b.staged("roster", got["rel"]).iloc[0]
    id_number = got["id_number"]
    assert stg["person_key"] == hmac.new(b.settings.pii_key.encode(), id_number.encode(), hashlib.sha256).hexdigest()
    assert (as_date(stg["birth_date"]), stg["sex"]) == (dt.date(1987, 7, 7), "M" if int(id_number[16]) % 2 else "F")


@shared_input
def extra_columns(b: Box) -> str:
    site = b.site("roster")
    rows = [dict(roster_row(site, class_id="PX2026-031 ", level="初级 ", group=" 退役军人", assessed="是 ", passed=" 合格"),
                 序号="1", 备注2="补录"),
            dict(roster_row(site, class_id=" PX2026-031", course="电工技能培训  "), 序号="2", 备注2="")]
    return b.csv(f"{PERIOD}/{site}/roster.csv", "roster", rows,
                 headers={"course": "培训项目 ", "hours": " 课时", "passed": "考核结果  "})


def test_extra_columns_and_trailing_spaces_are_tolerated(shared_run):
    """30: unknown columns are ignored (and the manifest says which); values are trimmed before they are judged."""
    b, rel = shared_run, shared_run.inputs["extra_columns"]
    b.assert_lands(rel, "roster", 2)
    assert b.sub(rel)["message"] == "ignored columns not in the contract: 序号, 备注2"
    stg = b.staged("roster", rel)
    assert stg["class_id"].tolist() == ["PX2026-031"] * 2
    assert stg["course"].tolist() == ["电工技能培训"] * 2
    assert (stg.loc[0, "level"], stg.loc[0, "person_group"], bool(stg.loc[0, "passed"])) == ("primary", "veteran", True)


@shared_input
def blank_lines(b: Box) -> str:
    site = b.site("roster")
    rows = [BLANK, roster_row(site), BLANK, {c: "" for c in KINDS["roster"].columns}, roster_row(site, hours="0"),
            roster_row(site), BLANK, BLANK]
    return b.csv(f"{PERIOD}/{site}/roster.csv", "roster", rows, preamble=[["培训花名册"], BLANK])


def test_blank_lines_in_csv_are_not_rows(shared_run):
    """31: blank and comma-only lines are layout, not rows; row numbers still count them."""
    b, rel = shared_run, shared_run.inputs["blank_lines"]
    sub = b.sub(rel)
    assert (sub["header_row"], sub["rows_read"], sub["rows_staged"], sub["rows_quarantined"]) == (3, 3, 2, 1)
    assert b.staged("roster", rel)["source_row"].tolist() == [5, 9]
    assert b.failures(rel) == {(8, "hours", between("hours"))}


@shared_input
def header_depth(b: Box) -> dict[int, str]:
    out = {}
    for header_row in (15, 16):
        site = b.site("roster")
        preamble = [["余杭区技能培训站点培训花名册"]] + [[f"填表说明第{i}条"] for i in range(header_row - 2)]
        out[header_row] = b.xlsx(f"{PERIOD}/{site}/roster.xlsx", "roster", [roster_row(site)], preamble=preamble)
    return out


@pytest.mark.parametrize("header_row,found", [(15, True), (16, False)])
def test_header_is_searched_in_the_first_rows_only(shared_run, header_row, found):
    """28: the header may sit below title and note rows, up to ``header_search_rows``."""
    assert CONTRACT.inbox.header_search_rows == 15
    b, rel = shared_run, shared_run.inputs["header_depth"][header_row]
    sub = b.sub(rel)
    if found:
        assert (sub["status"], sub["header_row"]) == ("accepted", header_row)
        assert b.staged("roster", rel)["source_row"].tolist() == [header_row + 1]
    else:
        assert_refused(b, rel, "header_found", "no header row found in the first 15 rows", "前 15 行中未找到表头")


# ========================================================================= versions, idempotency, archive


def _assert_archived(b: Box, rel: str) -> None:
    sub = b.sub(rel)
    data = b.path(rel).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    archived = Path(sub["archive_path"])
    assert sub["sha256"] == sha and sub["size_bytes"] == len(data)
    assert archived.name == f"{sha}{Path(rel).suffix.lower()}" and archived.is_relative_to(b.settings.archive_dir)
    assert archived.read_bytes() == data
    assert stat.S_IMODE(archived.stat().st_mode) & 0o222 == 0, oct(archived.stat().st_mode)


T1 = dt.datetime(2026, 4, 8, 9, 0).timestamp()
RESUBMISSIONS = {"names-in-order": ("roster.csv", "roster_v2.csv"), "mtime-beats-name": ("roster_resend.csv", "roster_again.csv")}


@shared_input
def resubmissions(b: Box) -> dict[str, tuple[str, str]]:
    out = {}
    for label, (first, second) in RESUBMISSIONS.items():
        site = b.site("roster")
        v1 = b.csv(f"{PERIOD}/{site}/{first}", "roster", [roster_row(site) for _ in range(3)], mtime=T1)
        v2 = b.csv(f"{PERIOD}/{site}/{second}", "roster", [roster_row(site, class_id="PX2026-099") for _ in range(2)],
                   mtime=T1 + 86400)
        out[label] = (v1, v2)
    return out


@pytest.mark.parametrize("label", RESUBMISSIONS)
def test_resubmission_supersedes_in_staging_and_keeps_both(shared_run, label):
    """33: the later file (modification time, not name) is current; both stay in the manifest and the archive."""
    b = shared_run
    v1, v2 = b.inputs["resubmissions"][label]
    s1, s2 = b.sub(v1), b.sub(v2)
    assert (s1["version"], bool(s1["is_current"]), s1["status"]) == (1, False, "accepted")
    assert (s2["version"], bool(s2["is_current"]), s2["status"]) == (2, True, "accepted")
    assert s2["received_at"] > s1["received_at"]
    stg = b.staged("roster")
    mine = stg[(stg["site_code"] == v1.split("/")[1]) & (stg["period"] == PERIOD)]
    assert set(mine["submission_id"]) == {s2["submission_id"]}
    assert mine["class_id"].tolist() == ["PX2026-099"] * 2
    _assert_archived(b, v1)
    _assert_archived(b, v2)


@shared_input
def rejected_resubmission(b: Box) -> tuple[str, str]:
    site = b.site("roster")
    v1 = b.csv(f"{PERIOD}/{site}/roster.csv", "roster", [roster_row(site), roster_row(site)], mtime=T1)
    v2 = b.csv(f"{PERIOD}/{site}/roster_v2.csv", "roster", [roster_row(site)], drop=("id_number",), mtime=T1 + 86400)
    return v1, v2


def _assert_v1_stays_current(b: Box, v1: str, v2: str) -> None:
    s1, s2 = b.sub(v1), b.sub(v2)
    assert (s1["version"], bool(s1["is_current"]), s1["status"]) == (1, True, "accepted")
    assert (s2["version"], bool(s2["is_current"]), s2["status"]) == (2, False, "rejected")
    assert s2["message"].startswith(f"{v2}: required columns missing") and "id_number (身份证号)" in s2["message"]
    assert b.staged("roster", v1)["source_row"].tolist() == [2, 3]
    stg = b.staged("roster")
    assert set(stg.loc[stg["site_code"] == v1.split("/")[1], "submission_id"]) == {s1["submission_id"]}


def test_rejected_resubmission_leaves_the_earlier_version_current(shared_run):
    """34: a refused v2 does not wipe v1's data; it is version 2, rejected, and says why."""
    _assert_v1_stays_current(shared_run, *shared_run.inputs["rejected_resubmission"])


def test_rejected_resubmission_in_a_later_run(box):
    """34, when v1 was already published in an earlier run."""
    v1 = box.csv(f"{PERIOD}/S04/roster.csv", "roster", [roster_row(), roster_row()], mtime=T1)
    box.run()
    assert bool(box.sub(v1)["is_current"]) and len(box.staged("roster", v1)) == 2
    v2 = box.csv(f"{PERIOD}/S04/roster_v2.csv", "roster", [roster_row()], drop=("id_number",), mtime=T1 + 86400)
    box.run()
    _assert_v1_stays_current(box, v1, v2)
    box.assert_nothing_lost()


def test_ingesting_the_same_inbox_twice_changes_nothing(box):
    """32: every intake table and the archive are identical after a second run (which skips every file)."""
    box.csv(f"{PERIOD}/S04/roster.csv", "roster", [roster_row(), roster_row(hours="0")], mtime=T1)
    box.csv(f"{PERIOD}/S04/roster_v2.csv", "roster", [roster_row(), roster_row()], mtime=T1 + 3600)
    box.xlsx(f"{PERIOD}/S04/finance.xlsx", "finance", [finance_row(), finance_row(amount="1.001")], mtime=T1)
    box.csv(f"{PERIOD}/S05/roster.csv", "roster", [roster_row("S07")], mtime=T1)
    box.raw(f"{PERIOD}/S05/notes.txt", "备注".encode(), mtime=T1)
    box.raw(f"{PERIOD}/S06/roster.xlsx", b"PK\x03\x04 broken", mtime=T1)
    first = box.run()
    before = {name: frame.copy() for name, frame in box.tables.items()}

    def archive_listing() -> list[tuple[Path, int]]:
        return sorted((p.relative_to(box.settings.archive_dir), p.stat().st_mtime_ns)
                      for p in box.settings.archive_dir.rglob("*") if p.is_file())

    archive_before = archive_listing()
    assert len(first) == 6 and not any(r["skipped"] for r in first)
    assert {r["status"] for r in first} == {"accepted", "partially_accepted", "rejected"}
    assert len(archive_before) == 6

    second = box.run(new_intake=True)
    assert [r["skipped"] for r in second] == [True] * 6
    assert [(r["file"], r["status"]) for r in second] == [(r["file"], r["status"]) for r in first]
    for name in INTAKE_TABLES:
        pd.testing.assert_frame_equal(box.tables[name], before[name], obj=name)
    assert archive_listing() == archive_before
    box.assert_nothing_lost()


@shared_input
def same_bytes_twice(b: Box) -> tuple[str, str]:
    site = b.site("roster")
    rows = [roster_row(site), roster_row(site)]
    first = b.csv(f"{PERIOD}/{site}/roster.csv", "roster", rows)
    again = b.csv(f"2026-04/{site}/roster.csv", "roster", rows)  # the March file sent again for April by mistake
    return first, again


def test_archive_is_content_addressed(shared_run):
    """35: the same bytes under two names are archived once; each name is its own submission."""
    b = shared_run
    first, again = b.inputs["same_bytes_twice"]
    assert b.path(first).read_bytes() == b.path(again).read_bytes()
    s1, s2 = b.sub(first), b.sub(again)
    assert s1["sha256"] == s2["sha256"] and s1["archive_path"] == s2["archive_path"]
    assert s1["submission_id"] != s2["submission_id"]
    assert list(b.settings.archive_dir.rglob(f"{s1['sha256']}*")) == [Path(s1["archive_path"])]
    _assert_archived(b, first)
    _assert_archived(b, again)


# ========================================================================= product bugs


def test_submission_ids_fit_the_warehouse(box):
    """The longest submission_id (an outcomes file) fits every column that holds it; PostgreSQL
    enforces the declared width, SQLite does not (found while writing these tests: it was String(80))."""
    for table in (warehouse.submissions, warehouse.quarantine, warehouse.validation_runs, *warehouse.RAW_TABLES.values()):
        assert table.c.submission_id.type.length >= LONGEST_SUBMISSION_ID, table.name
    rel = box.bystander("outcomes")
    box.run()
    box.assert_lands(rel, "outcomes", 1)
    assert len(box.sub(rel)["submission_id"]) == LONGEST_SUBMISSION_ID
    box.assert_nothing_lost()


@shared_input
def over_long_text(b: Box) -> str:
    site = b.site("roster")
    return b.csv(f"{PERIOD}/{site}/roster.csv", "roster",
                 [roster_row(site), roster_row(site, course="电工技能培训" * 40), roster_row(site)])


def test_over_long_text_is_quarantined_on_both_databases(shared_run):
    """A cell longer than its warehouse column (course: 240 characters, String(200)) is one bad row,
    judged the same on both databases."""
    b, rel = shared_run, shared_run.inputs["over_long_text"]
    sub = b.sub(rel)
    assert (sub["status"], sub["rows_staged"], sub["rows_quarantined"]) == ("partially_accepted", 2, 1), sub["message"]
    assert b.staged("roster", rel)["source_row"].tolist() == [2, 4]
    assert {(r, c) for r, c, _ in b.failures(rel)} == {(3, "course")}


def test_a_staged_row_cannot_rebuild_the_id_number(shared_run):
    """PIPL: the birth date is kept (age checks need it), so nothing else of the ID may be: no
    masked ID (first 6 + last 4 digits) next to it, no address code, no sequence digits."""
    b, got = shared_run, shared_run.inputs["lowercase_x"]
    stg = b.staged("roster", got["rel"]).iloc[0]
    id_number = got["id_number"]
    texts = [str(v) for v in stg.to_numpy()]
    assert not any(id_number[:6] in t or id_number[-4:].upper() in t.upper() for t in texts
                   if t not in (stg["person_key"], stg["name_key"], stg["submission_id"]))

