"""What evaluators read, part 1: the evaluation workbook (.xlsx), and the report frames and
formatting that the workbook and the HTML report (:mod:`yuhang_skills.evaluation.report_html`) share.

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
import json
import unicodedata
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from yuhang_skills.core import catalogue

# Display formats: text, bool (是/否), int, yuan (integer fen shown as yuan), num (2–4
# decimals), pct (a ratio shown as a percentage), date, datetime.
# table -> (sheet name, [(column, Chinese header, format)]), in sheet order.
SHEETS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "eval_district": (
        "总览 Summary",
        [
            ("evaluation_year", "评价年度", "int"),
            ("as_of", "数据截至", "date"),
            ("score", "总分", "num"),
            ("grade", "等级", "text"),
            ("release_rule", "拨付规则", "code:release_rule"),
            ("tranche_fen", "绩效资金(元)", "yuan"),
            ("released_fen", "拨付金额(元)", "yuan"),
            ("withheld_fen", "未拨付(元)", "yuan"),
            ("recoveries_fen", "追回金额(元)", "yuan"),
            ("net_released_fen", "净拨付(元)", "yuan"),
            ("excellent_bonus_fen", "优秀站点奖励(元)", "yuan"),
            ("plan_unallocated_fen", "建设计划未分配(元)", "yuan"),
            ("policy_version", "政策版本", "text"),
            ("input_fingerprint", "输入指纹", "text"),
            ("pii_key_is_demo", "使用演示密钥", "bool"),
            ("evaluated_at", "评价时间", "datetime"),
            ("score_before_exclusions", "剔除前总分", "num"),
            ("person_times_reported", "上报人次(剔除前)", "int"),
            ("person_times_counted", "计入人次(剔除后)", "int"),
        ],
    ),
    "eval_indicator": (
        "指标得分 Indicators",
        [
            ("dimension", "维度", "code:dimension"),
            ("indicator", "指标代码", "text"),
            ("name_zh", "指标", "text"),
            ("weight", "分值", "num"),
            ("target", "目标值", "pct"),
            ("actual", "实际值", "pct"),
            ("numerator", "分子", "num"),
            ("denominator", "分母", "num"),
            ("points", "得分", "num"),
            ("met", "是否达标", "bool"),
            ("margin_actual", "可下降幅度(百分点)", "pts"),
            ("basis", "计算口径", "text"),
            ("source_rows", "来源行数", "int"),
        ],
    ),
    "eval_release": (
        "拨付计算 Release",
        [
            ("component", "组成部分", "code:release_rule"),
            ("name_zh", "名称", "text"),
            ("rule", "规则", "code:release_rule"),
            ("amount_fen", "金额(元)", "yuan"),
            ("numerator", "分子", "num"),
            ("denominator", "分母", "num"),
            ("result", "结果", "pct"),
            ("target", "目标", "pct"),
            ("share", "拨付比例", "pct"),
            ("released_fen", "拨付金额(元)", "yuan"),
            ("basis", "计算口径", "text"),
        ],
    ),
    "eval_site": (
        "站点年度 Sites",
        [
            ("site_code", "站点", "site"),
            ("year", "年度", "int"),
            ("programme", "项目类型", "code:programme"),
            ("indicator", "指标", "code:site_indicator"),
            ("target", "目标", "qty"),
            ("actual", "实际", "qty"),
            ("attainment", "完成度", "pct"),
            ("met", "是否达标", "bool"),
            ("shortfall", "差额", "qty"),
            ("source_rows", "来源行数", "int"),
            ("submissions", "现行报送文件数", "int"),
            ("deadline", "整改期限", "date"),
            ("rectification_status", "整改状态", "code:rectification_status"),
            ("recovery_fen", "追回金额(元)", "yuan"),
            ("actual_reported", "剔除前实际", "qty"),
        ],
    ),
    "eval_gap": (
        "差距 Gap",
        [
            ("name_zh", "指标", "text"),
            ("site_code", "站点", "site"),
            ("year", "年度", "int"),
            ("target", "目标", "qty"),
            ("actual", "实际", "qty"),
            ("additional_needed", "还需完成", "need"),
            ("unit", "单位", "code:unit"),
            ("missing_points", "失分", "num"),
            ("release_gain_fen", "可多拨付(元)", "yuan"),
            ("indicator", "指标代码", "text"),
        ],
    ),
    "eval_rectification": (
        "整改 Rectification",
        [
            ("site_code", "站点", "site"),
            ("year", "年度", "int"),
            ("indicator", "指标", "code:site_indicator"),
            ("target", "目标", "qty"),
            ("actual", "实际", "qty"),
            ("attainment", "完成度", "pct"),
            ("deadline", "整改期限", "date"),
            ("rectified_on", "整改完成日期", "date"),
            ("status", "整改状态", "code:rectification_status"),
            ("plan_provincial_fen", "省级计划资金(元)", "yuan"),
            ("recovery_fen", "追回金额(元)", "yuan"),
            ("note", "备注", "text"),
            ("programme", "项目类型", "code:programme"),
            ("decision_row", "整改记录行号", "int"),
            ("source_rows", "来源行数", "int"),
        ],
    ),
    "eval_village": (
        "一户一技 Villages",
        [
            ("site_code", "村(社区)", "site"),
            ("year", "年度", "int"),
            ("town", "镇街", "text"),
            ("low_income_households", "低收入农户数", "int"),
            ("households_with_skill", "一户一技户数", "int"),
            ("coverage", "覆盖率", "pct"),
            ("households_short", "未覆盖户数", "int"),
            ("outcomes_reported", "已报送成效", "bool"),
        ],
    ),
    "weakest_sites": (
        "薄弱站点 Weakest",
        [
            ("indicator_zh", "指标", "text"),
            ("rank", "排名", "int"),
            ("site_code", "站点", "site"),
            ("year", "年度", "int"),
            ("target", "目标", "qty"),
            ("actual", "实际", "qty"),
            ("attainment", "完成度", "pct"),
            ("shortfall", "差额", "qty"),
            ("indicator", "指标代码", "code:site_indicator"),
        ],
    ),
    "town_rollup": (
        "镇街汇总 Towns",
        [
            ("town", "镇街", "text"),
            ("sites", "站点数", "int"),
            ("site_years", "站点年数", "int"),
            ("targets", "年度目标数", "int"),
            ("targets_met", "达标数", "int"),
            ("met_share", "达标率", "pct"),
            ("person_times", "培训人次", "int"),
            ("low_income_households", "低收入农户数", "int"),
            ("households_with_skill", "一户一技户数", "int"),
            ("coverage", "一户一技覆盖率", "pct"),
            ("recovery_fen", "追回金额(元)", "yuan"),
        ],
    ),
    "quarterly_trend": (
        "季度趋势 Quarters",
        [
            ("quarter", "季度", "text"),
            ("programme", "项目类型", "code:programme"),
            ("sites", "报送站点数", "int"),
            ("person_times", "培训人次(上报)", "int"),
            ("assessed", "参加考核", "int"),
            ("passed", "考核合格", "int"),
            ("pass_rate", "合格率", "pct"),
            ("spend_fen", "支出(元)", "yuan"),
            ("provincial_fen", "其中省级(元)", "yuan"),
        ],
    ),
    "eval_submissions": (
        "报送记录 Submissions record",
        [
            ("record", "类别", "code:record"),
            ("site_code", "站点", "site"),
            ("kind", "报送类型/指标", "code:kind"),
            ("period", "期间", "text"),
            ("due_date", "截止日", "date"),
            ("received_at", "收到时间", "datetime"),
            ("days_late", "逾期天数", "int"),
            ("detail", "说明", "text"),
        ],
    ),
    "eval_excellent_station": (
        "优秀站点 Excellent",
        [
            ("site_code", "站点", "site"),
            ("qualifies", "是否优秀", "bool"),
            ("bonus_fen", "奖励金额(元)", "yuan"),
            ("years_evaluated", "评价年数", "int"),
            ("reasons", "依据", "text"),
            ("source_rows", "来源行数", "int"),
        ],
    ),
    "eval_plan_2027": (
        "2027建设计划 Plan",
        [
            ("priority_rank", "优先序", "int"),
            ("site_code", "站点", "site"),
            ("programme", "项目类型", "code:programme"),
            ("planned_provincial_fen", "计划省级资金(元)", "yuan"),
            ("funded_fen", "可安排资金(元)", "yuan"),
            ("keeps_funding", "保留资助", "bool"),
            ("remaining_after_fen", "安排后剩余(元)", "yuan"),
        ],
    ),
    "eval_integrity": (
        "诚信核查 Integrity",
        [
            ("check_name", "核查项", "text"),
            ("severity", "处理方式", "code:severity"),
            ("findings", "发现数", "int"),
            ("excluded_rows", "剔除行数", "int"),
            ("excluded_person_times", "剔除人次(评价年度)", "int"),
            ("excluded_fen", "剔除支出(元)", "yuan"),
            ("sites", "涉及站点", "text"),
        ],
    ),
    "integrity_findings": (
        "核查明细 Findings",
        [
            ("finding_id", "编号", "int"),
            ("check_name", "核查项", "text"),
            ("severity", "处理方式", "code:severity"),
            ("site_code", "站点编码", "text"),
            ("sites", "涉及站点", "text"),
            ("year", "年度", "int"),
            ("periods", "期间", "text"),
            ("subject_kind", "对象类型", "text"),
            ("subject", "对象(个人已加密)", "text"),
            ("measure", "数值", "num"),
            ("threshold", "限值", "num"),
            ("evidence_rows", "证据行数", "int"),
            ("excluded_rows", "剔除行数", "int"),
            ("explanation_zh", "说明", "text"),
            ("explanation_en", "说明(英文)", "text"),
            ("evidence", "证据(文件与行号)", "text"),
        ],
    ),
    "base_subsidy": (
        "基地补助 Bases",
        [
            ("site_code", "站点编码", "text"),
            ("name_zh", "基地名称", "text"),
            ("eligible_equipment_fen", "合规设备购置额(元)", "yuan"),
            ("entitlement_fen", "应补助(元)", "yuan"),
            ("paid_fen", "已安排资金(元)", "yuan"),
            ("difference_fen", "差额(元)", "yuan"),
        ],
    ),
    "ind_site_year_spending": (
        "站点支出 Spending",
        [
            ("site_code", "站点编码", "text"),
            ("year", "年度", "int"),
            ("fund_source", "资金来源", "code:fund_source"),
            ("category", "支出类别", "code:category"),
            ("amount_fen", "金额(元)", "yuan"),
            ("finance_rows", "台账行数", "int"),
            ("programme", "项目类型", "code:programme"),
            ("eligible_use", "省级资金合规用途", "bool"),
            ("submissions", "报送文件数", "int"),
        ],
    ),
    "quarantine_summary": (
        "隔离汇总 Quarantine",
        [
            ("site_code", "站点编码", "text"),
            ("kind", "报送类型", "code:kind"),
            ("column_name", "字段", "text"),
            ("reason_zh", "原因", "text"),
            ("reason_en", "原因(英文)", "text"),
            ("files", "文件数", "int"),
            ("rows", "行数", "int"),
            ("current_rows", "其中现行版本行数", "int"),
            ("examples", "示例值(个人信息已脱敏)", "text"),
        ],
    ),
    "submissions_summary": (
        "报送汇总 Submissions",
        [
            ("site_code", "站点编码", "text"),
            ("kind", "报送类型", "code:kind"),
            ("files", "文件版本数", "int"),
            ("current_files", "现行文件数", "int"),
            ("accepted", "全部接收", "int"),
            ("partially_accepted", "部分接收", "int"),
            ("rejected", "退回", "int"),
            ("rows_read", "读取行数", "int"),
            ("rows_staged", "入库行数", "int"),
            ("rows_quarantined", "隔离行数", "int"),
            ("last_received_at", "最近接收时间", "datetime"),
        ],
    ),
}

# One row of a frame as pandas hands it over (DataFrame.to_dict("records"), Series.to_dict()).
Row = Mapping[Hashable, Any]

# Codes shown to evaluators: Chinese first, the English code beside it; the labels are the
# catalogue's (core/catalogue.yaml, evaluation.*). Contract code lists (fund sources, categories)
# come from include/yuhang_skills/policy/contract.yaml (the first Chinese spelling).
CODE_LABELS: dict[str, dict[str, str]] = {
    "dimension": catalogue.labels("evaluation.dimension."),
    "programme": catalogue.labels("evaluation.programme."),
    "site_indicator": catalogue.labels("evaluation.site_indicator."),
    "rectification_status": catalogue.labels("evaluation.rectification_status."),
    "severity": catalogue.labels("evaluation.severity."),
    "release_rule": catalogue.labels("evaluation.release_rule."),
    "unit": catalogue.labels("evaluation.unit."),
    "record": catalogue.labels("evaluation.record."),
    "kind": catalogue.labels("evaluation.kind."),
    "status": catalogue.labels("evaluation.status."),
}
RATE_INDICATORS = frozenset({"pass_rate", "satisfaction_rate"})
POINT_UNITS = frozenset({"pass_rate_points", "satisfaction_points"})
# Site code -> name, filled from ref_sites when report frames are read (the "site" format).
SITE_NAMES: dict[str, str] = {}


def _contract_labels() -> None:
    """Add the contract's code lists (fund_source, category) to CODE_LABELS once."""
    if "fund_source" in CODE_LABELS:
        return
    from yuhang_skills.core.policy import PolicyError, load_contract
    from yuhang_skills.core.settings import load_settings

    try:
        enums = load_contract(load_settings(use_airflow=False).contract_path).enums
    except (OSError, PolicyError):
        return
    for name in ("fund_source", "category"):
        CODE_LABELS[name] = {code: spellings[0] for code, spellings in enums.get(name, {}).items() if spellings}


