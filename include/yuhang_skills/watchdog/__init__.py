"""The submissions watchdog: who owes what, and telling them once, in one message, until it arrives.

- **Calendar** (``expected_submissions``): every site of the registry active in a period owes each
  kind its programme submits (policy ``submissions``: monthly roster and finance, quarterly survey,
  yearly village outcomes), due on the policy's day. A due date on a weekend or a Chinese public
  holiday moves to the next working day (policy ``alerts.working_days``): the ``chinese-calendar``
  package for the years the State Council has published, the policy's provisional list (plus
  weekends) for later years, which the calendar marks as not official.
- **Missing list** (``missing_submissions``), as of a day D in Asia/Shanghai: an expected submission
  with no file received (accepted, partially accepted, or failed on our side) by its due date is
  overdue from the next day; it stays open until a file arrives (then ``resolved_at``). Only files
  received on or before D count, so a rerun for a past day rebuilds that day's picture.
- **Early warning** (``early_warnings``): stations' and bases' person-times so far this year,
  projected to the year end by run rate against the yearly target (pro-rated as the evaluation
  does), and bases' pass rate so far against its target.
- **Alerts** (``alerts``, ``alert_items``): one message per recipient and channel per run, listing
  everything due for that recipient: the site contact hears about everything the site owes, its
  rejected or partially accepted files with the rows to fix, and the late files that resolved an
  alert; after ``escalation_days`` the town/street office and the district data team hear about the
  item too; the district also gets the early warnings. An item goes to the same recipient on the
  same channel at most once per ``resend_interval_days``; a resolution, a rejected file, once.
  Only live runs send (D no more than ``backfill_grace_days`` before today); reruns and backfills
  rebuild the tables and send nothing. What a channel could not deliver is recorded and, never
  having been delivered, is due again at the next run.
"""

from __future__ import annotations

import calendar
import datetime as dt
import html
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable

import sqlalchemy as sa

from yuhang_skills.core import warehouse
from yuhang_skills.core.policy import AlertPolicy, Plan, Site, SubmissionRule, WorkingDayPolicy
from yuhang_skills.core.settings import SQL_DIR, Settings, load_settings

log = logging.getLogger(__name__)

MISSING, RESOLVED, REJECTED, EARLY_WARNING = "missing", "resolved", "rejected", "early_warning"
# A file in one of these states means the site did submit (failed = our processing error, retried).
RECEIVED_STATUSES = ("accepted", "partially_accepted", "failed")
# The latest file of a site/period/kind in one of these states is sent back to the site's contact.
# no_rows_accepted: the file was read but every row was refused; for the site it is a refusal.
REFUSED_STATUSES = ("rejected", "no_rows_accepted")
FIX_STATUSES = ("rejected", "no_rows_accepted", "partially_accepted")
STATUS_ZH = {"rejected": "整份退回", "no_rows_accepted": "所有行均未接收", "partially_accepted": "部分接收"}
INDICATOR_ZH = {"person_times": "培训人次", "pass_rate": "培训合格率"}
FOUR_PLACES = Decimal("0.0001")


# --- working days -----------------------------------------------------------------------------
class WorkingDays:
    """Working days in mainland China: the official calendar where published, else the policy's
    provisional holidays and make-up working days plus weekends (marked as not official)."""

    def __init__(self, policy: WorkingDayPolicy):
        import chinese_calendar

        self.policy = policy
        self._calendar = chinese_calendar
        self.official_source = f"chinese-calendar {getattr(chinese_calendar, '__version__', '')}".strip()
        self._cache: dict[dt.date, tuple[bool, str, bool]] = {}

    def lookup(self, day: dt.date) -> tuple[bool, str, bool]:
        """(is a working day, calendar source, official) for ``day``."""
        if day not in self._cache:
            self._cache[day] = self._lookup(day)
        return self._cache[day]

    def _lookup(self, day: dt.date) -> tuple[bool, str, bool]:
        try:
            return bool(self._calendar.is_workday(day)), self.official_source, True
        except NotImplementedError:  # a year the State Council has not published (or before 2004)
            pass
        holidays = self.policy.provisional_holidays.get(day.year)
        if holidays is None:
            return day.weekday() < 5, f"weekends only, no holiday list for {day.year}", False
        source = f"policy provisional list {day.year}"
        if day in self.policy.provisional_workdays.get(day.year, frozenset()):
            return True, source, False
        return day.weekday() < 5 and day not in holidays, source, False

    def due_date(self, nominal: dt.date) -> tuple[dt.date, str, bool]:
        """The working-day due date for a nominal one, the calendar it came from and whether that
        calendar is official for every day looked at."""
        if self.policy.rule == "none":
            return nominal, "not adjusted (working_days.rule none)", True
        day, sources, official = nominal, [], True
        while True:
            working, source, is_official = self.lookup(day)
            sources.append(source)
            official = official and is_official
            if working:
                break
            day += dt.timedelta(days=1)
        unofficial = [s for s in sources if s != self.official_source]
        return day, (unofficial[0] if unofficial else self.official_source), official


