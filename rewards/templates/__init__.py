"""Reward `message` templates: Jinja2 in a bounded sandbox, with a fixed set of variables.

Catalogue authors write messages such as
``Congratulations {{user.display_name}}! You ranked #{{args.rank}}``. Templates come from files and
the API, so they are untrusted:

- `check_template` refuses at load time anything that reaches for Python internals
  (``_``-prefixed attributes, such as ``''.__class__.__mro__`` or ``|attr('__class__')``), names
  other than the documented ones (`user`, `args`, `env`, `reward`), and statements that reach
  outside the message (``{% include %}``, ``{% import %}``, ``{% extends %}``, ``{% macro %}``).
- `render` runs in `rewards.templates.sandbox.MessageEnvironment`, which bounds what a template can
  cost: operators and amplifying filters are checked before they run, every value it builds is
  measured, and the output is streamed and stopped at `MAX_OUTPUT` characters; the whole render
  stops at a `TIME_LIMIT` deadline, checked on every attribute, call, loop item and piece of
  output. Any failure is `TemplateRefused` with a sentence naming the template (`label`).
- `render_async` is `render` in a template thread (`rewards.templates.workers`): the event loop
  keeps serving while a template renders, and gives up after the limit plus `GRACE`.
- `validate_message` renders a template against a sample context (`SAMPLE_USER`, `SAMPLE_ARGS`,
  ...) under the same limits: what the catalogue loader runs for every reward, so a template that
  fails, is refused or overruns is reported with its reward before any award uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any, TypeVar, cast

from jinja2 import Template, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError

from rewards.errors import TemplateRefused
from rewards.templates.sandbox import (
    LIMITS,
    MAX_INT_BITS,
    MAX_OUTPUT,
    MAX_RANGE,
    MAX_VALUE,
    TIME_LIMIT,
    MessageEnvironment,
    Overrun,
    tick,
)
from rewards.templates.workers import in_worker

T = TypeVar("T")

VARIABLES = frozenset({"user", "args", "env", "reward"})
MAX_NESTING = 32
"""Levels of statements and expressions a template may nest (an ordinary message has 5 to 10)."""
GRACE = 1.0
"""Seconds `render_async` waits past the time limit (a queued render, a slow machine) before it
gives up on a render that the deadline checks did not stop."""
LABEL = "the message template"

_ENV = MessageEnvironment()

_OUTSIDE = {
    nodes.Extends: "{% extends %}",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
}

# Filters whose string arguments name attributes to read (`|attr('x')`, `|map(attribute='x')`,
# `|selectattr('x')`, `|sort(attribute='x')`, ...).
_ATTRIBUTE_FILTERS = frozenset({"attr", "selectattr", "rejectattr", "groupby"})


def _attribute_names(tree: nodes.Template) -> list[str]:
    names: list[str] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Getattr):
            names.append(node.attr)
        elif isinstance(node, nodes.Getitem):
            key = node.arg
            if isinstance(key, nodes.Const) and isinstance(key.value, str):
                names.append(key.value)
        elif isinstance(node, nodes.Filter):
            given = [k.value for k in node.kwargs if k.key == "attribute"]
            if node.name in _ATTRIBUTE_FILTERS:
                given += node.args[:1]
            for value in given:
                if isinstance(value, nodes.Const) and isinstance(value.value, str):
                    names += value.value.split(".")
    return names


def _problem(tree: nodes.Template) -> str | None:
    """Why `tree` is not a safe message template (a clause after "the message template"), or
    None."""
    for kind, statement in _OUTSIDE.items():
        if any(True for _ in tree.find_all(kind)):
            return f"uses {statement}; a message template is self-contained"
    for name in _attribute_names(tree):
        if name.startswith("_"):
            return (
                f"reaches for {name!r}; names starting with '_' are Python internals and are "
                "not allowed"
            )
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in VARIABLES | assigned | {"loop"}:
            return f"uses {node.name!r}; the available variables are " + ", ".join(
                sorted(VARIABLES)
            )
    return None


def _nesting(tree: nodes.Node) -> int:
    """How many levels deep `tree` goes (counted without recursion)."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return deepest


