"""The allowlist of callables a catalogue may name.

`function_path` (AchievementRule, workflow conditions) and callback names (`completion_callbacks`,
`step_callbacks`) resolve ONLY through a `FunctionRegistry`, never by importing whatever dotted
string a JSON file contains: a catalogue is data, and data must not be able to run arbitrary code.

Where names come from, all explicit:

1. built-ins: the modules in `BUILTIN_MODULES`, whose functions register themselves with the
   `achievement_function` / `completion_callback` decorators;
2. deployment modules named in the setting ``REWARDS_FUNCTION_MODULES`` (comma-separated); importing
   such a module registers its decorated functions. A decorated function is registered only when
   its own module is loaded, so importing a module for another reason never widens the allowlist;
3. entry points of the group ``nav_rewards.functions``: ``name = "package.module:callable"``,
   registered under the entry point's name. A callable decorated with `completion_callback` is a
   callback; anything else is an achievement function.

Two kinds, because they are called differently:

- achievement functions: ``async def f(user, env, conn, **params) -> number | bool`` (the seed's
  shape; `conn` offers ``await conn.fetchval(sql, *args)``);
- callbacks: ``async def f(member, reward, env, **kwargs)``.

An achievement function may also declare a *batch form* (``achievement_function(name,
batch=g)``): ``async def g(members, env, conn, **params) -> {member_id: value}`` answers for a
whole population in a few set-based queries. The daily sweep over 100,000 members uses it when
present, because one query per member is what made the original's sweep take hours; functions
without one are still called per member, correctly but slowly.

And a *members form* (``achievement_function(name, members=h)``), of the same shape, which reads
the rows of the members it is given and nothing else (an ``IN`` list of their ids): the event
hooks evaluate the workflow conditions of the few members a batch of events names with it, one
query for all of them, where a batch form would read the population and the function alone would
send a query per member.

It may further declare a *passing form* (``passing=p``): ``async def p(env, conn, *, operator,
threshold, **params) -> {member_id: value} | None`` answers "who passes" for the whole active
population in one query (the comparison pushed into SQL), returning the values of a set of active
members that includes every one who passes, or None when it cannot for that comparison (then the
batch form runs). `env` offers ``today_in(zone)`` and the period (``start_date``, ``end_date``).

A registration that does not fit (not async, wrong arity, a name taken by another callable) is a
startup error, not a surprise at 4 PM when the lottery runs.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeVar, cast

from rewards.settings import SettingsError, read_env_file

ENTRY_POINT_GROUP = "nav_rewards.functions"
BUILTIN_MODULES: tuple[str, ...] = (
    "rewards.functions.engagement",
    "rewards.functions.training",
    "rewards.functions.sales",
    "rewards.functions.custom",
    "rewards.callbacks",
    "rewards.callbacks.training",
)

AsyncFunction = Callable[..., Awaitable[Any]]
F = TypeVar("F", bound=AsyncFunction)

_KIND_MARK = "__rewards_function_kind__"


class FunctionKind(StrEnum):
    ACHIEVEMENT = "achievement function"
    CALLBACK = "callback"

    @property
    def with_article(self) -> str:
        return ("an " if self.value[0] in "aeiou" else "a ") + self.value


_POSITIONAL = {
    FunctionKind.ACHIEVEMENT: ("user", "env", "conn"),
    FunctionKind.CALLBACK: ("member", "reward", "env"),
}


@dataclass(frozen=True)
class RegisteredFunction:
    name: str
    kind: FunctionKind
    func: AsyncFunction
    batch: AsyncFunction | None = None
    members: AsyncFunction | None = None
    passing: AsyncFunction | None = None

    @property
    def summary(self) -> str:
        """The first line of the docstring, for listings."""
        doc = inspect.getdoc(self.func) or ""
        return doc.splitlines()[0] if doc else ""

    def params_problem(self, params: Mapping[str, Any]) -> str | None:
        """Why `params` cannot be passed as keywords to this function, or None if they can."""
        try:
            inspect.signature(self.func).bind(None, None, None, **params)
        except TypeError as error:
            return f"do not fit {self.name}{inspect.signature(self.func)}: {error}"
        return None


class UnknownFunction(LookupError):
    """A name the registry does not hold (or holds as the other kind); str() is the sentence."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown function"


def _check_shape(name: str, func: object, kind: FunctionKind) -> AsyncFunction:
    if not inspect.iscoroutinefunction(func):
        raise TypeError(f"{name}: {kind.with_article} must be an async function, got {func!r}")
    # Three positional arguments; keyword parameters come from `function_params` and are checked
    # per rule by `params_problem`, so a required keyword is fine here.
    kinds = [p.kind for p in inspect.signature(func).parameters.values()]
    positional = sum(
        k in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for k in kinds
    )
    if positional < 3 and inspect.Parameter.VAR_POSITIONAL not in kinds:
        wanted = ", ".join(_POSITIONAL[kind])
        raise TypeError(f"{name}: {kind.with_article} must accept ({wanted}, **kwargs)")
    return cast(AsyncFunction, func)


# Decorated functions, by the module that defines them; a registry takes them when it loads the
# module (see the module docstring).
_DECLARED: dict[str, dict[str, RegisteredFunction]] = {}


def _check_passing(name: str, passing: object) -> AsyncFunction:
    if not inspect.iscoroutinefunction(passing):
        raise TypeError(f"{name} (passing form): must be an async function, got {passing!r}")
    return cast(AsyncFunction, passing)