def code_label(code_list: str, value: Any) -> str:
    """``逾期未整改 (overdue)``: the Chinese label with the code beside it, or the value as it is."""
    _contract_labels()
    label = CODE_LABELS.get(code_list, {}).get(str(value))
    return f"{label} ({value})" if label else str(value)


def site_label(code: Any) -> str:
    name = SITE_NAMES.get(str(code))
    return f"{code} {name}" if name else str(code)


def resolve_format(fmt: str, row: Row) -> str:
    """The format of one cell: ``qty`` (a target or actual) is a percentage for rates and a
    whole count for person-times; ``need`` (what more is needed) follows its unit."""
    if fmt == "qty":
        unit = row.get("unit")
        if unit is not None and not is_missing(unit):
            return "pct" if unit in POINT_UNITS or is_missing(row.get("site_code")) else "count"
        return "pct" if row.get("indicator") in RATE_INDICATORS else "count"
    if fmt == "need":
        unit = row.get("unit")
        return "pts" if unit in POINT_UNITS else "yuan_num" if unit == "yuan" else "count"
    return fmt


# Keys that say nothing to a reader: the one evaluation year of the file, surrogate ids.
HIDDEN_COLUMNS = frozenset({"evaluation_year", "gap_id", "run_id", "item", "name_zh"})

