"""Early warning: stations' and bases' person-times so far this year, projected to the year end by
run rate against the yearly target (the site-year's, from int_site_year_targets, where it is
pro-rated), and bases' pass rate so far against its target.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from yuhang_skills.core.policy import Plan
from yuhang_skills.core.settings import SQL_DIR
from yuhang_skills.watchdog.calendar import ExpectedSubmission
from yuhang_skills.watchdog.missing import cutoff

log = logging.getLogger(__name__)

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


def early_warnings(
    conn: sa.Connection, plan: Plan, as_of: dt.date, expected: Iterable[ExpectedSubmission]
) -> list[EarlyWarning]:
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
        warnings.append(
            EarlyWarning(
                site.site_code,
                year,
                "person_times",
                site.programme,
                active,
                len(closed),
                actual_to_date=Decimal(person_times),
                run_rate_per_month=rate.quantize(FOUR_PLACES),
                projected=(rate * active).quantize(FOUR_PLACES),
                target=target.quantize(FOUR_PLACES),
            )
        )
        pass_rate = targets.get((site.site_code, "pass_rate"))
        if pass_rate is not None:
            assessed = sum(int(r["assessed"] or 0) for r in rows)
            passed = sum(int(r["passed"] or 0) for r in rows)
            if assessed:
                share = (Decimal(passed) / assessed).quantize(FOUR_PLACES)
                warnings.append(
                    EarlyWarning(
                        site.site_code,
                        year,
                        "pass_rate",
                        site.programme,
                        active,
                        len(closed),
                        actual_to_date=share,
                        projected=share,
                        target=pass_rate.quantize(FOUR_PLACES),
                        numerator=passed,
                        denominator=assessed,
                    )
                )
    return warnings


def site_year_targets(conn: sa.Connection, year: int) -> dict[tuple[str, str], Decimal]:
    """The yearly targets of ``year`` by site and indicator, exact, from int_site_year_targets
    (empty, with a note in the log, while the indicators have not been built)."""
    if not sa.inspect(conn).has_table("int_site_year_targets"):
        log.warning("no early warnings: int_site_year_targets is not built yet (run yuhang_indicators)")
        return {}
    rows = conn.execute(
        sa.text(
            "select site_code, indicator, target_numerator, target_denominator from int_site_year_targets"
            " where year = :year and basis = 'counted'"
        ),
        {"year": year},
    )
    return {
        (site, indicator): Decimal(int(numerator)) / Decimal(int(denominator))
        for site, indicator, numerator, denominator in rows
    }
