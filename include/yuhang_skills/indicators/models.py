"""Reference data from the policy folder, and the SQL models under ``include/yuhang_skills/sql``.

The SQL files are plain SELECT statements, one model per file, named after the table they
build; layers run in order (intermediate, then marts; files in a layer by the order given in
``LAYERS``). Each model is rebuilt whole on every run, so reruns give identical tables.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from yuhang_skills.core import warehouse
from yuhang_skills.core.policy import Plan
from yuhang_skills.indicators import integrity

WAN_FEN = 10_000 * 100

# Build order. A model may read staging, reference tables and models listed before it.
LAYERS: dict[str, list[str]] = {
    "intermediate": [
        "int_roster_site_year",
        "int_finance_site_year",
        "int_survey_site_year",
        "int_outcomes_site_year",
        "int_submissions_site_year",
    ],
    "marts": ["ind_site_year", "ind_site_year_spending", "ind_programme_year", "base_subsidy"],
}


def reference_rows(plan: Plan) -> dict[sa.Table, list[dict] | pd.DataFrame]:
    policy = plan.policy
    pro_rate = policy.pro_rate_first_year
    per_site: dict[tuple[int, str], dict[str, int]] = {}
    for year in policy.plan_years:
        for programme in ("village", "station", "base"):
            cell = policy.plan_cell(year, programme)
            per_site[(year, programme)] = {
                "provincial": cell.provincial * WAN_FEN // cell.sites,
                "district": cell.district * WAN_FEN // cell.sites,
            }
    sites = [
        {
            "site_code": s.site_code, "programme": s.programme, "name_zh": s.name_zh, "town": s.town,
            "batch_year": s.batch_year, "active_from": s.active_from, "industry_focus": s.industry_focus or None,
            "contact_name": s.contact_name or None, "contact_email": s.contact_email or None,
            "plan_provincial_fen": per_site[(s.batch_year, s.programme)]["provincial"],
            "plan_district_fen": per_site[(s.batch_year, s.programme)]["district"],
        }
        for s in plan.sites
    ]
    site_years = [
        {"site_code": s.site_code, "year": year, "programme": s.programme,
         "months_active": s.months_active(year), "target_months": s.months_active(year) if pro_rate else 12}
        for s in plan.sites
        for year in policy.implementation_years
        if s.months_active(year) > 0
    ]
    codes = [
        {"code_list": name, "code": code}
        for name, values in (
            ("key_groups", policy.key_groups),
            ("key_industries", policy.key_industries),
            ("eligible_provincial_categories", policy.eligible_provincial_categories),
            ("satisfied_ratings", policy.satisfied_ratings),
        )
        for code in values
    ]
    share = policy.base_subsidy_share.as_integer_ratio()
    codes += integrity.code_lists(plan)
    return {
        **integrity.reference_rows(plan),
        warehouse.ref_sites: sites,
        warehouse.ref_site_years: site_years,
        warehouse.ref_targets: [
            {**r, "target": Decimal(r["target"])} for r in policy.target_rows()
        ],
        warehouse.ref_codes: codes,
        warehouse.ref_provincial_received: [
            {"year": y, "received_fen": policy.provincial_received_yuan(y) * 100 - policy.provincial_received_yuan(y - 1) * 100}
            for y in policy.implementation_years
        ],
        warehouse.ref_base_rule: [
            {"share_numerator": share[0], "share_denominator": share[1], "cap_fen": policy.base_subsidy_cap_yuan * 100}
        ],
    }


def load_reference(engine: sa.Engine, plan: Plan) -> dict[str, int]:
    counts = {}
    with engine.begin() as conn:
        for table, rows in reference_rows(plan).items():
            if isinstance(rows, pd.DataFrame):  # the long generated tables (calendar, retirement dates)
                conn.execute(table.delete())
                counts[table.name] = warehouse.bulk_insert(conn, table, rows)
            else:
                counts[table.name] = warehouse.replace_rows(conn, table, rows)
    return counts


def model_sql(sql_dir: Path, layer: str, name: str) -> str:
    return (sql_dir / layer / f"{name}.sql").read_text(encoding="utf-8").strip().rstrip(";")


def build_models(engine: sa.Engine, sql_dir: Path, layers: list[str] | None = None) -> dict[str, int]:
    """Rebuild each model table from its SQL file; returns row counts."""
    counts: dict[str, int] = {}
    for layer in layers or list(LAYERS):
        for name in LAYERS[layer]:
            sql = model_sql(sql_dir, layer, name)
            with engine.begin() as conn:
                conn.execute(sa.text(f"drop table if exists {name}"))
                conn.execute(sa.text(f"create table {name} as {sql}"))
                counts[name] = conn.execute(sa.text(f"select count(*) from {name}")).scalar_one()
    return counts
