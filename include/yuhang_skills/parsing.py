"""Reading what sites send: encodings, title rows, header aliases and value spellings.

A file becomes a DataFrame of cleaned strings, one column per contract column (canonical
English name), plus ``source_row``: the row number a person sees in the original file
(1-based, counting title and header rows), so every quarantine reason can point at it.
Typed conversion (dates, numbers, codes) is vectorised and never raises: a value that cannot be
read stays visible as text and the validation suite says why.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd


class FileRejected(Exception):
    """The whole file cannot be used; the message names the file and the reason (zh / en)."""

    def __init__(self, reason_en: str, reason_zh: str, expectation: str = "file_readable"):
        super().__init__(reason_en)
        self.reason_en = reason_en
        self.reason_zh = reason_zh
        self.expectation = expectation


@dataclass
class ParsedFile:
    frame: pd.DataFrame  # canonical columns as cleaned strings (None for blank) + source_row
    encoding: str
    header_row: int  # 1-based row number of the header in the original file
    unknown_columns: list[str] = field(default_factory=list)
    missing_optional: list[str] = field(default_factory=list)


def fold(text: Any) -> str:
    """The comparison form of a header or code: NFKC, no white space, lower case, ( ) brackets."""
    s = unicodedata.normalize("NFKC", str(text))
    s = re.sub(r"\s+", "", s).lower()
    return s.replace("（", "(").replace("）", ")")


def header_lookup(kind_contract: dict[str, Any]) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for column, spec in kind_contract["columns"].items():
        for spelling in [column, *spec.get("aliases", [])]:
            lookup[fold(spelling)] = column
    return lookup


def _decode_csv(data: bytes, encodings: list[str]) -> tuple[str, str]:
    for enc in encodings:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        return text, ("utf-8-bom" if enc == "utf-8-sig" and data.startswith(b"\xef\xbb\xbf") else enc)
    raise FileRejected(
        f"cannot decode as any of {', '.join(encodings)}",
        f"无法识别文件编码(已尝试 {', '.join(encodings)})",
        "file_encoding",
    )


def _read_xlsx_grid(path: Path) -> tuple[list[list[Any]], str]:
    """All cells of the first sheet as a list of rows (CSV is read in ``read_submission``)."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - any openpyxl failure means the file is unreadable
            raise FileRejected(
                f"cannot open as an Excel workbook: {type(exc).__name__}: {exc}",
                f"无法作为 Excel 工作簿打开: {type(exc).__name__}",
                "file_readable",
            ) from exc
        try:
            ws = wb.worksheets[0]
            rows = [list(r) for r in ws.iter_rows(values_only=True)]
        finally:
            wb.close()
        return rows, "xlsx"
    raise FileRejected(f"unsupported file type {suffix!r}", f"不支持的文件类型 {suffix}", "file_type")