# The evaluation frame's dimensions in reading order (财预〔2020〕10号), Chinese and English.
DIMENSIONS: dict[str, tuple[str, str]] = {
    code: (e.zh, e.en) for code, e in catalogue.family("evaluation.dimension.").items()
}


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
    from yuhang_skills.evaluation.runs import latest_run_id

    return run_id or latest_run_id(engine, evaluation_year)


def sort_indicators(frame: pd.DataFrame) -> pd.DataFrame:
    """Indicators by dimension (frame order), then weight (largest first), then code."""
    rank = {code: n for n, code in enumerate(DIMENSIONS)}
    keys = pd.DataFrame(
        {
            "d": frame["dimension"].map(lambda d: rank.get(d, len(rank))),
            "w": -frame["weight"].astype(float),
            "c": frame["indicator"],
        }
    )
    return frame.loc[keys.sort_values(["d", "w", "c"]).index].reset_index(drop=True)


def quarantine_summary(engine: sa.Engine) -> pd.DataFrame | None:
    """Quarantine by site, kind, column and reason (the quarantine_summary mart), most rows first,
    its example values joined."""
    if _columns(engine, "quarantine_summary") is None:
        return None
    rows = pd.read_sql(sa.text("select * from quarantine_summary"), engine)
    keys = ["site_code", "kind", "column_name", "reason_zh", "reason_en"]
    examples = rows[["example_1", "example_2", "example_3"]]
    joined = pd.Series(
        ["、".join(v for v in values if isinstance(v, str)) or None for values in examples.itertuples(index=False)],
        index=rows.index,
        dtype=object,
    )
    summary = rows[[*keys, "files", "rows", "current_rows"]].assign(examples=joined)
    summary = summary.sort_values(keys, na_position="last", kind="stable")
    return summary.sort_values("rows", ascending=False, kind="stable").reset_index(drop=True)