# --- the expected-submission calendar -----------------------------------------------------------
@dataclass(frozen=True)
class ExpectedSubmission:
    site_code: str
    kind: str
    period: str
    programme: str
    period_start: dt.date
    period_end: dt.date
    nominal_due: dt.date
    due_date: dt.date
    calendar_source: str
    calendar_official: bool

    @property
    def key(self) -> str:
        return item_key(self.site_code, self.kind, self.period)


def item_key(site_code: str, kind: str, period: str) -> str:
    return f"{site_code}/{kind}/{period}"


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def rule_periods(rule: SubmissionRule, site: Site, as_of: dt.date) -> list[tuple[str, dt.date, dt.date, dt.date]]:
    """(period label, first day, last day, nominal due date) of every period of ``rule`` in which
    ``site`` is active (active from on or before its last day) that has begun by ``as_of``."""
    periods = []
    if rule.cadence == "yearly":
        for year in range(site.active_from.year, as_of.year + 1):
            start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
            periods.append((f"{year}-12", start, end, dt.date(year + 1, rule.due_month or 1, rule.due_day)))
        return periods
    step = 3 if rule.cadence == "quarterly" else 1
    year, month = site.active_from.year, site.active_from.month
    if step == 3:
        month = (month - 1) // 3 * 3 + 1  # the first month of the quarter the site starts in
    while dt.date(year, month, 1) <= as_of:
        last_year, last_month = year, month + step - 1
        end = _month_end(last_year, last_month)
        due_year, due_month = _next_month(last_year, last_month)
        periods.append((f"{last_year}-{last_month:02d}", dt.date(year, month, 1), end,
                        dt.date(due_year, due_month, rule.due_day)))
        year, month = _next_month(last_year, last_month)
    return [p for p in periods if p[2] >= site.active_from]


def expected_submissions(plan: Plan, as_of: dt.date, days: WorkingDays | None = None) -> list[ExpectedSubmission]:
    """Registry x cadence: every submission a site active in a period owes, for the periods begun
    by ``as_of``, with working-day due dates."""
    days = days or WorkingDays(plan.policy.alerts.working_days)
    expected = []
    for site in plan.sites:
        for rule in plan.policy.submission_rules.values():
            if site.programme not in rule.programmes:
                continue
            for period, start, end, nominal in rule_periods(rule, site, as_of):
                due, source, official = days.due_date(nominal)
                expected.append(ExpectedSubmission(site.site_code, rule.kind, period, site.programme, start, end,
                                                   nominal, due, source, official))
    return expected


def period_label(kind_cadence: str, period: str) -> str:
    """How a site reads a period: 2026年1月, 2025年第4季度, 2025年度."""
    year, month = int(period[:4]), int(period[5:7])
    if kind_cadence == "quarterly":
        return f"{year}年第{(month - 1) // 3 + 1}季度"
    if kind_cadence == "yearly":
        return f"{year}年度"
    return f"{year}年{month}月"


# --- the missing list ---------------------------------------------------------------------------
@dataclass
class MissingItem:
    site_code: str
    kind: str
    period: str
    programme: str
    town: str
    nominal_due: dt.date
    due_date: dt.date
    calendar_official: bool
    status: str  # open / resolved
    days_overdue: int
    escalated: bool
    last_rejected_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None

    @property
    def key(self) -> str:
        return item_key(self.site_code, self.kind, self.period)


def cutoff(as_of: dt.date) -> dt.datetime:
    """The end of the as-of day, as the naive Asia/Shanghai wall time the warehouse stores."""
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())


def load_manifest(conn: sa.Connection, as_of: dt.date) -> list[dict[str, Any]]:
    """Every file version received on or before the as-of day (Asia/Shanghai)."""
    s = warehouse.submissions
    rows = conn.execute(
        sa.select(s.c.submission_id, s.c.site_code, s.c.period, s.c.kind, s.c.original_name, s.c.received_at,
                  s.c.status, s.c.rows_read, s.c.rows_quarantined)
        .where(s.c.received_at < cutoff(as_of))
        .order_by(s.c.received_at, s.c.original_name, s.c.submission_id)
    ).mappings()
    return [dict(r) for r in rows]


