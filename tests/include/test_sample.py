"""Tests for yuhang_skills.sample: the seeded sample inbox.

The files are read back here with a small reader of the published contract (encodings, title
rows, header aliases, enum spellings) and ID check characters are computed independently of
``yuhang_skills.identity``, so the generator is judged by what it writes, not by what it says.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import re
import unicodedata
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest

from yuhang_skills.policy import Plan
from yuhang_skills.sample import SampleOptions, generate, main
from yuhang_skills.settings import load_settings

PLAN = Plan.from_settings(load_settings())
CONTRACT = PLAN.contract
TZ = dt.timezone(dt.timedelta(hours=8))  # Asia/Shanghai has had no DST since 1991
FILE_NAME = re.compile(r"^(?P<period>\d{4}-\d{2})/(?P<site>[VSB]\d{2})/(?P<kind>[a-z]+)(?P<v2>_v2)?\.(?P<ext>csv|xlsx)$")
YEAR = 2026
SHORT = ["--start", "2026-01", "--end", "2026-03"]


# ---------------------------------------------------------------------------- reading


def _id_valid(value: str) -> bool:
    """GB 11643-1999 check character, computed here from first principles."""
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return False
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(value[:17]))
    return "10X98765432"[total % 11] == value[17]


def _fold(text: Any) -> str:
    s = re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text))).lower()
    return s.replace("（", "(").replace("）", ")")


def _headers(kind: str) -> dict[str, str]:
    return {
        _fold(spelling): column
        for column, spec in CONTRACT["kinds"][kind]["columns"].items()
        for spelling in [column, *spec["aliases"]]
    }


def _grid(path: Path) -> list[list[Any]]:
    if path.suffix == ".xlsx":
        wb = openpyxl.load_workbook(path, read_only=True)
        try:
            return [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
        finally:
            wb.close()
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))
        except UnicodeDecodeError:
            continue
    raise AssertionError(f"{path}: not UTF-8 nor GB18030")


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    y, m, d = (int(p) for p in re.findall(r"\d+", unicodedata.normalize("NFKC", str(value))))
    return dt.date(y, m, d)


def _read_raw(path: Path, kind: str) -> tuple[pd.DataFrame, int]:
    """(cells under canonical column names, 0-based header row index)."""
    grid = _grid(path)
    lookup = _headers(kind)
    header_at = next(i for i, row in enumerate(grid[:15]) if sum(_fold(c) in lookup for c in row if c) >= 3)
    columns = [lookup[_fold(c)] for c in grid[header_at]]
    return pd.DataFrame(grid[header_at + 1:], columns=columns, dtype=object), header_at


def _normalise(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Text NFKC-normalised and trimmed, enum spellings as codes, dates as ``date``."""
    spec = CONTRACT["kinds"][kind]["columns"]
    for column in spec:
        if column not in frame:
            continue
        kind_of = spec[column]["type"]
        if kind_of == "date":
            frame[column] = frame[column].map(_date)
            continue
        values = frame[column].map(lambda v: "" if v is None else unicodedata.normalize("NFKC", str(v)).strip())
        if kind_of.startswith("enum:") or kind_of == "bool":
            spellings = CONTRACT["enums"][kind_of.removeprefix("enum:")]
            codes = {str(s): code for code, alts in spellings.items() for s in [code, *alts]}
            values = values.map(lambda v: codes[v] if v else "")
        frame[column] = values
    return frame


def read(path: Path, kind: str) -> tuple[pd.DataFrame, int]:
    """(rows with canonical columns and enum codes, 0-based header row index)."""
    frame, header_at = _read_raw(path, kind)
    return _normalise(frame, kind), header_at


def effective_files(inbox: Path) -> dict[tuple[str, str, str], Path]:
    """(period, site, kind) -> the latest submission by modification time."""
    latest: dict[tuple[str, str, str], Path] = {}
    for path in sorted(p for p in inbox.rglob("*") if p.is_file()):
        m = FILE_NAME.match(path.relative_to(inbox).as_posix())
        assert m, path
        key = (m["period"], m["site"], m["kind"])
        if key not in latest or path.stat().st_mtime > latest[key].stat().st_mtime:
            latest[key] = path
    return latest


def load(inbox: Path, kind: str) -> pd.DataFrame:
    """All effective submissions of a kind, with their period and site folder (a fresh copy)."""
    return _load(inbox, kind).copy()


