"""The district plan as data: policy file, site registry and submission contract.

Everything numeric about the programme (money, targets, weights, release rule, due dates)
is read from ``yuhang_skills/policy/yuhang.yaml``. This module is that file's schema: every
section is a frozen model whose fields name the keys the file may hold, with their types and
allowed values, and whose validators hold the rules that tie sections together (weights that sum
to 100, DLI tranches that sum to the performance tranche, ...); the same for ``contract.yaml`` and
``sites.csv``. The files are parsed and checked once, at load; an error names the file, the line
and the key path (``yuhang.yaml:159: evaluation.indicators[2].measure: 'mean_site_year_attainmnet'
is not one of ...``). The tables the source document prints (the budget plan with its totals) are
derived here without restating any number.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

WAN = 10_000  # yuan in one 万元

# --- the file's vocabularies (each implemented by the code named beside it) ----------------------
Programme = Literal["village", "station", "base"]
PROGRAMMES: tuple[str, ...] = get_args(Programme)
SubmissionKind = Literal["roster", "finance", "survey", "outcomes"]  # the contract's kinds
# Measures an evaluation indicator may name: yuhang_skills.evaluation.score.MEASURES computes each one.
Measure = Literal[
    "provincial_execution_rate",
    "mean_site_year_attainment",
    "village_outcome_reporting_rate",
    "share_of_person_times",
    "village_skill_coverage",
    "satisfaction_rate",
]
# The keys each measure reads from its indicator (besides code, dimension, name_zh, weight, target).
MEASURE_PARAMETERS: dict[str, frozenset[str]] = {
    "provincial_execution_rate": frozenset(),
    "mean_site_year_attainment": frozenset({"programme", "indicator"}),
    "village_outcome_reporting_rate": frozenset(),
    "share_of_person_times": frozenset({"column", "programmes"}),
    "village_skill_coverage": frozenset(),
    "satisfaction_rate": frozenset({"respondent_type", "programmes"}),
}
# Columns of ind_site_year a share_of_person_times indicator may count, and the respondents whose
# answers ind_site_year counts (<respondent>_answers, <respondent>_satisfied).
PersonTimeColumn = Literal["key_group_person_times", "key_industry_person_times"]
Respondent = Literal["worker", "enterprise"]
ReleaseRule = Literal["banded", "linear", "dli"]  # yuhang_skills.evaluation.release_lines
DliResult = Literal["share_of_site_years_met", "indicator_actual"]
DliScaling = Literal["pro_rata", "all_or_nothing"]
RecoveryRule = Literal["pro_rata_unmet"]  # yuhang_skills.evaluation.rectification_records
ExcellentStationRule = Literal["every_active_year"]  # Evaluator.excellent_stations
DataCompleteRule = Literal["last_period_due"]  # yuhang_skills.evaluation.runs.data_complete_on
IntegritySeverity = Literal["exclude", "review"]  # yuhang_skills.indicators.integrity
TrancheCondition = Literal["unconditional", "performance_evaluation"]
# Submission cadences (policy key ``submissions``) and the watchdog's alert vocabulary (``alerts``).
Cadence = Literal["monthly", "quarterly", "yearly"]
WorkingDayRule = Literal["next_working_day", "none"]
AlertChannelKind = Literal["smtp", "dingtalk", "webhook"]
AlertRole = Literal["site_contact", "town_office", "district_team"]
EarlyWarningProgramme = Literal["station", "base"]
ALERT_ROLES: tuple[str, ...] = get_args(AlertRole)
# The code lists of the policy file and the contract enumeration each one draws its codes from.
CODE_LISTS: dict[tuple[str, ...], str] = {
    ("key_groups",): "group",
    ("key_industries",): "industry",
    ("eligible_provincial_categories",): "category",
    ("satisfaction", "satisfied_ratings"): "rating",
}


class PolicyError(ValueError):
    """A policy, contract or registry file that cannot be used: each line names file:line: key path."""


class Problem(ValueError):
    """Raised inside a validator: ``message`` about the key ``path`` (relative to the model checked)."""

    def __init__(self, path: tuple[str | int, ...], message: str):
        super().__init__(message)
        self.path = path
        self.message = message


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- locating a key path in the YAML file ---------------------------------------------------------
class Locator:
    """Line numbers of a YAML document's keys, from its composed node tree, by key path."""

    def __init__(self, path: Path | None, text: str | None):
        self.path = path
        self.root = yaml.compose(text) if text else None

    def find(self, loc: tuple[Any, ...]) -> tuple[int | None, str]:
        """The line of the deepest node on ``loc`` and the path written a.b[2].c."""
        node, line, written = self.root, None, ""
        for part in loc:
            if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
                written += f"[{part}]"
                continue
            if isinstance(node, yaml.MappingNode):
                match = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
                written += f".{part}" if written else str(part)
                if match is not None:
                    node, line = match[1], match[0].start_mark.line + 1
                else:
                    node = None
                continue
            written += f"[{part}]" if isinstance(part, int) else (f".{part}" if written else str(part))
            node = None
        return line, written

    def error(self, loc: tuple[Any, ...], message: str) -> str:
        line, written = self.find(loc)
        where = str(self.path) if self.path is not None else "<policy>"
        if line is not None:
            where += f":{line}"
        return f"{where}: {written}: {message}" if written else f"{where}: {message}"


