"""Loading a catalogue: the seed's JSON (a list of rewards, or ``{"rewards": [...]}``) validated
into `RewardDefinition`s, or one `CatalogError` listing every problem in the file.

Nothing is dropped silently (the original logged and skipped any reward its model rejected, which
is how JSON Nomination Badges vanished). Each problem names the reward (its id, or ``#N``, the
1-based position, when the id itself is missing or bad) and the field, down to
``rules[0][1].operator`` or ``job.cron.hour``.

Beyond field types, a reward must make sense for its type:

- User Badge: given by people, so no `job` and no `events` (`reward_type` defaults to User Badge);
- Automated Badge: fired by `events` (default ``["login"]``), which must not be empty;
- Achievement Badge: at least one rule;
- Computed Badge: at least one rule (who wins) and a `job` (when): without a job it would never
  run, which is exactly the silent failure this loader exists to prevent;
- Workflow Badge: a non-empty `workflow`; the workflow options (`auto_enroll`, `auto_evaluation`,
  `completion_callbacks`, `step_callbacks`) belong to Workflow Badges only;
- Nomination Badge: `nomination_config` (defaults when absent), which belongs to it only.

Every function name (`function_path`, workflow conditions, callbacks) must be in the function
registry, and the rule's `function_params` must fit the function's signature. Two rewards may not
share a `reward_id` or a job id (the scheduler would replace one job with the other).

`rules: {}` and `rules: null` are read as "no rules": the original's database column defaulted to
``{}``, and exports from it carry that value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

from rewards.catalog.announce import AnnounceSpec, collect_announce
from rewards.catalog.jobs import JobSpec, collect_job
from rewards.catalog.model import RewardCore, RewardKind
from rewards.catalog.nomination import NominationConfig, collect_nomination
from rewards.catalog.problems import Issue, issues_from, show, suggest, to_problems
from rewards.catalog.rules import Rule, collect_rules
from rewards.catalog.workflow import (
    OPTION_FIELDS,
    WorkflowStep,
    collect_options,
    collect_workflow,
    step_callback_issues,
)
from rewards.errors import CatalogError, CatalogProblem, TemplateRefused
from rewards.functions.registry import FunctionKind, FunctionRegistry, default_registry
from rewards.inputs import FILE_JSON, InputRefused, check_json_limits
from rewards.inputs.text import document_text_problems
from rewards.templates import check_template, validate_message

DEFAULT_EVENTS: dict[RewardKind, tuple[str, ...]] = {RewardKind.AUTOMATED: ("login",)}
_EVENT_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")


class EventSpec(BaseModel):
    """One entry of `events`: a bare name (``"login"``) or ``{"name": {parameters}}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: StrictStr = Field(min_length=1, max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _plain(cls, value: str) -> str:
        if not set(value) <= _EVENT_NAME_CHARS:
            raise ValueError(f"event names use letters, digits and _ . : -, got {show(value)}")
        return value

    def to_json(self) -> str | dict[str, Any]:
        return {self.name: dict(self.params)} if self.params else self.name


def collect_events(raw: object, where: str = "events") -> tuple[tuple[EventSpec, ...], list[Issue]]:
    if raw is None:
        return (), []
    if not isinstance(raw, list):
        return (), [(where, f'must be a list such as ["login"], got {show(raw)}')]
    events: list[EventSpec] = []
    issues: list[Issue] = []
    for index, item in enumerate(raw):
        at = f"{where}[{index}]"
        if isinstance(item, str):
            data: dict[str, Any] = {"name": item}
        elif isinstance(item, dict) and len(item) == 1:
            ((name, params),) = item.items()
            if params is not None and not isinstance(params, dict):
                issues.append(
                    (f"{at}.{name}", f"event parameters must be an object, got {show(params)}")
                )
                continue
            data = {"name": name, "params": params or {}}
        else:
            issues.append(
                (at, f'an event is "name" or {{"name": {{parameters}}}}, got {show(item)}')
            )
            continue
        try:
            events.append(EventSpec.model_validate(data))
        except ValidationError as error:
            issues.extend((at, message) for _, message in issues_from(error, at))
    return tuple(events), issues


class RewardDefinition(RewardCore):
    """A whole catalogue entry: the core fields plus the typed sections.

    Build it with `parse_catalog` / `load_file` / `definition_from_json`, which locate every
    problem; `rules` holds instances of the rule classes in `rewards.catalog.rules.RULES`.
    """

    rules: tuple[Rule, ...] = ()
    job: JobSpec | None = None
    workflow: tuple[WorkflowStep, ...] = ()
    auto_enroll: bool = False
    auto_evaluation: bool = True
    completion_callbacks: tuple[str, ...] = ()
    step_callbacks: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    nomination_config: NominationConfig | None = None
    events: tuple[EventSpec, ...] = ()
    announce: AnnounceSpec | None = None

    @property
    def kind(self) -> RewardKind:
        return self.reward_type

    def to_json(self) -> dict[str, Any]:
        """The normalised catalogue entry: every field in declaration order, defaults spelled out,
        absent optional values left out. Loading it again gives an equal definition; it is what
        the store keeps and what the fingerprint is computed from."""
        data: dict[str, Any] = {}
        for name in RewardCore.model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, BaseModel):
                data[name] = value.model_dump(mode="json", exclude_none=True)
            elif name in ("assigner", "awardee"):
                data[name] = [
                    {k: list(v) for k, v in entry.model_dump().items() if v} for entry in value
                ]
            else:
                data[name] = value.value if hasattr(value, "value") else value
        data["rules"] = [rule.to_json() for rule in self.rules]
        if self.job is not None:
            data["job"] = self.job.to_json()
        if self.reward_type is RewardKind.WORKFLOW:
            data["workflow"] = [step.to_json() for step in self.workflow]
            data["auto_enroll"] = self.auto_enroll
            data["auto_evaluation"] = self.auto_evaluation
            data["completion_callbacks"] = list(self.completion_callbacks)
            data["step_callbacks"] = {k: list(v) for k, v in self.step_callbacks.items()}
        if self.nomination_config is not None:
            data["nomination_config"] = self.nomination_config.model_dump(
                mode="json", exclude_none=True
            )
        if self.events:
            data["events"] = [event.to_json() for event in self.events]
        if self.announce is not None:
            data["announce"] = self.announce.model_dump(mode="json", exclude_none=True)
        return data

    def fingerprint(self) -> str:
        """sha256 of the normalised JSON (keys sorted), to tell changed rewards from unchanged."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


CORE_FIELDS = tuple(RewardCore.model_fields)
SECTION_FIELDS = (
    "rules",
    "job",
    "workflow",
    *OPTION_FIELDS,
    "nomination_config",
    "events",
    "announce",
)
KNOWN_FIELDS = (*CORE_FIELDS, *SECTION_FIELDS)


def _label(raw: Mapping[str, Any], position: int) -> object:
    value = raw.get("reward_id")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return f"#{position}"


def _reference_issues(
    where: str, spec: Mapping[str, Any], registry: FunctionRegistry
) -> list[Issue]:
    """Check the achievement function a rule or condition names, and its `function_params`.

    Works on the raw JSON, so an unknown name is reported even when another parameter of the
    same rule is wrong too."""
    name, field = spec.get("function_path"), "function_path"
    if name is None and isinstance(spec.get("achievement_name"), str):
        name, field = "rewards.functions." + spec["achievement_name"], "achievement_name"
    if not isinstance(name, str):
        return []  # missing or mistyped: the model reports it
    if problem := registry.problem(name, FunctionKind.ACHIEVEMENT):
        return [(f"{where}.{field}", problem)]
    params = spec.get("function_params", {})
    if (
        isinstance(params, dict)
        and all(isinstance(key, str) for key in params)
        and (bad := registry.get(name).params_problem(params))
    ):
        return [(f"{where}.function_params", f"the parameters {bad}")]
    return []


def _function_issues(raw: Mapping[str, Any], registry: FunctionRegistry) -> list[Issue]:
    """Every registry name in the reward must be registered, as the right kind."""
    issues: list[Issue] = []
    rules = raw.get("rules")
    for index, entry in enumerate(rules if isinstance(rules, list) else []):
        if (
            isinstance(entry, list)
            and len(entry) == 2
            and entry[0] == "AchievementRule"
            and isinstance(entry[1], dict)
        ):
            issues.extend(_reference_issues(f"rules[{index}][1]", entry[1], registry))
    workflow = raw.get("workflow")
    for index, step in enumerate(workflow if isinstance(workflow, list) else []):
        if isinstance(step, dict) and isinstance(step.get("condition"), dict):
            issues.extend(
                _reference_issues(f"workflow[{index}].condition", step["condition"], registry)
            )
    callbacks = raw.get("completion_callbacks")
    for index, name in enumerate(callbacks if isinstance(callbacks, list) else []):
        if isinstance(name, str) and (problem := registry.problem(name, FunctionKind.CALLBACK)):
            issues.append((f"completion_callbacks[{index}]", problem))
    per_step = raw.get("step_callbacks")
    for step_name, names in per_step.items() if isinstance(per_step, dict) else []:
        for index, name in enumerate(names if isinstance(names, list) else []):
            if isinstance(name, str) and (problem := registry.problem(name, FunctionKind.CALLBACK)):
                issues.append((f"step_callbacks.{step_name}[{index}]", problem))
    return issues


def _kind_as_written(raw: Mapping[str, Any]) -> RewardKind | None:
    """The reward type even when other core fields failed, so type checks still run."""
    value = raw.get("reward_type", RewardKind.USER.value)
    if not isinstance(value, str):  # a list or an object: the core's validation names it
        return None
    return RewardKind(value) if value in {kind.value for kind in RewardKind} else None


def _type_issues(kind: RewardKind, raw: Mapping[str, Any], parts: dict[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    defaulted = "" if "reward_type" in raw else " (reward_type is not given, so it is a User Badge)"
    has_job = raw.get("job") is not None
    if kind is RewardKind.USER:
        if has_job:
            issues.append(
                (
                    "job",
                    f"a User Badge is given by people and cannot be scheduled{defaulted}; "
                    "use a Computed Badge or an Achievement Badge",
                )
            )
        if raw.get("events"):
            issues.append(
                (
                    "events",
                    f"a User Badge is given by people, not by events{defaulted}; "
                    "use an Automated Badge",
                )
            )
    if (
        kind is RewardKind.AUTOMATED
        and "events" in raw
        and not parts["events"]
        and raw["events"] == []
    ):
        issues.append(("events", 'an Automated Badge needs at least one event (default ["login"])'))
    if kind is RewardKind.ACHIEVEMENT and not parts["rules"] and "rules" not in parts["failed"]:
        issues.append(("rules", "an Achievement Badge needs at least one rule"))
    if kind is RewardKind.COMPUTED:
        if not has_job:
            issues.append(
                (
                    "job",
                    "a Computed Badge needs a job (when to run); "
                    "without one it would never be awarded",
                )
            )
        if not parts["rules"] and "rules" not in parts["failed"]:
            issues.append(
                ("rules", "a Computed Badge needs at least one rule to choose who receives it")
            )
    if kind is RewardKind.WORKFLOW:
        if not parts["workflow"] and "workflow" not in parts["failed"]:
            issues.append(("workflow", "a Workflow Badge needs at least one step"))
    else:
        for name in ("workflow", *OPTION_FIELDS):
            if name in raw and raw[name] is not None:
                issues.append(
                    (name, f"only applies to a Workflow Badge, not a {kind.value}{defaulted}")
                )
    if kind is not RewardKind.NOMINATION and raw.get("nomination_config") is not None:
        issues.append(
            (
                "nomination_config",
                f"only applies to a Nomination Badge, not a {kind.value}{defaulted}",
            )
        )
    return issues


def _parse_reward(
    raw: Mapping[str, Any], registry: FunctionRegistry | None, render_messages: bool = True
) -> tuple[RewardDefinition | None, list[Issue]]:
    """Validate one reward object; return the definition, or None and every issue found.

    `render_messages`: render the message template against the sample context under the render
    limits (`validate_message`); otherwise only check it."""
    issues: list[Issue] = []
    for key in raw:
        if key not in KNOWN_FIELDS:
            issues.append((str(key), f"unknown field{suggest(str(key), KNOWN_FIELDS)}"))
    core: RewardCore | None = None
    try:
        core = RewardCore.model_validate({k: raw[k] for k in CORE_FIELDS if k in raw})
    except ValidationError as error:
        issues.extend(issues_from(error, "", RewardCore))
    failed: set[str] = set()
    rules, found = collect_rules(raw.get("rules"))
    failed.update(["rules"] if found else [])
    issues.extend(found)
    job, found = collect_job(raw.get("job"))
    issues.extend(found)
    workflow, found = collect_workflow(raw.get("workflow"))
    failed.update(["workflow"] if found else [])
    issues.extend(found)
    options, found = collect_options(dict(raw))
    issues.extend(found)
    nomination, found = collect_nomination(raw.get("nomination_config"))
    issues.extend(found)
    events, found = collect_events(raw.get("events"))
    issues.extend(found)
    announce, found = collect_announce(raw.get("announce"))
    issues.extend(found)
    if options is not None:
        issues.extend(step_callback_issues(options, raw.get("workflow")))
    parts: dict[str, Any] = {
        "rules": rules,
        "workflow": workflow,
        "events": events,
        "failed": failed,
    }
    if registry is not None:
        issues.extend(_function_issues(raw, registry))
    if core is not None and core.message:
        try:
            if render_messages:
                validate_message(core.message, reward=core.template_vars())
            else:
                check_template(core.message)
        except TemplateRefused as refused:
            issues.append(("message", str(refused)))
    kind = core.reward_type if core is not None else _kind_as_written(raw)
    if kind is not None:
        issues.extend(_type_issues(kind, raw, parts))
    if core is None:
        return None, issues
    if issues or options is None:
        return None, issues
    if core.reward_type is RewardKind.NOMINATION and nomination is None:
        nomination = NominationConfig()
    if not events and "events" not in raw:
        events = tuple(EventSpec(name=name) for name in DEFAULT_EVENTS.get(core.reward_type, ()))
    definition = RewardDefinition(
        **{name: getattr(core, name) for name in CORE_FIELDS},
        rules=rules,
        job=job.with_default_id(core.reward_id) if job is not None else None,
        workflow=workflow,
        auto_enroll=options.auto_enroll,
        auto_evaluation=options.auto_evaluation,
        completion_callbacks=options.completion_callbacks,
        step_callbacks=options.step_callbacks,
        nomination_config=nomination,
        events=events,
        announce=announce,
    )
    return definition, []


def _rewards_list(data: object) -> tuple[list[Any] | None, list[CatalogProblem]]:
    if isinstance(data, list):
        return data, []
    if isinstance(data, dict) and "rewards" in data:
        extra = [key for key in data if key != "rewards"]
        problems = [
            CatalogProblem("-", str(key), 'unknown top-level field (only "rewards")')
            for key in extra
        ]
        if not isinstance(data["rewards"], list):
            problems.append(
                CatalogProblem(
                    "-", "rewards", f"must be a list of rewards, got {show(data['rewards'])}"
                )
            )
            return None, problems
        return data["rewards"], problems
    return None, [
        CatalogProblem("-", "(catalogue)", 'must be a list of rewards or {"rewards": [...]}')
    ]


_DEFAULT: Any = object()


def parse_catalog(
    data: object,
    *,
    registry: FunctionRegistry | None = _DEFAULT,
    render_messages: bool = True,
) -> list[RewardDefinition]:
    """Validate a whole catalogue; raise `CatalogError` with every problem of every reward.

    `registry` resolves function names; by default the process's (`default_registry()`). Pass
    None to skip the function checks (only for definitions that were checked when loaded).
    `render_messages`: render each message template against a sample context under the render
    limits, so one that fails or overruns is refused here, naming its reward (up to
    `rewards.templates.TIME_LIMIT` per reward: off the event loop, like `load_file`); False only
    for definitions that were rendered when loaded.
    """
    if registry is _DEFAULT:
        registry = default_registry()
    items, problems = _rewards_list(data)
    definitions: list[RewardDefinition] = []
    first_at: dict[int, int] = {}
    job_owner: dict[str, object] = {}
    for position, raw in enumerate(items or [], start=1):
        if not isinstance(raw, dict):
            problems.append(
                CatalogProblem(f"#{position}", "(reward)", f"must be an object, got {show(raw)}")
            )
            continue
        label = _label(raw, position)
        issues = _duplicate_key_issues(raw, "")
        issues.extend(document_text_problems(raw))
        if isinstance(label, int):
            if label in first_at:
                issues.append(
                    ("reward_id", f"duplicate reward_id {label} (also reward #{first_at[label]})")
                )
            else:
                first_at[label] = position
        definition, found = _parse_reward(raw, registry, render_messages)
        issues.extend(found)
        if definition is not None and definition.job is not None and definition.job.id:
            owner = job_owner.setdefault(definition.job.id, label)
            if owner != label:
                issues.append(
                    ("job.id", f'duplicate job id "{definition.job.id}" (also reward {owner})')
                )
        problems.extend(to_problems(label, issues))
        if definition is not None and not issues:
            definitions.append(definition)
    if problems:
        raise CatalogError(problems)
    return definitions


def definition_from_json(data: Mapping[str, Any]) -> RewardDefinition:
    """Rebuild a definition from its normalised JSON (as stored), without function checks: names
    were checked at load time and are resolved again when used."""
    (definition,) = parse_catalog([dict(data)], registry=None, render_messages=False)
    return definition


# ----------------------------------------------------------------------------------------------
# Files.


class _Pairs(dict[str, Any]):
    """A JSON object that remembers keys given twice (json keeps the last one silently)."""

    duplicates: list[str]


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _Pairs:
    result = _Pairs()
    result.duplicates = []
    for key, value in pairs:
        if key in result:
            result.duplicates.append(key)
        result[key] = value
    return result


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _duplicate_key_issues(value: object, where: str) -> list[Issue]:
    issues: list[Issue] = []
    if isinstance(value, dict):
        for key in getattr(value, "duplicates", ()):
            issues.append(
                (
                    f"{where}.{key}" if where else key,
                    "given twice in one object; the values would overwrite each other",
                )
            )
        for key, item in value.items():
            issues.extend(_duplicate_key_issues(item, f"{where}.{key}" if where else str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            issues.extend(_duplicate_key_issues(item, f"{where}[{index}]"))
    return issues


def read_json(text: str) -> object:
    """Parse JSON within the gate's file limits (`rewards.inputs.FILE_JSON`: size, nesting
    depth), keeping track of duplicate keys; raise CatalogError with line and column."""
    try:
        check_json_limits(text, FILE_JSON, "The file")
    except InputRefused as refused:
        raise CatalogError([CatalogProblem("-", "(file)", str(refused))]) from None
    try:
        return json.loads(text, object_pairs_hook=_pairs_hook, parse_constant=_no_constants)
    except json.JSONDecodeError as error:
        raise CatalogError(
            [
                CatalogProblem(
                    "-", f"line {error.lineno}, column {error.colno}", f"invalid JSON: {error.msg}"
                )
            ]
        ) from None
    except ValueError as error:  # NaN / Infinity
        raise CatalogError([CatalogProblem("-", "(file)", f"invalid JSON: {error}")]) from None


def load_file(
    path: str | Path, *, registry: FunctionRegistry | None = _DEFAULT
) -> list[RewardDefinition]:
    """Read and validate a catalogue file; raise `CatalogError` with every problem."""
    location = Path(path)
    try:
        text = location.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise CatalogError(
            [CatalogProblem("-", "(file)", f"cannot read {location}: {reason}")]
        ) from None
    data = read_json(text)
    top_duplicates = getattr(data, "duplicates", [])
    if top_duplicates:
        raise CatalogError(
            [
                CatalogProblem("-", key, "given twice at the top of the file")
                for key in top_duplicates
            ]
        )
    return parse_catalog(data, registry=registry)


def summarize(definitions: Sequence[RewardDefinition]) -> dict[str, int]:
    """Counts per reward type (in RewardKind order), for the CLI's summary."""
    counts = {kind.value: 0 for kind in RewardKind}
    for definition in definitions:
        counts[definition.reward_type.value] += 1
    return counts


__all__ = [
    "EventSpec",
    "RewardDefinition",
    "definition_from_json",
    "load_file",
    "parse_catalog",
    "read_json",
    "summarize",
]
