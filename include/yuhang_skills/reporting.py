"""What evaluators read, part 1: the evaluation workbook (.xlsx), and the report frames and
formatting that the workbook and the HTML report (:mod:`yuhang_skills.report_html`) share.

One sheet per report table found in the warehouse: the ``eval_*`` tables of the evaluation
year, the base subsidy, the yearly spending per site, and two summaries built here (quarantine by
site, kind, column and reason; the submissions manifest by site and kind). A table that does not
exist yet is left out without complaint, so the reports follow the schema as it grows.

``SHEETS`` is the one place that maps a table's columns to Chinese headers and display formats.
Columns missing from a table are skipped; columns a table has but ``SHEETS`` does not name are
shown under their English name with a format inferred from the data, except ``HIDDEN_COLUMNS``.

Money (``*_fen``, integer fen) is shown in yuan with two decimals, the header row is frozen,
and every text value is written as a string cell, so text that sites supplied (a payee, a
quarantined value) can never become a formula (no formula injection).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import sqlalchemy as sa

# Display formats: text, bool (是/否), int, yuan (integer fen shown as yuan), num (2–4
# decimals), pct (a ratio shown as a percentage), date, datetime.
# table -> (sheet name, [(column, Chinese header, format)]), in sheet order.
SHEETS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "eval_district": ("总览 Summary", [
        ("evaluation_year", "评价年度", "int"), ("as_of", "数据截至", "date"), ("score", "总分", "num"),
        ("grade", "等级", "text"), ("release_rule", "拨付规则", "text"), ("tranche_fen", "绩效资金(元)", "yuan"),
        ("released_fen", "拨付金额(元)", "yuan"), ("withheld_fen", "未拨付(元)", "yuan"),
        ("recoveries_fen", "追回金额(元)", "yuan"), ("net_released_fen", "净拨付(元)", "yuan"),
        ("excellent_bonus_fen", "优秀站点奖励(元)", "yuan"), ("plan_unallocated_fen", "建设计划未分配(元)", "yuan"),
        ("policy_version", "政策版本", "text"), ("input_fingerprint", "输入指纹", "text"),
        ("pii_key_is_demo", "使用演示密钥", "bool"), ("evaluated_at", "评价时间", "datetime"),
        ("score_before_exclusions", "剔除前总分", "num"), ("person_times_reported", "上报人次(剔除前)", "int"),
        ("person_times_counted", "计入人次(剔除后)", "int"),
    ]),
    "eval_indicator": ("指标得分 Indicators", [
        ("dimension", "维度", "text"), ("indicator", "指标代码", "text"), ("name_zh", "指标", "text"),
        ("weight", "分值", "num"), ("target", "目标值", "num"), ("actual", "实际值", "num"),
        ("numerator", "分子", "num"), ("denominator", "分母", "num"), ("points", "得分", "num"),
        ("met", "是否达标", "bool"), ("basis", "计算口径", "text"), ("source_rows", "来源行数", "int"),
    ]),
    "eval_release": ("拨付计算 Release", [
        ("component", "组成部分", "text"), ("name_zh", "名称", "text"), ("rule", "规则", "text"),
        ("amount_fen", "金额(元)", "yuan"), ("numerator", "分子", "num"), ("denominator", "分母", "num"),
        ("result", "结果", "num"), ("target", "目标", "num"), ("share", "拨付比例", "pct"),
        ("released_fen", "拨付金额(元)", "yuan"), ("basis", "计算口径", "text"),
    ]),
    "eval_site": ("站点年度 Sites", [
        ("site_code", "站点编码", "text"), ("year", "年度", "int"), ("programme", "项目类型", "text"),
        ("indicator", "指标", "text"), ("target", "目标", "num"), ("actual", "实际", "num"),
        ("attainment", "完成度", "pct"), ("met", "是否达标", "bool"), ("shortfall", "差额", "num"),
        ("source_rows", "来源行数", "int"), ("submissions", "现行报送文件数", "int"),
        ("deadline", "整改期限", "date"), ("rectification_status", "整改状态", "text"),
        ("recovery_fen", "追回金额(元)", "yuan"), ("actual_reported", "剔除前实际", "num"),
    ]),
    "eval_gap": ("差距 Gap", [
        ("indicator", "指标代码", "text"), ("name_zh", "指标", "text"), ("site_code", "站点编码", "text"),
        ("year", "年度", "int"), ("target", "目标", "num"), ("actual", "实际", "num"),
        ("additional_needed", "还需完成", "num"), ("unit", "单位", "text"), ("missing_points", "失分", "num"),
        ("release_gain_fen", "可多拨付(元)", "yuan"),
    ]),
    "eval_rectification": ("整改 Rectification", [
        ("site_code", "站点编码", "text"), ("year", "年度", "int"), ("programme", "项目类型", "text"),
        ("indicator", "指标", "text"), ("target", "目标", "num"), ("actual", "实际", "num"),
        ("attainment", "完成度", "pct"), ("deadline", "整改期限", "date"), ("rectified_on", "整改完成日期", "date"),
        ("status", "整改状态", "text"), ("plan_provincial_fen", "省级计划资金(元)", "yuan"),
        ("recovery_fen", "追回金额(元)", "yuan"), ("note", "备注", "text"), ("decision_row", "整改记录行号", "int"),
        ("source_rows", "来源行数", "int"),
    ]),
    "eval_excellent_station": ("优秀站点 Excellent", [
        ("site_code", "站点编码", "text"), ("qualifies", "是否优秀", "bool"), ("bonus_fen", "奖励金额(元)", "yuan"),
        ("years_evaluated", "评价年数", "int"), ("reasons", "依据", "text"), ("source_rows", "来源行数", "int"),
    ]),
    "eval_plan_2027": ("2027建设计划 Plan", [
        ("priority_rank", "优先序", "int"), ("site_code", "站点编码", "text"),
        ("programme", "项目类型", "text"), ("planned_provincial_fen", "计划省级资金(元)", "yuan"),
        ("funded_fen", "可安排资金(元)", "yuan"), ("keeps_funding", "保留资助", "bool"),
        ("remaining_after_fen", "安排后剩余(元)", "yuan"),
    ]),
    "eval_integrity": ("诚信核查 Integrity", [
        ("check_name", "核查项", "text"), ("severity", "处理方式", "text"), ("findings", "发现数", "int"),
        ("excluded_rows", "剔除行数", "int"), ("excluded_person_times", "剔除人次(评价年度)", "int"),
        ("excluded_fen", "剔除支出(元)", "yuan"), ("sites", "涉及站点", "text"),
    ]),
    "integrity_findings": ("核查明细 Findings", [
        ("finding_id", "编号", "int"), ("check_name", "核查项", "text"), ("severity", "处理方式", "text"),
        ("site_code", "站点编码", "text"), ("sites", "涉及站点", "text"), ("year", "年度", "int"),
        ("subject_kind", "对象类型", "text"), ("subject", "对象(个人已加密)", "text"), ("measure", "数值", "num"),
        ("threshold", "限值", "num"), ("evidence_rows", "证据行数", "int"), ("excluded_rows", "剔除行数", "int"),
        ("explanation_zh", "说明", "text"), ("explanation_en", "说明(英文)", "text"), ("evidence", "证据(文件与行号)", "text"),
    ]),
    "base_subsidy": ("基地补助 Bases", [
        ("site_code", "站点编码", "text"), ("name_zh", "基地名称", "text"),
        ("eligible_equipment_fen", "合规设备购置额(元)", "yuan"), ("entitlement_fen", "应补助(元)", "yuan"),
        ("paid_fen", "已安排资金(元)", "yuan"), ("difference_fen", "差额(元)", "yuan"),
    ]),
    "ind_site_year_spending": ("站点支出 Spending", [
        ("site_code", "站点编码", "text"), ("year", "年度", "int"), ("fund_source", "资金来源", "text"),
        ("category", "支出类别", "text"), ("amount_fen", "金额(元)", "yuan"), ("finance_rows", "台账行数", "int"),
    ]),
    "quarantine_summary": ("隔离汇总 Quarantine", [
        ("site_code", "站点编码", "text"), ("kind", "报送类型", "text"), ("column_name", "字段", "text"),
        ("reason_zh", "原因", "text"), ("reason_en", "原因(英文)", "text"), ("files", "文件数", "int"),
        ("rows", "行数", "int"), ("current_rows", "其中现行版本行数", "int"),
        ("examples", "示例值(个人信息已脱敏)", "text"),
    ]),
    "submissions_summary": ("报送汇总 Submissions", [
        ("site_code", "站点编码", "text"), ("kind", "报送类型", "text"), ("files", "文件版本数", "int"),
        ("current_files", "现行文件数", "int"), ("accepted", "全部接收", "int"),
        ("partially_accepted", "部分接收", "int"), ("rejected", "退回", "int"), ("rows_read", "读取行数", "int"),
        ("rows_staged", "入库行数", "int"), ("rows_quarantined", "隔离行数", "int"),
        ("last_received_at", "最近接收时间", "datetime"),
    ]),
}

# Keys that say nothing to a reader: the one evaluation year of the file, surrogate ids.
HIDDEN_COLUMNS = frozenset({"evaluation_year", "gap_id", "run_id", "item"})

# The evaluation frame's dimensions in reading order (财预〔2020〕10号), Chinese and English.
DIMENSIONS: dict[str, tuple[str, str]] = {
    "budget_execution": ("预算执行", "Budget execution"),
    "outputs": ("产出", "Outputs"),
    "benefits": ("效益", "Benefits"),
    "satisfaction": ("满意度", "Satisfaction"),
}

EXAMPLES_PER_GROUP = 3


@dataclass(frozen=True)
class ReportColumn:
    name: str
    header: str
    fmt: str


# ------------------------------------------------------------------------------ reading


def _columns(engine: sa.Engine, table: str) -> list[str] | None:
    inspector = sa.inspect(engine)
    if not inspector.has_table(table):
        return None
    return [c["name"] for c in inspector.get_columns(table)]


def read_table(engine: sa.Engine, table: str, evaluation_year: int, run_id: str | None = None) -> pd.DataFrame | None:
    """The table's rows (of ``evaluation_year`` and of the run ``run_id`` when it has those
    columns) in primary-key order, or ``None`` when the warehouse has no such table."""
    columns = _columns(engine, table)
    if columns is None:
        return None
    order = sa.inspect(engine).get_pk_constraint(table).get("constrained_columns") or columns[:1]
    source = sa.table(table, *(sa.column(c) for c in columns))
    query = sa.select(source).order_by(*(source.c[c] for c in order))
    if "evaluation_year" in columns:
        query = query.where(source.c.evaluation_year == evaluation_year)
    if "run_id" in columns and run_id is not None:
        query = query.where(source.c.run_id == run_id)
    return pd.read_sql(query, engine)


def resolve_run(engine: sa.Engine, evaluation_year: int, run_id: str | None = None) -> str | None:
    """The run a report shows: ``run_id``, else the year's newest run (None before runs existed)."""
    from .runs import latest_run_id

    return run_id or latest_run_id(engine, evaluation_year)