def _csv_body(text: str, skip: int, width: int) -> pd.DataFrame | None:
    """The records after the header through pandas' C parser (a million rows in seconds), or
    None when the file needs the tolerant reader (a record wider than the header)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # a wider record: never drop cells
            return pd.read_csv(io.StringIO(text), header=None, skiprows=skip, names=list(range(width)), dtype=str,
                               na_filter=False, skip_blank_lines=False, engine="c", index_col=False)
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError):
        return None


def _blank_rows(cells: pd.DataFrame) -> np.ndarray:
    """Rows whose every cell is empty or white space. Column by column over the rows still in
    question, which after the first column are almost none."""
    candidates = np.arange(len(cells))
    for column in cells:
        if not len(candidates):
            break
        values = cells[column].to_numpy(dtype=object)[candidates]
        empty = np.fromiter((v is None or v != v or (isinstance(v, str) and not v.strip()) for v in values),
                            dtype=bool, count=len(values))
        candidates = candidates[empty]
    blank = np.zeros(len(cells), dtype=bool)
    blank[candidates] = True
    return blank


def read_submission(path: Path, kind_contract: dict[str, Any], inbox_contract: dict[str, Any]) -> ParsedFile:
    search = int(inbox_contract["header_search_rows"])
    text = None
    if path.suffix.lower() == ".csv":
        text, encoding = _decode_csv(path.read_bytes(), list(inbox_contract["csv_encodings"]))
        try:
            grid = list(itertools.islice(csv.reader(io.StringIO(text, newline="")), search))
        except csv.Error as exc:
            raise FileRejected(f"malformed CSV: {exc}", f"CSV 格式错误: {exc}", "file_readable") from exc
    else:
        grid, encoding = _read_xlsx_grid(path)
    lookup = header_lookup(kind_contract)
    need = int(inbox_contract["header_min_matches"])
    header_idx = None
    for i, row in enumerate(grid[:search]):
        matches = {lookup[fold(c)] for c in row if c is not None and fold(c) in lookup}
        if len(matches) >= need:
            header_idx = i
            break
    if header_idx is None:
        raise FileRejected(
            f"no header row found in the first {search} rows (need at least {need} known column names)",
            f"前 {search} 行中未找到表头(至少需要 {need} 个可识别的列名)",
            "header_found",
        )
    header = grid[header_idx]
    positions: dict[str, int] = {}
    unknown: list[str] = []
    for j, cell in enumerate(header):
        if cell is None or str(cell).strip() == "":
            continue
        canonical = lookup.get(fold(cell))
        if canonical is None:
            unknown.append(str(cell).strip())
        elif canonical in positions:
            raise FileRejected(
                f"column {canonical!r} appears twice in the header (row {header_idx + 1})",
                f"表头(第 {header_idx + 1} 行)中列 {canonical} 重复出现",
                "header_unique",
            )
        else:
            positions[canonical] = j
    columns = kind_contract["columns"]
    missing_required = [c for c, spec in columns.items() if spec.get("required") and c not in positions]
    if missing_required:
        names = ", ".join(f"{c} ({columns[c]['aliases'][0]})" for c in missing_required)
        raise FileRejected(
            f"required columns missing from the header (row {header_idx + 1}): {names}",
            f"表头(第 {header_idx + 1} 行)缺少必填列: {names}",
            "required_columns_present",
        )
    width = len(header)
    cells = None
    if text is not None and not any("\n" in c or "\r" in c for r in grid[:header_idx + 1] for c in r):
        cells = _csv_body(text, header_idx + 1, width)
    if cells is None:
        if text is not None:  # the tolerant reader: every record, padded to the header's width
            try:
                grid = list(csv.reader(io.StringIO(text, newline="")))
            except csv.Error as exc:
                raise FileRejected(f"malformed CSV: {exc}", f"CSV 格式错误: {exc}", "file_readable") from exc
        # cells past the header's width belong to no column: every record is cut or padded to it
        body = [[*r[:width], *([None] * (width - len(r)))] for r in grid[header_idx + 1:]]
        cells = pd.DataFrame(body, dtype=object) if body else pd.DataFrame(index=pd.RangeIndex(0), dtype=object)
    cells = cells.reset_index(drop=True)
    frame = pd.DataFrame(
        {c: (cells[positions[c]] if c in positions and positions[c] in cells else pd.Series(None, index=cells.index, dtype=object))
         for c in columns},
        index=cells.index,
    )
    frame["source_row"] = np.arange(header_idx + 2, header_idx + 2 + len(cells), dtype=np.int64)
    # Blank lines (every cell empty) are layout, not data: dropped, and counted nowhere.
    if len(cells):
        frame = frame.loc[~_blank_rows(cells)]
    if encoding == "xlsx":  # typed Excel cells become the text a person sees in them
        for canonical in columns:
            frame[canonical] = frame[canonical].map(render_cell, na_action="ignore")
    return ParsedFile(
        frame=frame.reset_index(drop=True),
        encoding=encoding,
        header_row=header_idx + 1,
        unknown_columns=unknown,
        missing_optional=[c for c in columns if c not in positions],
    )


def render_cell(v: Any) -> Any:
    """An Excel cell as text: numbers without noise (``12.0`` → ``12``), dates as ISO dates."""
    if isinstance(v, str) or v is None:
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return None if np.isnan(v) else (str(int(v)) if v.is_integer() else repr(v))
    if isinstance(v, (dt.datetime, pd.Timestamp)):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


def on_distinct(s: pd.Series, fn: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """Apply a vectorised ``fn`` to the distinct non-missing values of ``s`` only and spread the
    result back: codes, dates and names repeat, so a million rows are a few thousand values."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    if len(uniques) == len(s):
        return fn(s)
    mapped = fn(pd.Series(uniques, dtype=s.dtype if len(uniques) else object))
    values = mapped.to_numpy()
    out = pd.Series(values.take(np.where(codes < 0, 0, codes)) if len(values) else np.full(len(s), None, dtype=object),
                    index=s.index, dtype=mapped.dtype if len(values) else object)
    return out.where(codes >= 0, None if out.dtype == object else pd.NA)


