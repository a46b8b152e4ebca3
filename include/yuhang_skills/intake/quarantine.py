"""Quarantine: the rows a file may not stage, each with the value refused and why, in Chinese and
English. Values are shown as refused (invisible characters spelled out), personal data masked."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from yuhang_skills.intake import identity
from yuhang_skills.intake.discover import INVISIBLE
from yuhang_skills.intake.parse import FileRejected

PII_COLUMNS = {"id_number": identity.mask_id, "name": identity.mask_name}


def file_reason(context: dict[str, Any], name: str, rejected: FileRejected) -> pd.DataFrame:
    """The one quarantine row of a file refused as a whole: no source row, the file's reason."""
    return pd.DataFrame(
        [
            dict(
                context,
                source_row=None,
                column_name=None,
                value=None,
                expectation=rejected.expectation,
                reason_zh=f"{name}: {rejected.reason_zh}",
                reason_en=f"{name}: {rejected.reason_en}",
                severity="error",
            )
        ]
    )


def row_reasons(
    frame: pd.DataFrame, failures: pd.DataFrame, failed_rows: np.ndarray, site_mismatch: bool, context: dict[str, Any]
) -> pd.DataFrame | None:
    """One quarantine row per failed check of a row, with the value refused (personal data masked);
    None when no row failed."""
    if site_mismatch:
        # Rows that passed every check are still quarantined, with the file-level reason.
        extra = pd.DataFrame({"row_index": np.flatnonzero(failed_rows)})
        extra = extra[~extra["row_index"].isin(failures["row_index"])]
        extra = extra.assign(
            expectation="site_code_matches_folder",
            column_name="site_code",
            severity="error",
            reason_zh="文件中其他行的站点编码与提交目录不一致,整份文件退回",
            reason_en="other rows of this file name another site than its folder; the whole file is rejected",
        )
        failures = pd.concat([failures, extra], ignore_index=True)
    if failures.empty:
        return None
    rows = failures["row_index"].to_numpy(dtype=np.int64)
    failed = np.unique(rows)
    display = frame.iloc[failed]
    for column, mask in PII_COLUMNS.items():
        if column in display:
            display = display.assign(**{column: mask(display[column])})
    position = np.searchsorted(failed, rows)
    values = np.empty(len(failures), dtype=object)
    for name, idx in failures.groupby("column_name").indices.items():
        if name in display:
            values[idx] = display[name].to_numpy()[position[idx]]
    # Invisible characters (a zero-width space after V24) are spelled out, so the value shown is
    # the value refused.
    values = np.array(
        [INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", v) if isinstance(v, str) else v for v in values],
        dtype=object,
    )
    out = pd.DataFrame(
        {
            "submission_id": context["submission_id"],
            "sha256": context["sha256"],
            "source_file": context["source_file"],
            "site_code": context["site_code"],
            "period": context["period"],
            "kind": context["kind"],
            "source_row": frame["source_row"].to_numpy()[rows],
            "column_name": failures["column_name"].to_numpy(),
            "value": values,
            "expectation": failures["expectation"].to_numpy(),
            "reason_zh": failures["reason_zh"].to_numpy(),
            "reason_en": failures["reason_en"].to_numpy(),
            "severity": (failures["severity"].fillna("error").to_numpy() if "severity" in failures else "error"),
        }
    ).sort_values(["source_row", "column_name"], kind="stable")
    return out