def _declare(
    kind: FunctionKind,
    name: str | None,
    batch: AsyncFunction | None = None,
    members: AsyncFunction | None = None,
    passing: AsyncFunction | None = None,
) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        full_name = name or f"{func.__module__}.{func.__qualname__}"
        checked = _check_shape(full_name, func, kind)
        if batch is not None:
            _check_shape(f"{full_name} (batch form)", batch, kind)
        if members is not None:
            _check_shape(f"{full_name} (members form)", members, kind)
        if passing is not None:
            _check_passing(full_name, passing)
        entry = RegisteredFunction(full_name, kind, checked, batch, members, passing)
        _DECLARED.setdefault(func.__module__, {})[full_name] = entry
        setattr(func, _KIND_MARK, kind)
        return func

    return decorate


def achievement_function(
    name: str | None = None,
    *,
    batch: AsyncFunction | None = None,
    members: AsyncFunction | None = None,
    passing: AsyncFunction | None = None,
) -> Callable[[F], F]:
    """Declare an achievement function, registered as `name` (default: ``module.function``).

    `batch` is its optional set-based form for a population, `members` for a few named members,
    `passing` its optional "who passes" form (see the module docstring).
    """
    return _declare(FunctionKind.ACHIEVEMENT, name, batch, members, passing)


def completion_callback(name: str | None = None) -> Callable[[F], F]:
    """Declare a workflow callback, registered as `name` (default: ``module.function``)."""
    return _declare(FunctionKind.CALLBACK, name)


class FunctionRegistry:
    """Names -> callables. Built by `build_registry`; immutable in use, extended at startup."""

    def __init__(self) -> None:
        self._functions: dict[str, RegisteredFunction] = {}
        self.modules: list[str] = []

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    def __len__(self) -> int:
        return len(self._functions)

    def add(self, entry: RegisteredFunction) -> None:
        known = self._functions.get(entry.name)
        if known is not None and known.func is not entry.func:
            raise SettingsError(
                f"function name {entry.name!r} is registered twice "
                f"({known.func.__module__} and {entry.func.__module__})"
            )
        self._functions[entry.name] = entry

    def register(
        self,
        name: str,
        func: object,
        kind: FunctionKind,
        *,
        batch: object | None = None,
        members: object | None = None,
        passing: object | None = None,
    ) -> None:
        """Register a callable explicitly (tests, embedding applications)."""
        checked_batch = None if batch is None else _check_shape(f"{name} (batch form)", batch, kind)
        checked_members = (
            None if members is None else _check_shape(f"{name} (members form)", members, kind)
        )
        checked_passing = None if passing is None else _check_passing(name, passing)
        self.add(
            RegisteredFunction(
                name,
                kind,
                _check_shape(name, func, kind),
                checked_batch,
                checked_members,
                checked_passing,
            )
        )

    def load_module(self, module: str) -> list[str]:
        """Import `module` and register the functions it declares; return their names."""
        try:
            importlib.import_module(module)
        except Exception as error:
            raise SettingsError(
                f"REWARDS_FUNCTION_MODULES: cannot import {module!r}: {error}"
            ) from error
        declared = _DECLARED.get(module, {})
        for entry in declared.values():
            self.add(entry)
        if module not in self.modules:
            self.modules.append(module)
        return list(declared)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Register every entry point of `group` under its entry point name."""
        names = []
        for point in entry_points(group=group):
            try:
                func = point.load()
            except Exception as error:
                raise SettingsError(
                    f"entry point {point.name!r} ({point.value}) of {group} "
                    f"cannot be loaded: {error}"
                ) from error
            kind = getattr(func, _KIND_MARK, FunctionKind.ACHIEVEMENT)
            try:
                self.register(point.name, func, FunctionKind(kind))
            except TypeError as error:
                raise SettingsError(f"entry point {point.name!r} of {group}: {error}") from error
            names.append(point.name)
        return names

    def names(self, kind: FunctionKind | None = None) -> list[str]:
        return sorted(n for n, e in self._functions.items() if kind is None or e.kind is kind)

    def problem(self, name: str, kind: FunctionKind) -> str | None:
        """Why `name` cannot be used as a `kind`, or None when it can."""
        entry = self._functions.get(name)
        if entry is None:
            return f'"{name}" is not a registered {kind}'
        if entry.kind is not kind:
            return f'"{name}" is {entry.kind.with_article}, not {kind.with_article}'
        return None

    def get(self, name: str, kind: FunctionKind | None = None) -> RegisteredFunction:
        entry = self._functions.get(name)
        if entry is None or (kind is not None and entry.kind is not kind):
            raise UnknownFunction(self.problem(name, kind or FunctionKind.ACHIEVEMENT))
        return entry


def build_registry(
    *, function_modules: Iterable[str] = (), use_entry_points: bool = True
) -> FunctionRegistry:
    """Built-ins, then the deployment's modules, then entry points."""
    registry = FunctionRegistry()
    for module in (*BUILTIN_MODULES, *function_modules):
        registry.load_module(module)
    if use_entry_points:
        registry.load_entry_points()
    return registry


@lru_cache(maxsize=8)
def _cached(function_modules: tuple[str, ...]) -> FunctionRegistry:
    return build_registry(function_modules=function_modules)


def default_registry(environ: Mapping[str, str] | None = None) -> FunctionRegistry:
    """The registry for this process: built-ins, ``REWARDS_FUNCTION_MODULES`` and entry points.

    Read like `rewards.settings.load_settings` reads it (the process environment over
    ``env/.env``), but without validating the other settings, so checking a catalogue does not
    need a working database setting.
    """
    process = dict(os.environ if environ is None else environ)
    env = {**read_env_file(Path(process.get("REWARDS_ENV_FILE", "env/.env"))), **process}
    raw = env.get("REWARDS_FUNCTION_MODULES", "")
    modules = tuple(p.strip() for p in raw.replace(";", ",").split(",") if p.strip())
    return _cached(modules)
