"""Tests for yuhang_sample.generator: the seeded sample inbox.

The files are read back here with a small reader of the published contract (encodings, title
rows, header aliases, enum spellings) and ID check characters are computed independently of
``yuhang_skills.intake.identity``, so the generator is judged by what it writes, not by what it says.
"""

from __future__ import annotations

import calendar
import csv
import dataclasses
import datetime as dt
import functools
import io
import json
import re
import unicodedata
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest

from yuhang_skills.core.policy import Plan
from yuhang_sample.generator import SampleOptions, generate, main
from yuhang_skills.core.settings import load_settings

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
        for column, spec in CONTRACT.kinds[kind].columns.items()
        for spelling in [column, *spec.aliases]
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
    spec = CONTRACT.kinds[kind].columns
    for column in spec:
        if column not in frame:
            continue
        kind_of = spec[column].type
        if kind_of == "date":
            frame[column] = frame[column].map(_date)
            continue
        values = frame[column].map(lambda v: "" if v is None else unicodedata.normalize("NFKC", str(v)).strip())
        if kind_of.startswith("enum:") or kind_of == "bool":
            spellings = CONTRACT.enums[kind_of.removeprefix("enum:")]
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
        assert site.programme in submission.programmes
        assert {"monthly": True, "quarterly": month % 3 == 0, "yearly": month == 12}[submission.cadence]
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
        columns = CONTRACT.kinds[kind].columns
        assert header == [spec.aliases[0] for spec in columns.values()], path
        assert not text.startswith("\ufeff")
    roster = load(inbox, "roster")
    assert set(roster["passed"]) <= {"passed", "failed", ""}
    assert set(roster["level"]) <= set(CONTRACT.enums["level"])


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
        allocation = Decimal(cell.provincial * 10_000 // cell.sites)
        if allocation:
            assert allocation * Decimal("0.85") <= provincial[site.site_code] <= allocation, site.site_code
    b02 = finance[finance["folder_site"] == "B02"]
    cell = PLAN.policy.plan_cell(YEAR, "base")
    equipment = b02.loc[b02["category"] == "equipment", "yuan"].sum()
    assert equipment > 2 * (cell.provincial + cell.district) * 10_000


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
        assert title.startswith(site.name_zh) and title.endswith(CONTRACT.kinds[entry["kind"]].name_zh)
        _, header_at = read(path, entry["kind"])
        assert header_at == (2 if entry["blank_row"] else 1)
        blank_rows += entry["blank_row"]
    assert 0 < blank_rows < len(xlsx)
    assert truth["files"]["english_header"] > 0
    english = next(inbox / f["path"] for f in files if f["header"] == "en" and f["kind"] == "roster" and f["rows"])
    frame, header_at = read(english, "roster")
    assert frame.columns.tolist() == _grid(english)[header_at] == list(CONTRACT.kinds["roster"].columns)
    assert set(frame["group"]) <= set(CONTRACT.enums["group"])


def test_planted_ids_and_ages(messy_year: tuple[Path, dict[str, Any]]) -> None:
    inbox, truth = messy_year
    roster = load(inbox, "roster")
    invalid = ~roster["id_number"].map(_id_valid)
    assert invalid.sum() == truth["patterns"]["invalid_id"]["total"] > 0
    male = roster["id_number"].str[16].astype(int) % 2 == 1
    ages = pd.Series([_age(_birth(i), s) for i, s in zip(roster["id_number"], roster["start_date"])])
    outside = (ages < 16) | (ages >= male.map({True: 60, False: 55}))
    near = near_retirement(roster)  # planted too, past their retirement date by a few days only
    assert outside[~roster.index.isin(near.index)].sum() == truth["patterns"]["out_of_age"]["total"] > 0
    assert outside[near.index].all() and len(near) == truth["patterns"]["near_retirement"]["total"] > 0
    assert (ages[outside] <= 15).any() and (ages[outside] >= 60).any()


def test_planted_cross_site_duplicates(messy_year: tuple[Path, dict[str, Any]]) -> None:
    inbox, truth = messy_year
    roster = load(inbox, "roster")
    shared = roster.groupby("id_number").filter(lambda g: g["folder_site"].nunique() > 1)
    pairs = truth["patterns"]["cross_site_duplicate"]["pairs"]
    overlapping = set()
    for person_id, person in shared.groupby("id_number"):
        rows = list(person.itertuples())
        if any(
            a.folder_site != b.folder_site and a.start_date <= b.end_date and b.start_date <= a.end_date
            for a in rows for b in rows
        ):  # fmt: skip
            overlapping.add(person_id)
    assert len(overlapping) == len(pairs) > 0
    # Everyone else at two sites is a planted over-yearly or repeat person, in classes sharing no day.
    planted = {tuple(c) for p in truth["patterns"]["over_yearly_limit"]["list"] for c in p["classes"]}
    planted |= {tuple(c) for p in truth["patterns"]["repeat_occupation_level"]["list"] for c in p}
    others = shared[~shared["id_number"].isin(overlapping)]
    assert set(zip(others["folder_site"], others["class_id"])) <= planted


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
                  "end", "inbox", "truth", "clean", "clear", "over-yearly-limit-rate", "repeat-occupation-level-rate",
                  "near-retirement-rate", "certificate-burst-site", "uniform-class-rate", "duplicate-invoice-rate",
                  "duplicate-voucher-rate", "out-of-period-payment-rate", "base-over-claim",
                  "training-overpaid-site"):  # fmt: skip
        assert f"--{field}" in options
    for name in (f.name for f in dataclasses.fields(SampleOptions)):
        assert f"--{name.replace('_', '-')}" in options, name
    with pytest.raises(SystemExit) as done:
        main(["--inbox", str(tmp_path / "x"), "--start", "2026-13"])
    assert done.value.code == 2
    assert main(["--inbox", str(tmp_path / "y"), "--clean", "--start", "2026-03", "--end", "2026-03",
                 "--underperforming-station", "none"]) == 0  # fmt: skip
    assert "files in" in capsys.readouterr().out