@functools.cache
def _load(inbox: Path, kind: str) -> pd.DataFrame:
    frames = []
    for (period, site, k), path in sorted(effective_files(inbox).items()):
        if k == kind:
            frame, _ = _read_raw(path, kind)
            frames.append(frame.assign(period=period, folder_site=site))
    return _normalise(pd.concat(frames, ignore_index=True), kind)


def _age(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _birth(id_number: str) -> dt.date:
    return dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def _run(inbox: Path, *args: str) -> dict[str, Any]:
    truth = inbox.parent / f"{inbox.name}.json"
    assert main(["--inbox", str(inbox), "--truth", str(truth), *args]) == 0
    return json.loads(truth.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def clean_year(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    inbox = tmp_path_factory.mktemp("clean") / "inbox"
    return inbox, _run(inbox, "--clean", "--start", f"{YEAR}-01", "--end", f"{YEAR}-12")


@pytest.fixture(scope="module")
def messy_year(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    inbox = tmp_path_factory.mktemp("messy") / "inbox"
    return inbox, _run(inbox, "--start", f"{YEAR}-01", "--end", f"{YEAR}-12")


# ---------------------------------------------------------------------------- determinism


def _snapshot(inbox: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(inbox).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(inbox.rglob("*")) if p.is_file()
    }  # fmt: skip


def test_same_seed_gives_identical_bytes_and_times(tmp_path: Path) -> None:
    first = _run(tmp_path / "a", *SHORT, "--xlsx-rate", "0.5")
    second = _run(tmp_path / "b", *SHORT, "--xlsx-rate", "0.5")
    a, b = _snapshot(tmp_path / "a"), _snapshot(tmp_path / "b")
    assert any(name.endswith(".xlsx") for name in a)
    assert a == b
    assert first == second
    _run(tmp_path / "c", *SHORT, "--xlsx-rate", "0.5", "--seed", "7")
    assert _snapshot(tmp_path / "c") != a


# ---------------------------------------------------------------------------- layout


def test_layout_follows_the_contract(clean_year: tuple[Path, dict[str, Any]]) -> None:
    inbox, truth = clean_year
    seen: set[tuple[str, str, str]] = set()
    for path in sorted(p for p in inbox.rglob("*") if p.is_file()):
        m = FILE_NAME.match(path.relative_to(inbox).as_posix())
        assert m, path
        assert m["v2"] is None and m["ext"] == "csv"  # --clean: one plain CSV per submission
        site = PLAN.sites_by_code[m["site"]]
        year, month = (int(x) for x in m["period"].split("-"))
        assert dt.date(year, month, 1) >= site.active_from.replace(day=1)
        submission = PLAN.policy.submissions[m["kind"]]
        assert site.programme in submission["programmes"]
        assert {"monthly": True, "quarterly": month % 3 == 0, "yearly": month == 12}[submission["cadence"]]
        seen.add((m["period"], m["site"], m["kind"]))
    for month in range(1, 13):
        period = f"{YEAR}-{month:02d}"
        for site in PLAN.sites:
            if site.active_from <= dt.date(YEAR, month, 28):
                assert {(period, site.site_code, "roster"), (period, site.site_code, "finance")} <= seen
    assert truth["files"]["total"] == len(seen)


def test_clean_files_use_contract_headers_and_spellings(clean_year: tuple[Path, dict[str, Any]]) -> None:
    inbox, _ = clean_year
    for (_, _, kind), path in effective_files(inbox).items():
        text = path.read_text(encoding="utf-8")
        header = next(csv.reader(io.StringIO(text)))
        columns = CONTRACT["kinds"][kind]["columns"]
        assert header == [spec["aliases"][0] for spec in columns.values()], path
        assert not text.startswith("\ufeff")
    roster = load(inbox, "roster")
    assert set(roster["passed"]) <= {"passed", "failed", ""}
    assert set(roster["level"]) <= set(CONTRACT["enums"]["level"])


# ---------------------------------------------------------------------------- clean content


def test_clean_ids_are_valid_and_trainees_of_working_age(clean_year: tuple[Path, dict[str, Any]]) -> None:
    roster = load(clean_year[0], "roster")
    assert roster["id_number"].map(_id_valid).all()
    ages = [_age(_birth(i), s) for i, s in zip(roster["id_number"], roster["start_date"])]
    male = roster["id_number"].str[16].astype(int) % 2 == 1
    assert min(ages) >= 16
    assert all(a < (60 if m else 55) for a, m in zip(ages, male))
    prefixes = set(roster["id_number"].str[:6])
    assert {"330110", "330184", "330113"} <= prefixes
    assert roster["name"].str.fullmatch(r"[\u4e00-\u9fff]{2,3}").all()
    person = roster.groupby("id_number")
    assert person["name"].nunique().max() == 1
    assert person["folder_site"].nunique().max() == 1  # no cross-site duplicates when clean
    assert 1.05 < len(roster) / roster["id_number"].nunique() < 1.35  # some people come back


def test_clean_classes_fit_their_month(clean_year: tuple[Path, dict[str, Any]]) -> None:
    roster = load(clean_year[0], "roster")
    first = pd.to_datetime(roster["period"] + "-01").dt.date
    assert (roster["end_date"].map(lambda d: d.strftime("%Y-%m")) == roster["period"]).all()
    assert (roster["start_date"] <= roster["end_date"]).all()
    assert all((f - s).days <= 7 for s, f in zip(roster["start_date"], first))
    hours = roster["hours"].astype(int)
    assert hours.between(8, 120).all()
    sizes = roster.groupby(["folder_site", "class_id"]).size()
    stations_bases = sizes[sizes.index.get_level_values(0).str[0] != "V"]
    assert stations_bases.between(15, 60).all()
    assert (roster["certificate_no"].ne("") == roster["passed"].eq("passed")).all()
    assert roster["certificate_no"][roster["certificate_no"] != ""].is_unique


def test_clean_volumes_follow_the_targets(clean_year: tuple[Path, dict[str, Any]]) -> None:
    roster = load(clean_year[0], "roster")
    person_times = roster.groupby("folder_site").size()
    ranges = {"station": (400, 700), "base": (900, 1400), "village": (1, 60)}
    for site in PLAN.active_sites(YEAR):
        lo, hi = ranges[site.programme]
        share = site.months_active(YEAR) / 12
        assert lo * share <= person_times.get(site.site_code, 0) <= hi * share, site.site_code
    bases = roster[roster["folder_site"].str.startswith("B")]
    assessed = bases[bases["assessed"] == "true"]
    pass_rate = (assessed["passed"] == "passed").groupby(assessed["folder_site"]).mean()
    assert pass_rate.between(0.9, 0.98).all()
    key = roster["folder_site"].str[0] != "V"
    assert (roster.loc[key, "group"] != "other").mean() > 0.6
    assert (roster.loc[key, "industry"] != "other").mean() > 0.6
    survey = load(clean_year[0], "survey")
    satisfied = survey["rating"].isin(PLAN.policy.satisfied_ratings).groupby(survey["respondent_type"]).mean()
    assert satisfied.between(0.9, 0.98).all()
    assert survey.groupby(["folder_site", "period"]).size().between(20, 80).all()


def test_clean_spending_follows_the_plan(clean_year: tuple[Path, dict[str, Any]]) -> None:
    finance = load(clean_year[0], "finance")
    assert re.fullmatch(r"\d+\.\d{2}", finance["amount"].iloc[0])
    finance["yuan"] = finance["amount"].map(Decimal)
    assert finance.groupby("folder_site")["voucher_no"].apply(lambda v: v.is_unique).all()
    assert (finance["pay_date"].map(lambda d: d.strftime("%Y-%m")) == finance["period"]).all()
    assert not ((finance["fund_source"] == "provincial") & (finance["category"] == "other")).any()
    provincial = finance[finance["fund_source"] == "provincial"].groupby("folder_site")["yuan"].sum()
    for site in PLAN.sites:
        if site.batch_year != YEAR:
            continue  # 2025 sites spent part of their money in 2025, outside this window
        cell = PLAN.policy.plan_cell(YEAR, site.programme)
        allocation = Decimal(cell["provincial"] * 10_000 // cell["sites"])
        if allocation:
            assert allocation * Decimal("0.85") <= provincial[site.site_code] <= allocation, site.site_code
    b02 = finance[finance["folder_site"] == "B02"]
    cell = PLAN.policy.plan_cell(YEAR, "base")
    equipment = b02.loc[b02["category"] == "equipment", "yuan"].sum()
    assert equipment > 2 * (cell["provincial"] + cell["district"]) * 10_000


def test_clean_files_arrive_before_their_due_date(clean_year: tuple[Path, dict[str, Any]]) -> None:
    inbox, truth = clean_year
    for entry in truth["files"]["list"]:
        submitted = dt.datetime.fromtimestamp((inbox / entry["path"]).stat().st_mtime, TZ)
        assert submitted.isoformat() == entry["submitted_at"]
        assert submitted.date() <= dt.date.fromisoformat(entry["due"])
        assert dt.date(*map(int, entry["period"].split("-")), 28) < submitted.date()
    assert all(p["total"] == 0 for p in truth["patterns"].values() if isinstance(p, dict) and "total" in p)


# ---------------------------------------------------------------------------- planted mess


def test_encodings_and_title_rows(messy_year: tuple[Path, dict[str, Any]]) -> None:
    inbox, truth = messy_year
    files = truth["files"]["list"]
    gbk = [inbox / f["path"] for f in files if f["encoding"] == "gb18030"]
    bom = [inbox / f["path"] for f in files if f["encoding"] == "utf-8-sig"]
    xlsx = [(inbox / f["path"], f) for f in files if f["format"] == "xlsx"]
    assert gbk and bom and xlsx
    failing = 0
    for path in gbk:
        data = path.read_bytes()
        data.decode("gb18030")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            failing += 1
    assert failing > len(gbk) / 2
    assert all(p.read_bytes().startswith(b"\xef\xbb\xbf") for p in bom)
    blank_rows = 0
    for path, entry in xlsx:
        site = PLAN.sites_by_code[entry["site_code"]]
        title = openpyxl.load_workbook(path, read_only=True).worksheets[0]["A1"].value
        assert title.startswith(site.name_zh) and title.endswith(CONTRACT["kinds"][entry["kind"]]["name_zh"])
        _, header_at = read(path, entry["kind"])
        assert header_at == (2 if entry["blank_row"] else 1)
        blank_rows += entry["blank_row"]
    assert 0 < blank_rows < len(xlsx)
    assert truth["files"]["english_header"] > 0
    english = next(inbox / f["path"] for f in files if f["header"] == "en" and f["kind"] == "roster" and f["rows"])
    frame, header_at = read(english, "roster")
    assert frame.columns.tolist() == _grid(english)[header_at] == list(CONTRACT["kinds"]["roster"]["columns"])
    assert set(frame["group"]) <= set(CONTRACT["enums"]["group"])


def test_planted_ids_and_ages(messy_year: tuple[Path, dict[str, Any]]) -> None:
    inbox, truth = messy_year
    roster = load(inbox, "roster")
    invalid = ~roster["id_number"].map(_id_valid)
    assert invalid.sum() == truth["patterns"]["invalid_id"]["total"] > 0
    male = roster["id_number"].str[16].astype(int) % 2 == 1
    ages = pd.Series([_age(_birth(i), s) for i, s in zip(roster["id_number"], roster["start_date"])])
    outside = (ages < 16) | (ages >= male.map({True: 60, False: 55}))
    assert outside.sum() == truth["patterns"]["out_of_age"]["total"] > 0
    assert (ages[outside] <= 15).any() and (ages[outside] >= 60).any()


def test_planted_cross_site_duplicates(messy_year: tuple[Path, dict[str, Any]]) -> None:
    inbox, truth = messy_year
    roster = load(inbox, "roster")
    shared = roster.groupby("id_number").filter(lambda g: g["folder_site"].nunique() > 1)
    pairs = truth["patterns"]["cross_site_duplicate"]["pairs"]
    assert shared["id_number"].nunique() == len(pairs) > 0
    for _, person in shared.groupby("id_number"):
        rows = list(person.itertuples())
        assert any(
            a.folder_site != b.folder_site and a.start_date <= b.end_date and b.start_date <= a.end_date
            for a in rows for b in rows
        )  # fmt: skip


def test_resubmissions_late_files_and_missing_months(messy_year: tuple[Path, dict[str, Any]]) -> None:
    inbox, truth = messy_year
    v2 = sorted(inbox.rglob("*_v2.*"))
    assert len(v2) == truth["patterns"]["resubmission"]["total"] > 0
    for second in v2:
        first = second.with_name(second.name.replace("_v2", ""))
        assert second.stat().st_mtime > first.stat().st_mtime
        kind = first.stem
        assert len(read(second, kind)[0]) > len(read(first, kind)[0])
    late = [f for f in truth["files"]["list"] if f["version"] == 1 and f["late"]]
    assert len(late) == truth["patterns"]["late"]["total"] > 0
    for entry in late:
        submitted = dt.datetime.fromtimestamp((inbox / entry["path"]).stat().st_mtime, TZ).date()
        assert submitted > dt.date.fromisoformat(entry["due"])
    for gap in truth["patterns"]["missing_month"]["list"]:
        assert not list((inbox / gap["period"] / gap["site_code"]).glob(f"{gap['kind']}*"))
    assert truth["patterns"]["missing_month"]["total"] > 0


def test_underperforming_station_and_low_pass_base(messy_year: tuple[Path, dict[str, Any]]) -> None:
    inbox, truth = messy_year
    roster = load(inbox, "roster")
    assert (roster["folder_site"] == "S02").sum() == truth["patterns"]["underperforming_station"]["person_times"] < 500
    b02 = roster[(roster["folder_site"] == "B02") & (roster["assessed"] == "true")]
    assert 0.8 < (b02["passed"] == "passed").mean() < 0.9


def test_ineligible_spending_and_formatting_noise(messy_year: tuple[Path, dict[str, Any]]) -> None:
    inbox, truth = messy_year
    finance = load(inbox, "finance")
    ineligible = finance[(finance["fund_source"] == "provincial") & (finance["category"] == "other")]
    assert len(ineligible) == truth["patterns"]["ineligible_spending"]["total"] > 0
    raw = "".join(p.read_text(encoding="utf-8-sig", errors="replace") for p in inbox.rglob("roster*.csv"))
    assert re.search(r"[０-９]", raw) and re.search(r"\d{4}/\d{1,2}/\d{1,2}", raw) and "年" in raw
    assert truth["patterns"]["format_noise"]["trailing_space_cells"] > 0


# ---------------------------------------------------------------------------- scale and interface


def test_scale_multiplies_rows(tmp_path: Path) -> None:
    window = ["--clean", "--start", "2026-04", "--end", "2026-05"]
    one = _run(tmp_path / "one", *window)["rows"]
    three = _run(tmp_path / "three", *window, "--scale", "3")["rows"]
    assert 2.7 < three["roster"] / one["roster"] < 3.3
    assert three["finance"] == one["finance"]


def test_large_scale_writes_csv_only(tmp_path: Path) -> None:
    truth = _run(tmp_path / "big", "--start", "2026-04", "--end", "2026-04", "--scale", "10", "--xlsx-rate", "1")
    assert truth["rows"]["roster"] > 5_000
    assert {f["format"] for f in truth["files"]["list"]} == {"csv"}


def test_generate_api_and_clean_options(tmp_path: Path) -> None:
    options = SampleOptions.clean(start="2026-03", end="2026-03", gbk_rate=1.0)
    truth = generate(tmp_path / "inbox", options, PLAN)
    assert options.underperforming_station is None and options.invalid_id_rate == 0
    assert set(truth["files"]["by_format"]) == {"gb18030"}
    with pytest.raises(FileExistsError):
        generate(tmp_path / "inbox", options, PLAN)
    before = _snapshot(tmp_path / "inbox")
    assert generate(tmp_path / "inbox", options, PLAN, clear=True) == truth
    assert _snapshot(tmp_path / "inbox") == before
    (tmp_path / "inbox" / "notes.txt").write_text("not a submission", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not clearing"):
        generate(tmp_path / "inbox", options, PLAN, clear=True)
    assert (tmp_path / "inbox" / "notes.txt").exists() and _snapshot(tmp_path / "inbox").keys() > before.keys()
    with pytest.raises(ValueError, match="not a registered station"):
        generate(tmp_path / "other", SampleOptions(underperforming_station="B01"), PLAN)


def test_cli_help_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    options = re.findall(r"--[a-z-]+", text)
    for name in options:
        if name != "--help":
            assert re.search(rf"{name}(?: [A-Z]+)?\s+\S", text), f"{name} has no help text"
    for field in ("gbk-rate", "bom-rate", "xlsx-rate", "english-header-rate", "invalid-id-rate", "out-of-age-rate",
                  "missing-month-rate", "resubmission-rate", "late-rate", "cross-site-duplicate-rate",
                  "underperforming-station", "low-pass-base", "ineligible-spending-rate", "scale", "seed", "start",
                  "end", "inbox", "truth", "clean", "clear"):  # fmt: skip
        assert f"--{field}" in options
    with pytest.raises(SystemExit) as done:
        main(["--inbox", str(tmp_path / "x"), "--start", "2026-13"])
    assert done.value.code == 2
    assert main(["--inbox", str(tmp_path / "y"), "--clean", "--start", "2026-03", "--end", "2026-03",
                 "--underperforming-station", "none"]) == 0  # fmt: skip
    assert "files in" in capsys.readouterr().out
