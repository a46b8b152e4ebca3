"""``yuhang-pipeline evaluation list|sign|supersede|diff``: the evaluation runs, their sign-off and
what changed between two of them (runs.py does the work; the same sign-off runs in Airflow as the
``yuhang_evaluation_signoff`` DAG).

- ``list [--year N]``: every run with its status, headline and signatures;
- ``sign --run RUN --role 评价组|复核|负责人 --name NAME [--comment …] [--supersede-reason …]``: records
  a signature; the last role the policy names makes the run final and writes the signed edition and
  ``evaluation_<year>_final.*``;
- ``supersede --run RUN --reason …``: a fully signed draft replaces the year's final run;
- ``diff RUN_A RUN_B``: inputs added or removed by file, each indicator's actual and points, the
  headline; kept in ``eval_diff``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from yuhang_skills.core.settings import DEFAULT_VAR_DIR


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--warehouse",
        default=None,
        metavar="URL",
        help="SQLAlchemy URL of the warehouse (default: $YUHANG_WAREHOUSE_URL or sqlite:///<var-dir>/warehouse.sqlite)",
    )
    p.add_argument(
        "--var-dir",
        type=Path,
        default=None,
        help=f"the pipeline's folder (default: $YUHANG_VAR_DIR or {DEFAULT_VAR_DIR})",
    )
    p.add_argument(
        "--output-dir", type=Path, default=None, help="where the run's files are (default: <var-dir>/outputs)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def add_commands(sub: Any) -> None:
    evaluation = sub.add_parser(
        "evaluation",
        help="evaluation runs: list, sign, supersede, diff",
        description="Evaluation runs: list them, sign one off, supersede the final one, compare two.",
    )
    commands = evaluation.add_subparsers(dest="evaluation_command", required=True)
    listing = commands.add_parser("list", help="every run with its status, headline and signatures")
    listing.add_argument("--year", type=int, default=None, help="only this evaluation year")
    _common(listing)
    listing.set_defaults(handler=list_command)
    sign = commands.add_parser("sign", help="sign a draft run in one role (评价组, 复核, 负责人 by default)")
    sign.add_argument("--run", required=True, help="the run id, e.g. 2027-20270215-01")
    sign.add_argument("--role", required=True, help="a role of the policy's evaluation_runs.signoff_roles")
    sign.add_argument("--name", required=True, help="the signer's name")
    sign.add_argument("--comment", default=None, help="the signer's comment")
    sign.add_argument(
        "--supersede-reason",
        default=None,
        help="when the year has a final run already: replace it with this run, for this reason",
    )
    _common(sign)
    sign.set_defaults(handler=sign_command)
    supersede = commands.add_parser("supersede", help="make a fully signed draft final in place of the final run")
    supersede.add_argument("--run", required=True)
    supersede.add_argument("--reason", required=True)
    _common(supersede)
    supersede.set_defaults(handler=supersede_command)
    diff = commands.add_parser("diff", help="what changed between two runs")
    diff.add_argument("run_a")
    diff.add_argument("run_b")
    _common(diff)
    diff.set_defaults(handler=diff_command)


def _engine(args: argparse.Namespace):
    from yuhang_skills.cli import configure_environment
    from yuhang_skills.core import warehouse
    from yuhang_skills.core.migrations import migrate
    from yuhang_skills.core.settings import load_settings

    var_dir = args.var_dir or Path(os.environ.get("YUHANG_VAR_DIR", DEFAULT_VAR_DIR))
    configure_environment(var_dir, args.warehouse, None, args.output_dir, var_dir / "airflow")
    settings = load_settings(use_airflow=False)
    engine = warehouse.make_engine(settings.warehouse_url)
    migrate(engine)
    return engine


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str) if args.json else text)


def _refused(exc: Exception) -> int:
    print(f"yuhang-pipeline evaluation: {exc}", file=sys.stderr)
    return 1


def list_command(args: argparse.Namespace) -> int:
    from yuhang_skills.evaluation import runs

    found = runs.list_runs(_engine(args), args.year)
    _print(args, found, runs.format_runs(found))
    return 0


def _signer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def sign_command(args: argparse.Namespace) -> int:
    from yuhang_skills.evaluation import runs
    from yuhang_skills.orchestration import tasks

    engine = _engine(args)
    if tasks.signed_edition_missing(engine, args.run):  # the last signature's edition failed: publish it now
        files = tasks.publish_final(args.run, use_airflow=False)
        _print(
            args,
            {"run_id": args.run, "status": "final", "files": files},
            f"{args.run} is final; its signed edition is now written"
            + "".join(f"\n  {kind:<8} {path}" for kind, path in files.items()),
        )
        return 0
    try:
        result = runs.sign(
            engine,
            args.run,
            args.role,
            args.name,
            args.comment,
            signed_by=f"cli:{_signer()}",
            supersede_reason=args.supersede_reason,
        )
    except runs.EvaluationRefused as exc:
        return _refused(exc)
    files = tasks.publish_final(args.run, use_airflow=False) if result.became_final else {}
    text = (
        f"{args.run}: {args.role} {args.name} signed; status {result.status}"
        + (f", still to sign: {'、'.join(result.missing_roles)}" if result.missing_roles else "")
        + (f"; replaces {result.superseded}" if result.superseded else "")
        + "".join(f"\n  {kind:<8} {path}" for kind, path in files.items())
    )
    _print(
        args,
        {
            "run_id": args.run,
            "role": args.role,
            "status": result.status,
            "missing_roles": result.missing_roles,
            "superseded": result.superseded,
            "files": files,
        },
        text,
    )
    return 0


def supersede_command(args: argparse.Namespace) -> int:
    from yuhang_skills.evaluation import runs
    from yuhang_skills.orchestration import tasks

    engine = _engine(args)
    try:
        replaced = runs.supersede(engine, args.run, args.reason)
    except runs.EvaluationRefused as exc:
        return _refused(exc)
    files = tasks.publish_final(args.run, use_airflow=False)
    text = (
        f"{args.run} is final in place of {replaced} ({args.reason})"
        if replaced
        else f"{args.run} is final (the year had no final run)"
    ) + "".join(f"\n  {kind:<8} {path}" for kind, path in files.items())
    _print(args, {"run_id": args.run, "superseded": replaced, "files": files}, text)
    return 0


def diff_command(args: argparse.Namespace) -> int:
    from yuhang_skills.evaluation import runs

    try:
        rows = runs.diff(_engine(args), args.run_a, args.run_b)
    except runs.EvaluationRefused as exc:
        return _refused(exc)
    _print(args, rows, runs.format_diff(args.run_a, args.run_b, rows))
    return 0
