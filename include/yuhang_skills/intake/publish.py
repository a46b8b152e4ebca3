"""Publish: number the versions of each site, period and kind, keep the current one in staging,
and reconcile every file's rows (read = staged + quarantined)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa

from yuhang_skills.core import warehouse

# Statuses whose rows may become the current data of a site, period and kind; a file refused
# outright, refused row by row, or broken in processing leaves the previous version current.
USABLE_STATUSES = ("accepted", "partially_accepted")


def publish(engine: sa.Engine) -> dict[str, int]:
    """Number the versions of each site/period/kind and keep only the current one in staging.

    Versions are ordered by arrival as the pipeline saw them (``submission_arrivals``: when a path
    was first seen holding these bytes), so a correction whose file time is older still wins and a
    resend of earlier bytes makes them current again; the file's time breaks ties within one
    run. The current version is the latest arrival that was accepted in whole or in part.
    """
    s, a = warehouse.submissions, warehouse.submission_arrivals
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(
                s.c.submission_id, s.c.site_code, s.c.period, s.c.kind, s.c.received_at, s.c.original_name, s.c.status
            )
        ).all()
        frame = pd.DataFrame(
            rows, columns=["submission_id", "site_code", "period", "kind", "received_at", "original_name", "status"]
        )
        if frame.empty:
            return {"submissions": 0, "current": 0, "superseded": 0}
        arrivals = pd.DataFrame(
            conn.execute(
                sa.select(
                    a.c.submission_id,
                    sa.func.max(a.c.first_seen_at).label("arrived_at"),
                    sa.func.max(a.c.arrival_id).label("arrival_id"),
                ).group_by(a.c.submission_id)
            ).all(),
            columns=["submission_id", "arrived_at", "arrival_id"],
        )
        frame = frame.merge(arrivals, on="submission_id", how="left")
        frame["arrived_at"] = pd.to_datetime(frame["arrived_at"]).fillna(pd.to_datetime(frame["received_at"]))
        frame["arrival_id"] = frame["arrival_id"].fillna(0)
        frame = frame.sort_values(
            ["site_code", "period", "kind", "arrived_at", "received_at", "original_name", "arrival_id", "submission_id"]
        )
        frame["version"] = frame.groupby(["site_code", "period", "kind"]).cumcount() + 1
        usable = frame[frame["status"].isin(USABLE_STATUSES)]
        current_ids = set(usable.groupby(["site_code", "period", "kind"])["submission_id"].last())
        frame["is_current"] = frame["submission_id"].isin(current_ids)
        for sid, version, current in frame[["submission_id", "version", "is_current"]].itertuples(index=False):
            conn.execute(
                s.update().where(s.c.submission_id == sid).values(version=int(version), is_current=bool(current))
            )
        stale = frame.loc[~frame["is_current"], "submission_id"].tolist()
        for table in warehouse.RAW_TABLES.values():
            for start in range(0, len(stale), 500):
                conn.execute(table.delete().where(table.c.submission_id.in_(stale[start : start + 500])))
    return {"submissions": len(frame), "current": len(current_ids), "superseded": len(stale)}


def reconcile(engine: sa.Engine) -> list[dict[str, Any]]:
    """Files whose rows do not add up (rows read ≠ staged + quarantined); empty when nothing is lost."""
    s, q = warehouse.submissions, warehouse.quarantine
    quarantined = (
        sa.select(q.c.submission_id, sa.func.count(sa.distinct(q.c.source_row)).label("n"))
        .where(q.c.source_row.is_not(None), q.c.severity != "warning")
        .group_by(q.c.submission_id)
        .subquery()
    )
    query = sa.select(
        s.c.original_name,
        s.c.rows_read,
        s.c.rows_staged,
        s.c.rows_quarantined,
        sa.func.coalesce(quarantined.c.n, 0).label("distinct_quarantined"),
    ).select_from(s.outerjoin(quarantined, quarantined.c.submission_id == s.c.submission_id))
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    return [
        r
        for r in rows
        if r["rows_read"] != r["rows_staged"] + r["rows_quarantined"]
        or r["rows_quarantined"] != r["distinct_quarantined"]
    ]
