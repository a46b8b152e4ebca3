"""The district plan as data: policy file, site registry and submission contract.

Everything numeric about the programme (money, targets, weights, release rule, due dates)
is read from ``include/yuhang_skills/policy/yuhang.yaml``; this module gives it types and derives the tables
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
INTEGRITY_SEVERITIES = ("exclude", "review")  # see integrity: in the policy file
EXCELLENT_STATION_RULES = ("every_active_year",)
DLI_SCALINGS = ("pro_rata", "all_or_nothing")
# Submission cadences (policy key ``submissions``) and the watchdog's alert vocabulary (``alerts``).
CADENCES = ("monthly", "quarterly", "yearly")
WORKING_DAY_RULES = ("next_working_day", "none")
ALERT_CHANNEL_KINDS = ("smtp", "dingtalk", "webhook")
ALERT_ROLES = ("site_contact", "town_office", "district_team")
EARLY_WARNING_PROGRAMMES = ("station", "base")


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


@dataclass(frozen=True)
class SubmissionRule:
    """One submission kind of the data contract: who sends it, how often, and when it is due.

    Monthly and quarterly kinds are due on ``due_day`` of the month after the period (a quarter's
    period is its last month); yearly kinds on ``due_month``/``due_day`` of the next year.
    """

    kind: str
    cadence: str
    due_day: int
    due_month: int | None
    programmes: tuple[str, ...]


@dataclass(frozen=True)
class AlertChannel:
    """An alert channel: its kind and the Airflow connection that configures it."""

    name: str
    kind: str  # smtp / dingtalk / webhook
    connection_id: str
    max_message_bytes: int | None = None  # longer texts are cut at a line (DingTalk caps message size)


@dataclass(frozen=True)
class RecipientRole:
    """Who is told (site contact, town/street office, district data team) and on which channels."""

    role: str
    channels: tuple[str, ...]
    emails: tuple[str, ...] = ()  # fixed e-mail addresses (district team); others come from data


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off for a channel that is down: ``attempts`` tries, waits growing by ``backoff_factor``."""

    attempts: int
    initial_backoff_seconds: float
    backoff_factor: float
    max_backoff_seconds: float
    timeout_seconds: float

    def waits(self) -> list[float]:
        """The waits between consecutive attempts (one fewer than attempts)."""
        return [min(self.max_backoff_seconds, self.initial_backoff_seconds * self.backoff_factor ** i)
                for i in range(self.attempts - 1)]


@dataclass(frozen=True)
class WorkingDayPolicy:
    """How due dates on rest days move, and the provisional holiday lists for years the official
    calendar package does not cover yet."""

    rule: str  # next_working_day / none
    provisional_holidays: dict[int, frozenset[dt.date]]
    provisional_workdays: dict[int, frozenset[dt.date]]


@dataclass(frozen=True)
class EarlyWarningPolicy:
    programmes: tuple[str, ...]
    min_months_reported: int
    resend_interval_days: int


