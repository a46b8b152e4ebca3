"""Release of the performance tranche under the policy's rule: banded or linear on the score, or
DLI tranches on verified results; every amount rounded half-up to the fen where it is paid."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from yuhang_skills.core.policy import DliTranche, Policy
from yuhang_skills.evaluation.score import (
    HUNDRED,
    ONE,
    ZERO,
    IndicatorResult,
    SiteYearTarget,
    attainment,
    fen,
    given,
    ratio,
)


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
    rule = policy.release.rule
    tranche_fen = policy.performance_tranche_yuan * 100
    score = results.score
    if rule == "banded" and policy.release.banded is not None:
        full_at, floor = policy.release.banded.full_at, policy.release.banded.floor
        share = ONE if score >= full_at else score / HUNDRED if score >= floor else ZERO
        basis = f"得分 ≥ {full_at} 全额; {floor} ≤ 得分 < {full_at} 按得分%; 得分 < {floor} 不拨付"
        return [
            ReleaseLine(
                rule,
                rule,
                "按绩效评价得分分档拨付",
                tranche_fen,
                score,
                HUNDRED,
                score / HUNDRED,
                full_at / HUNDRED,
                share,
                fen(tranche_fen * share),
                basis,
            )
        ]
    if rule == "linear":
        share = min(ONE, max(ZERO, score / HUNDRED))
        return [
            ReleaseLine(
                rule,
                rule,
                "按绩效评价得分比例拨付",
                tranche_fen,
                score,
                HUNDRED,
                score / HUNDRED,
                ONE,
                share,
                fen(tranche_fen * share),
                "按得分%拨付",
            )
        ]
    if rule == "dli":
        return [_dli_line(t, results) for t in policy.dli_tranches()]
    raise ValueError(f"release rule {rule!r} is not implemented")


def _dli_line(tranche: DliTranche, results: Results) -> ReleaseLine:
    amount_fen = tranche.amount_yuan * 100
    target = tranche.target
    if tranche.result == "share_of_site_years_met":
        programme = given(tranche.programme, "programme", tranche)
        met, n = results.site_years_met.get((programme, tranche.indicator), (0, 0))
        numerator, denominator = Decimal(met), Decimal(n)
        basis = f"达标的{tranche.programme}年数 / {tranche.programme}年数 ({tranche.indicator})"
    else:
        numerator, denominator = results.indicator_ratios[tranche.indicator]
        basis = f"指标 {tranche.indicator} 的实际值"
    result = ratio(numerator, denominator) or ZERO
    if tranche.scaling == "pro_rata":
        share = attainment(result, target)
        basis += f"; 金额 × min(1, 结果/{target})"
    else:
        share = ONE if result >= target else ZERO
        basis += f"; 结果 ≥ {target} 时全额, 否则不拨付"
    return ReleaseLine(
        tranche.code,
        "dli",
        tranche.name_zh,
        amount_fen,
        numerator,
        denominator,
        result,
        target,
        share,
        fen(amount_fen * share),
        basis,
    )


def release_fen(policy: Policy, results: Results | Decimal) -> int:
    """Yuan-fen of the performance tranche released under the policy's rule."""
    return sum(line.released_fen for line in release_lines(policy, results))
