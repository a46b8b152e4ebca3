"""Evaluation runs: every evaluation is a run with its own id, a status and sign-offs.

A run's rows in the ``eval_*`` tables carry its ``run_id`` and are written once; a rerun makes a
new run. Statuses:

- ``provisional`` (预评估): the as-of date is before the evaluated period's data can be complete
  (:func:`data_complete_on`), asked for explicitly; it can never become final;
- ``draft``: a complete evaluation waiting for its sign-offs;
- ``final``: every role of the policy's ``evaluation_runs.signoff_roles`` signed it; exactly one run
  per evaluation year is final;
- ``superseded``: it was final until another run replaced it (:func:`supersede`, with a reason);
  it stays readable.

:func:`diff` compares two runs (inputs by file, each indicator's actual and points, the headline)
and keeps the result in ``eval_diff``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from yuhang_skills.core import warehouse
from yuhang_skills.core.policy import Plan, Policy

STATUSES = ("provisional", "draft", "final", "superseded")
STATUS_ZH = {"provisional": "预评估", "draft": "草稿（待签署）", "final": "正式（已签署）", "superseded": "已被替代"}


class EvaluationRefused(Exception):
    """An evaluation or a sign-off the rules do not allow; the message is Chinese / English."""

    def __init__(self, zh: str, en: str):
        self.zh, self.en = zh, en
        super().__init__(f"{zh} / {en}")


# --- when the data can be complete ---------------------------------------------------------------
def evaluated_years(policy: Policy, evaluation_year: int) -> list[int]:
    return [y for y in policy.implementation_years if y < evaluation_year]


def data_complete_on(plan: Plan, evaluation_year: int) -> dt.date:
    """The day the evaluated period's data can be complete: the latest working-day due date of
    the last period of each submission kind in the last evaluated year, plus ``grace_days``."""
    from yuhang_skills.watchdog.calendar import WorkingDays

    policy = plan.policy
    spec = policy.evaluation_runs.data_complete
    if spec.rule != "last_period_due":
        raise ValueError(f"evaluation_runs.data_complete.rule {spec.rule!r} is not implemented")
    years = evaluated_years(policy, evaluation_year)
    if not years:
        raise EvaluationRefused(
            f"{evaluation_year} 年之前没有实施年度，无法评价",
            f"no implementation year before {evaluation_year} to evaluate",
        )
    last = max(years)
    days = WorkingDays(policy.alerts.working_days)
    latest: dt.date | None = None
    for rule in policy.submissions.values():
        if rule.cadence == "yearly":
            nominal = dt.date(last + 1, rule.due_month or 1, rule.due_day)
        else:  # the December (or fourth-quarter) period is due the month after
            nominal = dt.date(last + 1, 1, rule.due_day)
        due, _, _ = days.due_date(nominal)
        latest = due if latest is None or due > latest else latest
    if latest is None:
        raise ValueError("the policy has no submissions: the data cannot be complete on any day")
    return latest + dt.timedelta(days=spec.grace_days)


def check_as_of(plan: Plan, evaluation_year: int, as_of: dt.date, provisional: bool) -> str:
    """The status a new run gets (``draft`` or ``provisional``), or :class:`EvaluationRefused`
    when the as-of date is too early and no provisional run was asked for."""
    complete = data_complete_on(plan, evaluation_year)
    if as_of >= complete:
        return "draft"
    if provisional:
        return "provisional"
    years = "、".join(str(y) for y in evaluated_years(plan.policy, evaluation_year))
    raise EvaluationRefused(
        f"拒绝评价：{evaluation_year} 年绩效评价的截止日期 {as_of.isoformat()} 早于评价期（{years} 年）数据"
        f"齐全之日 {complete.isoformat()}（按报送日历最后一期的截止日）；如需预评估，请设置 provisional=true",
        f"evaluation refused: the as-of date {as_of.isoformat()} of the {evaluation_year} evaluation is before "
        f"the evaluated period's data can be complete ({complete.isoformat()}, the last period's due date by "
        f"the submission calendar); ask for a provisional run (provisional=true) to see one anyway",
    )


# --- runs ------------------------------------------------------------------------------------------
def new_run_id(conn: sa.Connection, evaluation_year: int, as_of: dt.date) -> str:
    """``<year>-<as-of yyyymmdd>-<nn>``: readable, unique and sortable within a year and as-of date."""
    prefix = f"{evaluation_year}-{as_of:%Y%m%d}-"
    taken = [
        r
        for (r,) in conn.execute(
            sa.select(warehouse.eval_runs.c.run_id).where(warehouse.eval_runs.c.run_id.like(prefix + "%"))
        )
    ]
    numbers = [int(r[len(prefix) :]) for r in taken if r[len(prefix) :].isdigit()]
    return f"{prefix}{max(numbers, default=0) + 1:02d}"


def run_inputs(
    conn: sa.Connection, files: dict[str, Any] | None = None, rectifications_sha256: str | None = None
) -> list[dict[str, Any]]:
    """What a run's fingerprint covers, one row per file: the current submissions by their original
    path, then ``files`` (label -> path: the policy file, the site registry, the contract) and the
    rectifications file."""
    import hashlib
    from pathlib import Path

    rows = [
        {"input": r.original_name, "sha256": r.sha256, "site_code": r.site_code, "kind": r.kind, "period": r.period}
        for r in conn.execute(
            sa.text(
                "select original_name, sha256, site_code, kind, period from submissions where is_current = true"
                " order by original_name, sha256"
            )
        )
    ]
    for label, path in (files or {}).items():
        if path is not None and Path(path).is_file():
            rows.append(
                {
                    "input": f"{label}:{Path(path).name}",
                    "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
                    "site_code": None,
                    "kind": label,
                    "period": None,
                }
            )
    if rectifications_sha256:
        rows.append(
            {
                "input": "rectifications",
                "sha256": rectifications_sha256,
                "site_code": None,
                "kind": "rectifications",
                "period": None,
            }
        )
    seen: set[tuple[str, str]] = set()
    unique = []
    for row in rows:
        if (row["input"], row["sha256"]) not in seen:
            seen.add((row["input"], row["sha256"]))
            unique.append(row)
    return unique


def get_run(engine_or_conn: Any, run_id: str) -> dict[str, Any]:
    query = sa.select(warehouse.eval_runs).where(warehouse.eval_runs.c.run_id == run_id)
    if isinstance(engine_or_conn, sa.Connection):
        row = engine_or_conn.execute(query).mappings().first()
    else:
        with engine_or_conn.connect() as conn:
            row = conn.execute(query).mappings().first()
    if row is None:
        raise EvaluationRefused(f"没有评价运行 {run_id}", f"no evaluation run {run_id}")
    return dict(row)


def latest_run_id(engine: sa.Engine, evaluation_year: int, status: str | None = None) -> str | None:
    """The newest run of the year (of ``status`` when given), or None (also without eval_runs)."""
    if not sa.inspect(engine).has_table("eval_runs"):
        return None
    runs = warehouse.eval_runs
    query = sa.select(sa.func.max(runs.c.run_id)).where(runs.c.evaluation_year == evaluation_year)
    if status:
        query = query.where(runs.c.status == status)
    with engine.connect() as conn:
        return conn.execute(query).scalar()


def list_runs(engine: sa.Engine, year: int | None = None) -> list[dict[str, Any]]:
    """Every run (of ``year``), oldest first, with its signatures."""
    runs, signs = warehouse.eval_runs, warehouse.eval_signoffs
    query = sa.select(runs).order_by(runs.c.evaluation_year, runs.c.created_at, runs.c.run_id)
    if year is not None:
        query = query.where(runs.c.evaluation_year == year)
    with engine.connect() as conn:
        out = [dict(r) for r in conn.execute(query).mappings()]
        signed: dict[str, list[dict[str, Any]]] = {}
        for s in conn.execute(sa.select(signs).order_by(signs.c.signed_at, signs.c.role)).mappings():
            signed.setdefault(s["run_id"], []).append(dict(s))
    for run in out:
        run["signoffs"] = signed.get(run["run_id"], [])
    return out


def signoffs(engine: sa.Engine, run_id: str) -> list[dict[str, Any]]:
    signs = warehouse.eval_signoffs
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.select(signs).where(signs.c.run_id == run_id).order_by(signs.c.signed_at, signs.c.role)
            ).mappings()
        ]


def _now_precise() -> dt.datetime:
    """Asia/Shanghai wall time with microseconds, so signatures keep the order they were made in."""
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)


@dataclass(frozen=True)
class SignResult:
    run_id: str
    role: str
    status: str  # the run's status after signing
    missing_roles: list[str]
    superseded: str | None = None  # the run this one replaced as final

    @property
    def became_final(self) -> bool:
        return self.status == "final" and not self.missing_roles


def sign(
    engine: sa.Engine,
    run_id: str,
    role: str,
    name: str,
    comment: str | None = None,
    signed_by: str | None = None,
    policy: Policy | None = None,
    supersede_reason: str | None = None,
) -> SignResult:
    """Record ``name``'s signature in ``role`` on a draft run; when every role the policy names has
    signed, the run becomes final (if the year has a final run already, only with a
    ``supersede_reason``: that run becomes superseded)."""
    if policy is None:
        from yuhang_skills.core.settings import load_settings

        policy = Plan.from_settings(load_settings()).policy
    roles = policy.signoff_roles
    if role not in roles:
        raise EvaluationRefused(
            f"签署角色 {role!r} 不在政策规定的角色 {'、'.join(roles)} 之中",
            f"role {role!r} is not one of the policy's sign-off roles {', '.join(roles)}",
        )
    if not (name or "").strip():
        raise EvaluationRefused("签署人姓名不能为空", "the signer's name is required")
    with engine.begin() as conn:
        run = _locked_run(conn, run_id)
        if run["status"] == "provisional":
            raise EvaluationRefused(
                f"{run_id} 是预评估，不能签署定稿", f"{run_id} is a provisional run and cannot be signed off"
            )
        if run["status"] in ("final", "superseded"):
            raise EvaluationRefused(
                f"{run_id} 已{STATUS_ZH[run['status']]}，签署已结束",
                f"{run_id} is {run['status']}; its sign-off is closed",
            )
        signs = warehouse.eval_signoffs
        exists = conn.execute(sa.select(signs.c.name).where(signs.c.run_id == run_id, signs.c.role == role)).first()
        if exists is not None:
            raise EvaluationRefused(
                f"{run_id} 的“{role}”已由 {exists[0]} 签署", f"{run_id} was already signed as {role} by {exists[0]}"
            )
        conn.execute(
            signs.insert(),
            [
                {
                    "run_id": run_id,
                    "role": role,
                    "name": name.strip(),
                    "comment": comment or None,
                    "signed_at": _now_precise(),
                    "signed_by": signed_by,
                }
            ],
        )
        done = {r for (r,) in conn.execute(sa.select(signs.c.role).where(signs.c.run_id == run_id))}
        missing = [r for r in roles if r not in done]
        if missing:
            return SignResult(run_id, role, run["status"], missing)
        runs = warehouse.eval_runs
        current = conn.execute(
            sa.select(runs.c.run_id).where(runs.c.evaluation_year == run["evaluation_year"], runs.c.status == "final")
        ).scalar()
        if current is None or (supersede_reason or "").strip():
            replaced = _finalise(conn, run, supersede_reason)
            return SignResult(run_id, role, "final", [], replaced)
    # Every role signed and the signatures are kept, but the year has a final run already: the run
    # stays a draft until someone supersedes it with a reason.
    raise SecondFinal(current, run_id)


def _locked_run(conn: sa.Connection, run_id: str) -> dict[str, Any]:
    """The run, read again after locking its year's runs (PostgreSQL ``FOR UPDATE``; SQLite has a
    single writer), so two sign-offs of one year are taken one after the other."""
    year = get_run(conn, run_id)["evaluation_year"]
    runs = warehouse.eval_runs
    conn.execute(sa.select(runs.c.run_id).where(runs.c.evaluation_year == year).with_for_update()).all()
    return get_run(conn, run_id)


def _finalise(conn: sa.Connection, run: dict[str, Any], supersede_reason: str | None) -> str | None:
    runs = warehouse.eval_runs
    current = conn.execute(
        sa.select(runs.c.run_id).where(runs.c.evaluation_year == run["evaluation_year"], runs.c.status == "final")
    ).scalar()
    now = warehouse.shanghai_now()
    if current is not None:
        conn.execute(
            runs.update()
            .where(runs.c.run_id == current)
            .values(status="superseded", superseded_by=run["run_id"], supersede_reason=(supersede_reason or "").strip())
        )
    conn.execute(runs.update().where(runs.c.run_id == run["run_id"]).values(status="final", finalised_at=now))
    return current


class SecondFinal(EvaluationRefused):
    """Every role signed, but the year has a final run: finalising needs an explicit supersede."""

    def __init__(self, current: str, candidate: str):
        self.current, self.candidate = current, candidate
        super().__init__(
            f"{candidate} 已全部签署，但 {candidate[:4]} 年已有正式评价 {current}；如需替代，请执行 "
            f"yuhang-pipeline evaluation supersede --run {candidate} --reason …",
            f"{candidate} is signed by every role, but {current} is already final for {candidate[:4]}; to replace "
            f"it run yuhang-pipeline evaluation supersede --run {candidate} --reason …",
        )


def supersede(engine: sa.Engine, run_id: str, reason: str, policy: Policy | None = None) -> str | None:
    """Make a fully signed draft run final in place of the year's final run; returns the replaced
    run's id (None when the year had no final run). Both stay readable; the replaced one is
    ``superseded`` with this run and the reason."""
    if not (reason or "").strip():
        raise EvaluationRefused("替代正式评价必须说明理由", "a reason is required to supersede a final run")
    if policy is None:
        from yuhang_skills.core.settings import load_settings

        policy = Plan.from_settings(load_settings()).policy
    with engine.begin() as conn:
        run = _locked_run(conn, run_id)
        if run["status"] != "draft":
            raise EvaluationRefused(
                f"{run_id} 的状态是{STATUS_ZH.get(run['status'], run['status'])}，只有草稿可以替代正式评价",
                f"{run_id} is {run['status']}; only a draft run can supersede the final one",
            )
        signs = warehouse.eval_signoffs
        done = {r for (r,) in conn.execute(sa.select(signs.c.role).where(signs.c.run_id == run_id))}
        missing = [r for r in policy.signoff_roles if r not in done]
        if missing:
            raise EvaluationRefused(
                f"{run_id} 尚缺签署：{'、'.join(missing)}",
                f"{run_id} still needs the signatures of: {', '.join(missing)}",
            )
        runs = warehouse.eval_runs
        current = conn.execute(
            sa.select(runs.c.run_id).where(runs.c.evaluation_year == run["evaluation_year"], runs.c.status == "final")
        ).scalar()
        # With no final run (two last signatures at once each saw the other missing), the fully
        # signed draft simply becomes final.
        _finalise(conn, run, reason)
    return current


def set_outputs(engine: sa.Engine, run_id: str, outputs: dict[str, str]) -> None:
    """Record the run's files (written once, when the run is written)."""
    runs = warehouse.eval_runs
    with engine.begin() as conn:
        known = json.loads(conn.execute(sa.select(runs.c.outputs).where(runs.c.run_id == run_id)).scalar() or "{}")
        conn.execute(
            runs.update()
            .where(runs.c.run_id == run_id)
            .values(outputs=json.dumps({**known, **outputs}, ensure_ascii=False, sort_keys=True))
        )


