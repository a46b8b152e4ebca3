"""The district plan as data: policy file, site registry and submission contract.

Everything numeric about the programme (money, targets, weights, release rule, due dates)
is read from ``include/policy/yuhang.yaml``; this module gives it types and derives the tables
the source document prints (the budget plan with its totals) without restating any number.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

PROGRAMMES = ("village", "station", "base")
WAN = 10_000  # yuan in one 万元


@dataclass(frozen=True)
class Site:
    site_code: str
    programme: str
    name_zh: str
    town: str
    batch_year: int
    active_from: dt.date
    industry_focus: str
    contact_name: str
    contact_email: str
    partners: str

    def months_active(self, year: int) -> int:
        """Whole months the site was active in ``year`` (its active-from month counts)."""
        if year < self.active_from.year:
            return 0
        if year > self.active_from.year:
            return 12
        return 12 - self.active_from.month + 1


@dataclass(frozen=True)
class BudgetRow:
    year: str  # "2025", "2026", "2027" or "total"
    village_wan: int
    station_wan: int
    base_provincial_wan: int
    base_district_wan: int
    provincial_wan: int
    district_wan: int
    subtotal_wan: int
    village_sites: int
    station_sites: int
    base_sites: int


class Policy:
    """Typed view over the policy YAML. Raw values stay reachable through ``raw``."""

    def __init__(self, raw: dict[str, Any], path: Path | None = None):
        self.raw = raw
        self.path = path

    @classmethod
    def load(cls, path: Path) -> "Policy":
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
        policy = cls(raw, Path(path))
        policy.check()
        return policy

    # --- identity -------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return str(self.raw["policy_version"])

    @property
    def timezone(self) -> str:
        return str(self.raw["timezone"])

    @property
    def implementation_years(self) -> list[int]:
        period = self.raw["implementation_period"]
        return list(range(_date(period["start"]).year, _date(period["end"]).year + 1))

    @property
    def implementation_start(self) -> dt.date:
        return _date(self.raw["implementation_period"]["start"])

    @property
    def implementation_end(self) -> dt.date:
        return _date(self.raw["implementation_period"]["end"])

    @property
    def evaluation_year(self) -> int:
        return int(self.raw["evaluation_year"])

    # --- programmes and money --------------------------------------------------------------
    def programme(self, name: str) -> dict[str, Any]:
        return self.raw["programmes"][name]

    @property
    def base_subsidy_share(self) -> Decimal:
        return Decimal(str(self.programme("base")["equipment_subsidy_share"]))

    @property
    def base_subsidy_cap_yuan(self) -> int:
        return int(self.programme("base")["equipment_subsidy_cap_yuan"])

    @property
    def plan_years(self) -> list[int]:
        return sorted(int(y) for y in self.raw["budget_plan_wan_yuan"])

    def plan_cell(self, year: int, programme: str) -> dict[str, int]:
        cell = self.raw["budget_plan_wan_yuan"][year]
        return {k: int(v) for k, v in cell[programme].items()}

    def budget_table(self) -> list[BudgetRow]:
        """The source document's 建设计划 table, rows per year and the 合计 row, in 万元."""
        rows: list[BudgetRow] = []
        for year in self.plan_years:
            v, s, b = (self.plan_cell(year, p) for p in PROGRAMMES)
            provincial = v["provincial"] + s["provincial"] + b["provincial"]
            district = v["district"] + s["district"] + b["district"]
            rows.append(
                BudgetRow(
                    year=str(year),
                    village_wan=v["provincial"] + v["district"],
                    station_wan=s["provincial"] + s["district"],
                    base_provincial_wan=b["provincial"],
                    base_district_wan=b["district"],
                    provincial_wan=provincial,
                    district_wan=district,
                    subtotal_wan=provincial + district,
                    village_sites=v["sites"],
                    station_sites=s["sites"],
                    base_sites=b["sites"],
                )
            )
        fields = [f for f in BudgetRow.__dataclass_fields__ if f != "year"]
        rows.append(BudgetRow("total", **{f: sum(getattr(r, f) for r in rows) for f in fields}))
        return rows

    def provincial_tranche_yuan(self, year: int) -> int:
        return int(self.raw["provincial_tranches_yuan"][year]["amount"])

    @property
    def performance_tranche_year(self) -> int:
        return int(self.raw["release"]["tranche_year"])

    @property
    def performance_tranche_yuan(self) -> int:
        return self.provincial_tranche_yuan(self.performance_tranche_year)

    def provincial_received_yuan(self, through_year: int) -> int:
        """Unconditional provincial money received up to and including ``through_year``."""
        return sum(
            int(t["amount"])
            for y, t in self.raw["provincial_tranches_yuan"].items()
            if int(y) <= through_year and t["condition"] == "unconditional"
        )

    # --- targets and rules ------------------------------------------------------------------
    @property
    def targets(self) -> dict[str, Any]:
        return self.raw["targets"]

    @property
    def key_groups(self) -> list[str]:
        return list(self.raw["key_groups"])

    @property
    def key_industries(self) -> list[str]:
        return list(self.raw["key_industries"])

    @property
    def eligible_provincial_categories(self) -> list[str]:
        return list(self.raw["eligible_provincial_categories"])

    @property
    def satisfied_ratings(self) -> list[str]:
        return list(self.raw["satisfaction"]["satisfied_ratings"])

    @property
    def female_retirement_base(self) -> int:
        return int(self.raw["working_age"]["female_retirement_base"])

    @property
    def minimum_working_age(self) -> int:
        return int(self.raw["working_age"]["minimum_age_years"])

    @property
    def intake(self) -> dict[str, Any]:
        return self.raw["intake"]

    @property
    def evaluation(self) -> dict[str, Any]:
        return self.raw["evaluation"]

    @property
    def release(self) -> dict[str, Any]:
        return self.raw["release"]

    @property
    def submissions(self) -> dict[str, Any]:
        return self.raw["submissions"]

    def grade(self, score: Decimal) -> str:
        for band in self.evaluation["grades"]:
            if score >= Decimal(str(band["min_score"])):
                return str(band["grade"])
        raise ValueError(f"score {score} below every grade band")

    def check(self) -> None:
        """Internal consistency a reader would otherwise have to trust."""
        dims = self.evaluation["dimensions"]
        total = sum(int(d["weight"]) for d in dims.values())
        if total != 100:
            raise ValueError(f"{self.path}: evaluation dimension weights sum to {total}, not 100")
        for name, dim in dims.items():
            inds = sum(int(i["weight"]) for i in self.evaluation["indicators"] if i["dimension"] == name)
            if inds != int(dim["weight"]):
                raise ValueError(
                    f"{self.path}: indicators of dimension {name} weigh {inds}, the dimension {dim['weight']}"
                )
        if self.release["rule"] not in self.release["rules"]:
            raise ValueError(f"{self.path}: release rule {self.release['rule']!r} is not defined under release.rules")

    def target_rows(self) -> list[dict[str, Any]]:
        """Yearly targets as rows (programme, indicator, target) for the warehouse."""
        rows = []
        for programme, targets in self.targets.items():
            if not isinstance(targets, dict):
                continue
            for indicator, value in targets.items():
                name = indicator.removesuffix("_per_year")
                rows.append({"programme": programme, "indicator": name, "target": str(value),
                             "per_year": indicator.endswith("_per_year")})
        return rows