def find_missing(expected: Iterable[ExpectedSubmission], manifest: list[dict[str, Any]], plan: Plan,
                 as_of: dt.date) -> list[MissingItem]:
    """Expected submissions overdue as of ``as_of``: still open, or received after the due date."""
    escalation = plan.policy.alerts.escalation_days
    first_received: dict[str, dt.datetime] = {}
    rejected: dict[str, list[dt.datetime]] = defaultdict(list)
    for row in manifest:
        key = item_key(row["site_code"], row["kind"], row["period"])
        if row["status"] in RECEIVED_STATUSES:
            first_received.setdefault(key, row["received_at"])
        elif row["status"] in REFUSED_STATUSES:
            rejected[key].append(row["received_at"])
    items = []
    for e in expected:
        if e.due_date >= as_of:
            continue  # not overdue yet
        received = first_received.get(e.key)
        if received is not None and received.date() <= e.due_date:
            continue  # in time
        if received is None:
            status, days = "open", (as_of - e.due_date).days
        else:
            status, days = "resolved", (received.date() - e.due_date).days
        refused = [r for r in rejected.get(e.key, []) if received is None or r <= received]
        items.append(MissingItem(
            site_code=e.site_code, kind=e.kind, period=e.period, programme=e.programme,
            town=plan.sites_by_code[e.site_code].town, nominal_due=e.nominal_due, due_date=e.due_date,
            calendar_official=e.calendar_official, status=status, days_overdue=days, escalated=days >= escalation,
            last_rejected_at=max(refused) if refused else None, resolved_at=received,
        ))
    return items


# --- early warning ----------------------------------------------------------------------------------
@dataclass
class EarlyWarning:
    site_code: str
    year: int
    indicator: str  # person_times / pass_rate
    programme: str
    months_active: int
    months_reported: int
    actual_to_date: Decimal
    projected: Decimal
    target: Decimal
    run_rate_per_month: Decimal | None = None
    numerator: int | None = None
    denominator: int | None = None

    @property
    def projected_shortfall(self) -> Decimal:
        return max(Decimal(0), self.target - self.projected)

    @property
    def at_risk(self) -> bool:
        return self.projected < self.target

    @property
    def key(self) -> str:
        return f"{self.site_code}/{self.year}/{self.indicator}"


def early_warnings(conn: sa.Connection, plan: Plan, as_of: dt.date,
                   expected: Iterable[ExpectedSubmission]) -> list[EarlyWarning]:
    """Yearly targets of stations and bases projected from this year's months due so far (months
    whose roster was due before ``as_of``; a month not sent counts as nothing trained). The
    targets, pro-rated in the first year, are those of int_site_year_targets; none while the
    indicators have not been built."""
    policy = plan.policy
    rules = policy.alerts.early_warning
    year = as_of.year
    if year not in policy.implementation_years:
        return []  # yearly targets hold for the implementation period only
    targets = site_year_targets(conn, year)
    reported: dict[str, set[str]] = defaultdict(set)
    for e in expected:
        if e.kind == "roster" and e.period.startswith(f"{year}-") and e.due_date < as_of:
            reported[e.site_code].add(e.period)
    sql = (SQL_DIR / "watchdog" / "roster_months.sql").read_text(encoding="utf-8")
    months: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in conn.execute(sa.text(sql), {"year": year, "cutoff": cutoff(as_of)}).mappings():
        months[row["site_code"]].append(dict(row))
    warnings = []
    for site in plan.sites:
        active = site.months_active(year)
        closed = reported.get(site.site_code, set())
        target = targets.get((site.site_code, "person_times"))
        if site.programme not in rules.programmes or target is None or len(closed) < rules.min_months_reported:
            continue
        rows = [r for r in months.get(site.site_code, []) if r["period"] in closed]
        person_times = sum(int(r["person_times"]) for r in rows)
        rate = Decimal(person_times) / len(closed)
        warnings.append(EarlyWarning(
            site.site_code, year, "person_times", site.programme, active, len(closed),
            actual_to_date=Decimal(person_times), run_rate_per_month=rate.quantize(FOUR_PLACES),
            projected=(rate * active).quantize(FOUR_PLACES), target=target.quantize(FOUR_PLACES)))
        pass_rate = targets.get((site.site_code, "pass_rate"))
        if pass_rate is not None:
            assessed = sum(int(r["assessed"] or 0) for r in rows)
            passed = sum(int(r["passed"] or 0) for r in rows)
            if assessed:
                share = (Decimal(passed) / assessed).quantize(FOUR_PLACES)
                warnings.append(EarlyWarning(
                    site.site_code, year, "pass_rate", site.programme, active, len(closed), actual_to_date=share,
                    projected=share, target=pass_rate.quantize(FOUR_PLACES), numerator=passed, denominator=assessed))
    return warnings