def sort_indicators(frame: pd.DataFrame) -> pd.DataFrame:
    """Indicators by dimension (frame order), then weight (largest first), then code."""
    rank = {code: n for n, code in enumerate(DIMENSIONS)}
    keys = pd.DataFrame({"d": frame["dimension"].map(lambda d: rank.get(d, len(rank))),
                         "w": -frame["weight"].astype(float), "c": frame["indicator"]})
    return frame.loc[keys.sort_values(["d", "w", "c"]).index].reset_index(drop=True)


def quarantine_summary(engine: sa.Engine) -> pd.DataFrame | None:
    """Quarantine by site, kind, column and reason: files, distinct rows (a rejected file's
    whole-file reason counts no row), rows still in the current version of their file, and a
    few example values (masked where personal)."""
    if _columns(engine, "quarantine") is None or _columns(engine, "submissions") is None:
        return None
    rows = pd.read_sql(sa.text(
        "select q.submission_id, q.site_code, q.kind, q.source_row, q.column_name, q.value, q.reason_zh,"
        " q.reason_en, s.is_current from quarantine q left join submissions s on s.submission_id = q.submission_id"
        " order by q.site_code, q.kind, q.submission_id, q.source_row, q.column_name"), engine)
    keys = ["site_code", "kind", "column_name", "reason_zh", "reason_en"]
    row_key = rows["submission_id"] + ":" + rows["source_row"].astype("Int64").astype("string")
    current = rows["is_current"].fillna(False).astype(bool)
    rows = rows.assign(row_key=row_key, current_row_key=row_key.where(current))

    def examples(values: pd.Series) -> str | None:
        distinct = list(dict.fromkeys(str(v) for v in values.dropna() if str(v) != ""))[:EXAMPLES_PER_GROUP]
        return "、".join(distinct) or None

    summary = rows.groupby(keys, sort=True, dropna=False).agg(
        files=("submission_id", "nunique"), rows=("row_key", "nunique"),
        current_rows=("current_row_key", "nunique"), examples=("value", examples)).reset_index()
    return summary.sort_values("rows", ascending=False, kind="stable").reset_index(drop=True)