TOO_DEEP = f"nests too deeply (at most {MAX_NESTING} levels of statements and expressions)"


@lru_cache(maxsize=512)
def _prepared(source: str) -> Template | str:
    """`source` checked and compiled with the bounds, or why it is refused (cached by source)."""
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as problem:
        return f"has a syntax error on line {problem.lineno}: {problem.message}"
    except RecursionError:  # Jinja's parser recurses on each level
        return TOO_DEEP
    if _nesting(tree) > MAX_NESTING:  # compiling deep nests is slow (seconds), then fails
        return TOO_DEEP
    refused = _problem(tree)
    if refused is not None:
        return refused
    try:
        code = _ENV.compile(_ENV.bounded(tree))
    except TemplateSyntaxError as error:  # e.g. a filter that does not exist
        return f"has an error on line {error.lineno}: {error.message}"
    except (SyntaxError, RecursionError, MemoryError):  # Python's own nesting limits
        return TOO_DEEP
    return _ENV.template_class.from_code(_ENV, code, _ENV.make_globals(None))


def check_template(source: str, *, label: str = LABEL) -> None:
    """Raise `TemplateRefused` with a clear sentence if `source` is not a safe message template."""
    prepared = _prepared(source)
    if isinstance(prepared, str):
        raise TemplateRefused(f"{label} {prepared}")


def _overrun(label: str, overrun: Overrun, time_limit: float) -> str:
    if overrun.kind == "time":
        return f"{label} took longer than {time_limit * 1000:.0f} ms to render"
    if overrun.kind == "output":
        return f"{label} exceeded {MAX_OUTPUT:,} characters"
    if overrun.kind == "size":
        return f"{label} exceeded {overrun.limit:,} characters ({overrun.detail})"
    return f"{label} was refused: {overrun.detail}"


def render(
    source: str,
    *,
    user: Mapping[str, Any],
    reward: Mapping[str, Any],
    env: Mapping[str, Any],
    args: Mapping[str, Any] | None = None,
    label: str = LABEL,
    time_limit: float = TIME_LIMIT,
) -> str:
    """Render a message template in this thread, under the limits (`MAX_OUTPUT` characters,
    `time_limit` seconds); any failure becomes `TemplateRefused` with a sentence that starts with
    `label`. On the event loop use `render_async`."""
    prepared = _prepared(source)
    if isinstance(prepared, str):
        raise TemplateRefused(f"{label} {prepared}")
    variables = {
        "user": dict(user),
        "reward": dict(reward),
        "env": dict(env),
        "args": args if isinstance(args, dict) else dict(args or {}),
    }
    pieces: list[str] = []
    size = 0
    LIMITS.start(time_limit)
    stream = cast(Generator[str, None, None], prepared.generate(variables))
    try:
        for piece in stream:
            size += len(piece)
            if size > MAX_OUTPUT:
                raise Overrun("output")
            pieces.append(piece)
            tick()
    except Overrun as overrun:
        raise TemplateRefused(_overrun(label, overrun, time_limit)) from None
    except MemoryError:
        raise TemplateRefused(f"{label} exceeded {MAX_VALUE:,} characters") from None
    except RecursionError:
        raise TemplateRefused(f"{label} nests too deeply") from None
    except SecurityError as problem:
        raise TemplateRefused(f"{label} was refused: {problem}") from None
    except UndefinedError as problem:
        raise TemplateRefused(f"{label} uses a missing value: {problem.message}") from None
    except Exception as problem:
        raise TemplateRefused(f"{label} failed: {problem}") from None
    finally:
        stream.close()
        LIMITS.stop()
    return "".join(pieces)