def site_year_targets(conn: sa.Connection, year: int) -> dict[tuple[str, str], Decimal]:
    """The yearly targets of ``year`` by site and indicator, exact, from int_site_year_targets
    (empty, with a note in the log, while the indicators have not been built)."""
    if not sa.inspect(conn).has_table("int_site_year_targets"):
        log.warning("no early warnings: int_site_year_targets is not built yet (run yuhang_indicators)")
        return {}
    rows = conn.execute(sa.text(
        "select site_code, indicator, target_numerator, target_denominator from int_site_year_targets"
        " where year = :year and basis = 'counted'"), {"year": year})
    return {(site, indicator): Decimal(int(numerator)) / Decimal(int(denominator))
            for site, indicator, numerator, denominator in rows}


# --- rejected and partially accepted files --------------------------------------------------------
@dataclass
class FileToFix:
    submission_id: str
    site_code: str
    period: str
    kind: str
    original_name: str
    received_at: dt.datetime
    status: str
    rows_read: int
    rows_quarantined: int
    problems: list[tuple[int | None, str | None, str, str, str | None]] = field(default_factory=list)
    # (row in the original file or None for the whole file, column, reason_zh, reason_en, masked value)


def files_to_fix(conn: sa.Connection, manifest: list[dict[str, Any]], plan: Plan) -> list[FileToFix]:
    """The latest file of each site/period/kind received so far, when it was rejected or partially
    accepted (a later file supersedes it), with the quarantined rows and reasons."""
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in manifest:  # ordered by received time, then name: the last one wins
        latest[(row["site_code"], row["period"], row["kind"])] = row
    files = {r["submission_id"]: FileToFix(r["submission_id"], r["site_code"], r["period"], r["kind"],
                                           r["original_name"], r["received_at"], r["status"], int(r["rows_read"]),
                                           int(r["rows_quarantined"]))
             for r in latest.values() if r["status"] in FIX_STATUSES and r["site_code"] in plan.sites_by_code}
    if not files:
        return []
    q = warehouse.quarantine
    ids = sorted(files)
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            sa.select(q.c.submission_id, q.c.source_row, q.c.column_name, q.c.reason_zh, q.c.reason_en, q.c.value)
            .where(q.c.submission_id.in_(ids[start:start + 500]))
            .order_by(q.c.submission_id, q.c.source_row, q.c.column_name, q.c.quarantine_id)
        )
        for sid, source_row, column, reason_zh, reason_en, value in rows:
            files[sid].problems.append((source_row, column, reason_zh, reason_en, value))
    return sorted(files.values(), key=lambda f: (f.site_code, f.received_at, f.original_name))


# --- alert history -----------------------------------------------------------------------------
@dataclass
class History:
    """Delivered alerts up to the as-of day: per (channel, recipient, item type, item key) the last
    as-of date delivered; per missing item, when it was first/last alerted and announced resolved."""

    last_delivered: dict[tuple[str, str, str, str], dt.date]
    item_state: dict[str, dict[str, dt.datetime | None]]

    def delivered_on(self, channel: str, recipient: str, item_type: str, key: str) -> dt.date | None:
        return self.last_delivered.get((channel, recipient, item_type, key))


def load_history(conn: sa.Connection, as_of: dt.date) -> History:
    a, i = warehouse.alerts, warehouse.alert_items
    rows = conn.execute(
        sa.select(a.c.channel, a.c.recipient, i.c.item_type, i.c.item_key, sa.func.max(a.c.as_of),
                  sa.func.min(a.c.sent_at), sa.func.max(a.c.sent_at))
        .join(i, i.c.alert_id == a.c.alert_id)
        .where(a.c.outcome == "sent", a.c.as_of <= as_of)
        .group_by(a.c.channel, a.c.recipient, i.c.item_type, i.c.item_key)
    )
    last: dict[tuple[str, str, str, str], dt.date] = {}
    state: dict[str, dict[str, dt.datetime | None]] = defaultdict(
        lambda: {"first_alerted": None, "last_alerted": None, "resolution_announced_at": None})
    for channel, recipient, item_type, key, last_as_of, first_sent, last_sent in rows:
        last[(channel, recipient, item_type, key)] = _as_date(last_as_of)
        if item_type == MISSING:
            s = state[key]
            s["first_alerted"] = min(filter(None, [s["first_alerted"], first_sent]), default=None)
            s["last_alerted"] = max(filter(None, [s["last_alerted"], last_sent]), default=None)
        elif item_type == RESOLVED:
            s = state[key]
            s["resolution_announced_at"] = min(filter(None, [s["resolution_announced_at"], first_sent]), default=None)
    return History(last, dict(state))


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


