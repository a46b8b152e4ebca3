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
import sys
import unicodedata
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from yuhang_skills.core.policy import ContractKind, Inbox


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
    return _fold(text if isinstance(text, str) else str(text))


@lru_cache(maxsize=8192)
def _fold(text: str) -> str:
    # Kept per text: every file's header names the same columns.
    s = unicodedata.normalize("NFKC", text)
    s = re.sub(r"\s+", "", s).lower()
    return s.replace("（", "(").replace("）", ")")


_LOOKUPS: dict[int, tuple[ContractKind, dict[str, str]]] = {}


def header_lookup(kind_contract: ContractKind) -> dict[str, str]:
    """Folded header spelling -> canonical column, made once per contract kind (read-only)."""
    known = _LOOKUPS.get(id(kind_contract))
    if known is not None and known[0] is kind_contract:
        return known[1]
    lookup: dict[str, str] = {}
    for column, spec in kind_contract.columns.items():
        for spelling in [column, *spec.aliases]:
            lookup[fold(spelling)] = column
    if len(_LOOKUPS) > 64:
        _LOOKUPS.clear()
    _LOOKUPS[id(kind_contract)] = (kind_contract, lookup)
    return lookup


# The delimiter and size limits of the CSV reader: a cell may be as large as the file (over-long text
# is a row problem the suite reports, never a reason to refuse the file).
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
_FIX_CSV_EN = 'save it again as "CSV UTF-8 (comma delimited)"'
_FIX_CSV_ZH = "请另存为“CSV UTF-8(逗号分隔)”后重新报送"