async def in_thread(job: Callable[[], T], *, label: str = LABEL, renders: int = 1) -> T:
    """Run `job` (which renders up to `renders` templates with `render`) in a template thread;
    `TemplateRefused` if it has not finished within the time limit of each plus `GRACE`."""
    try:
        return await in_worker(job, TIME_LIMIT * renders + GRACE)
    except TimeoutError:
        raise TemplateRefused(
            f"{label} took longer than {TIME_LIMIT * 1000:.0f} ms to render"
        ) from None


async def render_async(
    source: str,
    *,
    user: Mapping[str, Any],
    reward: Mapping[str, Any],
    env: Mapping[str, Any],
    args: Mapping[str, Any] | None = None,
    label: str = LABEL,
) -> str:
    """`render` in a template thread: the event loop goes on serving while it renders."""
    job = partial(render, source, user=user, reward=reward, env=env, args=args, label=label)
    return await in_thread(job, label=label)


def env_variables(local: datetime, giver: str | None) -> dict[str, Any]:
    """What a message template may read as `env`, at `local` (the receiver's time)."""
    return {
        "timestamp": local.isoformat(),
        "date": local.date().isoformat(),
        "year": local.year,
        "month_name": local.strftime("%B"),
        "day_name": local.strftime("%A"),
        "timezone": str(local.tzinfo),
        "giver": giver,
    }


# --- the sample context of `validate_message` -----------------------------------------------

SAMPLE_USER: dict[str, Any] = {
    "id": 1,
    "display_name": "Alex Wilber",
    "first_name": "Alex",
    "email": "alex.wilber@example.com",
    "job_code": "ENGINEER",
    "department": "Engineering",
}
SAMPLE_MOMENT = datetime(2026, 5, 18, 9, 30, tzinfo=UTC)
SAMPLE_GIVER = "Megan Bowen"
SAMPLE_ARGS: dict[str, Any] = {
    # What the built-in rules, events and nominations pass (rewards.rules.*, ...).
    "rank": 1,
    "votes": 3,
    "value": 42,
    "threshold": 10,
    "campaign_id": 1,
    "workflow": "Onboarding",
    "draw_key": "2026-05",
    "lottery_run_id": 1,
    "birthday": "1990-05-18",
    "celebrated_on": "2026-05-18",
    "years_employed": 5,
    "hire_date": "2021-05-18",
    "anniversary": "2026-05-18",
    "present_days": 20,
    "expected_days": 21,
    "missed_days": 1,
    "window_start": "2026-04-18",
    "window_end": "2026-05-17",
}


class SampleValue(int):
    """The number 1, standing for an argument the catalogue cannot know (a bestseller column, an
    event's payload); it may also be indexed and iterated, as a text would be."""

    def __new__(cls) -> SampleValue:
        return super().__new__(cls, 1)

    def __getitem__(self, key: object) -> SampleValue:
        return self

    def __iter__(self) -> Any:
        return iter((self,))

    def __len__(self) -> int:
        return 1


class SampleArgs(dict[str, Any]):
    """`SAMPLE_ARGS`, and a `SampleValue` for any other name."""

    def __missing__(self, key: str) -> SampleValue:
        return SampleValue()


def validate_message(source: str, *, reward: Mapping[str, Any], label: str = LABEL) -> None:
    """Check `source` and render it against the sample context under the render limits; raise
    `TemplateRefused` when it is refused, fails or overruns (with the sample values: a template
    whose cost depends on real `args` is still bounded when awards render it)."""
    render(
        source,
        user=SAMPLE_USER,
        reward=reward,
        env=env_variables(SAMPLE_MOMENT, SAMPLE_GIVER),
        args=SampleArgs(SAMPLE_ARGS),
        label=label,
    )


__all__ = [
    "GRACE",
    "MAX_INT_BITS",
    "MAX_NESTING",
    "MAX_OUTPUT",
    "MAX_RANGE",
    "MAX_VALUE",
    "SAMPLE_ARGS",
    "SAMPLE_USER",
    "TIME_LIMIT",
    "VARIABLES",
    "check_template",
    "env_variables",
    "in_thread",
    "render",
    "render_async",
    "validate_message",
]
