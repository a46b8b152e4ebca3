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
# Rule names the policy file may choose; each is implemented in yuhang_skills.evaluation.
RECOVERY_RULES = ("pro_rata_unmet",)
EXCELLENT_STATION_RULES = ("every_active_year",)
DLI_SCALINGS = ("pro_rata", "all_or_nothing")


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

    @property
    def rectification_deadline_days(self) -> int:
        return int(self.raw["rectification"]["deadline_days_after_year_end"])

    def rectification_deadline(self, year: int) -> dt.date:
        """Deadline to rectify a target missed in ``year`` (an Asia/Shanghai date, itself in time)."""
        return dt.date(year, 12, 31) + dt.timedelta(days=self.rectification_deadline_days)

    @property
    def recovery_rule(self) -> str:
        return str(self.raw["recovery"]["rule"])

    @property
    def plan_priority(self) -> dict[str, Any]:
        """The priority rule for the tranche year's build plan (policy key ``plan_2027``)."""
        return self.raw["plan_2027"]

    @property
    def excellent_station(self) -> dict[str, Any]:
        return self.raw["excellent_station"]

    @property
    def excellent_bonus_yuan(self) -> int:
        return int(self.programme("station")["excellent_bonus_yuan"])

    def dli_tranches(self) -> list[dict[str, Any]]:
        return list((self.release["rules"].get("dli") or {}).get("tranches") or [])

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
        self._check_dli()
        if self.recovery_rule not in RECOVERY_RULES:
            raise ValueError(f"{self.path}: recovery rule {self.recovery_rule!r} is not one of {RECOVERY_RULES}")
        if self.excellent_station["rule"] not in EXCELLENT_STATION_RULES:
            raise ValueError(f"{self.path}: excellent_station rule {self.excellent_station['rule']!r} "
                             f"is not one of {EXCELLENT_STATION_RULES}")
        order = list(self.plan_priority["programme_order"])
        funded = [p for p in PROGRAMMES if self.plan_cell(self.performance_tranche_year, p)["provincial"] > 0]
        if set(order) - set(PROGRAMMES) or set(funded) - set(order):
            raise ValueError(f"{self.path}: plan_2027.programme_order {order} must list programmes only, and "
                             f"every programme with provincial money in {self.performance_tranche_year} ({funded})")

    def _check_dli(self) -> None:
        """DLI tranches sum to the performance tranche and name results the evaluation measures."""
        if "dli" not in self.release["rules"]:
            return
        tranches = self.dli_tranches()
        total = sum(int(t["amount_yuan"]) for t in tranches)
        if total != self.performance_tranche_yuan:
            raise ValueError(f"{self.path}: release.rules.dli tranches sum to {total} yuan, "
                             f"the performance tranche is {self.performance_tranche_yuan}")
        site_year_indicators = {(i["programme"], i["indicator"]) for i in self.evaluation["indicators"]
                                if i["measure"] == "mean_site_year_attainment"}
        indicator_codes = {i["code"] for i in self.evaluation["indicators"]}
        for t in tranches:
            if t["scaling"] not in DLI_SCALINGS:
                raise ValueError(f"{self.path}: dli tranche {t['code']}: scaling {t['scaling']!r} is not one of "
                                 f"{DLI_SCALINGS}")
            if t["result"] == "share_of_site_years_met":
                ok = (t["programme"], t["indicator"]) in site_year_indicators
            elif t["result"] == "indicator_actual":
                ok = t["indicator"] in indicator_codes
            else:
                raise ValueError(f"{self.path}: dli tranche {t['code']}: unknown result {t['result']!r}")
            if not ok:
                raise ValueError(f"{self.path}: dli tranche {t['code']} is tied to a result no evaluation "
                                 f"indicator measures")

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
