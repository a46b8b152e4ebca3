"""Scoring: the indicators of the policy's evaluation frame measured over the indicator marts,
their points, and the yearly targets of every site-year, all exact (Decimal).

An indicator scores its full weight when the actual reaches the target and
weight x actual / target otherwise; points are rounded half-up to 0.01. The targets of a
site-year, pro-rated in the first year, and their actuals come from int_site_year_targets as
exact fractions; the measures (``_<measure>`` methods of ``Evaluator``, named by the policy's
``measure:``) read ind_site_year and ind_programme_year of one basis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

import pandas as pd
import sqlalchemy as sa

from yuhang_skills.core.policy import Indicator, Plan, Policy

CENT = Decimal("0.01")
ONE = Decimal(1)
ZERO = Decimal(0)
HUNDRED = Decimal(100)

PROGRAMME_ZH = {"village": "技能型乡村", "station": "技能培训站点", "base": "技能实训基地"}
COLUMN_ZH = {
    "key_group_person_times": "重点群体培训人次",
    "key_industry_person_times": "重点产业培训人次",
    "worker": "劳动者",
    "enterprise": "企业",
}


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


T = TypeVar("T")


def given(value: T | None, key: str, spec: Any) -> T:
    """A rule's parameter (an indicator's measure, a DLI tranche's result); the policy refuses, at
    load, a rule that lacks one, so None here is a bug, said plainly."""
    if value is None:
        raise ValueError(f"{type(spec).__name__} {getattr(spec, 'code', '')}: the policy left {key} unset")
    return value


def ratio(numerator: Any, denominator: Any) -> Decimal | None:
    denominator = Decimal(str(denominator))
    if denominator == 0:
        return None
    return Decimal(str(numerator)) / denominator


def _exact(numerator: Any, denominator: Any) -> Decimal:
    """A target held as a fraction of integers (never a zero denominator)."""
    return Decimal(int(numerator)) / Decimal(int(denominator))


def attainment(actual: Decimal | None, target: Decimal) -> Decimal:
    if actual is None or target <= 0:
        return ZERO if actual is None else ONE
    return min(ONE, actual / target)


def points_for(weight: Decimal, actual: Decimal, target: Decimal) -> Decimal:
    return q2(weight * attainment(actual, target))


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
        return attainment(self.actual, self.target)

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


# A measure: (evaluator, indicator spec, site-year targets) -> (numerator, denominator, source_rows,
# basis, site_years). An indicator's ``measure:`` in the policy names one of these; the policy's
# Measure type lists the same names (tests/include/test_policy.py holds the two together).
MeasureFunction = Callable[
    ["Evaluator", Indicator, "list[SiteYearTarget]"], "tuple[Decimal, Decimal, int, str, list[SiteYearTarget]]"
]
MEASURES: dict[str, MeasureFunction] = {}


def measure(name: str) -> Callable[[MeasureFunction], MeasureFunction]:
    """Register the decorated Evaluator method as the measure ``name``."""

    def register(function: MeasureFunction) -> MeasureFunction:
        if name in MEASURES:
            raise ValueError(f"measure {name!r} is registered twice")
        MEASURES[name] = function
        return function

    return register


class Evaluator:
    """Measures over the indicator marts of the years evaluated (implementation years before the
    evaluation year), on one basis: ``sites``, ``programmes`` and ``targets`` are the rows of
    ind_site_year, ind_programme_year and int_site_year_targets of that basis."""

    def __init__(
        self, plan: Plan, sites: pd.DataFrame, programmes: pd.DataFrame, targets: pd.DataFrame, evaluation_year: int
    ):
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
        records = [{str(k): v for k, v in r.items()} for r in self.targets.to_dict("records")]
        rows = sorted(records, key=lambda r: (r["site_code"], int(r["year"]), order[r["indicator"]]))
        out: list[SiteYearTarget] = []
        for r in rows:
            if pd.isna(r["numerator"]):
                raise ValueError(f"the policy sets a yearly target {r['indicator']!r} the evaluation cannot measure")
            out.append(
                SiteYearTarget(
                    site_code=str(r["site_code"]),
                    programme=str(r["programme"]),
                    year=int(r["year"]),
                    indicator=str(r["indicator"]),
                    target=_exact(r["target_numerator"], r["target_denominator"]),
                    actual=ratio(int(r["numerator"]), int(r["denominator"])),
                    source_rows=int(r["source_rows"]),
                    submissions=int(r["submissions"]),
                )
            )
        return out

    # --- measures: (numerator, denominator, source_rows, basis, site_years) ------------------
    @measure("provincial_execution_rate")
    def _provincial_execution_rate(self, spec: Indicator, targets: list[SiteYearTarget]):
        district = self.programmes[self.programmes["programme"] == "all"]
        spent = int(district["provincial_eligible_fen"].sum())
        received = self.policy.provincial_received_yuan(max(self.years)) * 100
        rows = int(self.sites["finance_rows"].sum())
        return Decimal(spent) / 100, Decimal(received) / 100, rows, "省级资金合规支出(元) / 已拨付省级资金(元)", []

    @measure("mean_site_year_attainment")
    def _mean_site_year_attainment(self, spec: Indicator, targets: list[SiteYearTarget]):
        programme = given(spec.programme, "programme", spec)
        rows = [t for t in targets if t.programme == programme and t.indicator == spec.indicator]
        total = sum((t.attainment for t in rows), ZERO)
        return (
            total,
            Decimal(len(rows)),
            sum(t.source_rows for t in rows),
            f"各{PROGRAMME_ZH.get(programme, programme)}年度 min(1, 实际/目标) 的平均值",
            rows,
        )

    @measure("village_outcome_reporting_rate")
    def _village_outcome_reporting_rate(self, spec: Indicator, targets: list[SiteYearTarget]):
        rows = self.sites[self.sites["programme"] == "village"]
        return (
            Decimal(int(rows["outcomes_reported"].sum())),
            Decimal(len(rows)),
            int(rows["outcome_rows"].sum()),
            "已报送成效的村年数 / 应报送村年数",
            [],
        )

    @measure("share_of_person_times")
    def _share_of_person_times(self, spec: Indicator, targets: list[SiteYearTarget]):
        rows = self.sites[self.sites["programme"].isin(given(spec.programmes, "programmes", spec))]
        column = given(spec.column, "column", spec)
        return (
            Decimal(int(rows[column].sum())),
            Decimal(int(rows["person_times"].sum())),
            int(rows["roster_rows"].sum()),
            f"{COLUMN_ZH.get(column, column)} / 培训人次 ({column} / person_times)",
            [],
        )

    @measure("village_skill_coverage")
    def _village_skill_coverage(self, spec: Indicator, targets: list[SiteYearTarget]):
        rows = self.sites[self.sites["programme"] == "village"]
        return (
            Decimal(int(rows["households_with_skill"].fillna(0).sum())),
            Decimal(int(rows["low_income_households"].fillna(0).sum())),
            int(rows["outcome_rows"].sum()),
            "一户一技户数 / 低收入农户数",
            [],
        )

    @measure("satisfaction_rate")
    def _satisfaction_rate(self, spec: Indicator, targets: list[SiteYearTarget]):
        rows = self.sites[self.sites["programme"].isin(given(spec.programmes, "programmes", spec))]
        kind = given(spec.respondent_type, "respondent_type", spec)
        return (
            Decimal(int(rows[f"{kind}_satisfied"].sum())),
            Decimal(int(rows[f"{kind}_answers"].sum())),
            int(rows["survey_rows"].sum()),
            f"{COLUMN_ZH.get(kind, kind)}满意答卷 / 有效答卷 ({kind})",
            [],
        )

    def indicator(self, spec: Indicator, targets: list[SiteYearTarget]) -> IndicatorResult:
        numerator, denominator, source_rows, basis, details = MEASURES[spec.measure](self, spec, targets)
        actual = ratio(numerator, denominator)
        actual = actual if actual is not None else ZERO
        target = spec.target
        weight = Decimal(spec.weight)
        key = (
            (given(spec.programme, "programme", spec), given(spec.indicator, "indicator", spec))
            if spec.measure == "mean_site_year_attainment"
            else None
        )
        return IndicatorResult(
            code=spec.code,
            dimension=spec.dimension,
            name_zh=spec.name_zh,
            measure=spec.measure,
            weight=weight,
            target=target,
            actual=actual,
            numerator=numerator,
            denominator=denominator,
            points=points_for(weight, actual, target),
            source_rows=source_rows,
            basis=basis,
            site_year_key=key,
            site_years=details,
        )

    def indicators(self, targets: list[SiteYearTarget]) -> list[IndicatorResult]:
        return [self.indicator(spec, targets) for spec in self.policy.evaluation.indicators]

    # --- excellent stations -------------------------------------------------------------------
    def excellent_stations(self, targets: list[SiteYearTarget]) -> list[ExcellentStation]:
        """The policy's excellent-station rule (every_active_year) over every station evaluated."""
        rule = self.policy.excellent_station
        satisfaction_target = rule.satisfaction_rate
        bonus_fen = self.policy.excellent_bonus_yuan * 100
        person_times = {
            (t.site_code, t.year): t for t in targets if t.programme == "station" and t.indicator == "person_times"
        }
        out: list[ExcellentStation] = []
        stations = self.sites[self.sites["programme"] == "station"]
        for code, years in stations.groupby("site_code", sort=True):
            qualifies, reasons, rows = True, [], 0
            for _, r in years.iterrows():
                pt = person_times[(str(code), int(r["year"]))]
                answers = int(r["worker_answers"]) + int(r["enterprise_answers"])
                satisfied = int(r["worker_satisfied"]) + int(r["enterprise_satisfied"])
                rate = ratio(satisfied, answers)
                sat_ok = rate is not None and rate >= satisfaction_target
                qualifies = qualifies and pt.met and sat_ok
                sat_text = "无满意度答卷" if rate is None else f"满意率{q2(rate * HUNDRED)}%({satisfied}/{answers})"
                reasons.append(
                    f"{int(r['year'])}年: 培训人次{pt.actual}, 目标{plain_number(pt.target)}, "
                    f"{'达标' if pt.met else '未达标'}; {sat_text}, 目标{q2(satisfaction_target * HUNDRED)}%, "
                    f"{'达标' if sat_ok else '未达标'}"
                )
                rows += int(r["roster_rows"]) + int(r["survey_rows"])
            out.append(
                ExcellentStation(
                    site_code=str(code),
                    qualifies=qualifies,
                    bonus_fen=bonus_fen if qualifies else 0,
                    years_evaluated=len(years),
                    reasons="; ".join(reasons),
                    source_rows=rows,
                )
            )
        return out


def plain_number(value: Decimal) -> str:
    """A number as a person writes it: 250, 416.6667 (at most four decimals, no trailing zeros)."""
    text = f"{q4(value):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def evaluator_on(engine: sa.Engine, plan: Plan, evaluation_year: int, basis: str) -> Evaluator:
    """The evaluator over the marts' rows of one basis: 'counted' (after integrity exclusions) or
    'reported' (every staged row)."""

    def rows(table: str) -> pd.DataFrame:
        return pd.read_sql(sa.text(f"select * from {table} where basis = :basis"), engine, params={"basis": basis})

    return Evaluator(
        plan, rows("ind_site_year"), rows("ind_programme_year"), rows("int_site_year_targets"), evaluation_year
    )
