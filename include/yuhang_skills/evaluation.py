"""The performance evaluation: indicator points, score, grade, release of the performance
tranche and the gap to full release, computed exactly (Decimal) from the indicator tables.

The frame is 财预〔2020〕10号's 100 points; which indicators, their weights and targets, the
grade bands and the release rule all come from the policy file. An indicator scores its full
weight when the actual reaches the target and weight x actual / target otherwise; points are
rounded half-up to 0.01 and the score is the sum of the points shown.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable

import pandas as pd
import sqlalchemy as sa

from .policy import Plan, Policy

CENT = Decimal("0.01")
ONE = Decimal(1)


def q2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def ratio(numerator: Any, denominator: Any) -> Decimal | None:
    denominator = Decimal(str(denominator))
    if denominator == 0:
        return None
    return Decimal(str(numerator)) / denominator


@dataclass
class IndicatorResult:
    code: str
    dimension: str
    name_zh: str
    weight: Decimal
    target: Decimal
    actual: Decimal
    numerator: Decimal
    denominator: Decimal
    points: Decimal
    source_rows: int
    basis: str
    site_years: list[dict[str, Any]] = field(default_factory=list)  # per site-year attainment

    @property
    def met(self) -> bool:
        return self.actual >= self.target


def _attainment(actual: Decimal | None, target: Decimal) -> Decimal:
    if actual is None or target <= 0:
        return Decimal(0) if actual is None else ONE
    return min(ONE, actual / target)


def points_for(weight: Decimal, actual: Decimal, target: Decimal) -> Decimal:
    return q2(weight * _attainment(actual, target))


class Evaluator:
    def __init__(self, plan: Plan, sites: pd.DataFrame, programmes: pd.DataFrame, evaluation_year: int):
        self.plan = plan
        self.policy: Policy = plan.policy
        self.evaluation_year = evaluation_year
        years = [y for y in self.policy.implementation_years if y < evaluation_year]
        self.sites = sites[sites["year"].isin(years)].copy()
        self.programmes = programmes[programmes["year"].isin(years)].copy()
        self.years = years
        self._targets = {(r["programme"], r["indicator"]): Decimal(r["target"]) for r in self.policy.target_rows()}

    # --- measures: (numerator, denominator, source_rows, basis, site_years) ------------------
    def site_target(self, row: pd.Series, indicator: str) -> Decimal:
        target = self._targets[(row["programme"], indicator)]
        per_year = indicator == "person_times"
        return target * Decimal(int(row["target_months"])) / Decimal(12) if per_year else target

    def _provincial_execution_rate(self, spec: dict[str, Any]):
        district = self.programmes[self.programmes["programme"] == "all"]
        spent = int(district["provincial_eligible_fen"].sum())
        received = self.policy.provincial_received_yuan(max(self.years)) * 100
        rows = int(self.sites["finance_rows"].sum())
        return Decimal(spent) / 100, Decimal(received) / 100, rows, "省级资金合规支出(元) / 已拨付省级资金(元)", []

    def _mean_site_year_attainment(self, spec: dict[str, Any]):
        indicator = spec["indicator"]
        rows = self.sites[self.sites["programme"] == spec["programme"]].sort_values(["site_code", "year"])
        details, total = [], Decimal(0)
        for _, r in rows.iterrows():
            target = self.site_target(r, indicator)
            if indicator == "person_times":
                actual: Decimal | None = Decimal(int(r["person_times"]))
            else:
                actual = ratio(r["passed"], r["assessed"])
            att = _attainment(actual, target)
            total += att
            details.append({"site_code": r["site_code"], "year": int(r["year"]), "indicator": indicator,
                            "target": target, "actual": actual, "attainment": att,
                            "source_rows": int(r["roster_rows"])})
        source_rows = int(rows["roster_rows"].sum())
        return total, Decimal(len(details)), source_rows, f"各{spec['programme']}年度 min(1, 实际/目标) 的平均值", details

    def _village_outcome_reporting_rate(self, spec: dict[str, Any]):
        rows = self.sites[self.sites["programme"] == "village"]
        return (Decimal(int(rows["outcomes_reported"].sum())), Decimal(len(rows)), int(rows["outcome_rows"].sum()),
                "已报送成效的村年数 / 应报送村年数", [])

    def _share_of_person_times(self, spec: dict[str, Any]):
        rows = self.sites[self.sites["programme"].isin(spec["programmes"])]
        return (Decimal(int(rows[spec["column"]].sum())), Decimal(int(rows["person_times"].sum())),
                int(rows["roster_rows"].sum()), f"{spec['column']} / person_times", [])

    def _village_skill_coverage(self, spec: dict[str, Any]):
        rows = self.sites[self.sites["programme"] == "village"]
        return (Decimal(int(rows["households_with_skill"].fillna(0).sum())),
                Decimal(int(rows["low_income_households"].fillna(0).sum())), int(rows["outcome_rows"].sum()),
                "一户一技户数 / 低收入农户数", [])

    def _satisfaction_rate(self, spec: dict[str, Any]):
        rows = self.sites[self.sites["programme"].isin(spec["programmes"])]
        kind = spec["respondent_type"]
        return (Decimal(int(rows[f"{kind}_satisfied"].sum())), Decimal(int(rows[f"{kind}_answers"].sum())),
                int(rows["survey_rows"].sum()), f"{kind} 满意答卷 / 有效答卷", [])

    def indicator(self, spec: dict[str, Any]) -> IndicatorResult:
        measure: Callable = getattr(self, f"_{spec['measure']}")
        numerator, denominator, source_rows, basis, details = measure(spec)
        actual = ratio(numerator, denominator)
        target = Decimal(str(spec["target"]))
        weight = Decimal(str(spec["weight"]))
        return IndicatorResult(
            code=spec["code"], dimension=spec["dimension"], name_zh=spec["name_zh"], weight=weight, target=target,
            actual=actual if actual is not None else Decimal(0), numerator=numerator, denominator=denominator,
            points=points_for(weight, actual if actual is not None else Decimal(0), target),
            source_rows=source_rows, basis=basis, site_years=details,
        )

    def indicators(self) -> list[IndicatorResult]:
        return [self.indicator(spec) for spec in self.policy.evaluation["indicators"]]


def release_fen(policy: Policy, score: Decimal) -> int:
    """Yuan-fen of the performance tranche released for ``score`` under the policy's rule."""
    tranche = Decimal(policy.performance_tranche_yuan * 100)
    rule = policy.release["rule"]
    params = policy.release["rules"][rule] or {}
    if rule == "banded":
        if score >= Decimal(str(params["full_at"])):
            share = ONE
        elif score >= Decimal(str(params["floor"])):
            share = score / Decimal(100)
        else:
            share = Decimal(0)
    elif rule == "linear":
        share = min(ONE, max(Decimal(0), score / Decimal(100)))
    else:
        raise ValueError(f"release rule {rule!r} is not implemented")
    return int((tranche * share).quantize(ONE, rounding=ROUND_HALF_UP))


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

    def headline(self) -> dict[str, Any]:
        return {
            "evaluation_year": self.evaluation_year, "as_of": self.as_of.isoformat(), "score": str(self.score),
            "grade": self.grade, "released_yuan": f"{Decimal(self.released_fen) / 100:.2f}",
            "tranche_yuan": f"{Decimal(self.tranche_fen) / 100:.2f}", "release_rule": self.release_rule,
            "policy_version": self.policy_version, "input_fingerprint": self.input_fingerprint,
        }


