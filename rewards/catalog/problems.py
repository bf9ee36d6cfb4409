"""Turning validation failures into located, readable catalogue problems.

Every section parser of the catalogue (rules, job, workflow, nomination, core fields) reports
`Issue`s: a dotted field path such as ``rules[0][1].operator`` and a sentence. The loader stamps
them with the reward id and raises one `CatalogError` for the whole file, so an author sees every
problem at once instead of fixing them one run at a time.

Pydantic's own messages are kept (they are precise) but given the offending value and, for unknown
fields, the list of valid ones: the original project dropped rewards with unknown keys silently,
so an unknown key here must be loud and must say what would have been accepted.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from rewards.errors import CatalogError, CatalogProblem

Issue = tuple[str, str]
"""(dotted field path, message)."""


def join_path(prefix: str, loc: Sequence[str | int]) -> str:
    """``join_path("rules[0]", ("filters", "groups", 0))`` -> ``rules[0].filters.groups[0]``."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif path:
            path += f".{part}"
        else:
            path = str(part)
    return path


def show(value: object) -> str:
    """A value as the author wrote it in JSON, shortened for one line."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' when a close spelling exists, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return []
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _model_at(model: type[BaseModel] | None, loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The nested model class that holds the last element of `loc`, when it can be found."""
    current = model
    for part in loc:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return None
        nested = _models_in(field.annotation)
        current = nested[0] if len(nested) == 1 else None
    return current


def issues_from(
    error: ValidationError,
    prefix: str,
    model: type[BaseModel] | None = None,
    *,
    noun: str = "field",
) -> list[Issue]:
    """One issue per pydantic error, located under `prefix`."""
    issues: list[Issue] = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        kind = item["type"]
        message = str(item["msg"])
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        elif message.startswith("Assertion failed, "):
            message = message[len("Assertion failed, ") :]
        if kind == "extra_forbidden":
            holder = _model_at(model, loc[:-1])
            name = str(loc[-1]) if loc else "?"
            if holder is not None:
                valid = ", ".join(holder.model_fields)
                what = noun if len(loc) == 1 else "field"
                message = f"unknown {what}{suggest(name, holder.model_fields)}; valid: {valid}"
            else:
                message = "unknown field"
        elif kind == "missing":
            message = "required"
        elif kind != "value_error" and "input" in item:
            message = f"{message}, got {show(item['input'])}"
        issues.append((join_path(prefix, loc), message))
    return issues


def to_problems(reward_id: object, issues: Iterable[Issue]) -> list[CatalogProblem]:
    return [CatalogProblem(reward_id, field, message) for field, message in issues]


def raise_if(reward_id: object, issues: Sequence[Issue]) -> None:
    """Raise one CatalogError carrying every issue, if there is any."""
    if issues:
        raise CatalogError(to_problems(reward_id, issues))
