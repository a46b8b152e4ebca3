"""Reference data from the policy folder: the ``ref_*`` tables the SQL models and integrity
checks read (sites, site-years, targets, code lists, money received, the base subsidy rule).
The models themselves and their build order are in ``layers``.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import sqlalchemy as sa

from yuhang_skills.core import warehouse
from yuhang_skills.core.policy import Plan
from yuhang_skills.indicators import integrity

WAN_FEN = 10_000 * 100


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
            "site_code": s.site_code,
            "programme": s.programme,
            "name_zh": s.name_zh,
            "town": s.town,
            "batch_year": s.batch_year,
            "active_from": s.active_from,
            "industry_focus": s.industry_focus or None,
            "contact_name": s.contact_name or None,
            "contact_email": s.contact_email or None,
            "plan_provincial_fen": per_site[(s.batch_year, s.programme)]["provincial"],
            "plan_district_fen": per_site[(s.batch_year, s.programme)]["district"],
        }
        for s in plan.sites
    ]
    site_years = [
        {
            "site_code": s.site_code,
            "year": year,
            "programme": s.programme,
            "months_active": s.months_active(year),
            "target_months": s.months_active(year) if pro_rate else 12,
        }
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
            {
                **r,
                "target": Decimal(r["target"]),
                "target_numerator": Decimal(r["target"]).as_integer_ratio()[0],
                "target_denominator": Decimal(r["target"]).as_integer_ratio()[1],
            }
            for r in policy.target_rows()
        ],
        warehouse.ref_codes: codes,
        warehouse.ref_provincial_received: [
            {
                "year": y,
                "received_fen": policy.provincial_received_yuan(y) * 100 - policy.provincial_received_yuan(y - 1) * 100,
            }
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
