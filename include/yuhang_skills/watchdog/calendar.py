"""The expected-submission calendar: every site of the registry active in a period owes each kind
its programme submits (policy ``submissions``: monthly roster and finance, quarterly survey, yearly
village outcomes), due on the policy's day. A due date on a weekend or a Chinese public holiday
moves to the next working day (policy ``alerts.working_days``): the ``chinese-calendar`` package for
the years the State Council has published, the policy's provisional list (plus weekends) for later
years, which the calendar marks as not official.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from yuhang_skills.core.policy import Plan, Site, SubmissionRule, WorkingDayPolicy


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
        # The years the package's official lists cover (the State Council publishes each year's in
        # the autumn before); outside them the policy's provisional list, or weekends only, apply.
        self.official_years = range(min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year + 1)

    def lookup(self, day: dt.date) -> tuple[bool, str, bool]:
        """(is a working day, calendar source, official) for ``day``."""
        if day not in self._cache:
            self._cache[day] = self._lookup(day)
        return self._cache[day]

    def _lookup(self, day: dt.date) -> tuple[bool, str, bool]:
        if day.year in self.official_years:
            return bool(self._calendar.is_workday(day)), self.official_source, True
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
        periods.append(
            (f"{last_year}-{last_month:02d}", dt.date(year, month, 1), end, dt.date(due_year, due_month, rule.due_day))
        )
        year, month = _next_month(last_year, last_month)
    return [p for p in periods if p[2] >= site.active_from]


def expected_submissions(plan: Plan, as_of: dt.date, days: WorkingDays | None = None) -> list[ExpectedSubmission]:
    """Registry x cadence: every submission a site active in a period owes, for the periods begun
    by ``as_of``, with working-day due dates."""
    days = days or WorkingDays(plan.policy.alerts.working_days)
    expected = []
    for site in plan.sites:
        for rule in plan.policy.submissions.values():
            if site.programme not in rule.programmes:
                continue
            for period, start, end, nominal in rule_periods(rule, site, as_of):
                due, source, official = days.due_date(nominal)
                expected.append(
                    ExpectedSubmission(
                        site.site_code, rule.kind, period, site.programme, start, end, nominal, due, source, official
                    )
                )
    return expected
