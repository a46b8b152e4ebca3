"""The evaluation as a whole: ``evaluate`` scores the evaluation year on both bases, releases,
recovers and plans, and gathers the evidence (integrity, village coverage, submissions record);
``write_evaluation`` writes it as a new run; the input fingerprint and the headline."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa

from yuhang_skills.core.policy import Plan, Policy
from yuhang_skills.evaluation import rectification
from yuhang_skills.evaluation.plan import PlanSite, allocate_plan, gap_to_full_release, release_margins
from yuhang_skills.evaluation.recovery import RectificationRecord, rectification_records
from yuhang_skills.evaluation.release import ReleaseLine, Results, release_lines
from yuhang_skills.evaluation.score import (
    HUNDRED,
    ZERO,
    ExcellentStation,
    IndicatorResult,
    SiteYearTarget,
    evaluator_on,
    plain_number,
    q2,
    q4,
    q6,
)


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
            "evaluation_year": self.evaluation_year,
            "as_of": self.as_of.isoformat(),
            "score": str(self.score),
            "grade": self.grade,
            "released_yuan": yuan(self.released_fen),
            "tranche_yuan": yuan(self.tranche_fen),
            "release_rule": self.release_rule,
            "policy_version": self.policy_version,
            "input_fingerprint": self.input_fingerprint,
            "recoveries_yuan": yuan(self.recoveries_fen),
            "net_released_yuan": yuan(self.net_released_fen),
            "score_before_exclusions": None
            if self.score_before_exclusions is None
            else str(self.score_before_exclusions),
            "person_times_reported": self.person_times_reported,
            "person_times_counted": self.person_times_counted,
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
    h.update(b"contract:" + json.dumps(plan.contract.source, sort_keys=True, ensure_ascii=False, default=str).encode())
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
    for name, spec in policy.integrity.checks.items():
        mine = findings[findings["check_name"] == name]
        sites = sorted({s for value in mine["sites"] for s in str(value).split(",") if s})
        out_of = taken[taken["check_name"] == name]
        out.append(
            {
                "check_name": name,
                "severity": spec.severity,
                "findings": len(mine),
                "excluded_rows": int(out_of["excluded_rows"].sum()),
                "excluded_person_times": int(out_of["excluded_person_times"].sum()),
                "excluded_fen": int(out_of["excluded_fen"].sum()),
                "sites": ",".join(sites) or None,
            }
        )
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
        out.append(
            {
                "site_code": r["site_code"],
                "year": int(r["year"]),
                "name_zh": site.name_zh if site else None,
                "town": site.town if site else None,
                "low_income_households": low,
                "households_with_skill": skill,
                "coverage": q6(Decimal(skill) / low) if low and skill is not None else None,
                "households_short": max(0, low - (skill or 0)) if low is not None else None,
                "outcomes_reported": bool(int(r["outcomes_reported"])),
            }
        )
    return out


def submissions_record(engine: sa.Engine, plan: Plan, years: list[int], as_of: dt.date) -> list[dict[str, Any]]:
    """The evaluated years' submissions record as of ``as_of``: submissions still missing, those
    received after their due date (working-day due dates, as the watchdog computes them), and the
    early warnings the watchdog raised in each year as of ``evaluation_runs.early_warning_as_of``."""
    from yuhang_skills.watchdog.calendar import WorkingDays, expected_submissions
    from yuhang_skills.watchdog.missing import find_missing, load_manifest
    from yuhang_skills.watchdog.warnings import early_warnings

    days = WorkingDays(plan.policy.alerts.working_days)
    expected = [e for e in expected_submissions(plan, as_of, days) if int(e.period[:4]) in years]
    out: list[dict[str, Any]] = []
    with engine.connect() as conn:
        manifest = load_manifest(conn, as_of)
        for item in sorted(
            find_missing(expected, manifest, plan, as_of),
            key=lambda i: (i.status != "open", i.site_code, i.kind, i.period),
        ):
            missing = item.status == "open"
            out.append(
                {
                    "record": "missing" if missing else "late",
                    "site_code": item.site_code,
                    "kind": item.kind,
                    "period": item.period,
                    "due_date": item.due_date,
                    "received_at": None if missing else item.resolved_at,
                    "days_late": item.days_overdue,
                    "detail": None,
                }
            )
        month_day = plan.policy.evaluation_runs.early_warning_as_of
        for year in years:
            moment = dt.date.fromisoformat(f"{year}-{month_day}")
            year_expected = expected_submissions(plan, moment, days)
            for w in early_warnings(conn, plan, moment, year_expected):
                if not w.at_risk:
                    continue
                if w.indicator == "pass_rate":
                    detail = (
                        f"截至 {moment.isoformat()}：合格率 {q2(w.projected * HUNDRED)}%"
                        f"（{w.numerator}/{w.denominator}），目标 {q2(w.target * HUNDRED)}%"
                    )
                else:
                    detail = (
                        f"截至 {moment.isoformat()}：应报 {w.months_reported} 个月"
                        f"共 {plain_number(w.actual_to_date)} 人次，"
                        f"推算全年约 {plain_number(q2(w.projected))} 人次，目标 {plain_number(q2(w.target))} 人次"
                    )
                out.append(
                    {
                        "record": "early_warning",
                        "site_code": w.site_code,
                        "kind": w.indicator,
                        "period": str(year),
                        "due_date": None,
                        "received_at": None,
                        "days_late": None,
                        "detail": detail,
                    }
                )
    return out


def evaluate(
    engine: sa.Engine,
    plan: Plan,
    evaluation_year: int,
    as_of: dt.date,
    decisions: rectification.Decisions | None = None,
) -> Evaluation:
    """Score the evaluation year on the counted basis (and, for comparison, on everything
    reported), release, recover, plan and gather the evidence, as of ``as_of``."""
    decisions = decisions or rectification.Decisions.none()
    evaluator, reported = (evaluator_on(engine, plan, evaluation_year, basis) for basis in ("counted", "reported"))
    ref_sites = pd.read_sql(
        sa.text("select site_code, programme, batch_year, plan_provincial_fen from ref_sites"), engine
    )
    targets = evaluator.site_year_targets()
    indicators = evaluator.indicators(targets)
    score = sum((i.points for i in indicators), ZERO)
    policy = plan.policy
    results = Results.of(score, indicators, targets)
    release = release_lines(policy, results)
    released = sum(line.released_fen for line in release)
    plan_money = dict(zip(ref_sites["site_code"], (int(v) for v in ref_sites["plan_provincial_fen"]), strict=True))
    records = rectification_records(policy, targets, decisions, plan_money, as_of)
    net = max(0, released - sum(r.recovery_fen for r in records))
    allocation, unallocated = allocate_plan(policy, ref_sites, net)
    reported_targets = reported.site_year_targets()
    score_before = sum((i.points for i in reported.indicators(reported_targets)), ZERO)
    return Evaluation(
        evaluation_year=evaluation_year,
        as_of=as_of,
        indicators=indicators,
        score=score,
        grade=policy.grade(score),
        released_fen=released,
        tranche_fen=policy.performance_tranche_yuan * 100,
        policy_version=policy.version,
        release_rule=policy.release.rule,
        input_fingerprint=input_fingerprint(engine, plan, decisions),
        gaps=gap_to_full_release(policy, indicators, results),
        site_targets=targets,
        release=release,
        rectifications=records,
        excellent=evaluator.excellent_stations(targets),
        plan=allocation,
        plan_unallocated_fen=unallocated,
        score_before_exclusions=score_before,
        site_targets_reported=reported_targets,
        person_times_reported=int(reported.sites["person_times"].sum()),
        person_times_counted=int(evaluator.sites["person_times"].sum()),
        integrity=integrity_summary(engine, policy, evaluator.years),
        villages=village_coverage(plan, evaluator.sites, evaluator.years),
        margins=release_margins(policy, indicators, score),
        submissions_record=submissions_record(engine, plan, evaluator.years, as_of),
    )


def write_evaluation(
    engine: sa.Engine,
    evaluation: Evaluation,
    pii_key_is_demo: bool,
    status: str = "draft",
    data_complete_on: dt.date | None = None,
    input_files: Mapping[str, Any] | None = None,
    rectifications_sha256: str | None = None,
) -> dict[str, Any]:
    """Write the evaluation as a new run: an ``eval_runs`` row (status ``draft`` or
    ``provisional``), the inputs its fingerprint covers (``eval_run_inputs``) and its rows in the
    eval_* tables, all under its new run id; nothing written earlier is changed. Returns the row
    counts per table and the ``run_id``."""
    from yuhang_skills.core import warehouse

    if status not in ("draft", "provisional"):
        raise ValueError(f"a new run is draft or provisional, not {status!r}")
    year = evaluation.evaluation_year
    indicator_rows = [
        {
            "evaluation_year": year,
            "indicator": i.code,
            "dimension": i.dimension,
            "name_zh": i.name_zh,
            "weight": i.weight,
            "target": i.target,
            "actual": q4(i.actual),
            "numerator": q4(i.numerator),
            "denominator": q4(i.denominator),
            "points": i.points,
            "met": i.met,
            "basis": i.basis,
            "source_rows": i.source_rows,
            "margin_actual": evaluation.margins.get(i.code),
        }
        for i in evaluation.indicators
    ]
    by_target = {(r.site.site_code, r.site.year, r.site.indicator): r for r in evaluation.rectifications}
    reported = {(t.site_code, t.year, t.indicator): t.actual for t in evaluation.site_targets_reported}
    site_rows = []
    for t in evaluation.site_targets:
        record = by_target.get((t.site_code, t.year, t.indicator))
        site_rows.append(
            {
                "evaluation_year": year,
                "site_code": t.site_code,
                "year": t.year,
                "programme": t.programme,
                "indicator": t.indicator,
                "target": q4(t.target),
                "actual": None if t.actual is None else q4(t.actual),
                "attainment": q6(t.attainment),
                "met": t.met,
                "shortfall": q4(t.shortfall),
                "source_rows": t.source_rows,
                "submissions": t.submissions,
                "deadline": record.deadline if record else None,
                "rectification_status": record.status if record else None,
                "recovery_fen": record.recovery_fen if record else 0,
                "actual_reported": None
                if (as_reported_actual := reported.get((t.site_code, t.year, t.indicator))) is None
                else q4(as_reported_actual),
            }
        )
    district_rows = [
        {
            "evaluation_year": year,
            "as_of": evaluation.as_of,
            "score": evaluation.score,
            "grade": evaluation.grade,
            "release_rule": evaluation.release_rule,
            "tranche_fen": evaluation.tranche_fen,
            "released_fen": evaluation.released_fen,
            "withheld_fen": evaluation.tranche_fen - evaluation.released_fen,
            "recoveries_fen": evaluation.recoveries_fen,
            "net_released_fen": evaluation.net_released_fen,
            "excellent_bonus_fen": evaluation.excellent_bonus_fen,
            "plan_unallocated_fen": evaluation.plan_unallocated_fen,
            "score_before_exclusions": evaluation.score_before_exclusions,
            "person_times_reported": evaluation.person_times_reported,
            "person_times_counted": evaluation.person_times_counted,
            "policy_version": evaluation.policy_version,
            "input_fingerprint": evaluation.input_fingerprint,
            "pii_key_is_demo": pii_key_is_demo,
            "evaluated_at": warehouse.shanghai_now(),
        }
    ]
    gap_rows = [
        {
            "evaluation_year": year,
            "gap_id": n,
            **{k: (q4(v) if isinstance(v, Decimal) and k != "missing_points" else v) for k, v in g.items()},
        }
        for n, g in enumerate(evaluation.gaps, start=1)
    ]
    release_rows = [
        {
            "evaluation_year": year,
            "component": r.component,
            "rule": r.rule,
            "name_zh": r.name_zh,
            "amount_fen": r.amount_fen,
            "numerator": q4(r.numerator),
            "denominator": q4(r.denominator),
            "result": q6(r.result),
            "target": q4(r.target),
            "share": q6(r.share),
            "released_fen": r.released_fen,
            "basis": r.basis,
        }
        for r in evaluation.release
    ]
    rectification_rows = [
        {
            "evaluation_year": year,
            "site_code": r.site.site_code,
            "year": r.site.year,
            "indicator": r.site.indicator,
            "programme": r.site.programme,
            "target": q4(r.site.target),
            "actual": None if r.site.actual is None else q4(r.site.actual),
            "attainment": q6(r.site.attainment),
            "deadline": r.deadline,
            "rectified_on": r.decision.rectified_on if r.decision else None,
            "status": r.status,
            "plan_provincial_fen": r.plan_provincial_fen,
            "recovery_fen": r.recovery_fen,
            "note": (r.decision.note or None) if r.decision else None,
            "decision_row": r.decision.row if r.decision else None,
            "source_rows": r.site.source_rows,
        }
        for r in evaluation.rectifications
    ]
    plan_rows = [
        {
            "evaluation_year": year,
            "site_code": p.site_code,
            "programme": p.programme,
            "priority_rank": p.priority_rank,
            "planned_provincial_fen": p.planned_provincial_fen,
            "funded_fen": p.funded_fen,
            "keeps_funding": p.keeps_funding,
            "remaining_after_fen": p.remaining_after_fen,
        }
        for p in evaluation.plan
    ]
    excellent_rows = [
        {
            "evaluation_year": year,
            "site_code": s.site_code,
            "qualifies": s.qualifies,
            "bonus_fen": s.bonus_fen,
            "years_evaluated": s.years_evaluated,
            "reasons": s.reasons,
            "source_rows": s.source_rows,
        }
        for s in evaluation.excellent
    ]
    rows: dict[sa.Table, list[dict[str, Any]]] = {
        warehouse.eval_indicator: indicator_rows,
        warehouse.eval_site: site_rows,
        warehouse.eval_district: district_rows,
        warehouse.eval_gap: gap_rows,
        warehouse.eval_release: release_rows,
        warehouse.eval_rectification: rectification_rows,
        warehouse.eval_plan_2027: plan_rows,
        warehouse.eval_excellent_station: excellent_rows,
        warehouse.eval_integrity: [{"evaluation_year": year, **row} for row in evaluation.integrity],
        warehouse.eval_village: [{"evaluation_year": year, **row} for row in evaluation.villages],
        warehouse.eval_submissions: [
            {"evaluation_year": year, "item": n, **row} for n, row in enumerate(evaluation.submissions_record, start=1)
        ],
    }
    attempt = 1
    while True:
        try:
            return _write_run(
                engine, evaluation, year, status, data_complete_on, input_files, rectifications_sha256, rows
            )
        except sa.exc.IntegrityError:
            # another writer took the same run id (two evaluations of one year and as-of at once):
            # the transaction is rolled back whole, so number the run again
            if attempt == 3:
                raise
            attempt += 1


def _write_run(
    engine: sa.Engine,
    evaluation: Any,
    year: int,
    status: str,
    data_complete_on: Any,
    input_files: Any,
    rectifications_sha256: Any,
    rows: dict[sa.Table, list[dict[str, Any]]],
) -> dict[str, Any]:
    from yuhang_skills.core import warehouse
    from yuhang_skills.evaluation import runs

    with engine.begin() as conn:
        run_id = runs.new_run_id(conn, year, evaluation.as_of)
        conn.execute(
            warehouse.eval_runs.insert(),
            [
                {
                    "run_id": run_id,
                    "evaluation_year": year,
                    "as_of": evaluation.as_of,
                    "input_fingerprint": evaluation.input_fingerprint,
                    "policy_version": evaluation.policy_version,
                    "status": status,
                    "data_complete_on": data_complete_on,
                    "created_at": warehouse.shanghai_now(),
                    "score": evaluation.score,
                    "grade": evaluation.grade,
                    "released_fen": evaluation.released_fen,
                    "recoveries_fen": evaluation.recoveries_fen,
                    "net_released_fen": evaluation.net_released_fen,
                }
            ],
        )
        inputs = runs.run_inputs(conn, input_files, rectifications_sha256)
        if inputs:
            conn.execute(warehouse.eval_run_inputs.insert(), [{"run_id": run_id, **row} for row in inputs])
        for table, table_rows in rows.items():
            if table_rows:
                conn.execute(table.insert(), [{"run_id": run_id, **row} for row in table_rows])
    return {"run_id": run_id, **{t.name: len(r) for t, r in rows.items()}}
