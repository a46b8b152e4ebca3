"""What evaluators read, part 2: the evaluation report as one self-contained HTML file.

``<outputs>/evaluation_<year>_<run_id>.html`` opens in any browser without a network: the style sheet is
inline and the charts are inline SVG drawn here (no scripts, no fonts or images to fetch). It
reads the same report frames as the workbook (:func:`yuhang_skills.evaluation.reporting.report_frames`)
and shows, in Chinese with English labels: the headline, the score by dimension and indicator,
targets against actuals per site and year, the release waterfall, the gap to full release,
rectification and excellent stations when the warehouse has them, the quarantine summary, and
a note on personal data. Every piece of text is HTML-escaped, so nothing a site supplied can
add markup to the page.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from yuhang_skills.evaluation.reporting import (
    DIMENSIONS,
    SHEETS,
    Row,
    display_width,
    format_text,
    is_missing,
    layout,
    read_table,
    report_frames,
    resolve_format,
    run_info,
    run_marks,
    to_datetime,
    to_decimal,
)

NUMERIC_FORMATS = frozenset({"int", "num", "yuan", "pct", "qty", "need", "count", "pts", "yuan_num"})
DATE_FORMATS = frozenset({"date", "datetime"})
CHART_WIDTH = 960
FONT_SIZE = 13

# eval_site series drawn as target-vs-actual charts, in this order: (indicator, programme).
SITE_SERIES_LABELS: dict[str, tuple[str, str]] = {
    "person_times": ("年度培训人次", "person-times per year"),
    "pass_rate": ("年度培训合格率", "pass rate per year"),
    "satisfaction_rate": ("年度满意率", "satisfaction rate per year"),
}
PROGRAMME_LABELS: dict[str, tuple[str, str]] = {
    "station": ("技能培训站点", "training stations"),
    "base": ("技能实训基地", "practical training bases"),
    "village": ("技能型乡村(社区)", "skill villages"),
}

# Sections shown when the warehouse has their table: (table, Chinese title, English title).
OPTIONAL_SECTIONS = (
    ("eval_rectification", "整改与追回", "Rectification and recoveries"),
    ("eval_excellent_station", "优秀站点", "Excellent stations"),
    ("eval_plan_2027", "2027年建设计划", "2027 build plan"),
    ("eval_village", "一户一技覆盖(分村)", "One household, one skill: coverage per village"),
    ("weakest_sites", "各指标薄弱站点", "Weakest sites per indicator"),
    ("town_rollup", "按镇街汇总", "Roll-up by town"),
    ("quarterly_trend", "季度趋势", "Trend by quarter"),
    ("eval_submissions", "报送记录(缺报、迟报与预警)", "Submissions record: missing, late, early warnings"),
)

STYLE = """
:root { color-scheme: light; }
body { margin: 0; background: #eef1f5; color: #1f2933; line-height: 1.5;
  font-family: "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei",
  "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1040px; margin: 0 auto; padding: 28px 32px 48px; background: #fff; }
h1 { font-size: 24px; margin: 0; }
h2 { font-size: 19px; margin: 36px 0 12px; padding-bottom: 4px; border-bottom: 2px solid #2f5f98; }
h3 { font-size: 15px; margin: 20px 0 6px; }
.en { color: #5f6b7a; font-weight: normal; font-size: 0.85em; }
.subtitle { color: #5f6b7a; margin: 2px 0 18px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 12px; }
.card { border: 1px solid #d5dbe3; border-radius: 6px; padding: 10px 14px; background: #f8fafc; }
.card .label { font-size: 12px; color: #5f6b7a; }
.card .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .detail { font-size: 12px; color: #5f6b7a; }
.card.good .value { color: #23703a; }
.card.bad .value { color: #b0361f; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; font-size: 13px; margin: 16px 0 0; }
dl.meta dt { color: #5f6b7a; }
dl.meta dd { margin: 0; }
code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 12px; word-break: break-all; }
.warning { border-left: 4px solid #d08a00; background: #fff7e6; padding: 8px 12px; margin: 14px 0; font-size: 13px; }
.note { color: #5f6b7a; font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #d5dbe3; padding: 4px 7px; vertical-align: top; }
th { background: #e8eef6; text-align: left; font-weight: 600; }
th.n { white-space: nowrap; }
td.n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.d { white-space: nowrap; }
.table-wrap { overflow-x: auto; }
svg.chart { display: block; width: 100%; height: auto; margin: 6px 0 4px; }
svg.chart text { font-family: inherit; font-size: 13px; fill: #1f2933; }
svg.chart text.small { font-size: 11px; fill: #5f6b7a; }
svg.chart text.group { font-weight: 600; }
svg.chart .grid { stroke: #e3e7ed; }
svg.chart .axis { stroke: #9aa5b1; }
svg.chart .weight { fill: #e3e7ed; }
svg.chart .met { fill: #3d8b55; }
svg.chart .unmet { fill: #e0962d; }
svg.chart .target { stroke: #1f2933; stroke-width: 2; }
svg.chart .total { fill: #2f5f98; }
svg.chart .subtotal { fill: #6b93c4; }
svg.chart .decrease { fill: #c44b36; }
svg.chart .increase { fill: #3d8b55; }
svg.chart .net { fill: #23703a; }
svg.chart .connector { stroke: #9aa5b1; stroke-dasharray: 4 3; }
.legend { font-size: 12px; color: #5f6b7a; }
.legend i { display: inline-block; width: 12px; height: 12px; margin: 0 4px -2px 12px; border-radius: 2px; }
.legend i.met { background: #3d8b55; }
.legend i.unmet { background: #e0962d; }
.legend i.weight { background: #e3e7ed; }
footer { margin-top: 40px; font-size: 12px; color: #5f6b7a; }
.banner { border: 2px solid #2f5f98; padding: 6px 12px; margin: 10px 0; font-weight: 600; }
.banner.provisional { border-color: #b0361f; color: #b0361f; background: #fff1ee; }
caption { caption-side: top; text-align: left; color: #b0361f; font-weight: 600; font-size: 12px; }
table.signoffs td, table.signoffs th { font-size: 12px; }
@page { size: A4 landscape; margin: 12mm 10mm 14mm; }
@media print {
  body { background: #fff; }
  main { max-width: none; padding: 0; }
  .table-wrap { overflow: visible; }
  table { font-size: 9px; width: 100%; table-layout: auto; }
  th, td { padding: 2px 3px; word-break: break-word; }
  td.n, th.n { white-space: normal; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
  h2 { break-after: avoid; }
  svg.chart { max-width: 100%; break-inside: avoid; }
}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _label(zh: str, en: str) -> str:
    return f'{_e(zh)} <span class="en">{_e(en)}</span>'


def _yuan_text(fen: Any) -> str:
    return format_text(fen, "yuan")


# ------------------------------------------------------------------------------ SVG primitives


def _text_width(text: str, size: float = FONT_SIZE) -> float:
    """Rendered width estimate: a CJK character is one em, other characters a little over half."""
    return display_width(text) * size * 0.56


def _svg(height: float, title: str, body: Iterable[str], chart: str) -> str:
    return (
        f'<svg class="chart" data-chart="{_e(chart)}" role="img" aria-label="{_e(title)}" '
        f'viewBox="0 0 {CHART_WIDTH} {height:.0f}">'
        f"<title>{_e(title)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, cls: str = "", anchor: str = "start") -> str:
    css = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}"{css} text-anchor="{anchor}">{_e(text)}</text>'


def _rect(x: float, y: float, w: float, h: float, cls: str, tip: str, **data: Any) -> str:
    attrs = "".join(f' data-{k.replace("_", "-")}="{_e(v)}"' for k, v in data.items())
    return (
        f'<rect class="{cls}" x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}"{attrs}>'
        f"<title>{_e(tip)}</title></rect>"
    )


def _line(x1: float, y1: float, x2: float, y2: float, cls: str) -> str:
    return f'<line class="{cls}" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"/>'


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round axis ticks (steps of 1, 2 or 5 times a power of ten) covering ``low`` to ``high``;
    ``low`` is at most 0, so 0 is always a tick."""
    if high - low <= 0:
        return [0.0, 1.0]
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [step * i for i in range(math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9) + 1)]


# ------------------------------------------------------------------------------ charts


def score_chart(indicators: pd.DataFrame) -> str:
    """Horizontal bars per indicator, grouped by dimension: points scored over the weight."""
    rows: list[tuple[str, Any]] = []
    for dimension, group in indicators.groupby("dimension", sort=False):
        rows.append(("group", (dimension, group)))
        rows.extend(("indicator", r) for r in group.to_dict("records"))
    names = [str(r["name_zh"]) for kind, r in rows if kind == "indicator"]
    left = min(380.0, max(_text_width(n) for n in names) + 24)
    right = 110.0
    scale = (CHART_WIDTH - left - right) / float(max(to_decimal(w) for w in indicators["weight"]))
    body, y = [], 8.0
    for kind, item in rows:
        if kind == "group":
            dimension, group = item
            zh, en = DIMENSIONS.get(str(dimension), (str(dimension), ""))
            points = sum((to_decimal(p) for p in group["points"]), Decimal(0))
            weight = sum((to_decimal(w) for w in group["weight"]), Decimal(0))
            body.append(_text(8, y + 17, f"{zh} {en}", "group"))
            body.append(
                _text(
                    CHART_WIDTH - 8,
                    y + 17,
                    f"{format_text(points, 'num')} / {format_text(weight, 'num')}",
                    "group",
                    "end",
                )
            )
            y += 28
            continue
        row = item
        bar_weight, bar_points = float(to_decimal(row["weight"])), float(to_decimal(row["points"]))
        score = f"{format_text(row['points'], 'num')} / {format_text(row['weight'], 'num')}"
        tip = f"{row['name_zh']} ({row['indicator']}): {score}"
        body.append(_text(left - 10, y + 13, str(row["name_zh"]), anchor="end"))
        body.append(_text(left - 10, y + 27, str(row["indicator"]), "small", "end"))
        body.append(_rect(left, y + 3, bar_weight * scale, 18, "weight", tip, indicator=row["indicator"]))
        state = "met" if points >= weight else "unmet"
        body.append(_rect(left, y + 3, bar_points * scale, 18, f"points {state}", tip, indicator=row["indicator"]))
        body.append(_text(left + bar_weight * scale + 8, y + 17, score))
        y += 36
    return _svg(y + 6, "评分构成:各指标得分与分值 Score breakdown: points against weight per indicator", body, "score")


def _amount(value: Any, rate: bool) -> str:
    """A site-year target or actual: a percentage for rates, else a count with at most two
    decimals (pro-rated targets such as 416.67)."""
    if is_missing(value):
        return ""
    if rate:
        return format_text(value, "pct")
    number = to_decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{number:,.0f}" if number == number.to_integral_value() else f"{number:,.2f}"


def _is_rate(rows: pd.DataFrame) -> bool:
    """Whether a series of site-year targets are rates (every target at most 1)."""
    return all(to_decimal(t) <= 1 for t in rows["target"])


def target_chart(rows: pd.DataFrame, site_names: dict[str, str], title: str, chart: str) -> str:
    """Horizontal bars per site and year: the actual, with the target marked; percentages when
    the targets are rates."""
    rate = _is_rate(rows)
    records = rows.to_dict("records")
    labels = [
        " ".join(
            part for part in (str(r["site_code"]), site_names.get(r["site_code"], ""), str(int(r["year"]))) if part
        )
        for r in records
    ]
    left = max(_text_width(label) for label in labels) + 24
    right = 150.0
    actuals = [0.0 if is_missing(r["actual"]) else float(to_decimal(r["actual"])) for r in records]
    targets = [float(to_decimal(r["target"])) for r in records]
    top = 1.0 if rate else max(actuals + targets)
    ticks = nice_ticks(0, top)
    scale = (CHART_WIDTH - left - right) / ticks[-1]
    height = 24 + 26 * len(records) + 8
    body = []
    for tick in ticks:
        x = left + tick * scale
        body.append(_line(x, 18, x, height - 8, "grid"))
        body.append(_text(x, 12, f"{tick:.0%}" if rate else f"{tick:,.0f}", "small", "middle"))
    for n, (record, label, actual, target) in enumerate(zip(records, labels, actuals, targets, strict=True)):
        y = 24 + 26 * n
        state = "met" if bool(record["met"]) else "unmet"
        shown = f"{_amount(record['actual'], rate) or '—'} / {_amount(record['target'], rate)}"
        body.append(_text(left - 10, y + 14, label, anchor="end"))
        body.append(
            _rect(
                left,
                y + 3,
                actual * scale,
                16,
                f"actual {state}",
                f"{label}: {shown}",
                site=record["site_code"],
                year=int(record["year"]),
            )
        )
        body.append(_line(left + target * scale, y, left + target * scale, y + 22, "target"))
        body.append(_text(left + max(actual, target) * scale + 8, y + 15, shown))
    body.append(_line(left, 18, left, height - 8, "axis"))
    return _svg(height, title, body, chart)


@dataclass(frozen=True)
class Step:
    """One column of the release waterfall, in fen: a bar from ``start`` to ``end``."""

    zh: str
    en: str
    kind: str  # total, decrease, increase, subtotal, net
    start: int
    end: int


def waterfall_steps(district: Row) -> list[Step]:
    """Tranche → withheld → released → recoveries → net release. Recoveries and the net release
    appear when eval_district has them; a net release that is not released minus recoveries
    gets an explicit "other adjustments" step, so the columns always add up."""
    tranche, released = int(district["tranche_fen"]), int(district["released_fen"])
    steps = [
        Step("绩效资金", "Performance tranche", "total", 0, tranche),
        Step("未拨付", "Withheld", "decrease", tranche, released),
        Step("核定拨付", "Released by score", "subtotal", 0, released),
    ]
    recoveries: Any = district.get("recoveries_fen")  # None or NaN for a run written before recoveries
    net: Any = district.get("net_released_fen")
    if is_missing(recoveries) and is_missing(net):
        return steps
    level = released
    if not is_missing(recoveries):
        steps.append(Step("追回", "Recoveries", "decrease", level, level - int(recoveries)))
        level -= int(recoveries)
    net_fen = level if is_missing(net) else int(net)
    if net_fen != level:
        steps.append(
            Step("其他调整", "Other adjustments", "increase" if net_fen > level else "decrease", level, net_fen)
        )
    steps.append(Step("净拨付", "Net release", "net", 0, net_fen))
    return steps


def _step_amount(step: Step) -> str:
    """A column's amount in yuan: totals as they stand, changes signed (+ / −)."""
    amount = step.end - step.start
    if step.kind in ("total", "subtotal", "net"):
        return _yuan_text(amount)
    sign = "+" if amount > 0 else "−" if amount < 0 else ""
    return sign + _yuan_text(abs(amount))


def waterfall_chart(steps: list[Step]) -> str:
    """Columns in yuan: totals from zero, changes floating between the levels they join."""
    top_y, bottom_y, left = 34.0, 270.0, 110.0
    levels = [fen / 100 for s in steps for fen in (s.start, s.end)]
    ticks = nice_ticks(min(0.0, *levels), max(levels))
    scale = (bottom_y - top_y) / (ticks[-1] - ticks[0])
    slot = (CHART_WIDTH - left - 20) / len(steps)
    width = min(110.0, slot * 0.6)

    def y_of(fen: int) -> float:
        return bottom_y - (fen / 100 - ticks[0]) * scale

    body = [_text(8, 14, "单位:元 yuan", "small")]
    for tick in ticks:
        y = bottom_y - (tick - ticks[0]) * scale
        body.append(_line(left, y, CHART_WIDTH - 20, y, "grid"))
        body.append(_text(left - 8, y + 4, f"{tick:,.0f}", "small", "end"))
    for n, step in enumerate(steps):
        x = left + slot * n + (slot - width) / 2
        high, low = max(step.start, step.end), min(step.start, step.end)
        value = _step_amount(step)
        body.append(
            _rect(
                x,
                y_of(high),
                width,
                max(y_of(low) - y_of(high), 1.0),
                step.kind,
                f"{step.zh} {step.en}: {value}",
                step=step.en,
            )
        )
        body.append(_text(x + width / 2, y_of(high) - 6, value, anchor="middle"))
        body.append(_text(x + width / 2, bottom_y + 20, step.zh, anchor="middle"))
        body.append(_text(x + width / 2, bottom_y + 36, step.en, "small", "middle"))
        if n + 1 < len(steps):
            body.append(_line(x + width, y_of(step.end), x + slot, y_of(step.end), "connector"))
    body.append(_line(left, y_of(0), CHART_WIDTH - 20, y_of(0), "axis"))
    return _svg(bottom_y + 46, "拨付瀑布图 Release waterfall", body, "waterfall")


# ------------------------------------------------------------------------------ tables and sections


def table_html(table: str, frame: pd.DataFrame, only: list[str] | None = None, caption: str = "") -> str:
    """``frame`` as an HTML table with the workbook's headers and formats (``only``: a subset of
    columns, in that order; ``caption``: e.g. the provisional mark)."""
    columns = layout(table, frame)
    if only is not None:
        by_name = {c.name: c for c in columns}
        columns = [by_name[name] for name in only if name in by_name]
    head = "".join(
        f'<th class="n">{_e(c.header)}</th>' if c.fmt in NUMERIC_FORMATS else f"<th>{_e(c.header)}</th>"
        for c in columns
    )
    opening = [
        '<td class="n">' if c.fmt in NUMERIC_FORMATS else '<td class="d">' if c.fmt in DATE_FORMATS else "<td>"
        for c in columns
    ]
    body = []
    for row in frame.to_dict("records"):
        cells = "".join(
            f"{td}{_e(format_text(row[c.name], resolve_format(c.fmt, row)))}</td>"
            for td, c in zip(opening, columns, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    caption_html = f"<caption>{_e(caption)}</caption>" if caption else ""
    return (
        f'<div class="table-wrap"><table data-table="{_e(table)}">{caption_html}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _headline(district: Row) -> str:
    tranche, released = int(district["tranche_fen"]), int(district["released_fen"])
    share = Decimal(released) / Decimal(tranche) if tranche else Decimal(0)
    cards = [
        ("总分", "Score", format_text(district["score"], "num"), "满分 100 out of 100", ""),
        ("等级", "Grade", str(district["grade"]), f"拨付规则 release rule: {district['release_rule']}", ""),
        (
            "拨付",
            "Released",
            f"{_yuan_text(released)} 元",
            f"绩效资金 {_yuan_text(tranche)} 元的 {format_text(share, 'pct')}",
            "good" if released == tranche else "",
        ),
        (
            "未拨付",
            "Withheld",
            f"{_yuan_text(district['withheld_fen'])} 元",
            "按评分规则 by the release rule",
            "bad" if int(district["withheld_fen"]) else "",
        ),
    ]
    optional = [
        ("recoveries_fen", "追回", "Recoveries", "未按期整改站点 sites not rectified in time", "bad"),
        ("net_released_fen", "净拨付", "Net release", "拨付减追回 released less recoveries", "good"),
        ("excellent_bonus_fen", "优秀站点奖励", "Excellent-station bonus", "优秀站点 excellent stations", ""),
        (
            "plan_unallocated_fen",
            "建设计划未分配",
            "Unallocated in the 2027 plan",
            "净拨付中未安排到站点 net release no site takes",
            "",
        ),
    ]
    for column, zh, en, detail, css in optional:
        if not is_missing(district.get(column)):
            cards.append((zh, en, f"{_yuan_text(district[column])} 元", detail, css))
    card_html = "".join(
        f'<div class="card {css}" data-card="{_e(en)}"><div class="label">{_label(zh, en)}</div>'
        f'<div class="value">{_e(value)}</div><div class="detail">{_e(detail)}</div></div>'
        for zh, en, value, detail, css in cards
    )
    meta = [
        ("拨付规则", "Release rule", district["release_rule"], "text"),
        ("政策版本", "Policy version", district["policy_version"], "text"),
        ("数据截至", "As of", district["as_of"], "date"),
        ("评价时间", "Evaluated at", district.get("evaluated_at"), "datetime"),
        ("输入指纹", "Input fingerprint (sha256)", district["input_fingerprint"], "code"),
    ]
    meta_html = "".join(
        f"<dt>{_label(zh, en)}</dt><dd>"
        + (f"<code>{_e(value)}</code>" if fmt == "code" else _e(format_text(value, fmt)))
        + "</dd>"
        for zh, en, value, fmt in meta
        if not is_missing(value)
    )
    warning = ""
    if bool(district.get("pii_key_is_demo")):
        warning = (
            '<p class="warning">个人信息使用演示密钥哈希,仅供演示;正式评价须设置 YUHANG_PII_KEY。'
            '<span class="en">Personal data was hashed with the documented demo key; set YUHANG_PII_KEY '
            "for a real evaluation.</span></p>"
        )
    return (
        f'<section id="headline"><h2>{_label("评价结论", "Headline")}</h2>'
        f'<div class="cards">{card_html}</div>{warning}<dl class="meta">{meta_html}</dl></section>'
    )


def _score_section(indicators: pd.DataFrame) -> str:
    if indicators.empty:
        return ""
    dimensions = []
    for dimension, group in indicators.groupby("dimension", sort=False):
        zh, en = DIMENSIONS.get(str(dimension), (str(dimension), ""))
        points = sum((to_decimal(p) for p in group["points"]), Decimal(0))
        weight = sum((to_decimal(w) for w in group["weight"]), Decimal(0))
        dimensions.append(
            f'<tr><td>{_label(zh, en)}</td><td class="n">{_e(format_text(points, "num"))}</td>'
            f'<td class="n">{_e(format_text(weight, "num"))}</td></tr>'
        )
    summary = (
        '<table data-table="dimensions"><thead><tr><th>维度 Dimension</th><th>得分 Points</th>'
        f"<th>分值 Weight</th></tr></thead><tbody>{''.join(dimensions)}</tbody></table>"
    )
    legend = (
        '<p class="legend"><i class="met"></i>得分(达标) points, target met'
        '<i class="unmet"></i>得分(未达标) points, target missed<i class="weight"></i>分值 weight</p>'
    )
    details = table_html(
        "eval_indicator", indicators, ["name_zh", "indicator", "weight", "target", "actual", "points", "met", "basis"]
    )
    return (
        f'<section id="score"><h2>{_label("评分构成", "Score breakdown")}</h2>{summary}'
        f"{score_chart(indicators)}{legend}<h3>{_label('指标明细', 'Indicators')}</h3>{details}</section>"
    )


def _sites_section(sites: pd.DataFrame, site_names: dict[str, str]) -> str:
    if sites.empty:
        return ""
    indicators, programmes = list(SITE_SERIES_LABELS), list(PROGRAMME_LABELS)

    def rank(pair: tuple[str, str]) -> tuple[int, int, str, str]:
        indicator, programme = pair
        return (
            indicators.index(indicator) if indicator in indicators else len(indicators),
            programmes.index(programme) if programme in programmes else len(programmes),
            indicator,
            programme,
        )

    parts = []
    for indicator, programme in sorted(set(zip(sites["indicator"], sites["programme"], strict=True)), key=rank):
        rows = sites[(sites["indicator"] == indicator) & (sites["programme"] == programme)]
        rows = rows.sort_values(["site_code", "year"])
        what_zh, what_en = SITE_SERIES_LABELS.get(indicator, (indicator, indicator))
        who_zh, who_en = PROGRAMME_LABELS.get(programme, (programme, programme))
        targets = {_amount(t, _is_rate(rows)) for t in rows["target"]}
        target_note = (
            f"目标 target {targets.pop()}"
            if len(targets) == 1
            else "目标按启用月数折算 targets pro-rated by months active"
        )
        zh, en = f"{who_zh}{what_zh}", f"{who_en}: {what_en}"
        met = int(rows["met"].astype(bool).sum())
        parts.append(
            f'<h3>{_label(zh, en)}</h3><p class="note">{_e(target_note)};'
            f"{met} / {len(rows)} 个站点年度达标 site-years met the target;"
            "竖线为目标 the dark line marks the target.</p>"
            + target_chart(rows, site_names, f"{zh} {en}", f"{indicator}:{programme}")
        )
    heading = _label("站点目标与实际", "Targets vs actuals per site")
    return f'<section id="sites"><h2>{heading}</h2>{"".join(parts)}</section>'


def _release_section(district: Row, release: pd.DataFrame | None) -> str:
    steps = waterfall_steps(district)
    rows = "".join(f'<tr><td>{_label(s.zh, s.en)}</td><td class="n">{_e(_step_amount(s))}</td></tr>' for s in steps)
    computation = ""
    if release is not None and not release.empty:
        computation = (
            f"<h3>{_label('拨付计算', 'How the release was computed')}</h3>{table_html('eval_release', release)}"
        )
    return (
        f'<section id="release"><h2>{_label("拨付瀑布", "Release waterfall")}</h2>{waterfall_chart(steps)}'
        f'<table data-table="waterfall"><thead><tr><th>步骤 Step</th><th class="n">金额(元) Amount (yuan)</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>{computation}</section>"
    )


def _gap_section(gaps: pd.DataFrame, indicators: pd.DataFrame | None = None) -> str:
    if gaps.empty:
        content = (
            '<p class="note">所有指标均已满分,没有差距。<span class="en">Every indicator scores full points.</span></p>'
        )
    else:
        content = (
            '<p class="note">按失分和可多拨付金额从大到小排列;站点为空的行是全区指标;可多拨付为其他条件不变时'
            '补足该项可多拨付的金额。<span class="en">Sorted by the points, then the yuan, at stake; rows '
            "without a site are district indicators; the yuan is what meeting that target alone would "
            "release in addition.</span></p>" + table_html("eval_gap", gaps)
        )
    margin = ""
    if indicators is not None and "margin_actual" in indicators and indicators["margin_actual"].notna().any():
        margin = (
            f"<h3>{_label('安全边际', 'Margin before the release drops')}</h3>"
            '<p class="note">得分已达到全额拨付档:下表为其他指标不变时,各指标实际值最多可下降多少个百分点而拨付额不变。'
            '<span class="en">The score is in the full-release band: how many percentage points each '
            "indicator can fall, all else equal, before the release drops.</span></p>"
            + table_html(
                "eval_indicator",
                indicators.sort_values("margin_actual", kind="stable"),
                ["name_zh", "target", "actual", "points", "margin_actual"],
            )
        )
    return f'<section id="gap"><h2>{_label("差距", "Gap to full release")}</h2>{content}{margin}</section>'


def _integrity_section(district: Row, checks: pd.DataFrame | None) -> str:
    """What the integrity checks found and what leaving their rows out did to the score."""
    if checks is None or checks.empty or is_missing(district.get("score_before_exclusions")):
        return ""
    findings = int(checks["findings"].sum())
    reported, counted = int(district["person_times_reported"]), int(district["person_times_counted"])
    before, after = Decimal(str(district["score_before_exclusions"])), Decimal(str(district["score"]))
    summary = (
        f'<p data-summary="integrity">诚信核查共发现 {findings:,} 项问题'
        f"(明细见工作簿“{SHEETS['integrity_findings'][0]}”)。"
        f"评价年度上报 {reported:,} 人次,剔除重复计算等问题后计入 {counted:,} 人次;"
        f"剔除前总分 {before:.2f},剔除后 {after:.2f}(影响 {after - before:+.2f} 分)。"
        f'<br><span class="en">The integrity checks found {findings:,} issue(s) (every one in the workbook sheet '
        f'"{SHEETS["integrity_findings"][0]}"). The sites reported {reported:,} person-times in the evaluated years; '
        f"{counted:,} count once double counting and the other excluded rows are left out. Score before exclusions "
        f"{before:.2f}, after {after:.2f} ({after - before:+.2f} points).</span></p>"
    )
    return (
        f'<section id="integrity"><h2>{_label("诚信核查", "Integrity checks")}</h2>{summary}'
        f"{table_html('eval_integrity', checks)}</section>"
    )


def _quarantine_section(frames: dict[str, pd.DataFrame]) -> str:
    parts = []
    files = frames.get("submissions_summary")
    if files is not None and not files.empty:
        total = {
            c: int(files[c].sum())
            for c in (
                "files",
                "current_files",
                "accepted",
                "partially_accepted",
                "rejected",
                "rows_read",
                "rows_staged",
                "rows_quarantined",
            )
        }
        parts.append(
            f'<p data-summary="submissions">共收到 {total["files"]:,} 个文件版本(现行 {total["current_files"]:,}):'
            f"全部接收 {total['accepted']:,},部分接收 {total['partially_accepted']:,},退回 {total['rejected']:,};"
            f"读取 {total['rows_read']:,} 行,入库 {total['rows_staged']:,} 行,隔离 {total['rows_quarantined']:,} 行。"
            f'<br><span class="en">{total["files"]:,} file versions received ({total["current_files"]:,} current): '
            f"{total['accepted']:,} accepted, {total['partially_accepted']:,} partially accepted, "
            f"{total['rejected']:,} rejected; {total['rows_read']:,} rows read, {total['rows_staged']:,} staged, "
            f"{total['rows_quarantined']:,} quarantined.</span></p>"
        )
    summary = frames.get("quarantine_summary")
    if summary is not None and not summary.empty:
        parts.append(table_html("quarantine_summary", summary))
    elif summary is not None:
        parts.append('<p class="note">没有被隔离的数据。<span class="en">Nothing was quarantined.</span></p>')
    if not parts:
        return ""
    return f'<section id="quarantine"><h2>{_label("隔离汇总", "Quarantine summary")}</h2>{"".join(parts)}</section>'


PRIVACY_NOTE = (
    '<section id="privacy"><h2>' + _label("个人信息", "Personal data") + "</h2>"
    "<p>本报告和工作簿不含姓名、身份证号的明文:数仓只保存其带密钥的哈希值,隔离记录中的身份证号和姓名仅以脱敏形式出现"
    "(如 330110********1234、张**)。站点联系人等其他个人信息不进入报告。</p>"
    '<p class="en">Neither this report nor the workbook contains a name or ID number in clear: the warehouse keeps '
    "them only as keyed hashes, and quarantined ID numbers and names appear masked only "
    "(e.g. 330110********1234, 张**). Site contacts and other personal details are not reported.</p></section>"
)


def _run_section(info: dict[str, Any], mark_zh: str, mark_en: str) -> str:
    """The run: its id and status (预评估 in red), data-complete date and the signatures so far."""
    if not info:
        return ""
    css = "banner provisional" if info["status"] == "provisional" else "banner"
    note = ""
    if info["status"] == "provisional":
        note = (
            f'<p class="warning">预评估:截止日期早于评价期数据齐全之日 {_e(str(info.get("data_complete_on") or ""))},'
            '结果不能作为拨付依据。<span class="en">Provisional: the as-of date is before the evaluated period\'s '
            "data can be complete; not a basis for the release.</span></p>"
        )
    rows = "".join(
        f"<tr><td>{_e(s['role'])}</td><td>{_e(s['name'])}</td>"
        f"<td>{_e(to_datetime(s['signed_at']).strftime('%Y-%m-%d %H:%M'))}</td>"
        f"<td>{_e(s.get('comment') or '')}</td></tr>"
        for s in info.get("signoffs", [])
    )
    signoffs = (
        f'<table class="signoffs" data-table="signoffs"><thead><tr><th>角色 Role</th><th>签署人 Name</th>'
        f"<th>时间 Signed at</th><th>意见 Comment</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else '<p class="note">尚无签署。<span class="en">Not signed yet.</span></p>'
    )
    return (
        f'<section id="run"><p class="{css}">{_e(mark_zh)} <span class="en">{_e(mark_en)}</span></p>{note}'
        f"{signoffs}</section>"
    )


def _site_names(engine: sa.Engine, evaluation_year: int) -> dict[str, str]:
    """Site code → town, from ref_sites when the warehouse has it."""
    sites = read_table(engine, "ref_sites", evaluation_year)
    if sites is None:
        return {}
    return {str(r["site_code"]): str(r["town"]) for r in sites.to_dict("records")}


def render_report(engine: sa.Engine, evaluation_year: int, run_id: str | None = None) -> str:
    """The report page of the run ``run_id`` (default: the year's newest) as an HTML string."""
    from yuhang_skills.evaluation.reporting import resolve_run

    run_id = resolve_run(engine, evaluation_year, run_id)
    frames = report_frames(engine, evaluation_year, run_id)
    workbook_name = f"evaluation_{evaluation_year}_{run_id}.xlsx" if run_id else f"evaluation_{evaluation_year}.xlsx"
    district_frame = frames.get("eval_district")
    if district_frame is None or district_frame.empty:
        raise LookupError(f"the warehouse has no evaluation for {evaluation_year}; run the evaluation first")
    district = district_frame.iloc[0].to_dict()
    empty = pd.DataFrame()
    optional = "".join(
        f'<section id="{_e(table)}"><h2>{_label(zh, en)}</h2>{table_html(table, frames[table])}</section>'
        for table, zh, en in OPTIONAL_SECTIONS
        if table in frames
    )
    title_zh = f"余杭区技能型社会建设专项激励资金 {evaluation_year} 年绩效评价报告"
    title_en = f"Yuhang District skill-society incentive fund — {evaluation_year} performance evaluation"
    info = run_info(engine, run_id)
    mark_zh, mark_en = run_marks(info)
    provisional = info.get("status") == "provisional"
    sections = [
        _run_section(info, mark_zh, mark_en),
        _headline(district),
        _score_section(frames.get("eval_indicator", empty)),
        _sites_section(frames.get("eval_site", empty), _site_names(engine, evaluation_year)),
        _release_section(district, frames.get("eval_release")),
        _gap_section(frames.get("eval_gap", empty), frames.get("eval_indicator")),
        _integrity_section(district, frames.get("eval_integrity")),
        optional,
        _quarantine_section(frames),
        PRIVACY_NOTE,
    ]
    sheets = "、".join(SHEETS[t][0] for t in frames)
    body = "".join(sections)
    if provisional:  # every table says so too
        body = re.sub(r'(<table data-table="[^"]*">)', r"\1<caption>预评估 PROVISIONAL</caption>", body)
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title_zh)}</title><style>{STYLE}</style></head><body><main>"
        f'<header><h1>{_e(title_zh)}</h1><p class="subtitle">{_e(title_en)}</p></header>'
        + body
        + f'<footer>{_e(mark_zh)} <span class="en">{_e(mark_en)}</span><br>'
        f"由数仓评价表生成;工作簿 {_e(workbook_name)} 含全部明细({_e(sheets)})。"
        f'<span class="en">Generated from the warehouse evaluation tables; the workbook '
        f"{_e(workbook_name)} has every row.</span></footer></main></body></html>\n"
    )


def write_html_report(engine: sa.Engine, path: Path, evaluation_year: int, run_id: str | None = None) -> Path:
    """Write the HTML report of the run (default: the year's newest) to ``path`` (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.html")
    tmp.write_text(render_report(engine, evaluation_year, run_id), encoding="utf-8")
    tmp.replace(path)
    return path