def load_sites(path: Path) -> list[Site]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        sites = [
            Site(
                site_code=r["site_code"].strip(),
                programme=r["programme"].strip(),
                name_zh=r["name_zh"].strip(),
                town=r["town"].strip(),
                batch_year=int(r["batch_year"]),
                active_from=_date(r["active_from"]),
                industry_focus=(r.get("industry_focus") or "").strip(),
                contact_name=(r.get("contact_name") or "").strip(),
                contact_email=(r.get("contact_email") or "").strip(),
                partners=(r.get("partners") or "").strip(),
            )
            for r in csv.DictReader(fh)
        ]
    codes = [s.site_code for s in sites]
    if len(set(codes)) != len(codes):
        raise ValueError(f"{path}: duplicate site codes")
    bad = [s.site_code for s in sites if s.programme not in PROGRAMMES]
    if bad:
        raise ValueError(f"{path}: unknown programme for sites {bad}")
    return sites


def load_contract(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


class Plan:
    """Policy, registry and contract together, as one run sees them."""

    def __init__(self, policy: Policy, sites: list[Site], contract: dict[str, Any]):
        self.policy = policy
        self.sites = sites
        self.contract = contract

    @classmethod
    def load(cls, policy_path: Path, sites_path: Path, contract_path: Path) -> "Plan":
        return cls(Policy.load(policy_path), load_sites(sites_path), load_contract(contract_path))

    @classmethod
    def from_settings(cls, settings) -> "Plan":  # noqa: ANN001 - yuhang_skills.settings.Settings
        return cls.load(settings.policy_path, settings.sites_path, settings.contract_path)

    @cached_property
    def sites_by_code(self) -> dict[str, Site]:
        return {s.site_code: s for s in self.sites}

    def active_sites(self, year: int) -> list[Site]:
        return [s for s in self.sites if s.months_active(year) > 0]


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))
