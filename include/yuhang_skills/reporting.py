"""What evaluators read: the evaluation workbook (.xlsx) built from the eval_* tables.

Headers are Chinese, money is shown in yuan with two decimals, the header row is frozen, and
text that sites supplied is written as text, never as a formula (no formula injection).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa

# table -> (sheet name, [(column, Chinese header, format)]); formats: text, bool, int, yuan, num, pct
SHEETS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "eval_district": ("总览 Summary", [
        ("evaluation_year", "评价年度", "int"), ("as_of", "数据截至", "text"), ("score", "总分", "num"),
        ("grade", "等级", "text"), ("release_rule", "拨付规则", "text"), ("tranche_fen", "绩效资金(元)", "yuan"),
        ("released_fen", "拨付金额(元)", "yuan"), ("withheld_fen", "未拨付(元)", "yuan"),
        ("policy_version", "政策版本", "text"), ("input_fingerprint", "输入指纹", "text"),
        ("pii_key_is_demo", "使用演示密钥", "bool"),
    ]),
    "eval_indicator": ("指标得分 Indicators", [
        ("dimension", "维度", "text"), ("indicator", "指标代码", "text"), ("name_zh", "指标", "text"),
        ("weight", "分值", "num"), ("target", "目标值", "num"), ("actual", "实际值", "num"),
        ("numerator", "分子", "num"), ("denominator", "分母", "num"), ("points", "得分", "num"),
        ("met", "是否达标", "bool"), ("basis", "计算口径", "text"), ("source_rows", "来源行数", "int"),
    ]),
    "eval_site": ("站点年度 Sites", [
        ("site_code", "站点编码", "text"), ("year", "年度", "int"), ("indicator", "指标", "text"),
        ("target", "目标", "num"), ("actual", "实际", "num"), ("attainment", "完成度", "pct"),
        ("met", "是否达标", "bool"), ("shortfall", "差额", "num"), ("source_rows", "来源行数", "int"),
    ]),
    "eval_gap": ("差距 Gap", [
        ("indicator", "指标代码", "text"), ("name_zh", "指标", "text"), ("site_code", "站点编码", "text"),
        ("year", "年度", "int"), ("target", "目标", "num"), ("actual", "实际", "num"),
        ("additional_needed", "还需完成", "num"), ("missing_points", "失分", "num"),
        ("release_gain_fen", "可多拨付(元)", "yuan"),
    ]),
    "base_subsidy": ("基地补助 Bases", [
        ("site_code", "站点编码", "text"), ("name_zh", "基地名称", "text"),
        ("eligible_equipment_fen", "合规设备购置额(元)", "yuan"), ("entitlement_fen", "应补助(元)", "yuan"),
        ("paid_fen", "已安排资金(元)", "yuan"), ("difference_fen", "差额(元)", "yuan"),
    ]),
}


def _frame(engine: sa.Engine, table: str, evaluation_year: int) -> pd.DataFrame:
    where = " where evaluation_year = :y" if table.startswith("eval_") else ""
    return pd.read_sql(sa.text(f"select * from {table}{where}"), engine, params={"y": evaluation_year})


def write_workbook(engine: sa.Engine, path: Path, evaluation_year: int) -> Path:
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.xlsx")
    workbook = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_urls": False,
                                              "strings_to_numbers": False})
    try:
        header = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
        formats = {
            "yuan": workbook.add_format({"num_format": "#,##0.00"}),
            "num": workbook.add_format({"num_format": "0.00##"}),
            "pct": workbook.add_format({"num_format": "0.00%"}),
            "int": workbook.add_format({"num_format": "0"}),
        }
        for table, (sheet_name, columns) in SHEETS.items():
            frame = _frame(engine, table, evaluation_year)
            sheet = workbook.add_worksheet(sheet_name)
            for c, (_, title, _fmt) in enumerate(columns):
                sheet.write_string(0, c, title, header)
                sheet.set_column(c, c, max(10, len(title) * 2 + 2))
            sheet.freeze_panes(1, 0)
            for r, row in enumerate(frame.itertuples(index=False), start=1):
                values = row._asdict()
                for c, (column, _, fmt) in enumerate(columns):
                    value = values.get(column)
                    if value is None or (isinstance(value, float) and pd.isna(value)):
                        sheet.write_blank(r, c, None)
                    elif fmt == "bool":
                        sheet.write_string(r, c, "是" if bool(value) else "否")
                    elif fmt == "yuan":
                        sheet.write_number(r, c, int(value) / 100, formats["yuan"])
                    elif fmt in ("num", "pct", "int"):
                        sheet.write_number(r, c, float(value), formats[fmt])
                    else:
                        sheet.write_string(r, c, str(value))
            sheet.autofilter(0, 0, max(len(frame), 1), len(columns) - 1)
    finally:
        workbook.close()
    tmp.replace(path)
    return path
