"""Early warning: stations' and bases' person-times so far this year, projected to the year end by
run rate against the yearly target (pro-rated as the evaluation does), and bases' pass rate so far
against its target.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable

import sqlalchemy as sa

from yuhang_skills.core.policy import Plan
from yuhang_skills.core.settings import SQL_DIR
from yuhang_skills.watchdog.calendar import ExpectedSubmission
from yuhang_skills.watchdog.missing import cutoff

FOUR_PLACES = Decimal("0.0001")


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
    whose roster was due before ``as_of``; a month not sent counts as nothing trained)."""
    policy = plan.policy
    rules = policy.alerts.early_warning
    year = as_of.year
    if year not in policy.implementation_years:
        return []  # yearly targets hold for the implementation period only
    targets = {(r["programme"], r["indicator"]): (Decimal(r["target"]), r["per_year"]) for r in policy.target_rows()}
    pro_rate = policy.pro_rate_first_year
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
        if site.programme not in rules.programmes or active == 0 or len(closed) < rules.min_months_reported:
            continue
        rows = [r for r in months.get(site.site_code, []) if r["period"] in closed]
        person_times = sum(int(r["person_times"]) for r in rows)
        target_months = active if pro_rate else 12
        target, per_year = targets[(site.programme, "person_times")]
        if per_year:
            target = target * target_months / 12
        rate = Decimal(person_times) / len(closed)
        warnings.append(EarlyWarning(
            site.site_code, year, "person_times", site.programme, active, len(closed),
            actual_to_date=Decimal(person_times), run_rate_per_month=rate.quantize(FOUR_PLACES),
            projected=(rate * active).quantize(FOUR_PLACES), target=target.quantize(FOUR_PLACES)))
        if (site.programme, "pass_rate") in targets:
            assessed = sum(int(r["assessed"] or 0) for r in rows)
            passed = sum(int(r["passed"] or 0) for r in rows)
            if assessed:
                share = (Decimal(passed) / assessed).quantize(FOUR_PLACES)
                warnings.append(EarlyWarning(
                    site.site_code, year, "pass_rate", site.programme, active, len(closed), actual_to_date=share,
                    projected=share, target=targets[(site.programme, "pass_rate")][0].quantize(FOUR_PLACES),
                    numerator=passed, denominator=assessed))
    return warnings