def submissions_summary(engine: sa.Engine) -> pd.DataFrame | None:
    """The submissions manifest by site and kind: file versions, current files, outcome
    counts, rows read / staged / quarantined and the latest receipt."""
    if _columns(engine, "submissions") is None:
        return None
    files = pd.read_sql(sa.text(
        "select site_code, kind, is_current, status, rows_read, rows_staged, rows_quarantined, received_at"
        " from submissions"), engine)
    if files.empty:
        return pd.DataFrame(columns=[c for c, _, _ in SHEETS["submissions_summary"][1]])
    files = files.assign(
        current=files["is_current"].astype(bool).astype(int),
        accepted=(files["status"] == "accepted").astype(int),
        partially_accepted=(files["status"] == "partially_accepted").astype(int),
        rejected=(files["status"] == "rejected").astype(int),
        received_at=pd.to_datetime(files["received_at"]),
    )
    return files.groupby(["site_code", "kind"], sort=True).agg(
        files=("status", "size"), current_files=("current", "sum"), accepted=("accepted", "sum"),
        partially_accepted=("partially_accepted", "sum"), rejected=("rejected", "sum"),
        rows_read=("rows_read", "sum"), rows_staged=("rows_staged", "sum"),
        rows_quarantined=("rows_quarantined", "sum"), last_received_at=("received_at", "max"),
    ).reset_index()