def submissions_summary(engine: sa.Engine) -> pd.DataFrame | None:
    """The submissions manifest by site and kind (the submissions_summary mart)."""
    if _columns(engine, "submissions_summary") is None:
        return None
    files = pd.read_sql(sa.text("select * from submissions_summary order by site_code, kind"), engine)
    if files.empty:
        return pd.DataFrame(columns=[c for c, _, _ in SHEETS["submissions_summary"][1]])
    return files.assign(last_received_at=pd.to_datetime(files["last_received_at"]))


WEAKEST_PER_INDICATOR = 5  # site-years listed per indicator in "weakest sites"


def _run_frame(engine: sa.Engine, table: str, year: int, run_id: str | None) -> pd.DataFrame | None:
    frame = read_table(engine, table, year, run_id)
    return frame if frame is not None and not frame.empty else None


def weakest_sites(engine: sa.Engine, year: int, run_id: str | None) -> pd.DataFrame | None:
    """Per yearly target (and 一户一技 for villages) the site-years furthest from it, with names."""
    sites = _run_frame(engine, "eval_site", year, run_id)
    if sites is None:
        return None
    out = []
    for (programme, indicator), rows in sites.groupby(["programme", "indicator"], sort=True):
        rows = rows.assign(a=rows["attainment"].astype(float)).sort_values(["a", "site_code", "year"])
        rows = rows[rows["a"] < 1].head(WEAKEST_PER_INDICATOR)
        label = (
            f"{CODE_LABELS['programme'].get(str(programme), programme)}"
            f"{CODE_LABELS['site_indicator'].get(str(indicator), indicator)}"
        )
        for rank, r in enumerate(rows.to_dict("records"), start=1):
            out.append(
                {
                    "indicator_zh": label,
                    "rank": rank,
                    "site_code": r["site_code"],
                    "year": r["year"],
                    "target": r["target"],
                    "actual": r["actual"],
                    "attainment": r["attainment"],
                    "shortfall": r["shortfall"],
                    "indicator": indicator,
                }
            )
    villages = _run_frame(engine, "eval_village", year, run_id)
    if villages is not None:
        rows = villages[villages["coverage"].notna()]
        rows = rows.assign(c=rows["coverage"].astype(float)).sort_values(["c", "site_code", "year"])
        rows = rows[rows["c"] < 1].head(WEAKEST_PER_INDICATOR)
        for rank, r in enumerate(rows.to_dict("records"), start=1):
            out.append(
                {
                    "indicator_zh": "低收入农户“一户一技”覆盖",
                    "rank": rank,
                    "site_code": r["site_code"],
                    "year": r["year"],
                    "target": r["low_income_households"],
                    "actual": r["households_with_skill"],
                    "attainment": r["coverage"],
                    "shortfall": r["households_short"],
                    "indicator": "households",
                }
            )
    return pd.DataFrame(out, columns=[c for c, _, _ in SHEETS["weakest_sites"][1]])


