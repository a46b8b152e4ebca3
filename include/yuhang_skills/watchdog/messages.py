"""What each recipient is told in one run, and the message that says it.

One message per recipient and channel per run, listing everything due for that recipient: the site
contact hears about everything the site owes, its rejected or partially accepted files with the
rows to fix, and the late files that resolved an alert; after ``escalation_days`` the town/street
office and the district data team hear about the item too; the district also gets the early
warnings. An item goes to the same recipient on the same channel at most once per
``resend_interval_days``; a resolution, a rejected file, once. The wording is in the templates
next to this module (``templates/alert.*.j2``).
"""

from __future__ import annotations

import datetime as dt
import html
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from yuhang_skills.core import catalogue
from yuhang_skills.core.policy import AlertPolicy, Plan
from yuhang_skills.watchdog.calendar import period_label
from yuhang_skills.watchdog.missing import FileToFix, MissingItem
from yuhang_skills.watchdog.recipients import Recipient, recipients
from yuhang_skills.watchdog.warnings import EarlyWarning

# What a message can carry (``alert_items.item_type``): the de-duplication state.
MISSING, RESOLVED, REJECTED, EARLY_WARNING = "missing", "resolved", "rejected", "early_warning"


# --- alert history -----------------------------------------------------------------------------
@dataclass
class History:
    """Delivered alerts up to the as-of day: per (channel, recipient, item type, item key) the last
    as-of date delivered; per missing item, when it was first/last alerted and announced resolved."""

    last_delivered: dict[tuple[str, str, str, str], dt.date]
    item_state: dict[str, dict[str, dt.datetime | None]]

    def delivered_on(self, channel: str, recipient: str, item_type: str, key: str) -> dt.date | None:
        return self.last_delivered.get((channel, recipient, item_type, key))


@dataclass
class Composed:
    """What one recipient is told this run."""

    recipient: Recipient
    overdue: list[MissingItem] = field(default_factory=list)
    already_told: list[tuple[MissingItem, dt.date]] = field(default_factory=list)  # open, told within the interval
    resolved: list[MissingItem] = field(default_factory=list)
    files: list[FileToFix] = field(default_factory=list)
    warnings: list[EarlyWarning] = field(default_factory=list)

    @property
    def items(self) -> list[tuple[str, str]]:
        return ([(MISSING, m.key) for m in self.overdue] + [(RESOLVED, m.key) for m in self.resolved]
                + [(REJECTED, f.submission_id) for f in self.files] + [(EARLY_WARNING, w.key) for w in self.warnings])

    def __bool__(self) -> bool:
        return bool(self.overdue or self.resolved or self.files or self.warnings)


def compose(plan: Plan, as_of: dt.date, missing: list[MissingItem], files: list[FileToFix],
            warnings: list[EarlyWarning], history: History) -> list[Composed]:
    """What each recipient is due to hear as of ``as_of``: open items not told to it within the resend
    interval (site contacts: every open item of their sites; town office and district team: those
    escalated), resolutions of items it was told about, files to fix (site contacts) and early
    warnings at risk (district team)."""
    alerts = plan.policy.alerts
    out = []
    for recipient in recipients(plan):
        c = Composed(recipient)
        scope = set(recipient.sites)
        for item in missing:
            if item.site_code not in scope:
                continue
            if item.status == "open" and (recipient.role == "site_contact" or item.escalated):
                told = history.delivered_on(recipient.channel, recipient.address, MISSING, item.key)
                if told is None or (as_of - told).days >= alerts.resend_interval_days:
                    c.overdue.append(item)
                else:
                    c.already_told.append((item, told))
            elif item.status == "resolved":
                told = history.delivered_on(recipient.channel, recipient.address, MISSING, item.key)
                announced = history.delivered_on(recipient.channel, recipient.address, RESOLVED, item.key)
                if told is not None and announced is None:
                    c.resolved.append(item)
        if recipient.role == "site_contact":
            c.files = [f for f in files if f.site_code in scope
                       and history.delivered_on(recipient.channel, recipient.address, REJECTED, f.submission_id) is None]
        if recipient.role == "district_team":
            interval = alerts.early_warning.resend_interval_days
            for w in warnings:
                told = history.delivered_on(recipient.channel, recipient.address, EARLY_WARNING, w.key)
                if w.at_risk and (told is None or (as_of - told).days >= interval):
                    c.warnings.append(w)
        if c:
            out.append(c)
    return out