# Frames that are built rather than read from a table of the same name.
BUILDERS: dict[str, Callable[[sa.Engine], pd.DataFrame | None]] = {
    "quarantine_summary": quarantine_summary,
    "submissions_summary": submissions_summary,
}


def report_frames(engine: sa.Engine, evaluation_year: int, run_id: str | None = None) -> dict[str, pd.DataFrame]:
    """Every report table the warehouse has for the run (default: the year's newest), in
    ``SHEETS`` order; absent tables are left out."""
    run_id = resolve_run(engine, evaluation_year, run_id)
    frames: dict[str, pd.DataFrame] = {}
    for table in SHEETS:
        frame = BUILDERS[table](engine) if table in BUILDERS else read_table(engine, table, evaluation_year, run_id)
        if frame is None:
            continue
        frames[table] = sort_indicators(frame) if table == "eval_indicator" and not frame.empty else frame
    return frames


# ------------------------------------------------------------------------------ columns and values


def is_missing(value: Any) -> bool:
    return value is None or (not isinstance(value, (str, bytes)) and bool(pd.isna(value)))


def infer_format(name: str, values: pd.Series) -> str:
    """The display format of a column ``SHEETS`` does not name."""
    if name.endswith("_fen"):
        return "yuan"
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if pd.api.types.is_integer_dtype(values):
        return "int"
    if pd.api.types.is_float_dtype(values):
        return "num"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "datetime"
    present = [v for v in values if not is_missing(v)]
    if not present:
        return "text"
    if all(isinstance(v, bool) for v in present):
        return "bool"
    if all(isinstance(v, (int, float, Decimal)) for v in present):
        return "num"
    if all(isinstance(v, dt.datetime) for v in present):
        return "datetime"
    if all(isinstance(v, dt.date) for v in present):
        return "date"
    return "text"