@dataclass(frozen=True)
class AlertPolicy:
    """The watchdog's rules: escalation, de-duplication, channels, recipients and back-off."""

    working_days: WorkingDayPolicy
    escalation_days: int
    resend_interval_days: int
    backfill_grace_days: int
    max_rows_per_file: int
    subject_prefix: str
    channels: dict[str, AlertChannel]
    recipients: dict[str, RecipientRole]
    town_offices: dict[str, str]
    retry: RetryPolicy
    early_warning: EarlyWarningPolicy


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
    def pro_rate_first_year(self) -> bool:
        """Whether a site's first-year targets count only its active months (targets: in the file)."""
        return bool(self.targets["pro_rate_first_year"])

    @property
    def integrity(self) -> dict[str, Any]:
        return self.raw["integrity"]

    def integrity_check(self, name: str) -> dict[str, Any]:
        """One integrity check's settings: ``severity`` and its thresholds."""
        try:
            return self.integrity["checks"][name]
        except KeyError:
            raise KeyError(f"{self.path}: integrity.checks has no {name!r}") from None

    @property
    def evaluation(self) -> dict[str, Any]:
        return self.raw["evaluation"]

    @property
    def evaluation_runs(self) -> dict[str, Any]:
        """The ``evaluation_runs`` section: data completeness, sign-off roles, page budgets."""
        return self.raw["evaluation_runs"]

    @property
    def signoff_roles(self) -> list[str]:
        return [str(r) for r in self.evaluation_runs["signoff_roles"]]

    @property
    def release(self) -> dict[str, Any]:
        return self.raw["release"]

    @property
    def submissions(self) -> dict[str, Any]:
        return self.raw["submissions"]

    @cached_property
    def submission_rules(self) -> dict[str, SubmissionRule]:
        """The ``submissions`` section, typed and checked (cadence, due day, programmes)."""
        rules: dict[str, SubmissionRule] = {}
        for kind, spec in self.submissions.items():
            cadence = str(spec["cadence"])
            if cadence not in CADENCES:
                raise ValueError(f"{self.path}: submissions.{kind}: cadence {cadence!r} is not one of {CADENCES}")
            due_month = int(spec["due_month"]) if spec.get("due_month") is not None else None
            if (cadence == "yearly") != (due_month is not None):
                raise ValueError(f"{self.path}: submissions.{kind}: due_month is required for yearly kinds only")
            due_day = int(spec["due_day"])
            try:
                dt.date(2001, due_month or 1, due_day)  # a day every year has (29 February is not)
            except ValueError:
                raise ValueError(f"{self.path}: submissions.{kind}: due day {due_month or '*'}/{due_day} "
                                 f"is not a day of every year") from None
            programmes = tuple(str(p) for p in spec["programmes"])
            if set(programmes) - set(PROGRAMMES):
                raise ValueError(f"{self.path}: submissions.{kind}: unknown programmes {programmes}")
            rules[kind] = SubmissionRule(kind, cadence, due_day, due_month, programmes)
        return rules

    @cached_property
    def alerts(self) -> AlertPolicy:
        """The ``alerts`` section (the submissions watchdog), typed and checked."""
        raw = self.raw["alerts"]
        where = f"{self.path}: alerts"
        wd = raw["working_days"]
        if wd["rule"] not in WORKING_DAY_RULES:
            raise ValueError(f"{where}.working_days.rule {wd['rule']!r} is not one of {WORKING_DAY_RULES}")
        holidays: dict[int, frozenset[dt.date]] = {}
        workdays: dict[int, frozenset[dt.date]] = {}
        for year, spec in (wd.get("provisional") or {}).items():
            days: set[dt.date] = set()
            for span in spec.get("holidays") or []:
                start, end = _date(span["from"]), _date(span["to"])
                if end < start or start.year != int(year) or end.year != int(year):
                    raise ValueError(f"{where}.working_days.provisional.{year}: holiday {span.get('name')} "
                                     f"{start}..{end} is not a span inside {year}")
                days.update(start + dt.timedelta(days=i) for i in range((end - start).days + 1))
            extra = {_date(d) for d in spec.get("make_up_workdays") or []}
            if any(d.year != int(year) or d.weekday() < 5 or d in days for d in extra):
                raise ValueError(f"{where}.working_days.provisional.{year}: make-up working days must be "
                                 f"weekend days of {year} outside its holidays")
            holidays[int(year)] = frozenset(days)
            workdays[int(year)] = frozenset(extra)
        channels = {name: AlertChannel(name, str(c["kind"]), str(c["connection_id"]),
                                       int(c["max_message_bytes"]) if c.get("max_message_bytes") else None)
                    for name, c in raw["channels"].items()}
        bad = [c.name for c in channels.values() if c.kind not in ALERT_CHANNEL_KINDS]
        if bad:
            raise ValueError(f"{where}.channels {bad}: kind must be one of {ALERT_CHANNEL_KINDS}")
        recipients = {role: RecipientRole(role, tuple(spec.get("channels") or ()), tuple(spec.get("emails") or ()))
                      for role, spec in raw["recipients"].items()}
        if set(recipients) != set(ALERT_ROLES):
            raise ValueError(f"{where}.recipients must name exactly {ALERT_ROLES}")
        for r in recipients.values():
            unknown = set(r.channels) - set(channels)
            if unknown:
                raise ValueError(f"{where}.recipients.{r.role}: unknown channels {sorted(unknown)}")
            if r.role == "district_team" and any(channels[c].kind == "smtp" for c in r.channels) and not r.emails:
                raise ValueError(f"{where}.recipients.district_team: e-mail channel without emails")
        retry = RetryPolicy(int(raw["retry"]["attempts"]), float(raw["retry"]["initial_backoff_seconds"]),
                            float(raw["retry"]["backoff_factor"]), float(raw["retry"]["max_backoff_seconds"]),
                            float(raw["retry"]["timeout_seconds"]))
        if retry.attempts < 1 or retry.initial_backoff_seconds < 0 or retry.backoff_factor < 1:
            raise ValueError(f"{where}.retry: attempts >= 1, initial_backoff_seconds >= 0, backoff_factor >= 1")
        ew = raw["early_warning"]
        early = EarlyWarningPolicy(tuple(ew["programmes"]), int(ew["min_months_reported"]),
                                   int(ew["resend_interval_days"]))
        if set(early.programmes) - set(EARLY_WARNING_PROGRAMMES) or not 1 <= early.min_months_reported <= 12:
            raise ValueError(f"{where}.early_warning: programmes within {EARLY_WARNING_PROGRAMMES}, "
                             f"min_months_reported 1..12")
        policy = AlertPolicy(
            working_days=WorkingDayPolicy(str(wd["rule"]), holidays, workdays),
            escalation_days=int(raw["escalation_days"]),
            resend_interval_days=int(raw["resend_interval_days"]),
            backfill_grace_days=int(raw["backfill_grace_days"]),
            max_rows_per_file=int(raw["max_rows_per_file"]),
            subject_prefix=str(raw.get("subject_prefix") or ""),
            channels=channels,
            recipients=recipients,
            town_offices={str(k): str(v) for k, v in (raw.get("town_offices") or {}).items()},
            retry=retry,
            early_warning=early,
        )
        if policy.escalation_days < 1 or policy.resend_interval_days < 1 or policy.backfill_grace_days < 0 \
                or early.resend_interval_days < 1 or policy.max_rows_per_file < 1:
            raise ValueError(f"{where}: escalation_days, resend_interval_days, early_warning.resend_interval_days "
                             f"and max_rows_per_file must be >= 1, backfill_grace_days >= 0")
        return policy

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
        self.submission_rules  # noqa: B018 - parsing checks the sections
        self.alerts  # noqa: B018
        for name, spec in self.integrity["checks"].items():
            if spec.get("severity") not in INTEGRITY_SEVERITIES:
                raise ValueError(f"{self.path}: integrity check {name} has severity {spec.get('severity')!r}, "
                                 f"not one of {INTEGRITY_SEVERITIES}")
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
    def from_settings(cls, settings) -> "Plan":  # noqa: ANN001 - yuhang_skills.core.settings.Settings
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
