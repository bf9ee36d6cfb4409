"""Rule definitions: the entries of a reward's `rules` list, one validated class per rule.

A rule entry in the JSON is ``["Name", {params}]``, ``["Name"]`` or a bare ``"Name"``. Several rules
are AND-ed: a member must pass all of them.

These classes are only *definitions*: typed, range-checked parameters with a one-line
`describe()`. Evaluating them (which members pass, on which day) belongs to the evaluation engine.
Their rules are fixed here so the engine cannot drift from what the catalogue accepted:

- parameters are typed strictly (``"30"`` is not a number, ``"yes"`` is not a boolean) and unknown
  parameters are errors: the original copied any JSON key onto the rule, so a typo was a silently
  ignored setting;
- dataset and column names end up in SQL, so they must be plain identifiers;
- parameters that cannot have an effect in the given combination are refused rather than ignored
  (``deviation`` with ``match: perfect``, ``recent_winner_days`` without
  ``exclude_recent_winners``, ``partial_period`` with ``period_type: rolling``).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, ClassVar, Literal, TypeAlias, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rewards.catalog.problems import Issue, issues_from, raise_if, show, suggest

# ---------------------------------------------------------------------------------------------
# Field types shared by rules, workflow conditions and nomination settings.

Operator: TypeAlias = Literal["gte", "gt", "lte", "lt", "eq", "ne"]
OPERATOR_SYMBOLS: dict[str, str] = {
    "gte": ">=",
    "gt": ">",
    "lte": "<=",
    "lt": "<",
    "eq": "==",
    "ne": "!=",
}

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
# Names the evaluation engine passes positionally; a function_params key of the same name would
# collide with them.
RESERVED_PARAMS = frozenset({"user", "env", "conn", "member", "reward"})


def _identifier(value: object) -> object:
    if isinstance(value, str) and not _IDENTIFIER.fullmatch(value):
        raise ValueError(
            f"must be a plain SQL identifier (letters, digits, underscore), got {show(value)}"
        )
    return value


def _function_name(value: object) -> object:
    if isinstance(value, str) and (len(value) > 300 or not _FUNCTION_NAME.fullmatch(value)):
        raise ValueError(
            "must be a registered function name such as "
            f'"rewards.functions.engagement.get_login_streak", got {show(value)}'
        )
    return value


def _number(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, got {show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Identifier = Annotated[StrictStr, BeforeValidator(_identifier)]
"""A dataset or column name; it ends up in SQL, so only plain identifiers are accepted."""

FunctionName = Annotated[StrictStr, BeforeValidator(_function_name)]
"""A dotted name resolved through `rewards.functions.registry`, never imported directly."""

Number = Annotated[int | float, BeforeValidator(_number)]
"""A JSON number (not a boolean, not a numeric string); ints stay ints."""

Label = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def check_function_params(value: dict[str, Any]) -> dict[str, Any]:
    """Keys of `function_params` become keyword arguments, so they must be identifiers."""
    for key in value:
        if not key.isidentifier():
            raise ValueError(f"parameter names must be identifiers, got {show(key)}")
        if key in RESERVED_PARAMS:
            raise ValueError(f'"{key}" is passed by the engine and cannot be a parameter')
    return value


class MemberCriteria(BaseModel):
    """Who is in a population: every list given must match (AND); inside a list any value matches.

    Used by RandomUsers `filters` and by the nomination eligibility settings. Empty means everyone
    active.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    departments: tuple[Label, ...] = ()
    job_codes: tuple[Label, ...] = ()
    groups: tuple[Label, ...] = ()
    min_tenure_days: StrictInt | None = Field(default=None, ge=0, le=36_500)

    def is_empty(self) -> bool:
        return not (self.departments or self.job_codes or self.groups or self.min_tenure_days)

    def describe(self) -> str:
        parts = []
        if self.departments:
            parts.append("department " + " or ".join(self.departments))
        if self.job_codes:
            parts.append("job code " + " or ".join(self.job_codes))
        if self.groups:
            parts.append("group " + " or ".join(self.groups))
        if self.min_tenure_days:
            parts.append(f"at least {self.min_tenure_days} days in the company")
        return ", ".join(parts) or "everyone"