def _clean_text(s: pd.Series) -> pd.Series:
    text = s.astype("string").str.normalize("NFKC").str.strip()
    text = text.mask(text == "")
    return text.astype(object).where(text.notna(), None)


def clean_text(s: pd.Series) -> pd.Series:
    """NFKC (full-width digits, letters and spaces to ASCII), trimmed; blank → None."""
    return on_distinct(s.astype(object), _clean_text).astype(object)


# Typed conversion -------------------------------------------------------------------------------
_DATE_PATTERNS = [
    re.compile(r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$"),
    re.compile(r"^(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日?$"),
    re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$"),
]
_EXCEL_EPOCH = pd.Timestamp("1899-12-30")


def to_dates(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(datetime64 series, unreadable flag). Accepts 2026-03-05, 2026/3/5, 2026年3月5日, 20260305
    and Excel serial day numbers (20000–80000, i.e. 1954–2119)."""
    dates = on_distinct(s.astype(object), _to_dates).astype("datetime64[ns]")
    return dates, s.notna() & dates.isna()


def _to_dates(s: pd.Series) -> pd.Series:
    text = s.astype("string")
    year = pd.Series(pd.NA, index=s.index, dtype="Int64")
    month = year.copy()
    day = year.copy()
    for pattern in _DATE_PATTERNS:
        parts = text.str.extract(pattern)
        hit = parts["y"].notna() & year.isna()
        year[hit] = parts.loc[hit, "y"].astype("Int64")
        month[hit] = parts.loc[hit, "m"].astype("Int64")
        day[hit] = parts.loc[hit, "d"].astype("Int64")
    frame = pd.DataFrame({"year": year, "month": month, "day": day})
    dates = pd.to_datetime(frame.dropna().astype("int64"), errors="coerce").reindex(s.index)
    serial = pd.to_numeric(text.where(text.str.fullmatch(r"\d{5}(?:\.0+)?", na=False)), errors="coerce")
    serial_ok = serial.between(20000, 80000)
    dates = dates.where(~serial_ok | dates.notna(), _EXCEL_EPOCH + pd.to_timedelta(serial.where(serial_ok), unit="D"))
    return pd.to_datetime(dates).astype("datetime64[ns]")


_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


def number_text(s: pd.Series) -> pd.Series:
    """Numbers as plain text: thousands separators, currency signs (¥ ￥ RMB) and 元 removed."""
    text = s.astype("string").str.replace(r"[,¥￥元]|^RMB", "", regex=True).str.strip()
    return text.astype(object).where(s.notna(), None)


def to_numbers(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    text = number_text(s).astype("string")
    ok = text.str.fullmatch(_NUMBER.pattern, na=False)
    values = pd.to_numeric(text.where(ok), errors="coerce").astype("float64")
    return values, s.notna() & ~ok


def to_fen(s: pd.Series) -> pd.Series:
    """Exact integer fen from decimal text with at most two decimals (else NA); no floats involved."""
    text = number_text(s).astype("string")
    parts = text.str.extract(r"^(?P<int>\d+)(?:\.(?P<frac>\d{1,2}))?$")
    frac = parts["frac"].fillna("").str.ljust(2, "0")
    ok = parts["int"].notna()
    fen = pd.Series(pd.NA, index=s.index, dtype="Int64")
    fen[ok] = parts.loc[ok, "int"].astype("Int64") * 100 + frac[ok].astype("Int64")
    return fen


def enum_lookup(spellings: dict[str, list[Any]]) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for code, names in spellings.items():
        for spelling in [code, *names]:
            lookup[fold(spelling)] = str(code)
    return lookup


def to_codes(s: pd.Series, spellings: dict[str, list[Any]]) -> pd.Series:
    """Accepted spellings mapped to their code; anything else kept as written (the suite flags it)."""
    lookup = enum_lookup(spellings)

    def code_of(values: pd.Series) -> pd.Series:
        return values.map(lambda v: lookup.get(fold(v), v)).astype(object)

    return on_distinct(s.astype(object), code_of).astype(object)