def town_rollup(engine: sa.Engine, year: int, run_id: str | None) -> pd.DataFrame | None:
    """Per town/street: its sites, their yearly targets met, person-times, 一户一技 and recoveries."""
    sites = _run_frame(engine, "eval_site", year, run_id)
    if sites is None or _columns(engine, "ref_sites") is None:
        return None
    ref = pd.read_sql(sa.text("select site_code, town from ref_sites"), engine)
    years = sorted({int(y) for y in sites["year"]})
    volume = (
        pd.read_sql(sa.text("select site_code, year, person_times from ind_site_year where basis = 'counted'"), engine)
        if _columns(engine, "ind_site_year") is not None
        else pd.DataFrame(columns=["site_code", "year", "person_times"])
    )
    volume = volume[volume["year"].isin(years)].merge(ref, on="site_code")
    villages = _run_frame(engine, "eval_village", year, run_id)
    recovery = _run_frame(engine, "eval_rectification", year, run_id)
    sites = sites.merge(ref, on="site_code")
    out = []
    for town in sorted(set(ref["town"])):
        mine = sites[sites["town"] == town]
        vol = volume[volume["town"] == town]
        v = villages[villages["town"] == town] if villages is not None else None
        low = int(v["low_income_households"].fillna(0).sum()) if v is not None else 0
        skill = int(v["households_with_skill"].fillna(0).sum()) if v is not None else 0
        rec = (
            recovery[recovery["site_code"].isin(set(ref.loc[ref["town"] == town, "site_code"]))]
            if recovery is not None
            else None
        )
        targets, met = len(mine), int(mine["met"].astype(bool).sum())
        out.append(
            {
                "town": town,
                "sites": int(vol["site_code"].nunique()),
                "site_years": int(len(vol[vol["person_times"].notna()])),
                "targets": targets,
                "targets_met": met,
                "met_share": Decimal(met) / targets if targets else None,
                "person_times": int(vol["person_times"].fillna(0).sum()),
                "low_income_households": low,
                "households_with_skill": skill,
                "coverage": Decimal(skill) / low if low else None,
                "recovery_fen": int(rec["recovery_fen"].sum()) if rec is not None else 0,
            }
        )
    return pd.DataFrame(out)