# ---------------------------------------------------------------------------------------------
# The rules.


class RuleDefinition(BaseModel):
    """Base class: strict parameters, a JSON form and a one-line description."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_name: ClassVar[str]

    def describe(self) -> str:
        raise NotImplementedError

    def function_refs(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(parameter, function name, keyword params) for every registry name the rule uses."""
        return []

    def to_json(self) -> list[Any]:
        """The normalised catalogue entry: ``[name]`` or ``[name, {params}]``."""
        params = self.model_dump(mode="json", exclude_none=True)
        return [self.rule_name, params] if params else [self.rule_name]


class AchievementRule(RuleDefinition):
    """Calls a registered achievement function and compares its result with `threshold`.

    `achievement_name` is the original's legacy form: ``"engagement.get_login_streak"`` means
    ``rewards.functions.engagement.get_login_streak``.
    """

    rule_name: ClassVar[str] = "AchievementRule"

    function_path: FunctionName
    threshold: Number = 0
    operator: Operator = "gte"
    function_params: dict[str, Any] = Field(default_factory=dict)
    achievement_name: FunctionName | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("achievement_name"), str):
            derived = "rewards.functions." + data["achievement_name"]
            given = data.get("function_path")
            if given is None:
                return {**data, "function_path": derived}
            if given != derived:
                raise ValueError(
                    f'achievement_name means "{derived}" but function_path is {show(given)}; '
                    "give only one"
                )
        return data

    @field_validator("function_params")
    @classmethod
    def _params(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_function_params(value)

    def describe(self) -> str:
        args = ", ".join(f"{k}={show(v)}" for k, v in self.function_params.items())
        return f"{self.function_path}({args}) {OPERATOR_SYMBOLS[self.operator]} {self.threshold}"

    def function_refs(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [("function_path", self.function_path, self.function_params)]


class AttendanceRule(RuleDefinition):
    """Attendance over a period, from the `dataset` table's `filter_by` date column.

    - `period_type: fixed` means calendar periods (this month, this ISO week); `rolling` means the
      last `count` units ending yesterday. For `unit: day` both mean the last `count` days.
    - `match: perfect` allows no missing day; `partial` allows `deviation` missing days, and needs
      it stated (the original silently defaulted it to 2).
    - `only_weekdays` counts Monday to Friday only (default off: the rule counts what it says).
    - A fixed period that is not over yet is judged only when `partial_period` is true, and then on
      the days so far; otherwise it is judged once complete (the original counted future days,
      so "perfect month" could only pass on its last day).
    """

    rule_name: ClassVar[str] = "AttendanceRule"

    count: StrictInt = Field(ge=1, le=3660)
    unit: Literal["day", "week", "month"]
    period_type: Literal["fixed", "rolling"] = "fixed"
    match: Literal["perfect", "partial"] = "perfect"
    deviation: StrictInt | None = Field(default=None, ge=0, validate_default=True)
    only_weekdays: StrictBool = False
    dataset: Identifier = "employee_attendance"
    filter_by: Identifier = "attendance_date"
    partial_period: StrictBool = False

    @field_validator("deviation")
    @classmethod
    def _deviation(cls, value: int | None, info: ValidationInfo) -> int | None:
        match = info.data.get("match")
        if match == "perfect" and value is not None:
            raise ValueError('only applies to match "partial" (perfect allows no missed day)')
        if match == "partial" and value is None:
            raise ValueError('match "partial" needs deviation: the number of missed days allowed')
        count, unit = info.data.get("count"), info.data.get("unit")
        if value is not None and unit == "day" and isinstance(count, int) and value >= count:
            raise ValueError(f"must be less than count ({count}), or every member would pass")
        return value

    @field_validator("partial_period")
    @classmethod
    def _partial_period(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("period_type") == "rolling":
            raise ValueError(
                'only applies to period_type "fixed" (a rolling period is always over)'
            )
        return value

    def describe(self) -> str:
        units = self.unit if self.count == 1 else self.unit + "s"
        if self.period_type == "rolling" or self.unit == "day":
            span = f"the last {self.count} {units}"
        elif self.count == 1:
            span = f"the calendar {self.unit}"
        else:
            span = f"{self.count} calendar {units}"
        quality = (
            "perfect attendance"
            if self.match == "perfect"
            else f"attendance with at most {self.deviation} missed days"
        )
        weekdays = " (weekdays)" if self.only_weekdays else ""
        so_far = ", judged on the days so far" if self.partial_period else ""
        return f"{quality}{weekdays} over {span}{so_far}"


class RandomWeights(BaseModel):
    """Relative chances in a draw, by member attribute: ``{"department": {"Sales": 2.0}}``.

    A member's weight is the product of the weights of the values they match (1.0 for values not
    listed), so a Sales member in group "Mentors" with ``{"department": {"Sales": 2},
    "group": {"Mentors": 1.5}}`` has weight 3.0. Weights must be positive; to exclude people use
    `filters` instead.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    department: dict[Label, Number] = Field(default_factory=dict)
    job_code: dict[Label, Number] = Field(default_factory=dict)
    group: dict[Label, Number] = Field(default_factory=dict)

    @field_validator("department", "job_code", "group")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for key, weight in value.items():
            if weight <= 0:
                raise ValueError(f"weight of {show(key)} must be greater than 0, got {weight}")
        return value

    def describe(self) -> str:
        parts = [
            f"{attribute} {key} x{weight}"
            for attribute, table in (
                ("department", self.department),
                ("job code", self.job_code),
                ("group", self.group),
            )
            for key, weight in table.items()
        ]
        return ", ".join(parts)


class RandomUsers(RuleDefinition):
    """Draws `count` members at random from the population `filters` describes."""

    rule_name: ClassVar[str] = "RandomUsers"

    count: StrictInt = Field(default=1, ge=1, le=10_000)
    filters: MemberCriteria = Field(default_factory=MemberCriteria)
    weights: RandomWeights | None = None
    exclude_recent_winners: StrictBool = False
    recent_winner_days: StrictInt = Field(default=7, ge=1, le=3660)

    @field_validator("recent_winner_days")
    @classmethod
    def _needs_exclusion(cls, value: int, info: ValidationInfo) -> int:
        # Runs only when the parameter is given (defaults are not validated).
        if info.data.get("exclude_recent_winners", True) is False:
            raise ValueError("has no effect unless exclude_recent_winners is true")
        return value

    def to_json(self) -> list[Any]:
        entry = super().to_json()
        if not self.exclude_recent_winners:
            entry[1].pop("recent_winner_days")  # only meaningful (and only accepted) with exclusion
        return entry

    def describe(self) -> str:
        who = "member" if self.count == 1 else "members"
        text = f"{self.count} random {who} from {self.filters.describe()}"
        if self.weights is not None and self.weights.describe():
            text += f", weighted by {self.weights.describe()}"
        if self.exclude_recent_winners:
            text += f", excluding winners of the last {self.recent_winner_days} days"
        return text


class Birthday(RuleDefinition):
    """Members whose birthday is today in their own time zone (29 February falls on 28 February in
    other years)."""

    rule_name: ClassVar[str] = "Birthday"

    def describe(self) -> str:
        return "members whose birthday is today"


class EmploymentDuration(RuleDefinition):
    """Members on a work anniversary day: every anniversary, or only the `years`-th one."""

    rule_name: ClassVar[str] = "EmploymentDuration"

    years: StrictInt | None = Field(default=None, ge=1, le=100)

    def describe(self) -> str:
        if self.years is None:
            return "members on a work anniversary"
        return f"members on their {self.years}-year work anniversary"


class WorkAnniversary(RuleDefinition):
    """Members on the day they complete `years` years in the company (the anniversary *day*; the
    original passed on every day after it)."""

    rule_name: ClassVar[str] = "WorkAnniversary"

    years: StrictInt = Field(default=1, ge=1, le=100)

    def describe(self) -> str:
        unit = "year" if self.years == 1 else "years"
        return f"members completing {self.years} {unit} in the company today"


class BestSeller(RuleDefinition):
    """The top `count` members by the `column` of `dataset` over the reward's period."""

    rule_name: ClassVar[str] = "BestSeller"

    count: StrictInt = Field(default=1, ge=1, le=10_000)
    column: Identifier = "sales_count"
    dataset: Identifier = "sales"

    def describe(self) -> str:
        return f"the top {self.count} by {self.dataset}.{self.column}"


Rule: TypeAlias = (
    AchievementRule
    | AttendanceRule
    | RandomUsers
    | Birthday
    | EmploymentDuration
    | WorkAnniversary
    | BestSeller
)

RULES: dict[str, type[RuleDefinition]] = {
    cls.rule_name: cls
    for cls in (
        AchievementRule,
        AttendanceRule,
        RandomUsers,
        Birthday,
        EmploymentDuration,
        WorkAnniversary,
        BestSeller,
    )
}
"""Every rule name the catalogue accepts, with its class."""

_FORMAT = 'a rule is ["Name", {parameters}], ["Name"] or "Name"'


def _parse_entry(entry: object, where: str) -> tuple[RuleDefinition | None, list[Issue]]:
    params: object
    if isinstance(entry, str):
        name, params, name_at, params_at = entry, {}, where, where
    elif isinstance(entry, list) and entry and len(entry) <= 2:
        name = entry[0]
        params = entry[1] if len(entry) == 2 else {}
        name_at, params_at = f"{where}[0]", f"{where}[1]"
    else:
        return None, [(where, f"{_FORMAT}, got {show(entry)}")]
    if not isinstance(name, str):
        return None, [(name_at, f"the rule name must be a string, got {show(name)}")]
    rule_class = RULES.get(name)
    if rule_class is None:
        valid = ", ".join(RULES)
        return None, [
            (name_at, f'unknown rule "{name}"{suggest(name, RULES)}; valid rules: {valid}')
        ]
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return None, [(params_at, f"the parameters must be an object, got {show(params)}")]
    try:
        return rule_class.model_validate(params), []
    except ValidationError as error:
        return None, issues_from(error, params_at, rule_class, noun=f"parameter for {name}")


def collect_rules(raw: object, where: str = "rules") -> tuple[tuple[Rule, ...], list[Issue]]:
    """Validate a `rules` value, returning the rules and every issue found (not just the first).

    For compatibility with the original, whose database column defaulted to ``{}``, an empty object
    and null both mean "no rules"; any other non-list is an error.
    """
    if raw is None or raw == {}:
        return (), []
    if not isinstance(raw, list):
        return (), [(where, f"must be a list of rules ({_FORMAT}), got {show(raw)}")]
    rules: list[Rule] = []
    issues: list[Issue] = []
    for index, entry in enumerate(raw):
        rule, found = _parse_entry(entry, f"{where}[{index}]")
        issues.extend(found)
        if rule is not None:
            rules.append(cast("Rule", rule))  # RULES holds only the Rule classes
    return tuple(rules), issues


def parse_rules(raw: object, *, reward_id: object = "-") -> tuple[Rule, ...]:
    """Validate a `rules` value; raise `CatalogError` listing every problem."""
    rules, issues = collect_rules(raw)
    raise_if(reward_id, issues)
    return rules
