"""The performance evaluation: indicator points, score, grade, release of the performance
tranche, rectification and recoveries, what the net release leaves for the tranche year's build
plan, excellent stations and the gap to full release, computed exactly (Decimal, integer fen)
from the indicator tables.

The frame is 财预〔2020〕10号's 100 points; which indicators, their weights and targets, the
grade bands, the release rule (banded, linear or DLI tranches), the rectification deadline, the
recovery rule, the plan priority rule and the excellent-station rule all come from the policy
file. An indicator scores its full weight when the actual reaches the target and
weight x actual / target otherwise; points are rounded half-up to 0.01 and the score is the sum
of the points shown. Every money amount is rounded half-up to the fen once, where it is paid.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any, Callable, Mapping

import pandas as pd
import sqlalchemy as sa

from yuhang_skills.evaluation import rectification
from yuhang_skills.core.policy import Plan, Policy

CENT = Decimal("0.01")
ONE = Decimal(1)
ZERO = Decimal(0)
HUNDRED = Decimal(100)

PROGRAMME_ZH = {"village": "技能型乡村", "station": "技能培训站点", "base": "技能实训基地"}
COLUMN_ZH = {"key_group_person_times": "重点群体培训人次", "key_industry_person_times": "重点产业培训人次",
             "worker": "劳动者", "enterprise": "企业"}

# Units of eval_gap.additional_needed for a site-year target: counts are whole person-times,
# rates are percentage points.
SITE_YEAR_UNITS = {"person_times": "person_times", "pass_rate": "pass_rate_points",
                   "satisfaction_rate": "satisfaction_points"}


def q2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def q4(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def q6(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def fen(value: Decimal) -> int:
    """Whole fen, rounded half-up."""
    return int(value.quantize(ONE, rounding=ROUND_HALF_UP))


def ceil_to(value: Decimal, step: str) -> Decimal:
    """``value`` rounded up to ``step`` ("1" whole units, "0.01" fen, "0.0001" points)."""
    return value.quantize(Decimal(step), rounding=ROUND_CEILING)


def ratio(numerator: Any, denominator: Any) -> Decimal | None:
    denominator = Decimal(str(denominator))
    if denominator == 0:
        return None
    return Decimal(str(numerator)) / denominator


def _attainment(actual: Decimal | None, target: Decimal) -> Decimal:
    if actual is None or target <= 0:
        return ZERO if actual is None else ONE
    return min(ONE, actual / target)


def points_for(weight: Decimal, actual: Decimal, target: Decimal) -> Decimal:
    return q2(weight * _attainment(actual, target))


@dataclass(frozen=True)
class SiteYearTarget:
    """One yearly target of one site-year (a row of int_site_year_targets), with the target and the
    actual as exact fractions."""

    site_code: str
    programme: str
    year: int
    indicator: str
    target: Decimal
    actual: Decimal | None  # None: nothing to measure (no assessed trainee, no survey answer)
    source_rows: int  # roster rows (person-times, pass rate) or survey rows (satisfaction)
    submissions: int

    @property
    def attainment(self) -> Decimal:
        return _attainment(self.actual, self.target)

    @property
    def met(self) -> bool:
        return self.attainment >= ONE

    @property
    def shortfall(self) -> Decimal:
        return max(ZERO, self.target - (self.actual or ZERO))


@dataclass
class IndicatorResult:
    code: str
    dimension: str
    name_zh: str
    measure: str
    weight: Decimal
    target: Decimal
    actual: Decimal
    numerator: Decimal
    denominator: Decimal
    points: Decimal
    source_rows: int
    basis: str
    site_year_key: tuple[str, str] | None = None  # (programme, indicator) of a mean_site_year_attainment
    site_years: list[SiteYearTarget] = field(default_factory=list)  # its site-year targets

    @property
    def met(self) -> bool:
        return self.actual >= self.target


@dataclass(frozen=True)
class ExcellentStation:
    site_code: str
    qualifies: bool
    bonus_fen: int
    years_evaluated: int
    reasons: str
    source_rows: int


class Evaluator:
    """Measures over the indicator marts of the years evaluated (implementation years before the
    evaluation year), on one basis: ``sites``, ``programmes`` and ``targets`` are the rows of
    ind_site_year, ind_programme_year and int_site_year_targets of that basis."""

    def __init__(self, plan: Plan, sites: pd.DataFrame, programmes: pd.DataFrame, targets: pd.DataFrame,
                 evaluation_year: int):
        self.plan = plan
        self.policy: Policy = plan.policy
        self.evaluation_year = evaluation_year
        years = [y for y in self.policy.implementation_years if y < evaluation_year]
        self.sites = sites[sites["year"].isin(years)].sort_values(["site_code", "year"]).copy()
        self.programmes = programmes[programmes["year"].isin(years)].copy()
        self.targets = targets[targets["year"].isin(years)].copy()
        self.years = years

    # --- yearly targets per site-year ----------------------------------------------------------
    def site_year_targets(self) -> list[SiteYearTarget]:
        """Every yearly target of the policy for every site-year of its programme (rows of
        int_site_year_targets, where targets are pro-rated), in site, year and policy order; the
        target and the actual as exact fractions."""
        order = {t["indicator"]: n for n, t in enumerate(self.policy.target_rows())}
        rows = sorted(self.targets.itertuples(index=False), key=lambda r: (r.site_code, int(r.year), order[r.indicator]))
        out: list[SiteYearTarget] = []
        for r in rows:
            if pd.isna(r.numerator):
                raise ValueError(f"the policy sets a yearly target {r.indicator!r} the evaluation cannot measure")
            out.append(SiteYearTarget(
                site_code=r.site_code, programme=r.programme, year=int(r.year), indicator=r.indicator,
                target=ratio(int(r.target_numerator), int(r.target_denominator)),
                actual=ratio(int(r.numerator), int(r.denominator)),
                source_rows=int(r.source_rows), submissions=int(r.submissions)))
        return out

    # --- measures: (numerator, denominator, source_rows, basis, site_years) ------------------
    def _provincial_execution_rate(self, spec: dict[str, Any], targets: list[SiteYearTarget]):
        district = self.programmes[self.programmes["programme"] == "all"]
        spent = int(district["provincial_eligible_fen"].sum())
        received = self.policy.provincial_received_yuan(max(self.years)) * 100
        rows = int(self.sites["finance_rows"].sum())
        return Decimal(spent) / 100, Decimal(received) / 100, rows, "省级资金合规支出(元) / 已拨付省级资金(元)", []

    def _mean_site_year_attainment(self, spec: dict[str, Any], targets: list[SiteYearTarget]):
        rows = [t for t in targets if t.programme == spec["programme"] and t.indicator == spec["indicator"]]
        total = sum((t.attainment for t in rows), ZERO)
        return (total, Decimal(len(rows)), sum(t.source_rows for t in rows),
                f"各{PROGRAMME_ZH.get(spec['programme'], spec['programme'])}年度 min(1, 实际/目标) 的平均值", rows)

    def _village_outcome_reporting_rate(self, spec: dict[str, Any], targets: list[SiteYearTarget]):
        rows = self.sites[self.sites["programme"] == "village"]
        return (Decimal(int(rows["outcomes_reported"].sum())), Decimal(len(rows)), int(rows["outcome_rows"].sum()),
                "已报送成效的村年数 / 应报送村年数", [])

    def _share_of_person_times(self, spec: dict[str, Any], targets: list[SiteYearTarget]):
        rows = self.sites[self.sites["programme"].isin(spec["programmes"])]
        return (Decimal(int(rows[spec["column"]].sum())), Decimal(int(rows["person_times"].sum())),
                int(rows["roster_rows"].sum()),
                f"{COLUMN_ZH.get(spec['column'], spec['column'])} / 培训人次 ({spec['column']} / person_times)", [])

    def _village_skill_coverage(self, spec: dict[str, Any], targets: list[SiteYearTarget]):
        rows = self.sites[self.sites["programme"] == "village"]
        return (Decimal(int(rows["households_with_skill"].fillna(0).sum())),
                Decimal(int(rows["low_income_households"].fillna(0).sum())), int(rows["outcome_rows"].sum()),
                "一户一技户数 / 低收入农户数", [])

    def _satisfaction_rate(self, spec: dict[str, Any], targets: list[SiteYearTarget]):
        rows = self.sites[self.sites["programme"].isin(spec["programmes"])]
        kind = spec["respondent_type"]
        return (Decimal(int(rows[f"{kind}_satisfied"].sum())), Decimal(int(rows[f"{kind}_answers"].sum())),
                int(rows["survey_rows"].sum()), f"{COLUMN_ZH.get(kind, kind)}满意答卷 / 有效答卷 ({kind})", [])

    def indicator(self, spec: dict[str, Any], targets: list[SiteYearTarget]) -> IndicatorResult:
        measure: Callable = getattr(self, f"_{spec['measure']}")
        numerator, denominator, source_rows, basis, details = measure(spec, targets)
        actual = ratio(numerator, denominator)
        actual = actual if actual is not None else ZERO
        target = Decimal(str(spec["target"]))
        weight = Decimal(str(spec["weight"]))
        key = (spec["programme"], spec["indicator"]) if spec["measure"] == "mean_site_year_attainment" else None
        return IndicatorResult(
            code=spec["code"], dimension=spec["dimension"], name_zh=spec["name_zh"], measure=spec["measure"],
            weight=weight, target=target, actual=actual, numerator=numerator, denominator=denominator,
            points=points_for(weight, actual, target), source_rows=source_rows, basis=basis, site_year_key=key,
            site_years=details,
        )

    def indicators(self, targets: list[SiteYearTarget]) -> list[IndicatorResult]:
        return [self.indicator(spec, targets) for spec in self.policy.evaluation["indicators"]]

    # --- excellent stations -------------------------------------------------------------------
    def excellent_stations(self, targets: list[SiteYearTarget]) -> list[ExcellentStation]:
        """The policy's excellent-station rule (every_active_year) over every station evaluated."""
        rule = self.policy.excellent_station
        satisfaction_target = Decimal(str(rule["satisfaction_rate"]))
        bonus_fen = self.policy.excellent_bonus_yuan * 100
        person_times = {(t.site_code, t.year): t for t in targets
                        if t.programme == "station" and t.indicator == "person_times"}
        out: list[ExcellentStation] = []
        stations = self.sites[self.sites["programme"] == "station"]
        for code, years in stations.groupby("site_code", sort=True):
            qualifies, reasons, rows = True, [], 0
            for _, r in years.iterrows():
                pt = person_times[(code, int(r["year"]))]
                answers = int(r["worker_answers"]) + int(r["enterprise_answers"])
                satisfied = int(r["worker_satisfied"]) + int(r["enterprise_satisfied"])
                rate = ratio(satisfied, answers)
                sat_ok = rate is not None and rate >= satisfaction_target
                qualifies = qualifies and pt.met and sat_ok
                sat_text = ("无满意度答卷" if rate is None else
                            f"满意率{q2(rate * HUNDRED)}%({satisfied}/{answers})")
                reasons.append(f"{int(r['year'])}年: 培训人次{pt.actual}, 目标{_plain(pt.target)}, "
                               f"{'达标' if pt.met else '未达标'}; {sat_text}, 目标{q2(satisfaction_target * HUNDRED)}%, "
                               f"{'达标' if sat_ok else '未达标'}")
                rows += int(r["roster_rows"]) + int(r["survey_rows"])
            out.append(ExcellentStation(site_code=code, qualifies=qualifies, bonus_fen=bonus_fen if qualifies else 0,
                                        years_evaluated=len(years), reasons="; ".join(reasons), source_rows=rows))
        return out