# --- diff -------------------------------------------------------------------------------------------
def _fmt(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return f"{value.normalize():f}" if value == value.to_integral() else str(value)
    return str(value)


def diff(engine: sa.Engine, run_a: str, run_b: str, store: bool = True) -> list[dict[str, Any]]:
    """What changed from ``run_a`` to ``run_b``: inputs added or removed (by file), each indicator's
    actual and points, and the headline (score, grade, released, recoveries, net release). Kept in
    ``eval_diff`` (replacing an earlier diff of the same two runs) when ``store``."""
    a, b = get_run(engine, run_a), get_run(engine, run_b)
    rows: list[dict[str, Any]] = []

    def add(section: str, subject: str, change: str, value_a: Any, value_b: Any) -> None:
        rows.append(
            {
                "section": section,
                "subject": subject,
                "change": change,
                "value_a": _fmt(value_a),
                "value_b": _fmt(value_b),
            }
        )

    inputs = warehouse.eval_run_inputs
    ind = warehouse.eval_indicator
    with engine.connect() as conn:

        def files(run_id: str) -> dict[str, str]:
            return {
                r.input: r.sha256
                for r in conn.execute(sa.select(inputs.c.input, inputs.c.sha256).where(inputs.c.run_id == run_id))
            }

        def indicators(run_id: str) -> dict[str, Any]:
            return {r.indicator: r for r in conn.execute(sa.select(ind).where(ind.c.run_id == run_id))}

        fa, fb = files(run_a), files(run_b)
        ia, ib = indicators(run_a), indicators(run_b)
    for name in sorted(set(fa) | set(fb)):
        if name not in fa:
            add("input", name, "added", None, fb[name])
        elif name not in fb:
            add("input", name, "removed", fa[name], None)
        elif fa[name] != fb[name]:
            add("input", name, "changed", fa[name], fb[name])
    for code in sorted(set(ia) | set(ib)):
        ra, rb = ia.get(code), ib.get(code)
        if ra is None or rb is None:
            add(
                "indicator",
                code,
                "added" if ra is None else "removed",
                None if ra is None else f"{ra.actual} / {ra.points}",
                None if rb is None else f"{rb.actual} / {rb.points}",
            )
            continue
        if Decimal(str(ra.actual)) != Decimal(str(rb.actual)):
            add("indicator", f"{code}.actual", "changed", ra.actual, rb.actual)
        if Decimal(str(ra.points)) != Decimal(str(rb.points)):
            add("indicator", f"{code}.points", "changed", ra.points, rb.points)
    for key in (
        "as_of",
        "input_fingerprint",
        "policy_version",
        "score",
        "grade",
        "released_fen",
        "recoveries_fen",
        "net_released_fen",
    ):
        va, vb = a.get(key), b.get(key)
        if _fmt(va) != _fmt(vb):
            add("headline", key, "changed", va, vb)
    if store:
        table = warehouse.eval_diff
        now = warehouse.shanghai_now()
        with engine.begin() as conn:
            conn.execute(table.delete().where(table.c.run_a == run_a, table.c.run_b == run_b))
            if rows:
                conn.execute(
                    table.insert(),
                    [
                        {"run_a": run_a, "run_b": run_b, "item": n, "created_at": now, **r}
                        for n, r in enumerate(rows, start=1)
                    ],
                )
    return rows


def format_diff(run_a: str, run_b: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return f"{run_a} → {run_b}: 无差异 / no differences"
    lines = [f"{run_a} → {run_b}: {len(rows)} 处差异 / difference(s)"]
    titles = {"input": "输入文件 Inputs", "indicator": "指标 Indicators", "headline": "结论 Headline"}
    for section, title in titles.items():
        mine = [r for r in rows if r["section"] == section]
        if not mine:
            continue
        lines.append(f"  {title}")
        for r in mine:
            if r["change"] == "added":
                lines.append(f"    + {r['subject']}  {r['value_b'] or ''}".rstrip())
            elif r["change"] == "removed":
                lines.append(f"    - {r['subject']}  {r['value_a'] or ''}".rstrip())
            else:
                lines.append(f"    ~ {r['subject']}: {r['value_a']} → {r['value_b']}")
    return "\n".join(lines)


def format_runs(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "没有评价运行 / no evaluation runs"
    header = (
        f"{'run':<16} {'year':>4} {'as of':<10} {'status':<11} {'score':>6} {'grade':<2} "
        f"{'net release (yuan)':>18}  signed"
    )
    lines = [header]
    for r in runs:
        net = "" if r["net_released_fen"] is None else f"{Decimal(int(r['net_released_fen'])) / 100:,.2f}"
        signed = ", ".join(f"{s['role']} {s['name']}" for s in r["signoffs"]) or "-"
        lines.append(
            f"{r['run_id']:<16} {r['evaluation_year']:>4} {str(r['as_of']):<10} {r['status']:<11} "
            f"{_fmt(r['score']) or '':>6} {r['grade'] or '':<2} {net:>18}  {signed}"
        )
        if r.get("superseded_by"):
            lines.append(f"{'':16} superseded by {r['superseded_by']}: {r['supersede_reason']}")
    return "\n".join(lines)
