"""Workflow Badge settings: the ordered `workflow` steps and the reward-level workflow options.

A step is ``{"step": "First Sale", "condition": {...}, "description": "..."}``. A step without a
condition is completed by an explicit event or an admin; a step with one is completed when the
named achievement function's result passes ``operator threshold`` (with no threshold, when the
result is truthy, as in the original).

Reward-level options (Workflow Badges only):

- `auto_enroll` (false): members are enrolled on first evaluation instead of by an explicit
  enrolment. The original never passed this flag through, so its workflows never left step one;
  here it is part of the validated definition.
- `auto_evaluation` (true): evaluation advances through every step whose condition already holds;
  false advances at most one step per evaluation.
- `completion_callbacks`: registered callback names run once when a member completes.
- `step_callbacks`: ``{step name: [callback names]}`` run when that step is completed; every key
  must name a step.

Step names are unique ignoring case, because step callbacks and progress records refer to them by
name.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from rewards.catalog.problems import Issue, issues_from, show
from rewards.catalog.rules import (
    OPERATOR_SYMBOLS,
    FunctionName,
    Label,
    Number,
    Operator,
    check_function_params,
)

OPTION_FIELDS = ("auto_enroll", "auto_evaluation", "completion_callbacks", "step_callbacks")


class StepCondition(BaseModel):
    """``{function_path, threshold?, operator?, function_params?}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    function_path: FunctionName
    threshold: Number | None = None
    operator: Operator = "gte"
    function_params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("operator")
    @classmethod
    def _needs_threshold(cls, value: str, info: ValidationInfo) -> str:
        # Runs only when an operator is given: without a threshold there is nothing to compare.
        if "threshold" in info.data and info.data["threshold"] is None:
            raise ValueError("needs a threshold to compare with")
        return value

    @field_validator("function_params")
    @classmethod
    def _params(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_function_params(value)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        if self.threshold is None:
            data.pop("operator")  # nothing to compare, and refused without a threshold
        return data

    def describe(self) -> str:
        if self.threshold is None:
            return f"{self.function_path} is true"
        return f"{self.function_path} {OPERATOR_SYMBOLS[self.operator]} {self.threshold}"


class WorkflowStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    step: Label
    condition: StepCondition | None = None
    description: StrictStr | None = Field(default=None, max_length=2000)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"step": self.step}
        if self.condition is not None:
            data["condition"] = self.condition.to_json()
        if self.description is not None:
            data["description"] = self.description
        return data

    def describe(self) -> str:
        return self.step + (f" (when {self.condition.describe()})" if self.condition else "")


class WorkflowOptions(BaseModel):
    """The reward-level options, validated together so their issues are located."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    auto_enroll: StrictBool = False
    auto_evaluation: StrictBool = True
    completion_callbacks: tuple[FunctionName, ...] = ()
    step_callbacks: dict[Label, tuple[FunctionName, ...]] = Field(default_factory=dict)


def collect_workflow(
    raw: object, where: str = "workflow"
) -> tuple[tuple[WorkflowStep, ...], list[Issue]]:
    """Validate a `workflow` list; every issue is located (``workflow[1].condition.operator``)."""
    if raw is None:
        return (), []
    if not isinstance(raw, list):
        return (), [
            (where, f'must be a list of steps such as [{{"step": "First Login"}}], got {show(raw)}')
        ]
    steps: list[WorkflowStep] = []
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        at = f"{where}[{index}]"
        try:
            step = WorkflowStep.model_validate(item)
        except ValidationError as error:
            issues.extend(issues_from(error, at, WorkflowStep))
            continue
        key = step.step.casefold()
        if key in seen:
            issues.append(
                (f"{at}.step", f'duplicate step "{step.step}" (also {where}[{seen[key]}])')
            )
            continue
        seen[key] = index
        steps.append(step)
    return tuple(steps), issues


def collect_options(raw: dict[str, Any]) -> tuple[WorkflowOptions | None, list[Issue]]:
    """Validate the option fields present in a reward object."""
    given = {key: raw[key] for key in OPTION_FIELDS if key in raw and raw[key] is not None}
    try:
        return WorkflowOptions.model_validate(given), []
    except ValidationError as error:
        return None, issues_from(error, "", WorkflowOptions)


def step_callback_issues(options: WorkflowOptions, raw_workflow: object) -> list[Issue]:
    """Every `step_callbacks` key must name a workflow step (exactly, as callbacks fire by name).

    Checked against the step names as written, so a problem elsewhere in a step does not also
    make its callbacks look orphaned."""
    items = raw_workflow if isinstance(raw_workflow, list) else []
    names = [
        item["step"].strip()
        for item in items
        if isinstance(item, dict) and isinstance(item.get("step"), str)
    ]
    issues: list[Issue] = []
    for key in options.step_callbacks:
        if key not in names:
            listed = ", ".join(f'"{n}"' for n in names) or "none"
            issues.append(
                (f"step_callbacks.{key}", f"is not a step of this workflow (steps: {listed})")
            )
    return issues