class _Loader(yaml.SafeLoader):
    """YAML as ``yaml.safe_load`` reads it, except that a date that does not exist (2026-02-30) stays
    the text written, so that the model reports it with its key path instead of YAML failing."""

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def read_yaml(path: Path) -> tuple[Any, str]:
    """A YAML file's data and text; a file that is not YAML is a PolicyError naming its line."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        return yaml.load(text, Loader=_Loader), text  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"{path}{line}: not valid YAML: {exc.problem or exc.context}") from None


def _messages(exc: ValidationError, locator: Locator) -> list[str]:
    out: list[tuple[int, str]] = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if p != "[key]")
        ctx = err.get("ctx") or {}
        kind = err["type"]
        if kind == "value_error" and isinstance(ctx.get("error"), Problem):
            at: Problem = ctx["error"]
            loc, message = loc + at.path, at.message
        elif kind == "literal_error":
            message = f"{err['input']!r} is not one of {ctx['expected']}"
        elif kind == "extra_forbidden":
            message = "unknown key"
        elif kind == "missing":
            message = "missing key"
        else:
            message = err["msg"].removeprefix("Value error, ")
            if not isinstance(err["input"], (dict, list)):
                message += f" (got {err['input']!r})"
        line, _ = locator.find(loc)
        out.append((line or 0, locator.error(loc, message)))
    return [m for _, m in sorted(out, key=lambda x: x[0])]


def parse(model: type[BaseModel], data: Any, locator: Locator) -> Any:
    """``data`` validated as ``model``; a PolicyError naming file:line: key path on every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PolicyError("\n".join(_messages(exc, locator))) from None


# --- the site registry (sites.csv) ----------------------------------------------------------------
@dataclass(frozen=True)
class Site:
    site_code: str
    programme: Programme
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


# --- policy sections -------------------------------------------------------------------------------
class SourceDocument(Frozen):
    title: str
    issued: dt.date
    in_force_from: dt.date


class Period(Frozen):
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise Problem(("end",), f"{self.end} is before start {self.start}")
        return self


class ProgrammeInfo(Frozen):
    name_zh: str
    name_en: str
    code_prefix: str
    sites: int = Field(ge=0)
    grant_per_site_yuan: int | None = Field(default=None, ge=0)
    excellent_bonus_yuan: int | None = Field(default=None, ge=0)
    equipment_subsidy_share: Decimal | None = Field(default=None, ge=0, le=1)
    equipment_subsidy_cap_yuan: int | None = Field(default=None, ge=0)


class Programmes(Frozen):
    village: ProgrammeInfo
    station: ProgrammeInfo
    base: ProgrammeInfo

    @model_validator(mode="after")
    def _money(self) -> Programmes:
        for name, key in (
            ("village", "grant_per_site_yuan"),
            ("station", "grant_per_site_yuan"),
            ("station", "excellent_bonus_yuan"),
            ("base", "equipment_subsidy_share"),
            ("base", "equipment_subsidy_cap_yuan"),
        ):
            if getattr(getattr(self, name), key) is None:
                raise Problem((name, key), "missing key")
        return self


class PlanCell(Frozen):
    """One programme's cell of the 建设计划 table: 万元 by fund source and number of sites."""

    provincial: int = Field(ge=0)
    district: int = Field(ge=0)
    sites: int = Field(ge=0)


class PlanYear(Frozen):
    village: PlanCell
    station: PlanCell
    base: PlanCell


class ProvincialTranche(Frozen):
    amount: int = Field(ge=0)
    condition: TrancheCondition


class ProgrammeTargets(Frozen):
    """A programme's yearly targets (``_per_year`` counts are per site and year)."""

    person_times_per_year: int | None = Field(default=None, ge=0)
    pass_rate: Decimal | None = Field(default=None, ge=0, le=1)
    satisfaction_rate: Decimal | None = Field(default=None, ge=0, le=1)


class Targets(Frozen):
    station: ProgrammeTargets | None = None
    base: ProgrammeTargets | None = None
    village: ProgrammeTargets | None = None
    pro_rate_first_year: bool

    def of(self, programme: str) -> ProgrammeTargets:
        return getattr(self, programme) or ProgrammeTargets()

    def by_programme(self) -> dict[str, ProgrammeTargets]:
        """Programmes with targets, in the file's order."""
        return {p: getattr(self, p) for p in type(self).model_fields if p in PROGRAMMES and getattr(self, p)}


class Satisfaction(Frozen):
    satisfied_ratings: tuple[str, ...] = Field(min_length=1)


class WorkingAge(Frozen):
    minimum_age_years: int = Field(ge=0)
    female_retirement_base: int = Field(ge=0)


class DateTolerance(Frozen):
    before: int = Field(ge=0)
    after: int = Field(ge=0)


class AcceptedPeriods(Frozen):
    first: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    last: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")


class IntakeRules(Frozen):
    date_tolerance_days: dict[SubmissionKind, DateTolerance]
    accepted_periods: AcceptedPeriods
    working_age_grace_days: int = Field(ge=0)
    max_class_hours: int = Field(gt=0)
    task_bytes: int = Field(gt=0)
    task_max_sites: int = Field(gt=0)
    suite_run_rows: int = Field(gt=0)

    def tolerance(self, kind: str) -> DateTolerance:
        return self.date_tolerance_days.get(kind, DateTolerance(before=0, after=0))  # type: ignore[call-overload]


class GradeBand(Frozen):
    grade: str
    min_score: Decimal = Field(ge=0, le=100)


class Dimension(Frozen):
    name_zh: str
    weight: int = Field(ge=0)