def layout(table: str, frame: pd.DataFrame) -> list[ReportColumn]:
    """The columns to show for ``frame``: the named ones it has, in ``SHEETS`` order, then any
    others (not hidden) under their English name."""
    named = SHEETS[table][1]
    known = {name for name, _, _ in named}
    columns = [ReportColumn(name, header, fmt) for name, header, fmt in named if name in frame.columns]
    columns += [ReportColumn(str(name), str(name), infer_format(str(name), frame[name]))
                for name in frame.columns if name not in known and name not in HIDDEN_COLUMNS]
    return columns


def to_decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def yuan(fen: Any) -> Decimal:
    """Integer fen as yuan (exact)."""
    return Decimal(int(to_decimal(fen))) / 100


def to_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def to_datetime(value: Any) -> dt.datetime:
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    return dt.datetime.fromisoformat(str(value))


def format_text(value: Any, fmt: str) -> str:
    """A value as the reports show it in text: yuan ``1,234.50``, numbers with 2–4 decimals,
    percentages, 是/否, ISO dates; missing values as the empty string."""
    if is_missing(value):
        return ""
    if fmt == "yuan":
        return f"{yuan(value):,.2f}"
    if fmt == "bool":
        return "是" if bool(value) else "否"
    if fmt == "int":
        return str(int(to_decimal(value)))
    if fmt == "num":
        number = to_decimal(value).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        text = f"{number:,.4f}".rstrip("0")
        return text + "0" * (2 - len(text.split(".")[1]))
    if fmt == "pct":
        return f"{to_decimal(value) * 100:.2f}%"
    if fmt == "date":
        return to_date(value).isoformat()
    if fmt == "datetime":
        return to_datetime(value).replace(microsecond=0).isoformat(sep=" ")
    return str(value)


def display_width(text: str) -> int:
    """Width in character cells: CJK and full-width characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# ------------------------------------------------------------------------------ the workbook


def write_workbook(engine: sa.Engine, path: Path, evaluation_year: int, run_id: str | None = None) -> Path:
    """Write the evaluation workbook for ``evaluation_year`` to ``path`` (atomically) and return it."""
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.xlsx")
    workbook = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_urls": False,
                                              "strings_to_numbers": False})
    try:
        header = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                                      "valign": "top"})
        formats = {
            "yuan": workbook.add_format({"num_format": "#,##0.00"}),
            "num": workbook.add_format({"num_format": "0.00##"}),
            "pct": workbook.add_format({"num_format": "0.00%"}),
            "int": workbook.add_format({"num_format": "0"}),
            "date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
            "datetime": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        }
        for table, frame in report_frames(engine, evaluation_year, run_id).items():
            columns = layout(table, frame)
            sheet = workbook.add_worksheet(SHEETS[table][0])
            widths = [display_width(c.header) for c in columns]
            for r, row in enumerate(frame.to_dict("records"), start=1):
                for c, column in enumerate(columns):
                    value = row[column.name]
                    widths[c] = max(widths[c], display_width(format_text(value, column.fmt)))
                    if is_missing(value):
                        sheet.write_blank(r, c, None)
                    elif column.fmt == "bool":
                        sheet.write_string(r, c, "是" if bool(value) else "否")
                    elif column.fmt == "yuan":
                        sheet.write_number(r, c, float(yuan(value)), formats["yuan"])
                    elif column.fmt in ("num", "pct", "int"):
                        sheet.write_number(r, c, float(value), formats[column.fmt])
                    elif column.fmt == "date":
                        sheet.write_datetime(r, c, dt.datetime.combine(to_date(value), dt.time()), formats["date"])
                    elif column.fmt == "datetime":
                        sheet.write_datetime(r, c, to_datetime(value), formats["datetime"])
                    else:
                        sheet.write_string(r, c, str(value))
            for c, column in enumerate(columns):
                sheet.write_string(0, c, column.header, header)
                sheet.set_column(c, c, min(60, max(10, widths[c] + 2)))
            sheet.freeze_panes(1, 0)
            if columns:
                sheet.autofilter(0, 0, max(len(frame), 1), len(columns) - 1)
    finally:
        workbook.close()
    tmp.replace(path)
    return path