# --- recipients and messages ---------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """One recipient on one channel: an e-mail address, or a group/webhook connection."""

    channel: str
    recipient: str
    role: str  # site_contact / town_office / district_team
    sites: tuple[str, ...]  # the sites it hears about (all, for the district team)
    town: str | None = None
    greeting: str = "您好"


def targets(plan: Plan) -> list[Target]:
    """Every recipient the policy names, on each of its channels."""
    alerts = plan.policy.alerts
    towns = sorted({s.town for s in plan.sites})
    unknown = [t for t in towns if t not in alerts.town_offices]
    if unknown and alerts.recipients["town_office"].channels:
        raise ValueError(f"alerts.town_offices has no address for the registry's towns {unknown}")
    out: list[Target] = []

    def add(role: str, scope: str, email: str | None, sites: tuple[str, ...], town: str | None, greeting: str) -> None:
        for name in alerts.recipients[role].channels:
            channel = alerts.channels[name]
            if channel.kind == "smtp":
                if email:
                    out.append(Target(name, email, role, sites, town, greeting))
            else:  # a group robot or a webhook: the connection is the recipient (one per scope)
                recipient = channel.connection_id if role == "district_team" else f"{channel.connection_id}:{scope}"
                out.append(Target(name, recipient, role, sites, town, greeting))

    by_contact: dict[str, list[Site]] = defaultdict(list)
    for site in plan.sites:
        if site.contact_email:
            by_contact[site.contact_email].append(site)
        else:
            log.warning("site %s has no contact_email in the registry: its contact gets no e-mail", site.site_code)
    for email, sites in sorted(by_contact.items()):
        names = sorted({s.contact_name for s in sites if s.contact_name})
        add("site_contact", email, email, tuple(s.site_code for s in sites), None, "、".join(names) or "您好")
    for town in towns:
        add("town_office", town, alerts.town_offices.get(town),
            tuple(s.site_code for s in plan.sites if s.town == town), town, f"{town}技能型社会建设联络人")
    every = tuple(s.site_code for s in plan.sites)
    for email in alerts.recipients["district_team"].emails or (None,):
        add("district_team", "district", email, every, None, "区人社局技能型社会建设数据组")
    return list(dict.fromkeys(out))  # a recipient named twice is told once