# --- rendering ------------------------------------------------------------------------------------
@dataclass
class Block:
    """A section of a message: a heading and lines; level 0 lines are group headings (bold)."""

    heading: str
    lines: list[tuple[int, str]]
    note: str | None = None


def _md(text: str) -> str:
    """Text for DingTalk markdown: one line, markdown's control characters escaped."""
    text = " ".join(str(text).split())
    for ch in "\\`*[]<>#|":
        text = text.replace(ch, "\\" + ch)
    return text


def _num(value: Decimal, places: str = "0.1") -> str:
    q = value.quantize(Decimal(places), rounding=ROUND_HALF_UP)
    return f"{q:f}".rstrip("0").rstrip(".") if "." in f"{q:f}" else f"{q:f}"


def _pct(value: Decimal) -> str:
    return _num(value * 100) + "%"


class Renderer:
    """Turns what a recipient is told into subject, markdown (DingTalk), HTML (e-mail) and JSON (webhook)."""

    def __init__(self, plan: Plan, as_of: dt.date):
        self.plan = plan
        self.as_of = as_of
        self.alerts: AlertPolicy = plan.policy.alerts
        self.kinds = plan.contract["kinds"]
        self.cadence = {k: r.cadence for k, r in plan.policy.submission_rules.items()}

    def site_label(self, code: str) -> str:
        site = self.plan.sites_by_code.get(code)
        return f"{code} {site.name_zh}" if site else code

    def kind_label(self, kind: str) -> str:
        return f"{self.kinds.get(kind, {}).get('name_zh', kind)}（{kind}）"

    def column_label(self, kind: str, column: str | None) -> str:
        spec = (self.kinds.get(kind, {}).get("columns") or {}).get(column or "")
        aliases = (spec or {}).get("aliases") or []
        return f"{aliases[0]}（{column}）" if aliases else str(column)

    def due_text(self, item: MissingItem) -> str:
        text = f"截止 {item.due_date.isoformat()}"
        if item.due_date != item.nominal_due:
            text += f"（原定 {item.nominal_due.isoformat()}，遇休息日顺延"
            text += "；按政策文件暂定节假日推算，非官方日历）" if not item.calendar_official else "）"
        elif not item.calendar_official:
            text += "（按政策文件暂定节假日推算，非官方日历）"
        return text

    def item_line(self, item: MissingItem, with_site: bool = False) -> str:
        prefix = f"{self.site_label(item.site_code)}：" if with_site else ""
        line = (f"{prefix}{self.kind_label(item.kind)} {period_label(self.cadence[item.kind], item.period)}："
                f"{self.due_text(item)}，已逾期 {item.days_overdue} 天")
        if item.last_rejected_at is not None:
            line += f"；{item.last_rejected_at:%Y-%m-%d %H:%M} 报送的文件被退回，仍需重报"
        return line

    def resolved_line(self, item: MissingItem, with_site: bool) -> str:
        prefix = f"{self.site_label(item.site_code)}：" if with_site else ""
        received = item.resolved_at.strftime("%Y-%m-%d %H:%M") if item.resolved_at else ""
        return (f"{prefix}{self.kind_label(item.kind)} {period_label(self.cadence[item.kind], item.period)}："
                f"{received} 已收到（逾期 {item.days_overdue} 天），本项销号")

    def warning_line(self, w: EarlyWarning) -> str:
        site = self.site_label(w.site_code)
        if w.indicator == "pass_rate":
            return (f"{site} {w.year}年{catalogue.zh('watchdog.indicator.' + w.indicator)}：截至应报的 {w.months_reported} 个月，"
                    f"参加考核 {w.denominator} 人、合格 {w.numerator} 人，合格率 {_pct(w.actual_to_date)}，"
                    f"低于目标 {_pct(w.target)}（差 {_num((w.target - w.projected) * 100)} 个百分点）")
        return (f"{site} {w.year}年{catalogue.zh('watchdog.indicator.' + w.indicator)}：应报 {w.months_reported} 个月共 "
                f"{_num(w.actual_to_date)} 人次，月均 {_num(w.run_rate_per_month or Decimal(0))}，按此推算全年"
                f"（在册 {w.months_active} 个月）约 {_num(w.projected, '1')} 人次，低于目标 {_num(w.target)} 人次"
                f"（预计差 {_num(w.projected_shortfall, '1')} 人次）")

    def file_lines(self, f: FileToFix) -> list[tuple[int, str]]:
        head = (f"{f.original_name}（{self.kind_label(f.kind)} {period_label(self.cadence.get(f.kind, 'monthly'), f.period)}，"
                f"{f.received_at:%Y-%m-%d %H:%M} 收到，{catalogue.zh('watchdog.file_status.' + f.status)}：读取 {f.rows_read} 行，"
                f"{f.rows_quarantined} 行未通过）")
        lines = [(0, head)]
        by_row: dict[int | None, list[str]] = defaultdict(list)
        for row, column, reason_zh, reason_en, value in f.problems:
            reason = f"{self.column_label(f.kind, column)}：{reason_zh}" if column else reason_zh
            if value not in (None, ""):
                reason += f"（值：{str(value)[:40]}）"
            reason += f" / {reason_en}"
            if reason not in by_row[row]:
                by_row[row].append(reason)
        rows = [r for r in by_row if r is not None]
        if None in by_row:
            lines.append((1, "整份文件：" + "；".join(by_row[None])))
        limit = self.alerts.max_rows_per_file
        for row in sorted(rows)[:limit]:
            lines.append((1, f"第 {row} 行 — " + "；".join(by_row[row])))
        if len(rows) > limit:
            lines.append((1, f"另有 {len(rows) - limit} 行未列出，完整清单见数据工作簿的隔离区（quarantine）"))
        return lines

    def blocks(self, c: Composed) -> tuple[str, str, list[Block]]:
        """(subject, opening line, blocks) for one recipient."""
        t = c.recipient
        site_view = t.role == "site_contact"
        blocks: list[Block] = []
        summary: list[str] = []
        if c.overdue:
            if site_view:
                lines = [(1, self.item_line(m)) for m in sorted(c.overdue, key=_item_order)]
                heading = f"逾期未报送（{len(c.overdue)} 项）"
            else:
                lines = []
                for code in sorted({m.site_code for m in c.overdue}):
                    town = self.plan.sites_by_code[code].town
                    lines.append((0, f"{self.site_label(code)}（{town}）"))
                    lines += [(1, self.item_line(m)) for m in sorted(c.overdue, key=_item_order) if m.site_code == code]
                heading = f"逾期 {self.alerts.escalation_days} 天以上未报送（{len(c.overdue)} 项）"
            note = None
            if c.already_told:
                latest = max(d for _, d in c.already_told)
                note = (f"另有 {len(c.already_told)} 项逾期材料此前已提醒（最近一次 {latest.isoformat()}），"
                        f"仍未报送，{self.alerts.resend_interval_days} 天内不重复列出。")
            blocks.append(Block(heading, lines, note))
            summary.append(f"{len(c.overdue)}项材料逾期未报送")
        elif c.already_told:  # nothing new to list, but the message must not read as if all was in
            latest = max(d for _, d in c.already_told)
            blocks.append(Block(f"仍逾期未报送（{len(c.already_told)} 项）", [],
                                f"另有 {len(c.already_told)} 项逾期材料此前已提醒（最近一次 {latest.isoformat()}），"
                                f"仍未报送，{self.alerts.resend_interval_days} 天内不重复列出。"))
        if c.files:
            lines = [line for f in c.files for line in self.file_lines(f)]
            blocks.append(Block(f"需修改后重报的文件（{len(c.files)} 份）", lines,
                                "请逐行修改后重新报送整份文件（与原文件放在同一目录，文件名加后缀，如 roster_v2.csv）。"))
            summary.append(f"{len(c.files)}份文件需修改重报")
        if c.resolved:
            lines = [(1, self.resolved_line(m, with_site=not site_view or len(t.sites) > 1))
                     for m in sorted(c.resolved, key=_item_order)]
            blocks.append(Block(f"已收到补报（{len(c.resolved)} 项）", lines))
            summary.append(f"{len(c.resolved)}项补报已收到")
        if c.warnings:
            lines = [(1, self.warning_line(w)) for w in sorted(c.warnings, key=lambda w: (w.site_code, w.indicator))]
            blocks.append(Block(f"年度目标预警（{len(c.warnings)} 项）", lines,
                                "按应报月份的月均进度推算（未报的月份按 0 计）；请督促相关站点/基地在年内补足。"))
            summary.append(f"{len(c.warnings)}项年度目标预警")
        if site_view:
            scope = "、".join(self.site_label(s) for s in t.sites)
        elif t.role == "town_office":
            scope = f"报送督办 {t.town}"
        else:
            scope = "报送督办 全区"
        subject = f"{self.alerts.subject_prefix}{scope}：{'，'.join(summary)}（截至 {self.as_of.isoformat()}）"
        opening = (f"{t.greeting}：截至 {self.as_of.isoformat()}（北京时间），"
                   f"{scope + '的报送情况' if site_view else '需要督办的站点'}如下。")
        return subject, opening, blocks

    def render(self, c: Composed) -> tuple[str, str, str, dict[str, Any]]:
        """(subject, markdown, html, webhook JSON) for one recipient."""
        subject, opening, blocks = self.blocks(c)
        footer = "此消息由余杭区技能型社会建设数据平台自动发送（yuhang_watchdog）。"
        md = [f"### {_md(subject)}", "", _md(opening)]
        body = [f"<p>{html.escape(opening)}</p>"]
        for b in blocks:
            md += ["", f"#### {_md(b.heading)}", ""]
            body.append(f"<h3>{html.escape(b.heading)}</h3>")
            items: list[str] = []
            for level, text in b.lines:
                if level == 0:
                    md += ([] if md[-1] == "" else [""]) + [f"**{_md(text)}**", ""]
                    if items:
                        body.append("<ul>" + "".join(items) + "</ul>")
                        items = []
                    body.append(f"<p><b>{html.escape(text)}</b></p>")
                else:
                    md.append(f"- {_md(text)}")
                    items.append(f"<li>{html.escape(text)}</li>")
            if items:
                body.append("<ul>" + "".join(items) + "</ul>")
            if b.note:
                md += ["", _md(b.note)]
                body.append(f"<p>{html.escape(b.note)}</p>")
        md += ["", f"> {_md(footer)}"]
        body.append(f"<p style=\"color:#666\">{html.escape(footer)}</p>")
        page = ("<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"></head><body>"
                + "".join(body) + "</body></html>")
        payload = {
            "source": "yuhang_watchdog", "as_of": self.as_of.isoformat(), "recipient_role": c.recipient.role,
            "recipient": c.recipient.address, "town": c.recipient.town, "title": subject, "text": "\n".join(md),
            "missing": [_item_json(m) for m in c.overdue],
            "resolved": [_item_json(m) for m in c.resolved],
            "files_to_fix": [{"submission_id": f.submission_id, "site_code": f.site_code, "period": f.period,
                              "kind": f.kind, "file": f.original_name, "status": f.status,
                              "rows": sorted({p[0] for p in f.problems if p[0] is not None})} for f in c.files],
            "early_warnings": [{"site_code": w.site_code, "year": w.year, "indicator": w.indicator,
                                "months_reported": w.months_reported, "actual_to_date": str(w.actual_to_date),
                                "projected": str(w.projected), "target": str(w.target)} for w in c.warnings],
        }
        return subject, "\n".join(md), page, payload


def _item_order(m: MissingItem) -> tuple[str, str, str]:
    return (m.site_code, m.period, m.kind)


def _item_json(m: MissingItem) -> dict[str, Any]:
    return {"site_code": m.site_code, "kind": m.kind, "period": m.period, "due_date": m.due_date.isoformat(),
            "nominal_due": m.nominal_due.isoformat(), "calendar_official": m.calendar_official,
            "days_overdue": m.days_overdue, "escalated": m.escalated, "status": m.status}
