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
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_eval_context, select_autoescape
from jinja2.nodes import EvalContext
from markupsafe import Markup

from yuhang_skills.core import catalogue
from yuhang_skills.core.policy import AlertPolicy, Plan
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
        return (
            [(MISSING, m.key) for m in self.overdue]
            + [(RESOLVED, m.key) for m in self.resolved]
            + [(REJECTED, f.submission_id) for f in self.files]
            + [(EARLY_WARNING, w.key) for w in self.warnings]
        )

    def __bool__(self) -> bool:
        return bool(self.overdue or self.resolved or self.files or self.warnings)


def compose(
    plan: Plan,
    as_of: dt.date,
    missing: list[MissingItem],
    files: list[FileToFix],
    warnings: list[EarlyWarning],
    history: History,
) -> list[Composed]:
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
            c.files = [
                f
                for f in files
                if f.site_code in scope
                and history.delivered_on(recipient.channel, recipient.address, REJECTED, f.submission_id) is None
            ]
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
TEMPLATES = Path(__file__).with_name("templates")


@dataclass
class Block:
    """A section of a message: a heading and lines; level 0 lines are group headings (bold)."""

    heading: str
    lines: list[tuple[int, str]]
    note: str | None = None

    @property
    def runs(self) -> list[tuple[int, list[str]]]:
        """The lines as runs of one level: (level, texts) in order."""
        runs: list[tuple[int, list[str]]] = []
        for level, text in self.lines:
            if runs and runs[-1][0] == level:
                runs[-1][1].append(text)
            else:
                runs.append((level, [text]))
        return runs


def markdown_text(text: Any) -> str:
    """Text for DingTalk markdown: one line, markdown's control characters escaped."""
    text = " ".join(str(text).split())
    for ch in "\\`*[]<>#|":
        text = text.replace(ch, "\\" + ch)
    return text


def number_text(value: Any, places: str = "0.1") -> str:
    """A number as people read it: rounded half up to ``places``, trailing zeros dropped."""
    q = Decimal(value).quantize(Decimal(places), rounding=ROUND_HALF_UP)
    return f"{q:f}".rstrip("0").rstrip(".") if "." in f"{q:f}" else f"{q:f}"


def percent_text(value: Any) -> str:
    """A share (0.8) as a percentage (80%)."""
    return number_text(Decimal(value) * 100) + "%"


@pass_eval_context
def _escape_html(eval_ctx: EvalContext, value: Any) -> Any:
    """In an autoescaped (HTML) template, every value is escaped as ``html.escape`` does."""
    if eval_ctx.autoescape and not hasattr(value, "__html__"):
        return Markup(html.escape(str(value)))
    return value


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja2 environment of the alert templates (``templates/``): HTML templates (``*.html.j2``)
    autoescaped, any undefined name an error."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_escape_html,
    )
    env.filters.update(md=markdown_text, num=number_text, pct=percent_text)
    env.globals.update(catalogue_zh=catalogue.zh)
    return env


def render(name: str, **values: Any) -> str:
    """The template ``name`` rendered with ``values``."""
    return environment().get_template(name).render(**values)