@dataclass
class Composed:
    """What one target is told this run."""

    target: Target
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
    """What each target is due to hear as of ``as_of``: open items not told to it within the resend
    interval (site contacts: every open item of their sites; town office and district team: those
    escalated), resolutions of items it was told about, files to fix (site contacts) and early
    warnings at risk (district team)."""
    alerts = plan.policy.alerts
    out = []
    for target in targets(plan):
        c = Composed(target)
        scope = set(target.sites)
        for item in missing:
            if item.site_code not in scope:
                continue
            if item.status == "open" and (target.role == "site_contact" or item.escalated):
                told = history.delivered_on(target.channel, target.recipient, MISSING, item.key)
                if told is None or (as_of - told).days >= alerts.resend_interval_days:
                    c.overdue.append(item)
                else:
                    c.already_told.append((item, told))
            elif item.status == "resolved":
                told = history.delivered_on(target.channel, target.recipient, MISSING, item.key)
                announced = history.delivered_on(target.channel, target.recipient, RESOLVED, item.key)
                if told is not None and announced is None:
                    c.resolved.append(item)
        if target.role == "site_contact":
            c.files = [f for f in files if f.site_code in scope
                       and history.delivered_on(target.channel, target.recipient, REJECTED, f.submission_id) is None]
        if target.role == "district_team":
            interval = alerts.early_warning.resend_interval_days
            for w in warnings:
                told = history.delivered_on(target.channel, target.recipient, EARLY_WARNING, w.key)
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
    """Turns what a target is told into subject, markdown (DingTalk), HTML (e-mail) and JSON (webhook)."""

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
            return (f"{site} {w.year}年{INDICATOR_ZH[w.indicator]}：截至应报的 {w.months_reported} 个月，"
                    f"参加考核 {w.denominator} 人、合格 {w.numerator} 人，合格率 {_pct(w.actual_to_date)}，"
                    f"低于目标 {_pct(w.target)}（差 {_num((w.target - w.projected) * 100)} 个百分点）")
        return (f"{site} {w.year}年{INDICATOR_ZH[w.indicator]}：应报 {w.months_reported} 个月共 "
                f"{_num(w.actual_to_date)} 人次，月均 {_num(w.run_rate_per_month or Decimal(0))}，按此推算全年"
                f"（在册 {w.months_active} 个月）约 {_num(w.projected, '1')} 人次，低于目标 {_num(w.target)} 人次"
                f"（预计差 {_num(w.projected_shortfall, '1')} 人次）")

    def file_lines(self, f: FileToFix) -> list[tuple[int, str]]:
        head = (f"{f.original_name}（{self.kind_label(f.kind)} {period_label(self.cadence.get(f.kind, 'monthly'), f.period)}，"
                f"{f.received_at:%Y-%m-%d %H:%M} 收到，{STATUS_ZH[f.status]}：读取 {f.rows_read} 行，"
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
        """(subject, opening line, blocks) for one target."""
        t = c.target
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
        """(subject, markdown, html, webhook JSON) for one target."""
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
            "source": "yuhang_watchdog", "as_of": self.as_of.isoformat(), "recipient_role": c.target.role,
            "recipient": c.target.recipient, "town": c.target.town, "title": subject, "text": "\n".join(md),
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


# --- the tables ----------------------------------------------------------------------------------
def _engine(settings: Settings) -> sa.Engine:
    engine = warehouse.make_engine(settings.warehouse_url)
    warehouse.create_schema(engine)
    return engine


def write_calendar(engine: sa.Engine, expected: list[ExpectedSubmission], as_of: dt.date) -> int:
    rows = [{"site_code": e.site_code, "kind": e.kind, "period": e.period, "programme": e.programme,
             "period_start": e.period_start, "period_end": e.period_end, "nominal_due": e.nominal_due,
             "due_date": e.due_date, "shifted": e.due_date != e.nominal_due, "calendar_source": e.calendar_source,
             "calendar_official": e.calendar_official, "as_of": as_of} for e in expected]
    with engine.begin() as conn:
        return warehouse.replace_rows(conn, warehouse.expected_submissions, rows)


def read_calendar(conn: sa.Connection) -> list[ExpectedSubmission]:
    t = warehouse.expected_submissions
    return [ExpectedSubmission(r.site_code, r.kind, r.period, r.programme, _as_date(r.period_start),
                               _as_date(r.period_end), _as_date(r.nominal_due), _as_date(r.due_date),
                               r.calendar_source, bool(r.calendar_official))
            for r in conn.execute(sa.select(t).order_by(t.c.site_code, t.c.kind, t.c.period))]


def missing_rows(items: list[MissingItem], history: History, as_of: dt.date) -> list[dict[str, Any]]:
    empty = {"first_alerted": None, "last_alerted": None, "resolution_announced_at": None}
    return [{"site_code": m.site_code, "kind": m.kind, "period": m.period, "programme": m.programme, "town": m.town,
             "nominal_due": m.nominal_due, "due_date": m.due_date, "calendar_official": m.calendar_official,
             "status": m.status, "days_overdue": m.days_overdue, "escalated": m.escalated,
             "last_rejected_at": m.last_rejected_at, "resolved_at": m.resolved_at,
             **history.item_state.get(m.key, empty), "as_of": as_of} for m in items]


def warning_rows(warnings: list[EarlyWarning], as_of: dt.date) -> list[dict[str, Any]]:
    return [{"site_code": w.site_code, "year": w.year, "indicator": w.indicator, "programme": w.programme,
             "months_active": w.months_active, "months_reported": w.months_reported,
             "actual_to_date": w.actual_to_date, "numerator": w.numerator, "denominator": w.denominator,
             "run_rate_per_month": w.run_rate_per_month, "projected": w.projected, "target": w.target,
             "projected_shortfall": w.projected_shortfall, "at_risk": w.at_risk, "as_of": as_of} for w in warnings]


def read_missing(conn: sa.Connection) -> list[MissingItem]:
    t = warehouse.missing_submissions
    return [MissingItem(r.site_code, r.kind, r.period, r.programme, r.town, _as_date(r.nominal_due),
                        _as_date(r.due_date), bool(r.calendar_official), r.status, int(r.days_overdue),
                        bool(r.escalated), r.last_rejected_at, r.resolved_at)
            for r in conn.execute(sa.select(t).order_by(t.c.site_code, t.c.period, t.c.kind))]


def read_warnings(conn: sa.Connection) -> list[EarlyWarning]:
    t = warehouse.early_warnings
    return [EarlyWarning(r.site_code, int(r.year), r.indicator, r.programme, int(r.months_active),
                         int(r.months_reported), Decimal(r.actual_to_date), Decimal(r.projected), Decimal(r.target),
                         Decimal(r.run_rate_per_month) if r.run_rate_per_month is not None else None,
                         r.numerator, r.denominator)
            for r in conn.execute(sa.select(t).order_by(t.c.site_code, t.c.indicator))]


# --- task functions (what the DAG's tasks call) ------------------------------------------------
def build_calendar(as_of: str) -> dict[str, Any]:
    """Rebuild ``expected_submissions`` as of the run's date."""
    settings = load_settings(use_airflow=True)
    plan = Plan.from_settings(settings)
    day = dt.date.fromisoformat(as_of)
    expected = expected_submissions(plan, day)
    written = write_calendar(_engine(settings), expected, day)
    shifted = sum(e.due_date != e.nominal_due for e in expected)
    unofficial = sorted({e.due_date.year for e in expected if not e.calendar_official})
    if unofficial:
        log.info("due dates in %s were computed without an official holiday calendar (policy provisional list)",
                 unofficial)
    return {"as_of": as_of, "expected": written, "shifted": shifted, "unofficial_years": unofficial}


def build_missing_list(as_of: str) -> dict[str, Any]:
    """Rebuild ``missing_submissions`` and ``early_warnings`` as of the run's date (files received on
    or before it; alert state from the alerts delivered by then)."""
    settings = load_settings(use_airflow=True)
    plan = Plan.from_settings(settings)
    day = dt.date.fromisoformat(as_of)
    engine = _engine(settings)
    with engine.begin() as conn:
        expected = read_calendar(conn)
        manifest = load_manifest(conn, day)
        items = find_missing(expected, manifest, plan, day)
        warnings = early_warnings(conn, plan, day, expected)
        history = load_history(conn, day)
        warehouse.replace_rows(conn, warehouse.missing_submissions, missing_rows(items, history, day))
        warehouse.replace_rows(conn, warehouse.early_warnings, warning_rows(warnings, day))
    open_items = [m for m in items if m.status == "open"]
    return {"as_of": as_of, "open": len(open_items), "escalated": sum(m.escalated for m in open_items),
            "resolved_late": len(items) - len(open_items), "early_warnings_at_risk": sum(w.at_risk for w in warnings)}


def is_live(plan: Plan, as_of: dt.date, today: dt.date) -> bool:
    """A run speaks for the present when its as-of date is today or within the grace days before
    it (never a date still to come)."""
    return today - dt.timedelta(days=plan.policy.alerts.backfill_grace_days) <= as_of <= today


def latest_sent_as_of(conn: sa.Connection) -> dt.date | None:
    """The as-of date of the newest run that delivered anything."""
    a = warehouse.alerts
    return conn.execute(sa.select(sa.func.max(a.c.as_of)).where(a.c.outcome == "sent")).scalar()


def _as_date(value: Any) -> dt.date:
    """A date column as read back (SQLite may return text)."""
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def send_alerts(as_of: str, today: str | None, send: bool, context: Any) -> dict[str, Any]:
    """Compose and send what each recipient is due to hear, record every message and its outcome,
    and bring the alert state of ``missing_submissions`` up to date. Runs for past dates
    (reruns, backfills) and runs with ``send`` false send nothing."""
    settings = load_settings(use_airflow=True)
    plan = Plan.from_settings(settings)
    day = dt.date.fromisoformat(as_of)
    now_day = dt.date.fromisoformat(today) if today else warehouse.shanghai_now().date()
    engine = _engine(settings)
    with engine.connect() as conn:
        newer = latest_sent_as_of(conn)
    reason = None
    if not send:
        reason = "send_alerts is off"
    elif not is_live(plan, day, now_day):
        reason = (f"as-of {day} is not between {plan.policy.alerts.backfill_grace_days} day(s) before today "
                  f"{now_day} and today")
    elif newer is not None and _as_date(newer) > day:
        reason = f"a run as of {_as_date(newer)} has already sent alerts; an earlier as-of speaks for the past"
    if reason:
        log.info("rebuild only, nothing sent: %s", reason)
        return {"as_of": as_of, "mode": "rebuild_only", "reason": reason, "messages": 0}
    with engine.connect() as conn:
        items = read_missing(conn)
        files = files_to_fix(conn, load_manifest(conn, day), plan)
        warnings = read_warnings(conn)
        history = load_history(conn, day)
    composed = compose(plan, day, items, files, warnings, history)
    outcomes = dispatch(engine, plan, day, composed, context)
    with engine.begin() as conn:
        history = load_history(conn, day)
        t = warehouse.missing_submissions
        for key, state in history.item_state.items():
            site_code, kind, period = key.split("/")
            conn.execute(t.update().where(t.c.site_code == site_code, t.c.kind == kind, t.c.period == period)
                         .values(**state))
    return {"as_of": as_of, "mode": "live", "messages": len(composed), **outcomes}


def dispatch(engine: sa.Engine, plan: Plan, as_of: dt.date, composed: list[Composed], context: Any) -> dict[str, int]:
    """Send each composed message on its channel (with back-off), record it with its items, and
    settle earlier undelivered messages to the same recipient. A channel that failed every attempt
    (unreachable, timing out, answering with server errors) is not tried again in this run: its other
    messages are recorded as failed for the next run. A message the channel refuses on its own (a
    mailbox the mail server does not accept) fails alone."""
    from yuhang_skills.watchdog import channels

    alerts = plan.policy.alerts
    renderer = Renderer(plan, as_of)
    configured = {name: channels.channel_configured(ch) for name, ch in alerts.channels.items()
                  if any(c.target.channel == name for c in composed)}
    down: dict[str, str] = {}
    counts: dict[str, int] = defaultdict(int)
    this_run: set[tuple[str, str]] = set()
    for c in composed:
        t = c.target
        subject, markdown, page, payload = renderer.render(c)
        message = channels.OutgoingMessage(t.recipient, subject, markdown, page, payload)
        if not configured[t.channel]:
            delivery = channels.Delivery("not_configured", 0,
                                          f"no Airflow connection {alerts.channels[t.channel].connection_id!r}")
        elif t.channel in down:
            delivery = channels.Delivery("failed", 0, f"channel failed earlier in this run: {down[t.channel]}")
        else:
            notifier = channels.build_notifier(alerts.channels[t.channel], message, alerts.retry)
            delivery = channels.deliver(notifier, context, alerts.retry)
            if delivery.outcome == "failed" and delivery.channel_down:
                down[t.channel] = delivery.error or "failed"
        counts[delivery.outcome] += 1
        this_run.add((t.channel, t.recipient))
        record(engine, as_of, c, subject, markdown, delivery)
    settle_no_longer_due(engine, as_of, this_run)
    for outcome in ("failed", "not_configured"):
        if counts.get(outcome):
            log.warning("%d message(s) %s; recorded in the alerts table, due again at the next run",
                        counts[outcome], outcome)
    return dict(counts)


def record(engine: sa.Engine, as_of: dt.date, c: Composed, subject: str, markdown: str, delivery: Any) -> int:
    """One message in the alerts log with its items (its own transaction: what went out stays
    recorded whatever happens next), and the earlier undelivered messages it now carries."""
    t = c.target
    a = warehouse.alerts
    now = warehouse.shanghai_now()
    with engine.begin() as conn:
        alert_id = conn.execute(a.insert().values(
            as_of=as_of, channel=t.channel, recipient=t.recipient, recipient_role=t.role,
            site_code=",".join(t.sites)[:40] if t.role == "site_contact" else None, subject=subject[:300],
            message=markdown, items=len(c.items), attempts=delivery.attempts, outcome=delivery.outcome,
            error=delivery.error, created_at=now, sent_at=now if delivery.outcome == "sent" else None,
        )).inserted_primary_key[0]
        conn.execute(warehouse.alert_items.insert(),
                     [{"alert_id": alert_id, "item_type": kind, "item_key": key} for kind, key in dict.fromkeys(c.items)])
        if delivery.outcome == "sent":
            conn.execute(a.update().where(a.c.channel == t.channel, a.c.recipient == t.recipient,
                                          a.c.outcome != "sent", a.c.follow_up.is_(None), a.c.alert_id != alert_id)
                         .values(follow_up="resent", follow_up_alert_id=alert_id))
    return int(alert_id)


def settle_no_longer_due(engine: sa.Engine, as_of: dt.date, this_run: set[tuple[str, str]]) -> None:
    """Undelivered messages to recipients with nothing due any more (their items were resolved
    before delivery) are marked so: nothing of them is left to send."""
    a = warehouse.alerts
    with engine.begin() as conn:
        pending = conn.execute(sa.select(a.c.alert_id, a.c.channel, a.c.recipient)
                               .where(a.c.outcome != "sent", a.c.follow_up.is_(None), a.c.as_of <= as_of)).all()
        stale = [r.alert_id for r in pending if (r.channel, r.recipient) not in this_run]
        if stale:
            conn.execute(a.update().where(a.c.alert_id.in_(stale)).values(follow_up="no_longer_due"))
