"""Rectification of missed site-year targets and the recoveries when a deadline passes unmet."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from yuhang_skills.core.policy import Policy
from yuhang_skills.evaluation import rectification
from yuhang_skills.evaluation.score import ONE, SiteYearTarget, fen


@dataclass(frozen=True)
class RectificationRecord:
    site: SiteYearTarget
    deadline: dt.date
    decision: rectification.Decision | None
    status: str
    plan_provincial_fen: int
    recovery_fen: int


def rectification_records(
    policy: Policy,
    targets: list[SiteYearTarget],
    decisions: rectification.Decisions,
    plan_provincial_fen: Mapping[str, int],
    as_of: dt.date,
) -> list[RectificationRecord]:
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