class Renderer:
    """Turns what a recipient is told into subject, markdown (DingTalk), HTML (e-mail) and JSON
    (webhook). The words are the macros of ``templates/alert_text.j2``; the layouts are
    ``alert.md.j2`` and ``alert.html.j2``."""

    def __init__(self, plan: Plan, as_of: dt.date):
        self.plan = plan
        self.as_of = as_of
        self.alerts: AlertPolicy = plan.policy.alerts
        self.kinds = plan.contract.kinds
        self.cadences: dict[str, str] = {k: r.cadence for k, r in plan.policy.submissions.items()}
        # The template's macros, called by name (a Jinja2 module's attributes are its macros).
        self.words: Any = environment().get_template("alert_text.j2").module

    # Look-ups the wording uses.
    def site_name(self, code: str) -> str | None:
        site = self.plan.sites_by_code.get(code)
        return site.name_zh if site else None

    def kind_name(self, kind: str) -> str:
        spec = self.kinds.get(kind)  # type: ignore[call-overload]
        return spec.name_zh if spec else kind

    def column_alias(self, kind: str, column: str | None) -> str | None:
        kind_spec = self.kinds.get(kind)  # type: ignore[call-overload]
        spec = kind_spec.columns.get(column or "") if kind_spec else None
        return spec.aliases[0] if spec and spec.aliases else None

    def cadence(self, kind: str) -> str:
        return self.cadences.get(kind, "monthly")

    def file_lines(self, f: FileToFix) -> list[tuple[int, str]]:
        w = self.words
        lines = [(0, w.file(self, f))]
        by_row: dict[int | None, list[str]] = defaultdict(list)
        for row, column, reason_zh, reason_en, value in f.problems:
            reason = w.problem(self, f.kind, column, reason_zh, value, reason_en)
            if reason not in by_row[row]:
                by_row[row].append(reason)
        rows = [r for r in by_row if r is not None]
        if None in by_row:
            lines.append((1, w.whole_file(by_row[None])))
        limit = self.alerts.max_rows_per_file
        for row in sorted(rows)[:limit]:
            lines.append((1, w.file_row(row, by_row[row])))
        if len(rows) > limit:
            lines.append((1, w.rows_not_listed(len(rows) - limit)))
        return lines

    def blocks(self, c: Composed) -> tuple[str, str, list[Block]]:
        """(subject, opening line, blocks) for one recipient."""
        w = self.words
        t = c.recipient
        site_view = t.role == "site_contact"
        blocks: list[Block] = []
        summary: list[str] = []
        latest = max((d for _, d in c.already_told), default=None)
        if c.overdue:
            if site_view:
                lines = [(1, w.overdue(self, m)) for m in sorted(c.overdue, key=_item_order)]
            else:
                lines = []
                for code in sorted({m.site_code for m in c.overdue}):
                    lines.append((0, w.site_in_town(self, code, self.plan.sites_by_code[code].town)))
                    lines += [
                        (1, w.overdue(self, m)) for m in sorted(c.overdue, key=_item_order) if m.site_code == code
                    ]
            note = w.already_told(self, len(c.already_told), latest) if c.already_told else None
            blocks.append(Block(w.overdue_heading(self, len(c.overdue), site_view), lines, note))
            summary.append(w.overdue_summary(len(c.overdue)))
        elif c.already_told:  # nothing new to list, but the message must not read as if all was in
            blocks.append(
                Block(
                    w.still_overdue_heading(len(c.already_told)), [], w.already_told(self, len(c.already_told), latest)
                )
            )
        if c.files:
            lines = [line for f in c.files for line in self.file_lines(f)]
            blocks.append(Block(w.files_heading(len(c.files)), lines, w.files_note()))
            summary.append(w.files_summary(len(c.files)))
        if c.resolved:
            lines = [
                (1, w.resolved(self, m, not site_view or len(t.sites) > 1)) for m in sorted(c.resolved, key=_item_order)
            ]
            blocks.append(Block(w.resolved_heading(len(c.resolved)), lines))
            summary.append(w.resolved_summary(len(c.resolved)))
        if c.warnings:
            lines = [(1, w.warning(self, x)) for x in sorted(c.warnings, key=lambda x: (x.site_code, x.indicator))]
            blocks.append(Block(w.warnings_heading(len(c.warnings)), lines, w.warnings_note()))
            summary.append(w.warnings_summary(len(c.warnings)))
        return w.subject(self, t, summary), w.opening(self, t), blocks

    def render(self, c: Composed) -> tuple[str, str, str, dict[str, Any]]:
        """(subject, markdown, html, webhook JSON) for one recipient."""
        subject, opening, blocks = self.blocks(c)
        values = {"subject": subject, "opening": opening, "blocks": blocks, "footer": self.words.footer()}
        markdown = render("alert.md.j2", **values)
        payload = {
            "source": "yuhang_watchdog",
            "as_of": self.as_of.isoformat(),
            "recipient_role": c.recipient.role,
            "recipient": c.recipient.address,
            "town": c.recipient.town,
            "title": subject,
            "text": markdown,
            "missing": [_item_json(m) for m in c.overdue],
            "resolved": [_item_json(m) for m in c.resolved],
            "files_to_fix": [
                {
                    "submission_id": f.submission_id,
                    "site_code": f.site_code,
                    "period": f.period,
                    "kind": f.kind,
                    "file": f.original_name,
                    "status": f.status,
                    "rows": sorted({p[0] for p in f.problems if p[0] is not None}),
                }
                for f in c.files
            ],
            "early_warnings": [
                {
                    "site_code": w.site_code,
                    "year": w.year,
                    "indicator": w.indicator,
                    "months_reported": w.months_reported,
                    "actual_to_date": str(w.actual_to_date),
                    "projected": str(w.projected),
                    "target": str(w.target),
                }
                for w in c.warnings
            ],
        }
        return subject, markdown, render("alert.html.j2", **values), payload


def _item_order(m: MissingItem) -> tuple[str, str, str]:
    return (m.site_code, m.period, m.kind)


def _item_json(m: MissingItem) -> dict[str, Any]:
    return {
        "site_code": m.site_code,
        "kind": m.kind,
        "period": m.period,
        "due_date": m.due_date.isoformat(),
        "nominal_due": m.nominal_due.isoformat(),
        "calendar_official": m.calendar_official,
        "days_overdue": m.days_overdue,
        "escalated": m.escalated,
        "status": m.status,
    }