def gap_to_full_release(policy: Policy, indicators: list[IndicatorResult], score: Decimal) -> list[dict[str, Any]]:
    """For each shortfall: the additional result that would meet the target and the yuan it frees.

    The yuan is the release with that indicator at full points minus the release now, all else
    equal; for site-year indicators each site-year's own shortfall is listed the same way.
    """
    base = release_fen(policy, score)
    gaps: list[dict[str, Any]] = []
    for ind in indicators:
        if ind.points >= ind.weight:
            continue
        missing_points = ind.weight - ind.points
        needed = None
        if ind.denominator > 0 and not ind.site_years:
            needed = ind.target * ind.denominator - ind.numerator
        gaps.append({
            "indicator": ind.code, "site_code": None, "year": None, "name_zh": ind.name_zh,
            "target": ind.target, "actual": ind.actual, "additional_needed": needed,
            "missing_points": missing_points,
            "release_gain_fen": release_fen(policy, score + missing_points) - base,
        })
        n = Decimal(len(ind.site_years)) if ind.site_years else None
        for sy in ind.site_years:
            if sy["attainment"] >= ONE:
                continue
            gain_points = q2(ind.weight * (ONE - sy["attainment"]) / n)
            if sy["indicator"] == "person_times":
                additional = (sy["target"] - sy["actual"]).to_integral_value(rounding="ROUND_CEILING")
            else:
                additional = sy["target"] - (sy["actual"] or Decimal(0))
            gaps.append({
                "indicator": ind.code, "site_code": sy["site_code"], "year": sy["year"], "name_zh": ind.name_zh,
                "target": sy["target"], "actual": sy["actual"], "additional_needed": additional,
                "missing_points": gain_points,
                "release_gain_fen": release_fen(policy, score + gain_points) - base,
            })
    return gaps


