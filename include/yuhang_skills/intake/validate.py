"""Great Expectations suites kept as data (``include/yuhang_skills/expectations/<kind>_suite.json``), run on pandas.

Each expectation's ``meta`` names the contract column it speaks for and a plain-language
reason in Chinese and English; ``$PARAMETER`` values (code lists, limits) are filled from the
policy folder at run time so the suites never repeat the contract. GX is imported lazily: it
costs seconds and must never be imported when a DAG file is parsed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from yuhang_skills.core import warehouse
from yuhang_skills.core.policy import Plan

SUITE_KINDS = ("roster", "finance", "survey", "outcomes")


def suite_path(expectations_dir: Path, kind: str) -> Path:
    return expectations_dir / f"{kind}_suite.json"


def load_suite_document(expectations_dir: Path, kind: str) -> dict[str, Any]:
    with open(suite_path(expectations_dir, kind), encoding="utf-8") as fh:
        return json.load(fh)


def expectation_parameters(plan: Plan) -> dict[str, Any]:
    """The values the suites' ``$PARAMETER``s are filled with: the contract's code lists, the policy's
    limits, and each staging column's length."""
    enums = plan.contract.enums
    params: dict[str, Any] = {f"{name}_codes": sorted(str(c) for c in codes) for name, codes in enums.items()}
    params["max_class_hours"] = float(plan.policy.intake.max_class_hours)
    # Text longer than its warehouse column is a row problem, not a database error.
    for table in warehouse.RAW_TABLES.values():
        for column in table.columns:
            length = getattr(column.type, "length", None)
            if length and column.name not in ("submission_id", "site_code", "period"):
                params[f"max_length_{column.name}"] = length
    return params


@dataclass
class ValidationOutcome:
    suite: str
    expectations: int
    failed_expectations: int
    success: bool
    failures: pd.DataFrame  # row_index, expectation, column_name, reason_zh, reason_en
    results_json: str
    result: Any  # the GX ExpectationSuiteValidationResult, for Data Docs


class SuiteRunner:
    """Builds each suite once per process and validates DataFrames against it."""

    def __init__(self, expectations_dir: Path):
        self.expectations_dir = expectations_dir
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

        self._gx = gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self._context = gx.get_context(mode="ephemeral")
        self._context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        source = self._context.data_sources.add_pandas("submissions")
        self._suites: dict[str, Any] = {}
        self._batch_definitions: dict[str, Any] = {}
        for kind in SUITE_KINDS:
            doc = load_suite_document(expectations_dir, kind)
            configs = [
                ExpectationConfiguration(**{k: v for k, v in e.items() if k != "id"}) for e in doc["expectations"]
            ]
            suite = gx.ExpectationSuite(
                name=doc["name"], expectations=[c.to_domain_obj() for c in configs], meta=doc.get("meta")
            )
            if len(suite.expectations) != len(doc["expectations"]):
                raise ValueError(
                    f"{suite_path(expectations_dir, kind)}: {len(doc['expectations'])} expectations written, "
                    f"{len(suite.expectations)} accepted by Great Expectations"
                )
            self._suites[kind] = self._context.suites.add(suite)
            asset = source.add_dataframe_asset(kind)
            self._batch_definitions[kind] = asset.add_batch_definition_whole_dataframe(f"{kind}_batch")

    @property
    def suites(self) -> dict[str, Any]:
        return dict(self._suites)

    def expectation_count(self, kind: str) -> int:
        return len(self._suites[kind].expectations)

    def validate(self, kind: str, frame: pd.DataFrame, parameters: dict[str, Any]) -> ValidationOutcome:
        suite = self._suites[kind]
        batch = self._batch_definitions[kind].get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(suite, expectation_parameters=parameters, result_format={"result_format": "COMPLETE"})
        pieces = []
        failed = 0
        for r in result.results:
            if r.success:
                continue
            failed += 1
            config = r.expectation_config
            meta = config.meta or {}
            problem = _raised(r.exception_info)
            if problem:
                raise RuntimeError(
                    f"expectation {config.type} {config.kwargs.get('column', '')} on {kind} raised: {problem}"
                )
            index = r.result.get("unexpected_index_list") or []
            if not index:
                continue
            pieces.append(
                pd.DataFrame(
                    {
                        "row_index": pd.Index(index, dtype="int64"),
                        "expectation": _expectation_label(config.type, config.kwargs),
                        "column_name": meta.get("column"),
                        "reason_zh": meta.get("reason_zh"),
                        "reason_en": meta.get("reason_en"),
                    }
                )
            )
        failures = (
            pd.concat(pieces, ignore_index=True)
            if pieces
            else pd.DataFrame(columns=["row_index", "expectation", "column_name", "reason_zh", "reason_en"])
        )
        summary = [
            {
                "expectation": r.expectation_config.type,
                "kwargs": {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"},
                "success": bool(r.success),
                "unexpected_count": (r.result or {}).get("unexpected_count"),
            }
            for r in result.results
        ]
        return ValidationOutcome(
            suite=suite.name,
            expectations=len(suite.expectations),
            failed_expectations=failed,
            success=bool(result.success),
            failures=failures,
            results_json=json.dumps(summary, ensure_ascii=False, default=str),
            result=result,
        )


def _expectation_label(type_: str, kwargs: dict[str, Any]) -> str:
    """``expect_…(column)``: the checked column tells flag expectations apart."""
    target = (
        kwargs.get("column")
        or ",".join(kwargs.get("column_list") or [])
        or (f"{kwargs.get('column_A')},{kwargs.get('column_B')}" if "column_A" in kwargs else "")
    )
    return f"{type_}({target})"


def _raised(info: Any) -> str | None:
    """The error message GX recorded for an expectation, at the top level or per metric."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    for value in info.values():
        message = _raised(value)
        if message:
            return message
    return None


@lru_cache(maxsize=4)
def runner_for(expectations_dir: str) -> SuiteRunner:
    return SuiteRunner(Path(expectations_dir))