def quarterly_trend(engine: sa.Engine, year: int, run_id: str | None) -> pd.DataFrame | None:
    """Per quarter of the evaluated years and programme: person-times, assessments and passes as
    the rosters reported them, and spending (all sources and provincial)."""
    sites = _run_frame(engine, "eval_site", year, run_id)
    if sites is None or _columns(engine, "ind_site_period") is None or _columns(engine, "ref_sites") is None:
        return None
    years = {str(int(y)) for y in sites["year"]}
    periods = pd.read_sql(sa.text("select * from ind_site_period"), engine)
    ref = pd.read_sql(sa.text("select site_code, programme from ref_sites"), engine)
    frame = periods.merge(ref, on="site_code")
    frame = frame[frame["period"].str[:4].isin(years)]
    if frame.empty:
        return None
    frame["quarter"] = (
        frame["period"].str[:4] + "年第" + ((frame["period"].str[5:7].astype(int) + 2) // 3).astype(str) + "季度"
    )
    order = {p: n for n, p in enumerate(CODE_LABELS["programme"])}
    out = (
        frame.groupby(["quarter", "programme"], sort=True)
        .agg(
            sites=("site_code", "nunique"),
            person_times=("person_times", "sum"),
            assessed=("assessed", "sum"),
            passed=("passed", "sum"),
            spend_fen=("spend_fen", "sum"),
            provincial_fen=("provincial_fen", "sum"),
        )
        .reset_index()
    )
    out["pass_rate"] = pd.Series(
        [Decimal(int(p)) / int(a) if a else None for p, a in zip(out["passed"], out["assessed"], strict=True)],
        index=out.index,
        dtype=object,
    )
    out["rank"] = out["programme"].map(lambda p: order.get(p, 99))
    out = out.sort_values(["quarter", "rank"]).drop(columns="rank").reset_index(drop=True)
    for column in ("person_times", "assessed", "passed", "spend_fen", "provincial_fen"):
        out[column] = out[column].fillna(0).astype(int)
    return out


def _with_year(builder: Callable[[sa.Engine], pd.DataFrame | None]) -> Callable[..., pd.DataFrame | None]:
    return lambda engine, year, run_id: builder(engine)


# Frames that are built rather than read from a table of the same name: (engine, year, run_id).
BUILDERS: dict[str, Callable[[sa.Engine, int, str | None], pd.DataFrame | None]] = {
    "weakest_sites": weakest_sites,
    "town_rollup": town_rollup,
    "quarterly_trend": quarterly_trend,
    "quarantine_summary": _with_year(quarantine_summary),
    "submissions_summary": _with_year(submissions_summary),
}


def run_info(engine: sa.Engine, run_id: str | None) -> dict[str, Any]:
    """The run's eval_runs row with its signatures (``{}`` before runs existed)."""
    if run_id is None or _columns(engine, "eval_runs") is None:
        return {}
    from yuhang_skills.evaluation import runs

    info = runs.get_run(engine, run_id)
    info["signoffs"] = runs.signoffs(engine, run_id)
    return info


def load_site_names(engine: sa.Engine) -> None:
    if _columns(engine, "ref_sites") is None:
        return
    SITE_NAMES.clear()
    for code, name in pd.read_sql(sa.text("select site_code, name_zh from ref_sites"), engine).itertuples(index=False):
        SITE_NAMES[str(code)] = str(name)


def report_frames(engine: sa.Engine, evaluation_year: int, run_id: str | None = None) -> dict[str, pd.DataFrame]:
    """Every report table the warehouse has for the run (default: the year's newest), in
    ``SHEETS`` order; absent tables are left out. A run's tables are kept as first rendered
    (``eval_report_evidence``), so every edition of its documents, the signed one made at sign-off
    included, shows the evidence the run was reviewed on, whatever intake did since."""
    run_id = resolve_run(engine, evaluation_year, run_id)
    load_site_names(engine)
    if run_id is None or _columns(engine, "eval_report_evidence") is None:
        return build_report_frames(engine, evaluation_year, run_id)
    kept = load_evidence(engine, run_id)
    if kept:
        return kept
    frames = build_report_frames(engine, evaluation_year, run_id)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.table(
                    "eval_report_evidence",
                    sa.column("run_id"),
                    sa.column("frame"),
                    sa.column("position"),
                    sa.column("payload"),
                ).insert(),
                [
                    {"run_id": run_id, "frame": name, "position": n, "payload": frame_to_json(frame)}
                    for n, (name, frame) in enumerate(frames.items())
                ],
            )
    except sa.exc.IntegrityError:  # another edition of the run kept them first: use those
        return load_evidence(engine, run_id)
    return frames


def load_evidence(engine: sa.Engine, run_id: str) -> dict[str, pd.DataFrame]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select frame, payload from eval_report_evidence where run_id = :run order by position"),
            {"run": run_id},
        ).all()
    return {name: frame_from_json(payload) for name, payload in rows}


def _encode(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, np.generic):
        return _encode(value.item())
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "decimal" in value:
            return Decimal(value["decimal"])
        if "datetime" in value:
            return dt.datetime.fromisoformat(value["datetime"])
        if "date" in value:
            return dt.date.fromisoformat(value["date"])
    return value