def _line_and_column(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and byte column of ``offset`` in ``data``."""
    line = data.count(b"\n", 0, offset) + 1
    start = data.rfind(b"\n", 0, offset) + 1
    return line, offset - start + 1


def _decode_csv(data: bytes, encodings: list[str]) -> tuple[str, str]:
    """The text of a CSV and its encoding as stored in ``submissions.encoding`` (utf-8, utf-8-bom,
    gb18030); a file that is no CSV text is refused saying what it is and where it breaks."""
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileRejected(
            f"this is an Excel workbook named .csv; rename it to .xlsx (or {_FIX_CSV_EN})",
            f"这是一个 Excel 工作簿却以 .csv 命名;请改名为 .xlsx(或{_FIX_CSV_ZH})",
            "file_type",
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileRejected(
            f"cannot decode as any of {', '.join(encodings)}: the file is UTF-16 (Unicode text); {_FIX_CSV_EN}",
            f"无法识别文件编码(已尝试 {', '.join(encodings)}):该文件为 UTF-16 编码;{_FIX_CSV_ZH}",
            "file_encoding",
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        line, column = _line_and_column(data, nul)
        raise FileRejected(
            f"the file holds a NUL byte at line {line}, byte {column}: it is not plain CSV text; {_FIX_CSV_EN}",
            f"文件第 {line} 行第 {column} 个字节处含空字符(NUL),不是纯文本 CSV;{_FIX_CSV_ZH}",
            "file_encoding",
        )
    first_error: UnicodeDecodeError | None = None
    for enc in encodings:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError as exc:
            first_error = first_error or exc
            continue
        if enc.replace("_", "-").lower().startswith("utf-8"):
            return text.removeprefix("\ufeff"), ("utf-8-bom" if data.startswith(b"\xef\xbb\xbf") else "utf-8")
        return text, enc
    where = where_zh = ""
    if first_error is not None:
        line, column = _line_and_column(data, first_error.start)
        where = f" (first bad byte 0x{data[first_error.start]:02x} at line {line}, byte {column})"
        where_zh = f"(首个无法识别的字节 0x{data[first_error.start]:02x} 位于第 {line} 行第 {column} 个字节)"
    raise FileRejected(
        f"cannot decode as any of {', '.join(encodings)}{where}; {_FIX_CSV_EN}",
        f"无法识别文件编码(已尝试 {', '.join(encodings)}){where_zh};{_FIX_CSV_ZH}",
        "file_encoding",
    )


_ROW_NUMBER = re.compile(rb"<(?:\w+:)?row\b[^>]*?\br=\"(\d+)\"")


def _xlsx_last_row(path: Path, part: str | None) -> int | None:
    """The highest row number stored in a worksheet's XML (None when it cannot be told)."""
    import zipfile

    if not part:
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            data = archive.read(part.lstrip("/"))
    except (KeyError, OSError, zipfile.BadZipFile):
        return None
    numbers = _ROW_NUMBER.findall(data)
    return max(int(n) for n in numbers) if numbers else 0


def _sheet_has_header(ws: Any, lookup: dict[str, str], search: int, need: int) -> bool:
    for row in itertools.islice(ws.iter_rows(values_only=True), search):
        if len({lookup[fold(c)] for c in row if c is not None and fold(c) in lookup}) >= need:
            return True
    return False


def _read_xlsx_grid(
    path: Path, lookup: dict[str, str] | None = None, search: int = 15, need: int = 3
) -> tuple[list[list[Any]], str]:
    """All cells of the sheet holding the submission as a list of rows (CSV is read in
    ``read_submission``): the only visible sheet, or the only visible sheet with a header row;
    hidden sheets (drafts) are never read, and several candidate sheets are refused by name."""
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
            visible = [ws for ws in wb.worksheets if getattr(ws, "sheet_state", "visible") == "visible"]
            if not visible:
                raise FileRejected(
                    "the workbook has no visible sheet; unhide the sheet with the data",
                    "工作簿中没有可见的工作表;请取消隐藏数据所在的工作表",
                    "file_readable",
                )
            chosen = visible[0]
            if len(visible) > 1 and lookup is not None:
                candidates = [ws for ws in visible if _sheet_has_header(ws, lookup, search, need)]
                if len(candidates) > 1:
                    names = ", ".join(repr(ws.title) for ws in candidates)
                    raise FileRejected(
                        f"the workbook has several visible sheets with a header row ({names}); keep the data in one "
                        f"sheet and delete or hide the others",
                        f"工作簿中有多个带表头的可见工作表({names});请只保留一个数据工作表,删除或隐藏其他工作表",
                        "file_readable",
                    )
                if candidates:
                    chosen = candidates[0]
            # A sheet's stored dimension (A1:Q2) may understate its rows, and openpyxl's read-only mode
            # then stops early: read to the last row present, and check against a count of the
            # sheet's rows made from its XML without openpyxl.
            chosen.reset_dimensions()
            rows = [list(r) for r in chosen.iter_rows(values_only=True)]
            stored = _xlsx_last_row(path, getattr(chosen, "_worksheet_path", None))
            if stored is not None and stored > len(rows):
                raise FileRejected(
                    f"sheet {chosen.title!r} has {stored} rows but {len(rows)} could be read; open it in Excel and "
                    f"save it again",
                    f"工作表 {chosen.title!r} 共有 {stored} 行,但只能读取 {len(rows)} 行;请用 Excel 打开后重新保存",
                    "file_readable",
                )
        finally:
            wb.close()
        while rows and all(v is None for v in rows[-1]):
            rows.pop()  # trailing empty rows are formatting, not data
        return rows, "xlsx"
    raise FileRejected(f"unsupported file type {suffix!r}", f"不支持的文件类型 {suffix}", "file_type")


def _csv_body(text: str, skip: int, width: int) -> pd.DataFrame | None:
    """The records after the header through pandas' C parser (a million rows in seconds), or
    None when the file needs the tolerant reader (a record wider than the header)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # a wider record: never drop cells
            return pd.read_csv(
                io.StringIO(text),
                header=None,
                skiprows=skip,
                names=list(range(width)),
                dtype=str,
                na_filter=False,
                skip_blank_lines=False,
                engine="c",
                index_col=False,
            )
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
        empty = np.fromiter(
            (v is None or v != v or (isinstance(v, str) and not v.strip()) for v in values),
            dtype=bool,
            count=len(values),
        )
        candidates = candidates[empty]
    blank = np.zeros(len(cells), dtype=bool)
    blank[candidates] = True
    return blank


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _physical_lines(text: str) -> int:
    """Lines of a text as a person counts them, without any CSV parsing."""
    if not text:
        return 0
    return len(_LINE_BREAK.findall(text)) + (0 if text.endswith(("\n", "\r")) else 1)


def _breaks(values: Any) -> np.ndarray:
    """Line breaks inside each cell of a sequence of cells."""
    return np.fromiter(
        (len(_LINE_BREAK.findall(v)) if isinstance(v, str) and ("\n" in v or "\r" in v) else 0 for v in values),
        dtype=np.int64,
    )


def _other_delimiter(text: str, lookup: dict[str, str], need: int, search: int) -> str | None:
    """The delimiter (; tab |) that would have made a header of the first rows, if any."""
    for delimiter in (";", "\t", "|"):
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        for row in itertools.islice(rows, search):
            if len({lookup[fold(c)] for c in row if fold(c) in lookup}) >= need:
                return delimiter
    return None


def _check_swallowed_lines(
    text: str,
    row_lines: np.ndarray,
    row_breaks: np.ndarray,
    cells_of: Callable[[int], list[Any]],
    width: int,
    first_line: int,
) -> None:
    """Refuse a CSV whose parse does not account for its physical lines, or in which an unbalanced
    quote made several lines one cell (rows would be lost without anyone seeing them)."""
    physical = _physical_lines(text)
    consumed = int(row_lines.sum())
    if row_breaks.any():
        starts = first_line + np.concatenate([[0], np.cumsum(row_lines)[:-1]])
        threshold = max(2, (width - 1) // 2)
        for i in np.flatnonzero(row_breaks):
            for value in cells_of(int(i)):
                if not isinstance(value, str) or not _LINE_BREAK.search(value):
                    continue
                inner = _LINE_BREAK.split(value)[1:]
                if any(line.count(",") >= threshold for line in inner):
                    start = int(starts[i])
                    end = min(start + int(row_lines[i]) - 1, physical)
                    raise FileRejected(
                        f'an unbalanced quote (") in line {start} makes lines {start}-{end} a single cell, so '
                        f"{end - start} row(s) would be lost; close or remove the quote in line {start}",
                        f'第 {start} 行有未闭合的引号("),使第 {start}-{end} 行成为一个单元格,将丢失 {end - start} 行;'
                        f"请闭合或删除第 {start} 行的引号",
                        "file_readable",
                    )
    if consumed != physical:
        raise FileRejected(
            f'the file has {physical} lines but {consumed} were read as rows; check the quotes (") and line ends; '
            f"{_FIX_CSV_EN}",
            f'文件共有 {physical} 行,但读到 {consumed} 行;请检查引号(")和换行;{_FIX_CSV_ZH}',
            "file_readable",
        )


def read_submission(path: Path, kind_contract: ContractKind, inbox_contract: Inbox) -> ParsedFile:
    search = inbox_contract.header_search_rows
    lookup = header_lookup(kind_contract)
    need = inbox_contract.header_min_matches
    text = None
    if path.suffix.lower() == ".csv":
        text, encoding = _decode_csv(path.read_bytes(), list(inbox_contract.csv_encodings))
        try:
            grid = list(itertools.islice(csv.reader(io.StringIO(text, newline="")), search))
        except csv.Error as exc:
            raise FileRejected(f"malformed CSV: {exc}", f"CSV 格式错误: {exc}", "file_readable") from exc
    else:
        grid, encoding = _read_xlsx_grid(path, lookup, search, need)
    header_idx = None
    for i, row in enumerate(grid[:search]):
        matches = {lookup[fold(c)] for c in row if c is not None and fold(c) in lookup}
        if len(matches) >= need:
            header_idx = i
            break
    if header_idx is None:
        delimiter = _other_delimiter(text, lookup, need, search) if text else None
        if delimiter:
            shown = {"\t": "tab", ";": "';'", "|": "'|'"}[delimiter]
            raise FileRejected(
                f"the columns are separated by {shown}, not by commas; {_FIX_CSV_EN}",
                f"各列以 {shown} 分隔而不是逗号;{_FIX_CSV_ZH}",
                "header_found",
            )
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
    columns = kind_contract.columns
    missing_required = [c for c, spec in columns.items() if spec.required and c not in positions]
    if missing_required:
        names = ", ".join(f"{c} ({columns[c].aliases[0]})" for c in missing_required)
        raise FileRejected(
            f"required columns missing from the header (row {header_idx + 1}): {names}",
            f"表头(第 {header_idx + 1} 行)缺少必填列: {names}",
            "required_columns_present",
        )
    width = len(header)
    cells = None
    head_lines = np.array([1 + int(_breaks(r).sum()) for r in grid[: header_idx + 1]], dtype=np.int64)
    if text is not None and not any("\n" in c or "\r" in c for r in grid[: header_idx + 1] for c in r):
        cells = _csv_body(text, header_idx + 1, width)
        if cells is not None and len(cells):
            row_breaks = np.zeros(len(cells), dtype=np.int64)
            if _physical_lines(text) != header_idx + 1 + len(cells):  # some cells hold line breaks
                row_breaks = sum((_breaks(cells[c].to_numpy(dtype=object)) for c in cells), row_breaks)
            n_head, parsed_cells = len(head_lines), cells
            _check_swallowed_lines(
                text,
                np.concatenate([head_lines, 1 + row_breaks]),
                np.concatenate([np.zeros(n_head, dtype=np.int64), row_breaks]),
                lambda i: parsed_cells.iloc[i - n_head].tolist() if i >= n_head else [],
                width,
                1,
            )
    if cells is None:
        if text is not None:  # the tolerant reader: every record, padded to the header's width
            try:
                grid = list(csv.reader(io.StringIO(text, newline="")))
            except csv.Error as exc:
                raise FileRejected(f"malformed CSV: {exc}", f"CSV 格式错误: {exc}", "file_readable") from exc
            breaks = np.array([int(_breaks(r).sum()) for r in grid], dtype=np.int64)
            _check_swallowed_lines(text, 1 + breaks, breaks, lambda i: grid[i], width, 1)
        # cells past the header's width belong to no column: every record is cut or padded to it
        body = [[*r[:width], *([None] * (width - len(r)))] for r in grid[header_idx + 1 :]]
        cells = pd.DataFrame(body, dtype=object) if body else pd.DataFrame(index=pd.RangeIndex(0), dtype=object)
    cells = cells.reset_index(drop=True)
    frame = pd.DataFrame(
        {
            c: (
                cells[positions[c]]
                if c in positions and positions[c] in cells
                else pd.Series(None, index=cells.index, dtype=object)
            )
            for c in columns
        },
        index=cells.index,
        copy=False,  # the columns are the parser's own: no copy of each
    )
    frame["source_row"] = np.arange(header_idx + 2, header_idx + 2 + len(cells), dtype=np.int64)
    # Blank lines (every cell empty) are layout, not data: dropped, and counted nowhere.
    blank = _blank_rows(cells) if len(cells) else np.zeros(0, dtype=bool)
    if blank.any():
        frame = frame.loc[~blank]
    if encoding == "xlsx":  # typed Excel cells become the text a person sees in them
        if "id_number" in frame:  # a number in Excel has lost the ID's last digits and any X
            frame["_id_typed_number"] = (
                frame["id_number"].map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).astype(bool)
            )
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
    out = pd.Series(
        values.take(np.where(codes < 0, 0, codes)) if len(values) else np.full(len(s), None, dtype=object),
        index=s.index,
        dtype=mapped.dtype if len(values) else object,
    )
    return out.where(codes >= 0, None if out.dtype == object else pd.NA)


# C0 control characters other than tab and line breaks (an XLSX cell can carry them as _x0000_):
# PostgreSQL refuses a NUL in text, and none means anything in a cell. They become U+FFFD, so the
# cell still shows where one was and fails any format check (an ID, a code, a number).
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


def _clean_text(s: pd.Series) -> pd.Series:
    text = s.astype("string").str.replace(_CONTROL, "\ufffd", regex=True).str.normalize("NFKC").str.strip()
    text = text.mask(text == "")
    return text.astype(object).where(text.notna(), None)


def clean_text(s: pd.Series) -> pd.Series:
    """NFKC (full-width digits, letters and spaces to ASCII), control characters shown as U+FFFD,
    trimmed; blank → None."""
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
# Thousands separators are accepted only where they group three digits: 1,234.50 and 12,345 are read,
# 1234,50 (a decimal comma) and 1,2,3 are left as written, so the cell is refused with its reason.
_GROUPED = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
# Money has at most this many digits before the point (NUMERIC(14,2)): anything longer is an error
# in that cell, never an overflow that stops the file.
MAX_MONEY_DIGITS = 12


def _number_text(s: pd.Series) -> pd.Series:
    text = s.astype("string").str.replace(r"[¥￥元]|^RMB", "", regex=True).str.strip()
    grouped = text.str.fullmatch(_GROUPED.pattern, na=False)
    return text.where(~grouped, text.str.replace(",", "", regex=False)).astype(object).where(text.notna(), None)


def number_text(s: pd.Series) -> pd.Series:
    """Numbers as plain text: currency signs (¥ ￥ RMB) and 元 removed, thousands separators removed
    where they group three digits (anything else with a comma stays as written and fails its check)."""
    return on_distinct(s.astype(object), _number_text).astype(object).where(s.notna(), None)


def to_numbers(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    text = number_text(s).astype("string")
    ok = text.str.fullmatch(_NUMBER.pattern, na=False) & (text.str.len() <= 30)
    values = pd.to_numeric(text.where(ok), errors="coerce").astype("float64")
    return values, s.notna() & ~ok


def to_fen(s: pd.Series) -> pd.Series:
    """Exact integer fen from decimal text with at most two decimals and MAX_MONEY_DIGITS digits
    before the point (else NA); no floats involved."""
    text = number_text(s).astype("string")
    parts = text.str.extract(rf"^(?P<int>\d{{1,{MAX_MONEY_DIGITS}}})(?:\.(?P<frac>\d{{1,2}}))?$")
    frac = parts["frac"].fillna("").str.ljust(2, "0")
    ok = parts["int"].notna()
    fen = pd.Series(pd.NA, index=s.index, dtype="Int64")
    fen[ok] = parts.loc[ok, "int"].astype("Int64") * 100 + frac[ok].astype("Int64")
    return fen


def enum_lookup(spellings: Mapping[str, Sequence[Any]]) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for code, names in spellings.items():
        for spelling in [code, *names]:
            lookup[fold(spelling)] = str(code)
    return lookup


def to_codes(s: pd.Series, spellings: Mapping[str, Sequence[Any]]) -> pd.Series:
    """Accepted spellings mapped to their code; anything else kept as written (the suite flags it)."""
    lookup = enum_lookup(spellings)

    def code_of(values: pd.Series) -> pd.Series:
        return values.map(lambda v: lookup.get(fold(v), v)).astype(object)

    return on_distinct(s.astype(object), code_of).astype(object)