class Indicator(Frozen):
    """One scored indicator: full points when its actual reaches the target, weight x actual /
    target otherwise. ``measure`` names the computation; its parameters are the keys it reads."""

    code: str
    dimension: str
    name_zh: str
    weight: int = Field(ge=0)
    measure: Measure
    target: Decimal = Field(gt=0)
    programme: Programme | None = None
    indicator: str | None = None
    column: PersonTimeColumn | None = None
    programmes: tuple[Programme, ...] | None = None
    respondent_type: Respondent | None = None

    @model_validator(mode="after")
    def _parameters(self) -> Indicator:
        wanted = MEASURE_PARAMETERS[self.measure]
        given = {
            k
            for k in ("programme", "indicator", "column", "programmes", "respondent_type")
            if getattr(self, k) is not None
        }
        for key in sorted(wanted - given):
            raise Problem((key,), f"missing key (measure {self.measure} reads it)")
        for key in sorted(given - wanted):
            raise Problem((key,), f"not read by measure {self.measure} (it reads {sorted(wanted) or 'no parameters'})")
        return self


class EvaluationRules(Frozen):
    grades: tuple[GradeBand, ...] = Field(min_length=1)
    dimensions: dict[str, Dimension]
    indicators: tuple[Indicator, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _weights_and_bands(self) -> EvaluationRules:
        total = sum(d.weight for d in self.dimensions.values())
        if total != 100:
            raise Problem(("dimensions",), f"dimension weights sum to {total}, not 100")
        for i, ind in enumerate(self.indicators):
            if ind.dimension not in self.dimensions:
                raise Problem(
                    ("indicators", i, "dimension"), f"{ind.dimension!r} is not one of {list(self.dimensions)}"
                )
        codes = [i.code for i in self.indicators]
        for i, code in enumerate(codes):
            if codes.index(code) != i:
                raise Problem(("indicators", i, "code"), f"indicator code {code!r} is used twice")
        for name, dim in self.dimensions.items():
            weight = sum(i.weight for i in self.indicators if i.dimension == name)
            if weight != dim.weight:
                raise Problem(
                    ("dimensions", name, "weight"),
                    f"indicators of dimension {name} weigh {weight}, the dimension {dim.weight}",
                )
        scores = [b.min_score for b in self.grades]
        if scores != sorted(scores, reverse=True) or len(set(scores)) != len(scores):
            raise Problem(("grades",), "grade bands must be listed highest first, each with its own min_score")
        if scores[-1] != 0:
            raise Problem(("grades", len(scores) - 1, "min_score"), "the lowest grade band must start at 0")
        return self


class BandedRule(Frozen):
    full_at: Decimal = Field(ge=0, le=100)
    floor: Decimal = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> BandedRule:
        if self.floor > self.full_at:
            raise Problem(("floor",), f"floor {self.floor} is above full_at {self.full_at}")
        return self


class LinearRule(Frozen):
    pass


class DliTranche(Frozen):
    code: str
    name_zh: str
    amount_yuan: int = Field(ge=0)
    result: DliResult
    programme: Programme | None = None
    indicator: str
    target: Decimal = Field(gt=0)
    scaling: DliScaling

    @model_validator(mode="after")
    def _programme(self) -> DliTranche:
        if self.result == "share_of_site_years_met" and self.programme is None:
            raise Problem(("programme",), "missing key (result share_of_site_years_met reads it)")
        if self.result == "indicator_actual" and self.programme is not None:
            raise Problem(("programme",), "not read by result indicator_actual")
        return self


class DliRule(Frozen):
    tranches: tuple[DliTranche, ...] = Field(min_length=1)


class ReleaseRules(Frozen):
    banded: BandedRule | None = None
    linear: LinearRule | None = None
    dli: DliRule | None = None

    @field_validator("linear", mode="before")
    @classmethod
    def _empty(cls, value: Any) -> Any:
        return {} if value is None else value


class Release(Frozen):
    tranche_year: int
    rule: ReleaseRule
    rules: ReleaseRules

    @model_validator(mode="after")
    def _defined(self) -> Release:
        if getattr(self.rules, self.rule) is None:
            raise Problem(("rule",), f"release rule {self.rule!r} is not defined under release.rules")
        return self

    @property
    def banded(self) -> BandedRule | None:
        return self.rules.banded

    @property
    def dli_tranches(self) -> tuple[DliTranche, ...]:
        return self.rules.dli.tranches if self.rules.dli else ()


class Rectification(Frozen):
    deadline_days_after_year_end: int = Field(ge=0)


class DataComplete(Frozen):
    rule: DataCompleteRule
    grace_days: int = Field(ge=0)


class PageBudget(Frozen):
    workbook_pdf: int = Field(gt=0)
    html_pdf: int = Field(gt=0)
    report_pdf: int = Field(gt=0)


class EvaluationRuns(Frozen):
    data_complete: DataComplete
    signoff_roles: tuple[str, ...] = Field(min_length=1)
    early_warning_as_of: str = Field(pattern=r"^\d{2}-\d{2}$")
    role_names_en: dict[str, str]
    page_budget: PageBudget

    @model_validator(mode="after")
    def _roles(self) -> EvaluationRuns:
        try:
            dt.date(2001, *map(int, self.early_warning_as_of.split("-")))
        except ValueError:
            raise Problem(
                ("early_warning_as_of",), f"{self.early_warning_as_of!r} is not a MM-DD day of every year"
            ) from None
        if len(set(self.signoff_roles)) != len(self.signoff_roles):
            raise Problem(("signoff_roles",), "a role is listed twice")
        missing = [r for r in self.signoff_roles if r not in self.role_names_en]
        if missing:
            raise Problem(("role_names_en",), f"no English name for the sign-off roles {missing}")
        return self


class Recovery(Frozen):
    rule: RecoveryRule


class PlanPriority(Frozen):
    programme_order: tuple[Programme, ...] = Field(min_length=1)
    whole_sites_only: bool


class ExcellentStationPolicy(Frozen):
    rule: ExcellentStationRule
    satisfaction_rate: Decimal = Field(ge=0, le=1)


class IntegrityCheck(Frozen):
    """One integrity check (yuhang_skills/sql/integrity/<name>.sql): its severity and thresholds."""

    severity: IntegritySeverity
    max_per_year: int | None = Field(default=None, ge=1)
    max_per_occupation_level: int | None = Field(default=None, ge=1)
    window_days: int | None = Field(default=None, ge=1)
    multiple_of_usual: Decimal | None = Field(default=None, gt=0)
    min_passed: int | None = Field(default=None, ge=0)
    min_class_size: int | None = Field(default=None, ge=1)
    max_yuan_per_person_time: int | None = Field(default=None, ge=0)
    categories: tuple[str, ...] | None = None
    programmes: tuple[Programme, ...] | None = None

    def thresholds(self) -> dict[str, int | Decimal]:
        """The numeric thresholds the file sets for this check, by name (table ref_integrity_params)."""
        return {
            k: getattr(self, k)
            for k in type(self).model_fields
            if k in self.model_fields_set
            and isinstance(getattr(self, k), (int, Decimal))
            and not isinstance(getattr(self, k), bool)
        }

    def code_lists(self) -> dict[str, tuple[str, ...]]:
        """The code lists the file sets for this check, by name (table ref_codes)."""
        return {
            k: getattr(self, k)
            for k in type(self).model_fields
            if k in self.model_fields_set and isinstance(getattr(self, k), tuple)
        }


class Integrity(Frozen):
    checks: dict[str, IntegrityCheck]
    evidence_rows_shown: int = Field(ge=0)


class SubmissionRule(Frozen):
    """One submission kind of the data contract: who sends it, how often, and when it is due.

    Monthly and quarterly kinds are due on ``due_day`` of the month after the period (a quarter's
    period is its last month); yearly kinds on ``due_month``/``due_day`` of the next year.
    """

    kind: SubmissionKind
    cadence: Cadence
    due_day: int
    due_month: int | None = None
    programmes: tuple[Programme, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _due(self) -> SubmissionRule:
        if (self.cadence == "yearly") != (self.due_month is not None):
            raise Problem(
                ("due_month",) if self.due_month is not None else ("cadence",),
                "due_month is required for yearly kinds only",
            )
        try:
            dt.date(2001, self.due_month or 1, self.due_day)  # a day every year has (29 February is not)
        except ValueError:
            raise Problem(
                ("due_day",), f"due day {self.due_month or '*'}/{self.due_day} is not a day of every year"
            ) from None
        return self


class HolidaySpan(Frozen):
    name: str
    from_: dt.date = Field(alias="from")
    to: dt.date


class ProvisionalYear(Frozen):
    holidays: tuple[HolidaySpan, ...] = ()
    make_up_workdays: tuple[dt.date, ...] = ()


class WorkingDayPolicy(Frozen):
    """How due dates on rest days move, and the provisional holiday lists for years the official
    calendar package does not cover yet."""

    rule: WorkingDayRule
    provisional: dict[int, ProvisionalYear] = {}

    @model_validator(mode="after")
    def _spans(self) -> WorkingDayPolicy:
        for year, spec in self.provisional.items():
            for i, span in enumerate(spec.holidays):
                if span.to < span.from_ or span.from_.year != year or span.to.year != year:
                    raise Problem(
                        ("provisional", year, "holidays", i),
                        f"holiday {span.name} {span.from_}..{span.to} is not a span inside {year}",
                    )
            days = self.provisional_holidays[year]
            for i, d in enumerate(spec.make_up_workdays):
                if d.year != year or d.weekday() < 5 or d in days:
                    raise Problem(
                        ("provisional", year, "make_up_workdays", i),
                        f"make-up working days must be weekend days of {year} outside its holidays ({d})",
                    )
        return self

    @cached_property
    def provisional_holidays(self) -> dict[int, frozenset[dt.date]]:
        return {
            year: frozenset(
                span.from_ + dt.timedelta(days=i)
                for span in spec.holidays
                for i in range((span.to - span.from_).days + 1)
            )
            for year, spec in self.provisional.items()
        }

    @cached_property
    def provisional_workdays(self) -> dict[int, frozenset[dt.date]]:
        return {year: frozenset(spec.make_up_workdays) for year, spec in self.provisional.items()}


class AlertChannel(Frozen):
    """An alert channel: its kind and the Airflow connection that configures it."""

    name: str
    kind: AlertChannelKind
    connection_id: str
    max_message_bytes: int | None = Field(default=None, gt=0)  # longer texts are cut at a line (DingTalk caps)


class RecipientRole(Frozen):
    """Who is told (site contact, town/street office, district data team) and on which channels."""

    role: AlertRole
    channels: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()  # fixed e-mail addresses (district team); others come from data


class RetryPolicy(Frozen):
    """Back-off for a channel that is down: ``attempts`` tries, waits growing by ``backoff_factor``."""

    attempts: int = Field(ge=1)
    initial_backoff_seconds: float = Field(ge=0)
    backoff_factor: float = Field(ge=1)
    max_backoff_seconds: float = Field(ge=0)
    timeout_seconds: float = Field(gt=0)

    def waits(self) -> list[float]:
        """The waits between consecutive attempts (one fewer than attempts)."""
        return [
            min(self.max_backoff_seconds, self.initial_backoff_seconds * self.backoff_factor**i)
            for i in range(self.attempts - 1)
        ]


class EarlyWarningPolicy(Frozen):
    programmes: tuple[EarlyWarningProgramme, ...]
    min_months_reported: int = Field(ge=1, le=12)
    resend_interval_days: int = Field(ge=1)


class AlertPolicy(Frozen):
    """The watchdog's rules: escalation, de-duplication, channels, recipients and back-off."""

    working_days: WorkingDayPolicy
    escalation_days: int = Field(ge=1)
    resend_interval_days: int = Field(ge=1)
    backfill_grace_days: int = Field(ge=0)
    max_rows_per_file: int = Field(ge=1)
    subject_prefix: str = ""
    channels: dict[str, AlertChannel]
    recipients: dict[AlertRole, RecipientRole]
    town_offices: dict[str, str] = {}
    retry: RetryPolicy
    early_warning: EarlyWarningPolicy

    @field_validator("channels", mode="before")
    @classmethod
    def _channel_names(cls, value: Any) -> Any:
        return _with_names(value, "name")

    @field_validator("recipients", mode="before")
    @classmethod
    def _recipient_roles(cls, value: Any) -> Any:
        return _with_names(value, "role")

    @model_validator(mode="after")
    def _recipients(self) -> AlertPolicy:
        missing = [r for r in ALERT_ROLES if r not in self.recipients]
        if missing:
            raise Problem(("recipients",), f"must name exactly {ALERT_ROLES} (missing {missing})")
        for r in self.recipients.values():
            for i, name in enumerate(r.channels):
                if name not in self.channels:
                    raise Problem(
                        ("recipients", r.role, "channels", i),
                        f"unknown channels [{name!r}]: not one of {list(self.channels)}",
                    )
            if r.role == "district_team" and any(self.channels[c].kind == "smtp" for c in r.channels) and not r.emails:
                raise Problem(("recipients", r.role), "e-mail channel without emails")
        return self


def _with_names(value: Any, key: str) -> Any:
    """A mapping of name -> spec with each spec told its own name under ``key``."""
    if isinstance(value, dict):
        return {name: {key: name, **spec} if isinstance(spec, dict) else spec for name, spec in value.items()}
    return value


class FailureAlerts(Frozen):
    error_lines: int = Field(ge=1)
    resend_interval_hours: float = Field(gt=0)


class Operations(Frozen):
    """How the DAGs are run; yuhang_skills.orchestration.assets carries the same values (DAG files
    must not open files) and tests/dags/test_dag_integrity.py holds the two together."""

    retries: int = Field(ge=0)
    retry_delay_minutes: int = Field(ge=0)
    task_timeout_minutes: dict[str, int]
    intake_deadline: dt.time
    failure_alerts: FailureAlerts

    @field_validator("intake_deadline", mode="before")
    @classmethod
    def _hh_mm(cls, value: Any) -> Any:
        if isinstance(value, int):  # YAML 1.1 reads an unquoted 08:00 as sexagesimal minutes
            raise ValueError('write the time quoted, e.g. "08:00"')
        return value

    @model_validator(mode="after")
    def _default_timeout(self) -> Operations:
        if "default" not in self.task_timeout_minutes:
            raise Problem(("task_timeout_minutes",), "missing key default")
        return self


class Policy(Frozen):
    """The policy file, typed and checked. Load it with :meth:`Policy.load`."""

    policy_version: str
    timezone: str
    source_document: SourceDocument
    implementation_period: Period
    evaluation_year: int
    programmes: Programmes
    budget_plan_wan_yuan: dict[int, PlanYear] = Field(min_length=1)
    provincial_tranches_yuan: dict[int, ProvincialTranche] = Field(min_length=1)
    targets: Targets
    satisfaction: Satisfaction
    key_groups: tuple[str, ...]
    key_industries: tuple[str, ...]
    eligible_provincial_categories: tuple[str, ...]
    working_age: WorkingAge
    intake: IntakeRules
    evaluation: EvaluationRules
    release: Release
    rectification: Rectification
    evaluation_runs: EvaluationRuns
    recovery: Recovery
    plan_2027: PlanPriority
    excellent_station: ExcellentStationPolicy
    integrity: Integrity
    submissions: dict[SubmissionKind, SubmissionRule]
    alerts: AlertPolicy
    operations: Operations

    _path: Path | None = PrivateAttr(default=None)
    _locator: Locator | None = PrivateAttr(default=None)

    @field_validator("submissions", mode="before")
    @classmethod
    def _submission_kinds(cls, value: Any) -> Any:
        return _with_names(value, "kind")

    def submission_rule(self, kind: str) -> SubmissionRule:
        """The rule for a kind named by a file or a table (text); a kind the policy does not set is a KeyError."""
        return self.submissions[cast(SubmissionKind, kind)]

    @model_validator(mode="after")
    def _cross_section(self) -> Policy:
        year = self.release.tranche_year
        if year not in self.provincial_tranches_yuan:
            raise Problem(("release", "tranche_year"), f"{year} has no provincial_tranches_yuan entry")
        if year not in self.budget_plan_wan_yuan:
            raise Problem(("release", "tranche_year"), f"{year} has no budget_plan_wan_yuan entry")
        for i, ind in enumerate(self.evaluation.indicators):
            if ind.measure == "mean_site_year_attainment" and ind.programme and ind.indicator:
                targets = self.targets.of(ind.programme).model_fields_set
                if ind.indicator not in targets and f"{ind.indicator}_per_year" not in targets:
                    raise Problem(
                        ("evaluation", "indicators", i, "indicator"),
                        f"targets.{ind.programme} sets no yearly target {ind.indicator!r}",
                    )
        self._check_dli()
        order = self.plan_2027.programme_order
        funded = [p for p in PROGRAMMES if self.plan_cell(year, p).provincial > 0]
        if set(funded) - set(order):
            raise Problem(
                ("plan_2027", "programme_order"),
                f"{list(order)} must list every programme with provincial money in {year} ({funded})",
            )
        for i, programme in enumerate(self.alerts.early_warning.programmes):
            if self.targets.of(programme).person_times_per_year is None:
                raise Problem(("alerts", "early_warning", "programmes", i), f"{programme} has no person-time target")
        return self

    def _check_dli(self) -> None:
        """DLI tranches sum to the performance tranche and name results the evaluation measures."""
        tranches = self.release.dli_tranches
        if not tranches:
            return
        total = sum(t.amount_yuan for t in tranches)
        if total != self.performance_tranche_yuan:
            raise Problem(
                ("release", "rules", "dli", "tranches"),
                f"release.rules.dli tranches sum to {total} yuan, the performance tranche is "
                f"{self.performance_tranche_yuan}",
            )
        indicators = self.evaluation.indicators
        site_year = {(i.programme, i.indicator) for i in indicators if i.measure == "mean_site_year_attainment"}
        codes = {i.code for i in indicators}
        for n, t in enumerate(tranches):
            ok = (
                (t.programme, t.indicator) in site_year
                if t.result == "share_of_site_years_met"
                else t.indicator in codes
            )
            if not ok:
                raise Problem(
                    ("release", "rules", "dli", "tranches", n, "indicator"),
                    f"dli tranche {t.code} is tied to a result no evaluation indicator measures",
                )

    # --- loading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> Policy:
        """The policy file at ``path``, parsed and checked once per path and content (a task loads
        it often; an edited file is parsed again, however quickly it was rewritten)."""
        path = Path(path)
        key = (str(path.resolve()), hashlib.sha256(path.read_bytes()).hexdigest())
        cached = _LOADED.get(key)
        if cached is None:
            data, text = read_yaml(path)
            cached = cls.from_data(data, path, text)
            for older in [k for k in _LOADED if k[0] == key[0]]:
                del _LOADED[older]
            _LOADED[key] = cached
        return cached

    @classmethod
    def from_data(cls, data: Any, path: Path | None = None, text: str | None = None) -> Policy:
        """``data`` (the file's YAML, parsed) typed and checked; ``text`` gives errors their lines."""
        locator = Locator(path, text)
        if not isinstance(data, dict):
            raise PolicyError(locator.error((), "the policy file must be a mapping of sections"))
        policy: Policy = parse(cls, data, locator)
        policy._path = Path(path) if path is not None else None
        policy._locator = locator
        return policy

    def data(self) -> dict[str, Any]:
        """The file's content as plain YAML data (for a changed copy: ``Policy.from_data``)."""
        return self.model_dump(mode="python", by_alias=True, exclude_unset=True)

    def error(self, loc: tuple[Any, ...], message: str) -> str:
        """``message`` about key ``loc`` of this file, with its file, line and key path."""
        return (self._locator or Locator(self._path, None)).error(loc, message)

    def check_codes(self, contract: Contract) -> None:
        """The policy's code lists use codes of the contract's enumerations only."""
        problems = []
        for loc, enum in CODE_LISTS.items():
            node: Any = self
            for key in loc:
                node = getattr(node, key)
            allowed = list(contract.enums[enum])
            for i, code in enumerate(node):
                if code not in allowed:
                    problems.append(
                        self.error(
                            (*loc, i),
                            f"{code!r} is not a code of the contract's enumeration {enum} ({', '.join(allowed)})",
                        )
                    )
        for name, check in self.integrity.checks.items():
            for i, code in enumerate(check.categories or ()):
                if code not in contract.enums["category"]:
                    problems.append(
                        self.error(
                            ("integrity", "checks", name, "categories", i),
                            f"{code!r} is not a code of the contract's enumeration category",
                        )
                    )
        for kind in self.submissions:
            if kind not in contract.kinds:
                problems.append(self.error(("submissions", kind), f"the contract has no kind {kind!r}"))
        if problems:
            raise PolicyError("\n".join(problems))

    # --- identity -------------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def version(self) -> str:
        return self.policy_version

    @property
    def implementation_years(self) -> list[int]:
        period = self.implementation_period
        return list(range(period.start.year, period.end.year + 1))

    @property
    def implementation_end(self) -> dt.date:
        return self.implementation_period.end

    # --- programmes and money --------------------------------------------------------------
    def programme(self, name: str) -> ProgrammeInfo:
        return getattr(self.programmes, name)

    @property
    def base_subsidy_share(self) -> Decimal:
        return self.programmes.base.equipment_subsidy_share  # type: ignore[return-value]

    @property
    def base_subsidy_cap_yuan(self) -> int:
        return self.programmes.base.equipment_subsidy_cap_yuan  # type: ignore[return-value]

    @property
    def plan_years(self) -> list[int]:
        return sorted(self.budget_plan_wan_yuan)

    def plan_cell(self, year: int, programme: str) -> PlanCell:
        return getattr(self.budget_plan_wan_yuan[year], programme)

    def budget_table(self) -> list[BudgetRow]:
        """The source document's 建设计划 table, rows per year and the 合计 row, in 万元."""
        rows: list[BudgetRow] = []
        for year in self.plan_years:
            v, s, b = (self.plan_cell(year, p) for p in PROGRAMMES)
            provincial = v.provincial + s.provincial + b.provincial
            district = v.district + s.district + b.district
            rows.append(
                BudgetRow(
                    year=str(year),
                    village_wan=v.provincial + v.district,
                    station_wan=s.provincial + s.district,
                    base_provincial_wan=b.provincial,
                    base_district_wan=b.district,
                    provincial_wan=provincial,
                    district_wan=district,
                    subtotal_wan=provincial + district,
                    village_sites=v.sites,
                    station_sites=s.sites,
                    base_sites=b.sites,
                )
            )
        fields = [f for f in BudgetRow.__dataclass_fields__ if f != "year"]
        rows.append(BudgetRow("total", **{f: sum(getattr(r, f) for r in rows) for f in fields}))
        return rows

    def provincial_tranche_yuan(self, year: int) -> int:
        return self.provincial_tranches_yuan[year].amount

    @property
    def performance_tranche_year(self) -> int:
        return self.release.tranche_year

    @property
    def performance_tranche_yuan(self) -> int:
        return self.provincial_tranche_yuan(self.performance_tranche_year)

    def provincial_received_yuan(self, through_year: int) -> int:
        """Unconditional provincial money received up to and including ``through_year``."""
        return sum(
            t.amount
            for y, t in self.provincial_tranches_yuan.items()
            if y <= through_year and t.condition == "unconditional"
        )

    # --- targets and rules ------------------------------------------------------------------
    @property
    def satisfied_ratings(self) -> list[str]:
        return list(self.satisfaction.satisfied_ratings)

    @property
    def female_retirement_base(self) -> int:
        return self.working_age.female_retirement_base

    @property
    def minimum_working_age(self) -> int:
        return self.working_age.minimum_age_years

    @property
    def pro_rate_first_year(self) -> bool:
        """Whether a site's first-year targets count only its active months (targets: in the file)."""
        return self.targets.pro_rate_first_year

    def integrity_check(self, name: str) -> IntegrityCheck:
        """One integrity check's settings: ``severity`` and its thresholds."""
        try:
            return self.integrity.checks[name]
        except KeyError:
            raise KeyError(f"{self.path}: integrity.checks has no {name!r}") from None

    @property
    def signoff_roles(self) -> list[str]:
        return list(self.evaluation_runs.signoff_roles)

    @property
    def rectification_deadline_days(self) -> int:
        return self.rectification.deadline_days_after_year_end

    def rectification_deadline(self, year: int) -> dt.date:
        """Deadline to rectify a target missed in ``year`` (an Asia/Shanghai date, itself in time)."""
        return dt.date(year, 12, 31) + dt.timedelta(days=self.rectification_deadline_days)

    @property
    def recovery_rule(self) -> str:
        return self.recovery.rule

    @property
    def plan_priority(self) -> PlanPriority:
        """The priority rule for the tranche year's build plan (policy key ``plan_2027``)."""
        return self.plan_2027

    @property
    def excellent_bonus_yuan(self) -> int:
        return self.programmes.station.excellent_bonus_yuan  # type: ignore[return-value]

    def dli_tranches(self) -> list[DliTranche]:
        return list(self.release.dli_tranches)

    def grade(self, score: Decimal) -> str:
        for band in self.evaluation.grades:
            if score >= band.min_score:
                return band.grade
        raise ValueError(f"score {score} below every grade band")

    def target_rows(self) -> list[dict[str, Any]]:
        """Yearly targets as rows (programme, indicator, target) for the warehouse."""
        rows = []
        for programme, targets in self.targets.by_programme().items():
            for indicator in [f for f in ProgrammeTargets.model_fields if f in targets.model_fields_set]:
                value = getattr(targets, indicator)
                name = indicator.removesuffix("_per_year")
                rows.append(
                    {
                        "programme": programme,
                        "indicator": name,
                        "target": str(value),
                        "per_year": indicator.endswith("_per_year"),
                    }
                )
        return rows


_LOADED: dict[tuple[str, str], Policy] = {}


# --- the submission contract (contract.yaml) ---------------------------------------------------------
ColumnType = Literal["site_code", "text", "date", "number", "integer", "money", "bool", "pii_name", "pii_id"]
COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)


class Inbox(Frozen):
    extensions: tuple[Literal["csv", "xlsx"], ...] = Field(min_length=1)
    csv_encodings: tuple[str, ...] = Field(min_length=1)
    header_search_rows: int = Field(ge=1)
    header_min_matches: int = Field(ge=1)

    @field_validator("csv_encodings")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import codecs

        for name in value:
            try:
                codecs.lookup(name)
            except LookupError:
                raise ValueError(f"{name!r} is not an encoding Python knows") from None
        return value


class ContractColumn(Frozen):
    """A column of a submission kind: its type (or ``enum:<enumeration>``), whether it is required,
    the header spellings accepted, and ``invalid: warning`` for an optional value left empty when bad."""

    type: str
    required: bool
    invalid: Literal["warning"] | None = None
    aliases: tuple[str, ...] = ()

    @property
    def enum(self) -> str | None:
        return self.type.removeprefix("enum:") if self.type.startswith("enum:") else None


class ContractKind(Frozen):
    name_zh: str
    columns: dict[str, ContractColumn] = Field(min_length=1)


class Contract(Frozen):
    """The data contract published to the sites (contract.yaml)."""

    inbox: Inbox
    kinds: dict[SubmissionKind, ContractKind]
    enums: dict[str, dict[str, tuple[str, ...]]]

    def kind(self, kind: str) -> ContractKind:
        """The columns of a kind named by a file or a table (text); an unknown kind is a KeyError."""
        return self.kinds[cast(SubmissionKind, kind)]

    @field_validator("enums", mode="before")
    @classmethod
    def _codes_as_text(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted yes/true/no/false as a boolean: a spelling is the text written.
        if not isinstance(value, dict):
            return value

        def text(spellings: Any) -> Any:
            if not isinstance(spellings, list):
                return spellings
            return [("true" if s else "false") if isinstance(s, bool) else s for s in spellings]

        return {
            name: {code: text(spellings) for code, spellings in codes.items()} if isinstance(codes, dict) else codes
            for name, codes in value.items()
        }

    @model_validator(mode="after")
    def _column_types(self) -> Contract:
        for kind, spec in self.kinds.items():
            for name, column in spec.columns.items():
                if column.enum is not None:
                    if column.enum not in self.enums:
                        raise Problem(
                            ("kinds", kind, "columns", name, "type"),
                            f"{column.type!r}: the contract has no enumeration {column.enum!r} "
                            f"(enums: {', '.join(self.enums)})",
                        )
                elif column.type not in COLUMN_TYPES:
                    raise Problem(
                        ("kinds", kind, "columns", name, "type"),
                        f"{column.type!r} is not one of {', '.join(COLUMN_TYPES)} or enum:<enumeration>",
                    )
                if column.invalid == "warning" and column.required:
                    raise Problem(("kinds", kind, "columns", name, "invalid"), "a required column cannot be a warning")
        return self

    def enum_spellings(self) -> dict[str, dict[str, list[str]]]:
        """The enumerations as plain lists (what the expectation suites' parameters carry)."""
        return {
            name: {code: list(spellings) for code, spellings in codes.items()} for name, codes in self.enums.items()
        }

    @property
    def source(self) -> dict[str, Any]:
        """The file's YAML as read (what an evaluation's input fingerprint hashes)."""
        return self._source

    _source: dict[str, Any] = PrivateAttr(default_factory=dict)


def load_contract(path: Path) -> Contract:
    data, text = read_yaml(path)
    contract: Contract = parse(Contract, data, Locator(Path(path), text))
    contract._source = data
    return contract


# --- the site registry (sites.csv) -----------------------------------------------------------------
class _SiteRow(Frozen):
    model_config = ConfigDict(frozen=True, extra="ignore")

    site_code: str = Field(pattern=r"^[A-Z]\d{2,}$")
    programme: Programme
    name_zh: str = Field(min_length=1)
    town: str = Field(min_length=1)
    batch_year: int
    active_from: dt.date


def load_sites(path: Path) -> list[Site]:
    """The site registry; an error names the file, its line and the column."""
    sites: list[Site] = []
    lines: dict[str, int] = {}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        for r in reader:
            line = reader.line_num
            cells = {k: (v or "").strip() for k, v in r.items() if k is not None}
            try:
                row = _SiteRow.model_validate(cells)
            except ValidationError as exc:
                err = exc.errors()[0]
                column = err["loc"][0] if err["loc"] else ""
                message = (
                    f"{err['input']!r} is not one of {err['ctx']['expected']}"
                    if err["type"] == "literal_error"
                    else "missing"
                    if err["type"] == "missing"
                    else err["msg"]
                )
                raise PolicyError(f"{path}:{line}: {column}: {message}") from None
            if row.site_code in lines:
                raise PolicyError(
                    f"{path}:{line}: site_code: duplicate site codes ({row.site_code!r} is on line "
                    f"{lines[row.site_code]} too)"
                )
            lines[row.site_code] = line
            sites.append(
                Site(
                    site_code=row.site_code,
                    programme=row.programme,
                    name_zh=row.name_zh,
                    town=row.town,
                    batch_year=row.batch_year,
                    active_from=row.active_from,
                    industry_focus=cells.get("industry_focus", ""),
                    contact_name=cells.get("contact_name", ""),
                    contact_email=cells.get("contact_email", ""),
                    partners=cells.get("partners", ""),
                )
            )
    return sites


class Plan:
    """Policy, registry and contract together, as one run sees them."""

    def __init__(self, policy: Policy, sites: list[Site], contract: Contract):
        policy.check_codes(contract)
        self.policy = policy
        self.sites = sites
        self.contract = contract

    @classmethod
    def load(cls, policy_path: Path, sites_path: Path, contract_path: Path) -> Plan:
        return cls(Policy.load(policy_path), load_sites(sites_path), load_contract(contract_path))

    @classmethod
    def from_settings(cls, settings) -> Plan:  # noqa: ANN001 - yuhang_skills.core.settings.Settings
        return cls.load(settings.policy_path, settings.sites_path, settings.contract_path)

    @cached_property
    def sites_by_code(self) -> dict[str, Site]:
        return {s.site_code: s for s in self.sites}

    def active_sites(self, year: int) -> list[Site]:
        return [s for s in self.sites if s.months_active(year) > 0]