# ---------------------------------------------------------------------------- fraud patterns
# Each pattern is looked for in the written files with plain pandas, by the rule its integrity
# check applies (thresholds from the policy's integrity section, these defaults where it has
# none); persons are told apart by their ID number. A pattern planted alone must be found
# exactly as the truth summary lists it, and no other pattern may be found beside it.


def _rule(check: str, name: str, default: Any) -> Any:
    spec = PLAN.policy.integrity.checks.get(check)
    value = getattr(spec, name, None) if spec else None
    return default if value is None else value


YEARLY_LIMIT = int(_rule("yearly_subsidy_limit", "max_per_year", 3))
UNIFORM_MIN = int(_rule("uniform_class", "min_class_size", 10))
BURST_RULE = (int(_rule("certificate_burst", "window_days", 3)), float(_rule("certificate_burst", "multiple_of_usual", 5)),
              int(_rule("certificate_burst", "min_passed", 100)))  # fmt: skip
TRAINING_LIMIT = Decimal(str(_rule("training_paid_beyond_roster", "max_yuan_per_person_time", 3000)))
TRAINING = set(_rule("training_paid_beyond_roster", "categories", ["project_training", "training_subsidy"]))
PERIOD = (PLAN.policy.implementation_period.start, PLAN.policy.implementation_period.end)


def _person_classes(roster: pd.DataFrame) -> pd.DataFrame:
    """One row per person and class."""
    return roster.drop_duplicates(["id_number", "folder_site", "class_id"])


def _classes_of(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["folder_site"], frame["class_id"]))


def over_yearly(roster: pd.DataFrame) -> dict[tuple[str, int], set[tuple[str, str]]]:
    """(person, year) attending more than the yearly limit of classes (by start date) -> their classes."""
    pc = _person_classes(roster)
    pc = pc.assign(year=[d.year for d in pc["start_date"]])
    pc = pc[pc.groupby(["id_number", "year"])["class_id"].transform("size") > YEARLY_LIMIT]
    return {key: _classes_of(g) for key, g in pc.groupby(["id_number", "year"])}


def repeats(roster: pd.DataFrame) -> dict[tuple[str, str, str], set[tuple[str, str]]]:
    """(person, occupation, level) trained more than once -> the classes."""
    pc = _person_classes(roster)
    pc = pc[pc.groupby(["id_number", "occupation", "level"])["class_id"].transform("size") > 1]
    return {key: _classes_of(g) for key, g in pc.groupby(["id_number", "occupation", "level"])}