def input_fingerprint(engine: sa.Engine, policy: Policy) -> str:
    """sha256 over the policy file and the sha256 of every current submission."""
    h = hashlib.sha256()
    if policy.path is not None:
        h.update(policy.path.read_bytes())
    with engine.connect() as conn:
        for (sha,) in conn.execute(sa.text("select sha256 from submissions where is_current = true order by sha256")):
            h.update(sha.encode())
    return h.hexdigest()


def evaluate(engine: sa.Engine, plan: Plan, evaluation_year: int, as_of: dt.date) -> Evaluation:
    sites = pd.read_sql(sa.text("select * from ind_site_year"), engine)
    programmes = pd.read_sql(sa.text("select * from ind_programme_year"), engine)
    evaluator = Evaluator(plan, sites, programmes, evaluation_year)
    indicators = evaluator.indicators()
    score = sum((i.points for i in indicators), Decimal(0))
    policy = plan.policy
    return Evaluation(
        evaluation_year=evaluation_year, as_of=as_of, indicators=indicators, score=score, grade=policy.grade(score),
        released_fen=release_fen(policy, score), tranche_fen=policy.performance_tranche_yuan * 100,
        policy_version=policy.version, release_rule=policy.release["rule"],
        input_fingerprint=input_fingerprint(engine, policy), gaps=gap_to_full_release(policy, indicators, score),
    )


def write_evaluation(engine: sa.Engine, evaluation: Evaluation, pii_key_is_demo: bool) -> dict[str, int]:
    """Replace the evaluation year's rows in the eval_* tables."""
    from . import warehouse

    year = evaluation.evaluation_year
    indicator_rows = [
        {"evaluation_year": year, "indicator": i.code, "dimension": i.dimension, "name_zh": i.name_zh,
         "weight": i.weight, "target": i.target, "actual": q4(i.actual), "numerator": i.numerator,
         "denominator": i.denominator, "points": i.points, "met": i.met, "basis": i.basis,
         "source_rows": i.source_rows}
        for i in evaluation.indicators
    ]
    site_rows = [
        {"evaluation_year": year, "site_code": sy["site_code"], "year": sy["year"],
         "programme": i.code.split("_")[0], "indicator": sy["indicator"], "target": q4(sy["target"]),
         "actual": None if sy["actual"] is None else q4(sy["actual"]), "attainment": sy["attainment"].quantize(Decimal("0.000001")),
         "met": sy["attainment"] >= ONE,
         "shortfall": q4(max(Decimal(0), sy["target"] - (sy["actual"] or Decimal(0)))),
         "source_rows": sy["source_rows"]}
        for i in evaluation.indicators
        for sy in i.site_years
    ]
    district_rows = [{
        "evaluation_year": year, "as_of": evaluation.as_of, "score": evaluation.score, "grade": evaluation.grade,
        "release_rule": evaluation.release_rule, "tranche_fen": evaluation.tranche_fen,
        "released_fen": evaluation.released_fen, "withheld_fen": evaluation.tranche_fen - evaluation.released_fen,
        "policy_version": evaluation.policy_version, "input_fingerprint": evaluation.input_fingerprint,
        "pii_key_is_demo": pii_key_is_demo, "evaluated_at": warehouse.shanghai_now(),
    }]
    gap_rows = [
        {"evaluation_year": year, "gap_id": n, **{k: (q4(v) if isinstance(v, Decimal) and k != "missing_points" else v)
                                                 for k, v in g.items()}}
        for n, g in enumerate(evaluation.gaps, start=1)
    ]
    rows = {warehouse.eval_indicator: indicator_rows, warehouse.eval_site: site_rows,
            warehouse.eval_district: district_rows, warehouse.eval_gap: gap_rows}
    warehouse.create_schema(engine)
    with engine.begin() as conn:
        for table, table_rows in rows.items():
            conn.execute(table.delete().where(table.c.evaluation_year == year))
            if table_rows:
                conn.execute(table.insert(), table_rows)
    return {t.name: len(r) for t, r in rows.items()}


def q4(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
