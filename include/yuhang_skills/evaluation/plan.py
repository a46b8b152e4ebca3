"""What the net release funds of the tranche year's build plan, the gap to full release, and the
margins the release has before it drops."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd

from yuhang_skills.core.policy import Policy
from yuhang_skills.evaluation.release import Results, release_fen
from yuhang_skills.evaluation.score import HUNDRED, ONE, ZERO, IndicatorResult, SiteYearTarget, ceil_to, q2, q4

# Units of eval_gap.additional_needed for a site-year target: counts are whole person-times,
# rates are percentage points.
SITE_YEAR_UNITS = {
    "person_times": "person_times",
    "pass_rate": "pass_rate_points",
    "satisfaction_rate": "satisfaction_points",
}


@dataclass(frozen=True)
class PlanSite:
    site_code: str
    programme: str
    priority_rank: int
    planned_provincial_fen: int
    funded_fen: int
    remaining_after_fen: int

    @property
    def keeps_funding(self) -> bool:
        return self.funded_fen == self.planned_provincial_fen


def allocate_plan(policy: Policy, ref_sites: pd.DataFrame, net_released_fen: int) -> tuple[list[PlanSite], int]:
    """The tranche year's sites with provincial plan money, funded from the net release in the
    policy's priority order; returns them and what stays unallocated."""
    rule = policy.plan_priority
    order = {p: n for n, p in enumerate(rule.programme_order)}
    sites = ref_sites[
        (ref_sites["batch_year"] == policy.performance_tranche_year) & (ref_sites["plan_provincial_fen"] > 0)
    ]
    ranked: list[Any] = sorted(sites.itertuples(index=False), key=lambda s: (order[s.programme], s.site_code))
    remaining = net_released_fen
    out: list[PlanSite] = []
    for rank, s in enumerate(ranked, start=1):
        planned = int(s.plan_provincial_fen)
        funded = planned if planned <= remaining else 0 if rule.whole_sites_only else remaining
        remaining -= funded
        out.append(PlanSite(s.site_code, s.programme, rank, planned, funded, remaining))
    return out, remaining


# --- gap to full release -------------------------------------------------------------------------
def _aggregate_need(ind: IndicatorResult) -> tuple[Decimal, str]:
    """What more the indicator needs to meet its target, in its own unit."""
    t, num, den = ind.target, ind.numerator, ind.denominator
    if ind.measure == "mean_site_year_attainment":
        return Decimal(sum(not sy.met for sy in ind.site_years)), "site_years"
    if ind.measure == "provincial_execution_rate":
        return ceil_to(t * den - num, "0.01"), "yuan"
    if ind.measure == "village_outcome_reporting_rate":
        return ceil_to(t * den - num, "1"), "reports"
    if ind.measure == "village_skill_coverage":
        return ceil_to(t * den - num, "1"), "households"
    if ind.measure == "share_of_person_times":
        # new person-times of the group x with (num + x) / (den + x) >= t; at t = 1 every
        # person-time counted must be one of the group, so it is the others that fall short
        need = (t * den - num) / (ONE - t) if t < ONE else den - num
        return ceil_to(need, "1"), "person_times"
    if ind.measure == "satisfaction_rate":
        return ceil_to((t - ind.actual) * HUNDRED, "0.0001"), "satisfaction_points"
    raise ValueError(f"no gap unit for measure {ind.measure!r}")


def _site_year_need(sy: SiteYearTarget) -> tuple[Decimal, str]:
    unit = SITE_YEAR_UNITS[sy.indicator]
    if unit == "person_times":
        return ceil_to(sy.shortfall, "1"), unit
    return ceil_to(sy.shortfall * HUNDRED, "0.0001"), unit


def gap_to_full_release(policy: Policy, indicators: list[IndicatorResult], results: Results) -> list[dict[str, Any]]:
    """For each shortfall: the additional result that would meet the target (and its unit), the
    points it would add and the yuan it would release under the policy's rule, all else equal.

    An indicator short of full points gets a row for the whole indicator; an indicator averaged
    over site-years also gets a row for each site-year short of its target.
    """
    base = release_fen(policy, results)
    gaps: list[dict[str, Any]] = []
    for ind in indicators:
        if ind.points >= ind.weight:
            continue
        missing_points = ind.weight - ind.points
        needed, unit = _aggregate_need(ind)
        gaps.append(
            {
                "indicator": ind.code,
                "site_code": None,
                "year": None,
                "name_zh": ind.name_zh,
                "target": ind.target,
                "actual": ind.actual,
                "additional_needed": needed,
                "unit": unit,
                "missing_points": missing_points,
                "release_gain_fen": release_fen(policy, results.improved(missing_points, ind, None)) - base,
            }
        )
        for sy in ind.site_years:
            if sy.met:
                continue
            gain_points = q2(ind.weight * (ONE - sy.attainment) / Decimal(len(ind.site_years)))
            needed, unit = _site_year_need(sy)
            gaps.append(
                {
                    "indicator": ind.code,
                    "site_code": sy.site_code,
                    "year": sy.year,
                    "name_zh": ind.name_zh,
                    "target": sy.target,
                    "actual": sy.actual,
                    "additional_needed": needed,
                    "unit": unit,
                    "missing_points": gain_points,
                    "release_gain_fen": release_fen(policy, results.improved(gain_points, ind, sy)) - base,
                }
            )
    return gaps


def release_margins(policy: Policy, indicators: list[IndicatorResult], score: Decimal) -> dict[str, Decimal | None]:
    """When the score is at or above the band that releases everything (banded rule), how far each
    indicator's actual can fall, alone, before the score drops below that band and the release
    drops: in percentage points of the indicator's ratio (its points fall pro rata with the actual).
    None for every indicator when the release already moves with every point (linear, a score
    below the band) or does not depend on the score (dli)."""
    if policy.release.rule != "banded" or policy.release.banded is None:
        return {i.code: None for i in indicators}
    full_at = policy.release.banded.full_at
    slack = score - full_at
    if slack < 0:
        return {i.code: None for i in indicators}
    out: dict[str, Decimal | None] = {}
    for i in indicators:
        if i.weight <= 0:
            out[i.code] = None
            continue
        # points = weight x min(1, actual / target): the actual at which the points are slack lower
        lowest = i.target * max(ZERO, i.points - slack) / i.weight
        out[i.code] = q4(max(ZERO, i.actual - lowest) * HUNDRED)
    return out