def _plain(value: Decimal) -> str:
    """A number as a person writes it: 250, 416.6667 (at most four decimals, no trailing zeros)."""
    text = f"{q4(value):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- release of the performance tranche --------------------------------------------------------
@dataclass(frozen=True)
class Results:
    """What a release rule may depend on: the score and, for DLI tranches, the verified results."""

    score: Decimal
    site_years_met: Mapping[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # -> (met, all)
    indicator_ratios: Mapping[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # -> (num, den)

    @classmethod
    def of(cls, score: Decimal, indicators: list[IndicatorResult], targets: list[SiteYearTarget]) -> Results:
        met: dict[tuple[str, str], tuple[int, int]] = {}
        for t in targets:
            m, n = met.get((t.programme, t.indicator), (0, 0))
            met[(t.programme, t.indicator)] = (m + t.met, n + 1)
        return cls(score, met, {i.code: (i.numerator, i.denominator) for i in indicators})

    def improved(self, points: Decimal, indicator: IndicatorResult, site_year: SiteYearTarget | None) -> Results:
        """These results with ``points`` more and ``indicator`` at its target (or, given
        ``site_year``, that one site-year meeting its target), all else equal."""
        met = dict(self.site_years_met)
        ratios = dict(self.indicator_ratios)
        numerator, denominator = ratios[indicator.code]
        if indicator.site_year_key is not None:
            key = indicator.site_year_key
            m, n = met.get(key, (0, 0))
            if site_year is None:
                met[key], ratios[indicator.code] = (n, n), (denominator, denominator)
            else:
                met[key] = (m + 1, n)
                ratios[indicator.code] = (numerator + ONE - site_year.attainment, denominator)
        else:
            ratios[indicator.code] = (max(numerator, indicator.target * denominator), denominator)
        return dataclasses.replace(self, score=self.score + points, site_years_met=met, indicator_ratios=ratios)


@dataclass(frozen=True)
class ReleaseLine:
    component: str
    rule: str
    name_zh: str
    amount_fen: int
    numerator: Decimal
    denominator: Decimal
    result: Decimal
    target: Decimal
    share: Decimal
    released_fen: int
    basis: str


def release_lines(policy: Policy, results: Results | Decimal) -> list[ReleaseLine]:
    """How much of the performance tranche the policy's release rule pays for ``results`` (a bare
    score will do for the score-based rules), one line per component."""
    if not isinstance(results, Results):
        results = Results(results)
    rule = policy.release["rule"]
    params = policy.release["rules"][rule] or {}
    tranche_fen = policy.performance_tranche_yuan * 100
    score = results.score
    if rule == "banded":
        full_at, floor = Decimal(str(params["full_at"])), Decimal(str(params["floor"]))
        share = ONE if score >= full_at else score / HUNDRED if score >= floor else ZERO
        basis = f"得分 ≥ {full_at} 全额; {floor} ≤ 得分 < {full_at} 按得分%; 得分 < {floor} 不拨付"
        return [ReleaseLine(rule, rule, "按绩效评价得分分档拨付", tranche_fen, score, HUNDRED, score / HUNDRED,
                            full_at / HUNDRED, share, fen(tranche_fen * share), basis)]
    if rule == "linear":
        share = min(ONE, max(ZERO, score / HUNDRED))
        return [ReleaseLine(rule, rule, "按绩效评价得分比例拨付", tranche_fen, score, HUNDRED, score / HUNDRED,
                            ONE, share, fen(tranche_fen * share), "按得分%拨付")]
    if rule == "dli":
        return [_dli_line(t, results) for t in policy.dli_tranches()]
    raise ValueError(f"release rule {rule!r} is not implemented")


def _dli_line(tranche: dict[str, Any], results: Results) -> ReleaseLine:
    amount_fen = int(tranche["amount_yuan"]) * 100
    target = Decimal(str(tranche["target"]))
    if tranche["result"] == "share_of_site_years_met":
        met, n = results.site_years_met.get((tranche["programme"], tranche["indicator"]), (0, 0))
        numerator, denominator = Decimal(met), Decimal(n)
        basis = f"达标的{tranche['programme']}年数 / {tranche['programme']}年数 ({tranche['indicator']})"
    else:
        numerator, denominator = results.indicator_ratios[tranche["indicator"]]
        basis = f"指标 {tranche['indicator']} 的实际值"
    result = ratio(numerator, denominator) or ZERO
    if tranche["scaling"] == "pro_rata":
        share = _attainment(result, target)
        basis += f"; 金额 × min(1, 结果/{target})"
    else:
        share = ONE if result >= target else ZERO
        basis += f"; 结果 ≥ {target} 时全额, 否则不拨付"
    return ReleaseLine(tranche["code"], "dli", tranche["name_zh"], amount_fen, numerator, denominator, result, target,
                       share, fen(amount_fen * share), basis)


def release_fen(policy: Policy, results: Results | Decimal) -> int:
    """Yuan-fen of the performance tranche released under the policy's rule."""
    return sum(line.released_fen for line in release_lines(policy, results))


# --- rectification, recoveries, the tranche year's plan -----------------------------------------
@dataclass(frozen=True)
class RectificationRecord:
    site: SiteYearTarget
    deadline: dt.date
    decision: rectification.Decision | None
    status: str
    plan_provincial_fen: int
    recovery_fen: int


def rectification_records(policy: Policy, targets: list[SiteYearTarget], decisions: rectification.Decisions,
                          plan_provincial_fen: Mapping[str, int], as_of: dt.date) -> list[RectificationRecord]:
    """A record for every missed site-year target, with its deadline, the evaluators' decision,
    its status as of ``as_of`` and, for overdue ones, the recovery under the policy's rule
    (pro_rata_unmet: plan money x (1 - attainment), a site's total capped at its plan money)."""
    order = {t["indicator"]: n for n, t in enumerate(policy.target_rows())}
    missed = sorted((t for t in targets if not t.met), key=lambda t: (t.site_code, t.year, order[t.indicator]))
    recovered: dict[str, int] = {}
    records: list[RectificationRecord] = []
    for t in missed:
        deadline = policy.rectification_deadline(t.year)
        decision = decisions.get(t.site_code, t.year, t.indicator)
        state = rectification.status(deadline, decision.rectified_on if decision else None, as_of)
        plan_fen = int(plan_provincial_fen.get(t.site_code, 0))
        recovery = 0
        if state == "overdue":
            already = recovered.get(t.site_code, 0)
            recovery = min(fen(plan_fen * (ONE - t.attainment)), plan_fen - already)
            recovered[t.site_code] = already + recovery
        records.append(RectificationRecord(t, deadline, decision, state, plan_fen, recovery))
    return records


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
    order = {p: n for n, p in enumerate(rule["programme_order"])}
    sites = ref_sites[(ref_sites["batch_year"] == policy.performance_tranche_year)
                      & (ref_sites["plan_provincial_fen"] > 0)]
    ranked = sorted(sites.itertuples(index=False), key=lambda s: (order[s.programme], s.site_code))
    remaining = net_released_fen
    out: list[PlanSite] = []
    for rank, s in enumerate(ranked, start=1):
        planned = int(s.plan_provincial_fen)
        funded = planned if planned <= remaining else 0 if rule["whole_sites_only"] else remaining
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
        gaps.append({
            "indicator": ind.code, "site_code": None, "year": None, "name_zh": ind.name_zh,
            "target": ind.target, "actual": ind.actual, "additional_needed": needed, "unit": unit,
            "missing_points": missing_points,
            "release_gain_fen": release_fen(policy, results.improved(missing_points, ind, None)) - base,
        })
        for sy in ind.site_years:
            if sy.met:
                continue
            gain_points = q2(ind.weight * (ONE - sy.attainment) / Decimal(len(ind.site_years)))
            needed, unit = _site_year_need(sy)
            gaps.append({
                "indicator": ind.code, "site_code": sy.site_code, "year": sy.year, "name_zh": ind.name_zh,
                "target": sy.target, "actual": sy.actual, "additional_needed": needed, "unit": unit,
                "missing_points": gain_points,
                "release_gain_fen": release_fen(policy, results.improved(gain_points, ind, sy)) - base,
            })
    return gaps


def release_margins(policy: Policy, indicators: list[IndicatorResult], score: Decimal) -> dict[str, Decimal | None]:
    """When the score is at or above the band that releases everything (banded rule), how far each
    indicator's actual can fall, alone, before the score drops below that band and the release
    drops: in percentage points of the indicator's ratio (its points fall pro rata with the actual).
    None for every indicator when the release already moves with every point (linear, a score
    below the band) or does not depend on the score (dli)."""
    if policy.release["rule"] != "banded":
        return {i.code: None for i in indicators}
    full_at = Decimal(str((policy.release["rules"]["banded"] or {})["full_at"]))
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


# --- the evaluation as a whole -------------------------------------------------------------------
@dataclass
class Evaluation:
    evaluation_year: int
    as_of: dt.date
    indicators: list[IndicatorResult]
    score: Decimal
    grade: str
    released_fen: int
    tranche_fen: int
    policy_version: str
    release_rule: str
    input_fingerprint: str
    gaps: list[dict[str, Any]]
    site_targets: list[SiteYearTarget]
    release: list[ReleaseLine]
    rectifications: list[RectificationRecord]
    excellent: list[ExcellentStation]
    plan: list[PlanSite]
    plan_unallocated_fen: int
    score_before_exclusions: Decimal | None = None  # the score on every reported row
    site_targets_reported: list[SiteYearTarget] = field(default_factory=list)  # before integrity exclusions
    person_times_reported: int = 0  # evaluated years, before integrity exclusions
    person_times_counted: int = 0
    integrity: list[dict[str, Any]] = field(default_factory=list)  # per check: findings and what they took out
    villages: list[dict[str, Any]] = field(default_factory=list)  # 一户一技 coverage per village-year
    margins: dict[str, Decimal | None] = field(default_factory=dict)  # release_margins, percentage points
    submissions_record: list[dict[str, Any]] = field(default_factory=list)  # missing, late, early warnings

    @property
    def recoveries_fen(self) -> int:
        return sum(r.recovery_fen for r in self.rectifications)

    @property
    def net_released_fen(self) -> int:
        return max(0, self.released_fen - self.recoveries_fen)

    @property
    def excellent_bonus_fen(self) -> int:
        return sum(s.bonus_fen for s in self.excellent)

    def headline(self) -> dict[str, Any]:
        def yuan(value: int) -> str:
            return f"{Decimal(value) / 100:.2f}"

        return {
            "evaluation_year": self.evaluation_year, "as_of": self.as_of.isoformat(), "score": str(self.score),
            "grade": self.grade, "released_yuan": yuan(self.released_fen), "tranche_yuan": yuan(self.tranche_fen),
            "release_rule": self.release_rule, "policy_version": self.policy_version,
            "input_fingerprint": self.input_fingerprint, "recoveries_yuan": yuan(self.recoveries_fen),
            "net_released_yuan": yuan(self.net_released_fen),
            "score_before_exclusions": None if self.score_before_exclusions is None else str(self.score_before_exclusions),
            "person_times_reported": self.person_times_reported, "person_times_counted": self.person_times_counted,
            "integrity_findings": sum(c["findings"] for c in self.integrity),
        }


def input_fingerprint(engine: sa.Engine, plan: Plan, decisions: rectification.Decisions | None = None) -> str:
    """sha256 over the policy file, the site registry and contract as loaded, the sha256 of every
    current submission and, when there is one, the rectifications file."""
    policy = plan.policy
    h = hashlib.sha256()
    if policy.path is not None:
        h.update(policy.path.read_bytes())
    h.update(b"sites:" + repr(sorted(plan.sites, key=lambda site: site.site_code)).encode())
    h.update(b"contract:" + json.dumps(plan.contract, sort_keys=True, ensure_ascii=False, default=str).encode())
    with engine.connect() as conn:
        for (sha,) in conn.execute(sa.text("select sha256 from submissions where is_current = true order by sha256")):
            h.update(sha.encode())
    if decisions is not None and decisions.sha256 is not None:
        h.update(b"rectifications:" + decisions.sha256.encode())
    return h.hexdigest()


def integrity_summary(engine: sa.Engine, policy: Policy, years: list[int]) -> list[dict[str, Any]]:
    """Per integrity check (policy order): its findings, the sites they name, and the rows,
    person-times and money of the evaluated years it took out of the indicators (the
    integrity_summary mart)."""
    with engine.connect() as conn:
        findings = pd.read_sql(sa.text("select check_name, sites from integrity_findings"), conn)
        taken = pd.read_sql(sa.text("select * from integrity_summary"), conn)
    taken = taken[taken["year"].isin(years)]
    out = []
    for name, spec in policy.integrity["checks"].items():
        mine = findings[findings["check_name"] == name]
        sites = sorted({s for value in mine["sites"] for s in str(value).split(",") if s})
        out_of = taken[taken["check_name"] == name]
        out.append({"check_name": name, "severity": spec["severity"], "findings": len(mine),
                    "excluded_rows": int(out_of["excluded_rows"].sum()),
                    "excluded_person_times": int(out_of["excluded_person_times"].sum()),
                    "excluded_fen": int(out_of["excluded_fen"].sum()),
                    "sites": ",".join(sites) or None})
    return out


def village_coverage(plan: Plan, sites: pd.DataFrame, years: list[int]) -> list[dict[str, Any]]:
    """一户一技 per village and evaluated year: low-income households, those with a skill, the
    coverage and the households short (the rows behind village_skill_coverage)."""
    rows = sites[(sites["programme"] == "village") & sites["year"].isin(years)].sort_values(["site_code", "year"])
    out = []
    for _, r in rows.iterrows():
        site = plan.sites_by_code.get(r["site_code"])
        low = None if pd.isna(r["low_income_households"]) else int(r["low_income_households"])
        skill = None if pd.isna(r["households_with_skill"]) else int(r["households_with_skill"])
        out.append({"site_code": r["site_code"], "year": int(r["year"]), "name_zh": site.name_zh if site else None,
                    "town": site.town if site else None, "low_income_households": low, "households_with_skill": skill,
                    "coverage": q6(ratio(skill, low)) if low and skill is not None else None,
                    "households_short": max(0, low - (skill or 0)) if low is not None else None,
                    "outcomes_reported": bool(int(r["outcomes_reported"]))})
    return out


def submissions_record(engine: sa.Engine, plan: Plan, years: list[int], as_of: dt.date) -> list[dict[str, Any]]:
    """The evaluated years' submissions record as of ``as_of``: submissions still missing, those
    received after their due date (working-day due dates, as the watchdog computes them), and the
    early warnings the watchdog raised in each year as of ``evaluation_runs.early_warning_as_of``."""
    from yuhang_skills import watchdog

    days = watchdog.WorkingDays(plan.policy.alerts.working_days)
    expected = [e for e in watchdog.expected_submissions(plan, as_of, days) if int(e.period[:4]) in years]
    out: list[dict[str, Any]] = []
    with engine.connect() as conn:
        manifest = watchdog.load_manifest(conn, as_of)
        for item in sorted(watchdog.find_missing(expected, manifest, plan, as_of),
                           key=lambda i: (i.status != "open", i.site_code, i.kind, i.period)):
            missing = item.status == "open"
            out.append({"record": "missing" if missing else "late", "site_code": item.site_code, "kind": item.kind,
                        "period": item.period, "due_date": item.due_date,
                        "received_at": None if missing else item.resolved_at, "days_late": item.days_overdue,
                        "detail": None})
        month_day = str(plan.policy.evaluation_runs.get("early_warning_as_of", "10-11"))
        for year in years:
            moment = dt.date.fromisoformat(f"{year}-{month_day}")
            year_expected = watchdog.expected_submissions(plan, moment, days)
            for w in watchdog.early_warnings(conn, plan, moment, year_expected):
                if not w.at_risk:
                    continue
                if w.indicator == "pass_rate":
                    detail = (f"截至 {moment.isoformat()}：合格率 {q2(w.projected * HUNDRED)}%"
                              f"（{w.numerator}/{w.denominator}），目标 {q2(w.target * HUNDRED)}%")
                else:
                    detail = (f"截至 {moment.isoformat()}：应报 {w.months_reported} 个月共 {_plain(w.actual_to_date)} 人次，"
                              f"推算全年约 {_plain(q2(w.projected))} 人次，目标 {_plain(q2(w.target))} 人次")
                out.append({"record": "early_warning", "site_code": w.site_code, "kind": w.indicator,
                            "period": str(year), "due_date": None, "received_at": None, "days_late": None,
                            "detail": detail})
    return out


def evaluator_on(engine: sa.Engine, plan: Plan, evaluation_year: int, basis: str) -> Evaluator:
    """The evaluator over the marts' rows of one basis: 'counted' (after integrity exclusions) or
    'reported' (every staged row)."""
    def rows(table: str) -> pd.DataFrame:
        return pd.read_sql(sa.text(f"select * from {table} where basis = :basis"), engine, params={"basis": basis})

    return Evaluator(plan, rows("ind_site_year"), rows("ind_programme_year"), rows("int_site_year_targets"),
                     evaluation_year)


def evaluate(engine: sa.Engine, plan: Plan, evaluation_year: int, as_of: dt.date,
             decisions: rectification.Decisions | None = None) -> Evaluation:
    decisions = decisions or rectification.Decisions.none()
    evaluator, reported = (evaluator_on(engine, plan, evaluation_year, basis) for basis in ("counted", "reported"))
    ref_sites = pd.read_sql(sa.text("select site_code, programme, batch_year, plan_provincial_fen from ref_sites"),
                            engine)
    targets = evaluator.site_year_targets()
    indicators = evaluator.indicators(targets)
    score = sum((i.points for i in indicators), ZERO)
    policy = plan.policy
    results = Results.of(score, indicators, targets)
    release = release_lines(policy, results)
    released = sum(line.released_fen for line in release)
    plan_money = dict(zip(ref_sites["site_code"], (int(v) for v in ref_sites["plan_provincial_fen"])))
    records = rectification_records(policy, targets, decisions, plan_money, as_of)
    net = max(0, released - sum(r.recovery_fen for r in records))
    allocation, unallocated = allocate_plan(policy, ref_sites, net)
    reported_targets = reported.site_year_targets()
    score_before = sum((i.points for i in reported.indicators(reported_targets)), ZERO)
    return Evaluation(
        evaluation_year=evaluation_year, as_of=as_of, indicators=indicators, score=score, grade=policy.grade(score),
        released_fen=released, tranche_fen=policy.performance_tranche_yuan * 100,
        policy_version=policy.version, release_rule=policy.release["rule"],
        input_fingerprint=input_fingerprint(engine, plan, decisions),
        gaps=gap_to_full_release(policy, indicators, results), site_targets=targets, release=release,
        rectifications=records, excellent=evaluator.excellent_stations(targets), plan=allocation,
        plan_unallocated_fen=unallocated, score_before_exclusions=score_before, site_targets_reported=reported_targets,
        person_times_reported=int(reported.sites["person_times"].sum()),
        person_times_counted=int(evaluator.sites["person_times"].sum()),
        integrity=integrity_summary(engine, policy, evaluator.years),
        villages=village_coverage(plan, evaluator.sites, evaluator.years), margins=release_margins(policy, indicators, score),
        submissions_record=submissions_record(engine, plan, evaluator.years, as_of),
    )


def write_evaluation(engine: sa.Engine, evaluation: Evaluation, pii_key_is_demo: bool, status: str = "draft",
                     data_complete_on: dt.date | None = None, input_files: Mapping[str, Any] | None = None,
                     rectifications_sha256: str | None = None) -> dict[str, Any]:
    """Write the evaluation as a new run: an ``eval_runs`` row (status ``draft`` or
    ``provisional``), the inputs its fingerprint covers (``eval_run_inputs``) and its rows in the
    eval_* tables, all under its new run id; nothing written earlier is changed. Returns the row
    counts per table and the ``run_id``."""
    from yuhang_skills.core import warehouse

    if status not in ("draft", "provisional"):
        raise ValueError(f"a new run is draft or provisional, not {status!r}")
    year = evaluation.evaluation_year
    indicator_rows = [
        {"evaluation_year": year, "indicator": i.code, "dimension": i.dimension, "name_zh": i.name_zh,
         "weight": i.weight, "target": i.target, "actual": q4(i.actual), "numerator": q4(i.numerator),
         "denominator": q4(i.denominator), "points": i.points, "met": i.met, "basis": i.basis,
         "source_rows": i.source_rows, "margin_actual": evaluation.margins.get(i.code)}
        for i in evaluation.indicators
    ]
    by_target = {(r.site.site_code, r.site.year, r.site.indicator): r for r in evaluation.rectifications}
    reported = {(t.site_code, t.year, t.indicator): t.actual for t in evaluation.site_targets_reported}
    site_rows = []
    for t in evaluation.site_targets:
        record = by_target.get((t.site_code, t.year, t.indicator))
        site_rows.append({
            "evaluation_year": year, "site_code": t.site_code, "year": t.year, "programme": t.programme,
            "indicator": t.indicator, "target": q4(t.target), "actual": None if t.actual is None else q4(t.actual),
            "attainment": q6(t.attainment), "met": t.met, "shortfall": q4(t.shortfall), "source_rows": t.source_rows,
            "submissions": t.submissions, "deadline": record.deadline if record else None,
            "rectification_status": record.status if record else None,
            "recovery_fen": record.recovery_fen if record else 0,
            "actual_reported": None if reported.get((t.site_code, t.year, t.indicator)) is None
            else q4(reported[(t.site_code, t.year, t.indicator)]),
        })
    district_rows = [{
        "evaluation_year": year, "as_of": evaluation.as_of, "score": evaluation.score, "grade": evaluation.grade,
        "release_rule": evaluation.release_rule, "tranche_fen": evaluation.tranche_fen,
        "released_fen": evaluation.released_fen, "withheld_fen": evaluation.tranche_fen - evaluation.released_fen,
        "recoveries_fen": evaluation.recoveries_fen, "net_released_fen": evaluation.net_released_fen,
        "excellent_bonus_fen": evaluation.excellent_bonus_fen,
        "plan_unallocated_fen": evaluation.plan_unallocated_fen,
        "score_before_exclusions": evaluation.score_before_exclusions,
        "person_times_reported": evaluation.person_times_reported,
        "person_times_counted": evaluation.person_times_counted,
        "policy_version": evaluation.policy_version, "input_fingerprint": evaluation.input_fingerprint,
        "pii_key_is_demo": pii_key_is_demo, "evaluated_at": warehouse.shanghai_now(),
    }]
    gap_rows = [
        {"evaluation_year": year, "gap_id": n, **{k: (q4(v) if isinstance(v, Decimal) and k != "missing_points" else v)
                                                 for k, v in g.items()}}
        for n, g in enumerate(evaluation.gaps, start=1)
    ]
    release_rows = [
        {"evaluation_year": year, "component": r.component, "rule": r.rule, "name_zh": r.name_zh,
         "amount_fen": r.amount_fen, "numerator": q4(r.numerator), "denominator": q4(r.denominator),
         "result": q6(r.result), "target": q4(r.target), "share": q6(r.share), "released_fen": r.released_fen,
         "basis": r.basis}
        for r in evaluation.release
    ]
    rectification_rows = [
        {"evaluation_year": year, "site_code": r.site.site_code, "year": r.site.year, "indicator": r.site.indicator,
         "programme": r.site.programme, "target": q4(r.site.target),
         "actual": None if r.site.actual is None else q4(r.site.actual), "attainment": q6(r.site.attainment),
         "deadline": r.deadline, "rectified_on": r.decision.rectified_on if r.decision else None, "status": r.status,
         "plan_provincial_fen": r.plan_provincial_fen, "recovery_fen": r.recovery_fen,
         "note": (r.decision.note or None) if r.decision else None, "decision_row": r.decision.row if r.decision else None,
         "source_rows": r.site.source_rows}
        for r in evaluation.rectifications
    ]
    plan_rows = [
        {"evaluation_year": year, "site_code": p.site_code, "programme": p.programme, "priority_rank": p.priority_rank,
         "planned_provincial_fen": p.planned_provincial_fen, "funded_fen": p.funded_fen,
         "keeps_funding": p.keeps_funding, "remaining_after_fen": p.remaining_after_fen}
        for p in evaluation.plan
    ]
    excellent_rows = [
        {"evaluation_year": year, "site_code": s.site_code, "qualifies": s.qualifies, "bonus_fen": s.bonus_fen,
         "years_evaluated": s.years_evaluated, "reasons": s.reasons, "source_rows": s.source_rows}
        for s in evaluation.excellent
    ]
    rows = {warehouse.eval_indicator: indicator_rows, warehouse.eval_site: site_rows,
            warehouse.eval_district: district_rows, warehouse.eval_gap: gap_rows,
            warehouse.eval_release: release_rows, warehouse.eval_rectification: rectification_rows,
            warehouse.eval_plan_2027: plan_rows, warehouse.eval_excellent_station: excellent_rows,
            warehouse.eval_integrity: [{"evaluation_year": year, **row} for row in evaluation.integrity],
            warehouse.eval_village: [{"evaluation_year": year, **row} for row in evaluation.villages],
            warehouse.eval_submissions: [{"evaluation_year": year, "item": n, **row}
                                         for n, row in enumerate(evaluation.submissions_record, start=1)]}
    warehouse.create_schema(engine)
    warehouse.add_missing_columns(engine, (*warehouse.EVAL_TABLES, *warehouse.RUN_TABLES))
    attempt = 1
    while True:
        try:
            return _write_run(engine, evaluation, year, status, data_complete_on, input_files,
                              rectifications_sha256, rows)
        except sa.exc.IntegrityError:
            # another writer took the same run id (two evaluations of one year and as-of at once):
            # the transaction is rolled back whole, so number the run again
            if attempt == 3:
                raise
            attempt += 1


def _write_run(engine: sa.Engine, evaluation: Any, year: int, status: str, data_complete_on: Any,
               input_files: Any, rectifications_sha256: Any, rows: dict[sa.Table, list[dict[str, Any]]]) -> dict[str, Any]:
    from yuhang_skills.evaluation import runs
    from yuhang_skills.core import warehouse

    with engine.begin() as conn:
        run_id = runs.new_run_id(conn, year, evaluation.as_of)
        conn.execute(warehouse.eval_runs.insert(), [{
            "run_id": run_id, "evaluation_year": year, "as_of": evaluation.as_of,
            "input_fingerprint": evaluation.input_fingerprint, "policy_version": evaluation.policy_version,
            "status": status, "data_complete_on": data_complete_on, "created_at": warehouse.shanghai_now(),
            "score": evaluation.score, "grade": evaluation.grade, "released_fen": evaluation.released_fen,
            "recoveries_fen": evaluation.recoveries_fen, "net_released_fen": evaluation.net_released_fen}])
        inputs = runs.run_inputs(conn, input_files, rectifications_sha256)
        if inputs:
            conn.execute(warehouse.eval_run_inputs.insert(), [{"run_id": run_id, **row} for row in inputs])
        for table, table_rows in rows.items():
            if table_rows:
                conn.execute(table.insert(), [{"run_id": run_id, **row} for row in table_rows])
    return {"run_id": run_id, **{t.name: len(r) for t, r in rows.items()}}