def frame_to_json(frame: pd.DataFrame) -> str:
    """A report table as JSON that reads back equal: columns, dtypes, and values typed
    (Decimal, dates and times tagged)."""
    return json.dumps(
        {
            "columns": [str(c) for c in frame.columns],
            "dtypes": [str(t) for t in frame.dtypes],
            "rows": [[_encode(v) for v in row] for row in frame.itertuples(index=False, name=None)],
        },
        ensure_ascii=False,
    )


def frame_from_json(text: str) -> pd.DataFrame:
    data = json.loads(text)
    frame = pd.DataFrame([[_decode(v) for v in row] for row in data["rows"]], columns=data["columns"])
    for column, dtype in zip(data["columns"], data["dtypes"], strict=True):
        if str(frame[column].dtype) != dtype:
            frame[column] = frame[column].astype(dtype)
    return frame


def build_report_frames(engine: sa.Engine, evaluation_year: int, run_id: str | None) -> dict[str, pd.DataFrame]:
    """The report tables computed from the warehouse as it is now."""
    frames: dict[str, pd.DataFrame] = {}
    for table in SHEETS:
        frame = (
            BUILDERS[table](engine, evaluation_year, run_id)
            if table in BUILDERS
            else read_table(engine, table, evaluation_year, run_id)
        )
        if frame is None:
            continue
        if table == "eval_indicator" and not frame.empty:
            frame = sort_indicators(frame)
        if table == "eval_gap" and not frame.empty:  # the most points, then yuan, at stake first
            keys = pd.DataFrame(
                {
                    "p": -frame["missing_points"].astype(float),
                    "y": -frame["release_gain_fen"].astype(float),
                    "i": frame["indicator"],
                    "s": frame["site_code"].fillna(""),
                    "n": frame["year"].fillna(0),
                }
            )
            frame = frame.loc[keys.sort_values(["p", "y", "i", "s", "n"]).index].reset_index(drop=True)
        frames[table] = frame
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
    columns += [
        ReportColumn(str(name), str(name), infer_format(str(name), frame[name]))
        for name in frame.columns
        if name not in known and name not in HIDDEN_COLUMNS
    ]
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
    percentages, whole counts ``1,235``, percentage points, codes in Chinese with the code beside
    them, sites with their names, 是/否, ISO dates; missing values as the empty string."""
    if is_missing(value):
        return ""
    if fmt == "yuan":
        return f"{yuan(value):,.2f}"
    if fmt == "yuan_num":
        return f"{to_decimal(value):,.2f}"
    if fmt == "count":
        return f"{to_decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP):,.0f}"
    if fmt == "pts":
        return f"{to_decimal(value):.2f}"
    if fmt == "site":
        return site_label(value)
    if fmt.startswith("code:"):
        return code_label(fmt[5:], value)
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


# Sheets printed as label / value rows (one wide row reads badly and prints over several pages).
VERTICAL_SHEETS = frozenset({"eval_district"})
LANDSCAPE_WIDTH = 110  # character cells: a sheet wider than this prints landscape


def run_marks(info: dict[str, Any]) -> tuple[str, str]:
    """(Chinese, English) status line of a run for headers, footers and banners."""
    if not info:
        return "", ""
    status = str(info["status"])
    zh = f"评价运行 {info['run_id']} · {CODE_LABELS['status'].get(status, status)}"
    en = f"run {info['run_id']} · {status}"
    if status == "provisional":
        zh, en = f"预评估 {zh}", f"PROVISIONAL {en}"
    return zh, en


def _xlsx_escape(text: str) -> str:
    return text.replace("&", "&&")


def write_workbook(engine: sa.Engine, path: Path, evaluation_year: int, run_id: str | None = None) -> Path:
    """Write the evaluation workbook of the run (default: the year's newest) to ``path``
    (atomically) and return it. Every sheet prints on A4, one page wide (landscape when wide), with
    its header row repeated and the run, its status and page x of y in the header and footer."""
    import xlsxwriter

    run_id = resolve_run(engine, evaluation_year, run_id)
    info = run_info(engine, run_id)
    mark_zh, mark_en = run_marks(info)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.xlsx")
    workbook = xlsxwriter.Workbook(
        str(tmp), {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    )
    try:
        header = workbook.add_format(
            {"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "top"}
        )
        wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        formats = {
            "yuan": workbook.add_format({"num_format": "#,##0.00", "valign": "top"}),
            "yuan_num": workbook.add_format({"num_format": "#,##0.00", "valign": "top"}),
            "num": workbook.add_format({"num_format": "#,##0.00##", "valign": "top"}),
            "pct": workbook.add_format({"num_format": "0.00%", "valign": "top"}),
            "pts": workbook.add_format({"num_format": "0.00", "valign": "top"}),
            "count": workbook.add_format({"num_format": "#,##0", "valign": "top"}),
            "int": workbook.add_format({"num_format": "0", "valign": "top"}),
            "date": workbook.add_format({"num_format": "yyyy-mm-dd", "valign": "top"}),
            "datetime": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss", "valign": "top"}),
        }

        def write_cell(sheet: Any, r: int, c: int, value: Any, fmt: str) -> str:
            text = format_text(value, fmt)
            if is_missing(value):
                sheet.write_blank(r, c, None)
            elif fmt == "bool":
                sheet.write_string(r, c, "是" if bool(value) else "否")
            elif fmt == "yuan":
                sheet.write_number(r, c, float(yuan(value)), formats["yuan"])
            elif fmt == "count":
                sheet.write_number(
                    r, c, float(to_decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP)), formats["count"]
                )
            elif fmt in ("num", "pct", "int", "pts", "yuan_num"):
                sheet.write_number(r, c, float(value), formats[fmt])
            elif fmt == "date":
                sheet.write_datetime(r, c, dt.datetime.combine(to_date(value), dt.time()), formats["date"])
            elif fmt == "datetime":
                sheet.write_datetime(r, c, to_datetime(value), formats["datetime"])
            else:
                sheet.write_string(r, c, text, wrap)
            return text

        def page_setup(sheet: Any, title: str, width: int, repeat: bool = True) -> None:
            sheet.set_paper(9)  # A4
            if width > LANDSCAPE_WIDTH:
                sheet.set_landscape()
            sheet.fit_to_pages(1, 0)
            sheet.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
            if repeat:
                sheet.repeat_rows(0)
            title_text = _xlsx_escape(f"余杭区技能型社会建设专项激励资金 {evaluation_year} 年绩效评价 · {title}")
            sheet.set_header(f"&L&8{title_text}&R&8{_xlsx_escape(mark_zh)}")
            sheet.set_footer(
                f"&L&8{_xlsx_escape(mark_en)}&C&8第 &P 页 / 共 &N 页 (page &P of &N)"
                f"&R&8{_xlsx_escape(str(info.get('input_fingerprint', ''))[:16])}"
            )

        frames = report_frames(engine, evaluation_year, run_id)
        for table, frame in frames.items():
            columns = layout(table, frame)
            sheet = workbook.add_worksheet(SHEETS[table][0])
            if table in VERTICAL_SHEETS:
                rows = frame.to_dict("records")
                sheet.write_string(0, 0, "项目 Item", header)
                sheet.write_string(0, 1, "数值 Value", header)
                extra = (
                    [
                        ("评价运行", info.get("run_id")),
                        ("状态", code_label("status", info["status"]) if info else None),
                        ("数据齐全日", info.get("data_complete_on")),
                    ]
                    if info
                    else []
                )
                r = 1
                for label, value in extra:
                    sheet.write_string(r, 0, label)
                    write_cell(sheet, r, 1, value, "date" if label == "数据齐全日" else "text")
                    r += 1
                for column in columns:
                    sheet.write_string(r, 0, column.header)
                    write_cell(sheet, r, 1, rows[0][column.name] if rows else None, column.fmt)
                    r += 1
                for signoff in info.get("signoffs", []):
                    sheet.write_string(r, 0, f"签署 {signoff['role']}")
                    sheet.write_string(
                        r,
                        1,
                        f"{signoff['name']} {to_datetime(signoff['signed_at']):%Y-%m-%d %H:%M}"
                        + (f" {signoff['comment']}" if signoff.get("comment") else ""),
                    )
                    r += 1
                sheet.set_column(0, 0, 26)
                sheet.set_column(1, 1, 70)
                sheet.freeze_panes(1, 0)
                page_setup(sheet, SHEETS[table][0], 96)
                continue
            widths = [display_width(c.header) for c in columns]
            for r, row in enumerate(frame.to_dict("records"), start=1):
                for c, column in enumerate(columns):
                    text = write_cell(sheet, r, c, row[column.name], resolve_format(column.fmt, row))
                    widths[c] = max(widths[c], display_width(text))
            widths = [min(40, max(8, w + 2)) for w in widths]
            for c, column in enumerate(columns):
                sheet.write_string(0, c, column.header, header)
                sheet.set_column(c, c, widths[c])
            sheet.freeze_panes(1, 0)
            if columns:
                sheet.autofilter(0, 0, max(len(frame), 1), len(columns) - 1)
            page_setup(sheet, SHEETS[table][0], sum(widths))
    finally:
        workbook.close()
    tmp.replace(path)
    return path