def overlapping(roster: pd.DataFrame) -> set[str]:
    """Persons in two classes sharing a day."""
    pc = _person_classes(roster)[["id_number", "folder_site", "class_id", "start_date", "end_date"]]
    pairs = pc[pc["id_number"].duplicated(keep=False)].merge(pc, on="id_number")
    other = (pairs["folder_site_x"] != pairs["folder_site_y"]) | (pairs["class_id_x"] != pairs["class_id_y"])
    shared = (pairs["start_date_x"] <= pairs["end_date_y"]) & (pairs["start_date_y"] <= pairs["end_date_x"])
    return set(pairs.loc[other & shared, "id_number"])


def _retirement(birth: dt.date, male: bool) -> dt.date:
    """Statutory retirement date (NPC Standing Committee decision of 2024-09-13), from its schedule."""
    female = {55: (55 * 12, 1970, 4, 36), 50: (50 * 12, 1975, 2, 60)}[PLAN.policy.female_retirement_base]
    base, first_year, step, cap = (60 * 12, 1965, 4, 36) if male else female
    since = (birth.year - first_year) * 12 + birth.month - 1
    year, month = divmod(birth.year * 12 + birth.month - 1 + base + (0 if since < 0 else min(cap, since // step + 1)), 12)
    return dt.date(year, month + 1, min(birth.day, calendar.monthrange(year, month + 1)[1]))


def outside_working_age(roster: pd.DataFrame) -> pd.DataFrame:
    """Rows of trainees under 16 or on or after their retirement date on the start date (days past it)."""
    birth = roster["id_number"].map(_birth)
    male = roster["id_number"].str[16].astype(int) % 2 == 1
    retire = [_retirement(b, m) for b, m in zip(birth, male)]
    frame = roster.assign(days_past=[(s - r).days for s, r in zip(roster["start_date"], retire)],
                          age=[_age(b, s) for b, s in zip(birth, roster["start_date"])])  # fmt: skip
    return frame[(frame["age"] < 16) | (frame["days_past"] >= 0)]


def near_retirement(roster: pd.DataFrame) -> pd.DataFrame:
    outside = outside_working_age(roster)
    return outside[outside["days_past"].between(1, 20)]


def bursts(roster: pd.DataFrame) -> set[tuple[str, int]]:
    """Site-years passing more than the multiple of usual, and at least the minimum, within the window
    (by end date; a window belongs to the year of its first day and may run into the next)."""
    window, multiple, least = BURST_RULE
    passed = roster[(roster["assessed"] == "true") & (roster["passed"] == "passed")]
    found = set()
    for site, g in passed.groupby("folder_site"):
        per_day = g["end_date"].value_counts()
        per_year = Counter(d.year for d in g["end_date"])
        for day in per_day.index:
            in_window = sum(per_day.get(day + dt.timedelta(days=k), 0) for k in range(window))
            usual = per_year[day.year] * 12 / (365 * (PLAN.sites_by_code[site].months_active(day.year) or 12)) * window
            if in_window > multiple * usual and in_window >= least:
                found.add((site, day.year))
    return found


def uniform_classes(roster: pd.DataFrame) -> set[tuple[str, str]]:
    """Classes of at least the minimum size in which everyone passed and gave the same answer."""
    ok = (roster["assessed"] == "true") & (roster["passed"] == "passed") & (roster["satisfaction"] != "")
    stats = roster.assign(ok=ok).groupby(["folder_site", "class_id"]).agg(
        size=("ok", "size"), ok=("ok", "all"), answers=("satisfaction", "nunique"))
    return set(stats.index[(stats["size"] >= UNIFORM_MIN) & stats["ok"] & (stats["answers"] == 1)])


def duplicate_invoices(finance: pd.DataFrame) -> dict[str, set[str]]:
    sites = finance[finance["invoice_no"] != ""].groupby("invoice_no")["folder_site"].agg(set)
    return {k: v for k, v in sites.items() if len(v) > 1}


def duplicate_vouchers(finance: pd.DataFrame) -> dict[tuple[str, Decimal, str], set[str]]:
    sites = finance.assign(yuan=finance["amount"].map(Decimal)).groupby(["voucher_no", "yuan", "payee"])["folder_site"].agg(set)
    return {k: v for k, v in sites.items() if len(v) > 1}


def out_of_period(finance: pd.DataFrame) -> pd.DataFrame:
    return finance[(finance["pay_date"] < PERIOD[0]) | (finance["pay_date"] > PERIOD[1])]


def base_over_claims(finance: pd.DataFrame, bases: tuple[str, ...]) -> set[str]:
    """Bases (of ``bases``: those whose whole equipment purchase the window holds) paid their plan
    money (provincial and district) above min(share x equipment cost, cap)."""
    found = set()
    for code in bases:
        equipment = finance.loc[(finance["folder_site"] == code) & (finance["category"] == "equipment"), "amount"]
        cell = PLAN.policy.plan_cell(PLAN.sites_by_code[code].batch_year, "base")
        plan_yuan = Decimal((cell.provincial + cell.district) * 10_000 // cell.sites)
        entitled = min(PLAN.policy.base_subsidy_share * sum(map(Decimal, equipment)), PLAN.policy.base_subsidy_cap_yuan)
        if entitled < plan_yuan:
            found.add(code)
    return found


def training_overpaid(roster: pd.DataFrame, finance: pd.DataFrame) -> dict[tuple[str, int], Decimal]:
    """Site-years paying more training money than the limit per roster person-time (all of it without a roster)."""
    money = finance[finance["category"].isin(TRAINING)]
    money = money.assign(year=money["period"].str[:4].astype(int), yuan=money["amount"].map(Decimal))
    paid = money.groupby(["folder_site", "year"])["yuan"].sum()
    times = roster.assign(year=roster["period"].str[:4].astype(int)).drop_duplicates(
        ["folder_site", "year", "class_id", "id_number"]).groupby(["folder_site", "year"]).size()
    ratios = {key: yuan / times.get(key, 0) if times.get(key, 0) else yuan for key, yuan in paid.items()}
    return {key: ratio for key, ratio in ratios.items() if ratio > TRAINING_LIMIT}


def found_patterns(roster: pd.DataFrame, finance: pd.DataFrame, bases: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every pattern the integrity checks look for, as found in the files (empty when absent)."""
    return {
        "over_yearly_limit": over_yearly(roster),
        "repeat_occupation_level": repeats(roster),
        "overlapping_classes": overlapping(roster),
        "outside_working_age": set(outside_working_age(roster).index),
        "certificate_burst": bursts(roster),
        "uniform_class": uniform_classes(roster),
        "duplicate_invoice": duplicate_invoices(finance),
        "duplicate_voucher": duplicate_vouchers(finance),
        "out_of_period_payment": set(out_of_period(finance).index),
        "base_over_claim": base_over_claims(finance, bases),
        "training_overpaid": training_overpaid(roster, finance),
        "cross_site_persons": set(roster.groupby("id_number")["folder_site"].nunique().pipe(lambda n: n[n > 1]).index),
    }


def _fraud_sample(tmp_path: Path, *args: str) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """A clean sample with the given options on: (truth, roster, finance)."""
    inbox = tmp_path / "inbox"
    truth = _run(inbox, "--clean", *args)
    return truth, load(inbox, "roster"), load(inbox, "finance")


def _only(found: dict[str, Any], *names: str) -> None:
    assert {name for name, value in found.items() if value} == set(names), {k: v for k, v in found.items() if v}


def _last_class(classes: list[list[str]], roster: pd.DataFrame) -> str:
    """Site of the class that breaks the rule: the latest by start date, then site and class."""
    start = roster.drop_duplicates(["folder_site", "class_id"]).set_index(["folder_site", "class_id"])["start_date"]
    return max(classes, key=lambda c: (start[tuple(c)], c[0], c[1]))[0]


def test_over_yearly_limit(tmp_path: Path) -> None:
    truth, roster, finance = _fraud_sample(tmp_path, "--start", "2026-01", "--end", "2026-04", "--scale", "0.3",
                                           "--over-yearly-limit-rate", "0.03")  # fmt: skip
    planted = truth["patterns"]["over_yearly_limit"]
    found = over_yearly(roster)
    assert len(found) == planted["total"] == len(planted["list"]) >= 5
    assert sorted(sorted(v) for v in found.values()) == sorted(sorted(map(tuple, p["classes"])) for p in planted["list"])
    assert sorted(year for _, year in found) == sorted(p["year"] for p in planted["list"])
    classes = roster.drop_duplicates(["folder_site", "class_id"]).set_index(["folder_site", "class_id"])
    for (person, year), attended in found.items():
        assert len(roster[roster["id_number"] == person]) == YEARLY_LIMIT + 1  # four classes, all in that year
        rows = classes.loc[sorted(attended)]
        assert all(d.year == year for d in rows["start_date"]) and rows.index.get_level_values(0).str[0].isin(["S", "B"]).all()
        assert not rows.duplicated(["occupation", "level"]).any()
        spans = sorted(zip(rows["start_date"], rows["end_date"]))
        assert all(a[1] < b[0] for a, b in zip(spans, spans[1:]))  # no shared day
    assert Counter(_last_class(p["classes"], roster) for p in planted["list"]) == planted["by_site"]
    sites = [len({site for site, _ in p["classes"]}) for p in planted["list"]]
    assert min(sites) == 1 and max(sites) > 1  # at one site, and at several
    _only(found_patterns(roster, finance), "over_yearly_limit", "cross_site_persons")


def test_repeat_occupation_level(tmp_path: Path) -> None:
    truth, roster, finance = _fraud_sample(tmp_path, "--start", "2026-01", "--end", "2026-04", "--scale", "0.3",
                                           "--repeat-occupation-level-rate", "0.02")  # fmt: skip
    planted = truth["patterns"]["repeat_occupation_level"]
    found = repeats(roster)
    assert len(found) == planted["total"] == len(planted["list"]) >= 5
    assert sorted(sorted(v) for v in found.values()) == sorted(sorted(map(tuple, pair)) for pair in planted["list"])
    for (person, _, _), attended in found.items():
        assert len(attended) == 2 and len(roster[roster["id_number"] == person]) == 2
    assert Counter(_last_class(pair, roster) for pair in planted["list"]) == planted["by_site"]
    found_all = found_patterns(roster, finance)
    _only(found_all, "repeat_occupation_level", *(["cross_site_persons"] if found_all["cross_site_persons"] else []))


def test_near_retirement(tmp_path: Path) -> None:
    truth, roster, finance = _fraud_sample(tmp_path, *SHORT, "--scale", "0.5", "--near-retirement-rate", "0.01")
    planted = truth["patterns"]["near_retirement"]
    near = near_retirement(roster)
    assert len(near) == planted["total"] == len(planted["list"]) >= 5
    assert sorted(zip(near["folder_site"], near["class_id"])) == sorted(map(tuple, planted["list"]))
    assert dict(Counter(near["folder_site"])) == planted["by_site"]
    assert near["days_past"].between(1, 20).all()
    assert (roster["id_number"].value_counts()[near["id_number"]] == 1).all()  # one class each
    _only(found_patterns(roster, finance), "outside_working_age")
    assert set(outside_working_age(roster).index) == set(near.index)


def test_certificate_burst(tmp_path: Path) -> None:
    truth, roster, finance = _fraud_sample(tmp_path, "--start", "2026-04", "--end", "2026-06", "--scale", "0.5",
                                           "--certificate-burst-site", "S07")  # fmt: skip
    planted = truth["patterns"]["certificate_burst"]
    assert planted["site_code"] == "S07"
    first, last = dt.date.fromisoformat(planted["window_start"]), dt.date.fromisoformat(planted["window_end"])
    assert (last - first).days == BURST_RULE[0] - 1
    rows = roster[(roster["folder_site"] == "S07") & roster["class_id"].isin(planted["classes"])]
    assert 4 <= rows["class_id"].nunique() == len(planted["classes"]) <= 6
    assert rows.groupby("class_id").size().between(40, 60).all()
    assert len(rows) == planted["certificates"] >= BURST_RULE[2]
    assert (rows["assessed"] == "true").all() and (rows["passed"] == "passed").all() and (rows["certificate_no"] != "").all()
    assert rows["end_date"].between(first, last).all() and rows["certificate_no"].is_unique
    assert bursts(roster) == {("S07", 2026)}
    _only(found_patterns(roster, finance), "certificate_burst")


def test_uniform_class(tmp_path: Path) -> None:
    truth, roster, finance = _fraud_sample(tmp_path, *SHORT, "--uniform-class-rate", "0.2")
    planted = truth["patterns"]["uniform_class"]
    found = uniform_classes(roster)
    assert len(found) == planted["total"] == len(planted["list"]) >= 5
    assert found == set(map(tuple, planted["list"]))
    assert dict(Counter(site for site, _ in found)) == planted["by_site"]
    _only(found_patterns(roster, finance), "uniform_class")


def test_duplicate_invoice(tmp_path: Path) -> None:
    truth, roster, finance = _fraud_sample(tmp_path, *SHORT, "--scale", "0.2", "--duplicate-invoice-rate", "0.05")
    planted = truth["patterns"]["duplicate_invoice"]
    found = duplicate_invoices(finance)
    assert len(found) == planted["total"] == len(planted["list"]) >= 5
    assert found == {p["invoice_no"]: set(p["sites"]) for p in planted["list"]}
    for invoice in found:
        a, b = (finance[finance["invoice_no"] == invoice].itertuples())
        assert a.amount != b.amount and a.payee != b.payee and a.voucher_no != b.voucher_no
    _only(found_patterns(roster, finance), "duplicate_invoice")


def test_duplicate_voucher(tmp_path: Path) -> None:
    truth, roster, finance = _fraud_sample(tmp_path, *SHORT, "--scale", "0.2", "--duplicate-voucher-rate", "0.03")
    planted = truth["patterns"]["duplicate_voucher"]
    found = duplicate_vouchers(finance)
    assert len(found) == planted["total"] == len(planted["list"]) >= 5
    assert found == {(p["voucher_no"], Decimal(p["amount_yuan"]), p["payee"]): set(p["sites"]) for p in planted["list"]}
    for voucher, yuan, payee in found:
        a, b = finance[(finance["voucher_no"] == voucher) & (finance["payee"] == payee)
                       & (finance["amount"].map(Decimal) == yuan)].itertuples()  # fmt: skip
        assert a.period == b.period and (a.invoice_no != b.invoice_no or a.invoice_no == "")
    _only(found_patterns(roster, finance), "duplicate_voucher")


def test_out_of_period_payment(tmp_path: Path) -> None:
    truth, roster, finance = _fraud_sample(tmp_path, "--start", "2026-11", "--end", "2026-12", "--scale", "0.2",
                                           "--out-of-period-payment-rate", "0.3")  # fmt: skip
    planted = truth["patterns"]["out_of_period_payment"]
    found = out_of_period(finance)
    assert len(found) == planted["total"] == len(planted["list"]) >= 5
    assert sorted(zip(found["folder_site"], found["voucher_no"], found["pay_date"].map(str))) == sorted(
        (p["site_code"], p["voucher_no"], p["pay_date"]) for p in planted["list"])
    assert (found["period"] == "2026-12").all()
    assert found["pay_date"].map(lambda d: (d - PERIOD[1]).days).between(1, 20).all()
    _only(found_patterns(roster, finance), "out_of_period_payment")


def test_base_over_claim(tmp_path: Path) -> None:
    # B02 (active from March 2026) buys its equipment in the first months of its March-December 2026.
    truth, roster, finance = _fraud_sample(tmp_path, "--start", "2026-03", "--end", "2026-08", "--scale", "0.2",
                                           "--base-over-claim", "B02")  # fmt: skip
    planted = truth["patterns"]["base_over_claim"]
    b02 = finance[finance["folder_site"] == "B02"].assign(yuan=lambda f: f["amount"].map(Decimal))
    equipment = b02.loc[b02["category"] == "equipment", "yuan"].sum()
    paid = b02.loc[b02["fund_source"].isin(["provincial", "district"]), "yuan"].sum()
    assert (planted["site_code"], Decimal(planted["equipment_yuan"]), Decimal(planted["paid_yuan"])) == ("B02", equipment, paid)
    assert min(PLAN.policy.base_subsidy_share * equipment, PLAN.policy.base_subsidy_cap_yuan) < paid < Decimal(planted["plan_yuan"])
    _only(found_patterns(roster, finance, bases=("B02",)), "base_over_claim")


def test_training_overpaid(tmp_path: Path) -> None:
    truth, roster, finance = _fraud_sample(tmp_path, "--start", "2026-01", "--end", "2026-04", "--scale", "0.5",
                                           "--training-overpaid-site", "S04")  # fmt: skip
    planted = truth["patterns"]["training_overpaid"]
    found = training_overpaid(roster, finance)
    assert set(found) == {("S04", 2026)} and (planted["site_code"], planted["year"]) == ("S04", 2026)
    s04 = finance[(finance["folder_site"] == "S04") & finance["category"].isin(TRAINING)]
    assert Decimal(planted["training_yuan"]) == s04["amount"].map(Decimal).sum()
    assert planted["person_times"] == (roster["folder_site"] == "S04").sum()
    assert found[("S04", 2026)] > TRAINING_LIMIT and Decimal(planted["per_person_time_yuan"]) > TRAINING_LIMIT
    assert Decimal(truth["patterns"]["training_money_per_person_time_max_yuan"]) <= TRAINING_LIMIT
    _only(found_patterns(roster, finance), "training_overpaid")


def test_clean_year_has_no_fraud_pattern(clean_year: tuple[Path, dict[str, Any]]) -> None:
    inbox, truth = clean_year
    _only(found_patterns(load(inbox, "roster"), load(inbox, "finance"), bases=("B02",)))
    patterns = truth["patterns"]
    assert patterns["certificate_burst"] is None and patterns["base_over_claim"] is None
    assert patterns["training_overpaid"] is None and patterns["certificate_burst_clean_max"]["flagged"] == 0
    assert Decimal(patterns["training_money_per_person_time_max_yuan"]) <= TRAINING_LIMIT


@pytest.mark.parametrize(("args", "bases"), [
    # B01 (active from July 2025) buys its equipment in the first ten months of July 2025-December 2026;
    # B02's is in the clean_year window.
    pytest.param(("--start", "2025-07", "--end", "2026-04"), ("B01",), id="first-ten-months"),
    pytest.param(("--start", "2026-10", "--end", "2026-12", "--scale", "4"), (), id="scale-4"),
])  # fmt: skip
def test_clean_world_has_no_fraud_pattern(tmp_path: Path, args: tuple[str, ...], bases: tuple[str, ...]) -> None:
    truth, roster, finance = _fraud_sample(tmp_path, *args)
    _only(found_patterns(roster, finance, bases=bases))
    assert all(v is None for k, v in truth["patterns"].items() if k in ("certificate_burst", "base_over_claim",
                                                                         "training_overpaid"))  # fmt: skip
    assert truth["patterns"]["certificate_burst_clean_max"]["flagged"] == 0


def test_default_sample_plants_a_few_of_each(messy_year: tuple[Path, dict[str, Any]]) -> None:
    """The demo's default options show every pattern, each where the truth summary says."""
    inbox, truth = messy_year
    roster, finance = load(inbox, "roster"), load(inbox, "finance")
    patterns = truth["patterns"]
    for name in ("over_yearly_limit", "repeat_occupation_level", "near_retirement", "uniform_class",
                 "duplicate_invoice", "duplicate_voucher", "out_of_period_payment"):  # fmt: skip
        assert 0 < patterns[name]["total"] <= 30, name
    planted_over = [set(map(tuple, p["classes"])) for p in patterns["over_yearly_limit"]["list"]]
    assert all(c in over_yearly(roster).values() for c in planted_over)
    planted_pairs = [set(map(tuple, p)) for p in patterns["repeat_occupation_level"]["list"]]
    assert all(pair in repeats(roster).values() for pair in planted_pairs)
    assert set(map(tuple, patterns["uniform_class"]["list"])) == uniform_classes(roster)
    assert {p["invoice_no"]: set(p["sites"]) for p in patterns["duplicate_invoice"]["list"]} == duplicate_invoices(finance)
    assert len(duplicate_vouchers(finance)) == patterns["duplicate_voucher"]["total"]
    assert len(out_of_period(finance)) == patterns["out_of_period_payment"]["total"]
    assert bursts(roster) == {(patterns["certificate_burst"]["site_code"], YEAR)}
    assert set(training_overpaid(roster, finance)) == {(patterns["training_overpaid"]["site_code"], YEAR)}
    # The planted sites are active in the default window (the over-claim shows over a base's whole purchase).
    defaults = SampleOptions()
    for code, programmes in ((defaults.certificate_burst_site, {"station", "base"}), (defaults.base_over_claim, {"base"}),
                             (defaults.training_overpaid_site, {"station"})):  # fmt: skip
        site = PLAN.sites_by_code[code]
        assert site.programme in programmes and site.active_from <= dt.date.fromisoformat(f"{defaults.end}-01")


def test_site_options_are_checked(tmp_path: Path) -> None:
    for option, code in (("certificate_burst_site", "V01"), ("base_over_claim", "S01"), ("training_overpaid_site", "B01"),
                         ("certificate_burst_site", "X99")):  # fmt: skip
        with pytest.raises(ValueError, match="is not a registered"):
            generate(tmp_path / "x", SampleOptions.clean(**{option: code}), PLAN)
    assert not (tmp_path / "x").exists()
    clean = SampleOptions.clean()
    assert clean.certificate_burst_site is clean.base_over_claim is clean.training_overpaid_site is None
    assert all(rate == 0 for rate in clean.rates.values())
