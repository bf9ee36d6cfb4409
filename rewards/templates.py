"""Reward `message` templates: Jinja2 in a sandbox, with a fixed set of variables.

Catalogue authors write messages such as
``Congratulations {{user.display_name}}! You ranked #{{args.rank}}``. Templates come from files and
the API, so they are untrusted: they render in an immutable sandbox, and `check_template` refuses
at load time anything that reaches for Python internals (``_``-prefixed attributes, such as
``''.__class__.__mro__``) or names other than the documented ones (`user`, `args`, `env`, `reward`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from rewards.errors import TemplateRefused

VARIABLES = frozenset({"user", "args", "env", "reward"})
MAX_OUTPUT = 4000


class _Environment(ImmutableSandboxedEnvironment):
    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to {attribute!r} is not allowed in a message template")


_ENV = _Environment(autoescape=False, undefined=StrictUndefined, trim_blocks=True)


def _attribute_names(tree: nodes.Template) -> list[str]:
    names: list[str] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            names.append(node.attr)
        elif isinstance(node, nodes.Getitem):
            key = node.arg
            if isinstance(key, nodes.Const) and isinstance(key.value, str):
                names.append(key.value)
    return names


def check_template(source: str) -> None:
    """Raise `TemplateRefused` with a clear sentence if `source` is not a safe message template."""
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as problem:
        raise TemplateRefused(
            f"the message template has a syntax error on line {problem.lineno}: {problem.message}"
        ) from None
    for name in _attribute_names(tree):
        if name.startswith("_"):
            raise TemplateRefused(
                f"the message template reaches for {name!r}; names starting with '_' are Python "
                "internals and are not allowed"
            )
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in VARIABLES | assigned | {"loop"}:
            raise TemplateRefused(
                f"the message template uses {node.name!r}; the available variables are "
                + ", ".join(sorted(VARIABLES))
            )


def render(
    source: str,
    *,
    user: Mapping[str, Any],
    reward: Mapping[str, Any],
    env: Mapping[str, Any],
    args: Mapping[str, Any] | None = None,
) -> str:
    """Render a checked template; any failure becomes `TemplateRefused` with a readable reason."""
    check_template(source)
    try:
        text = _ENV.from_string(source).render(
            user=dict(user), reward=dict(reward), env=dict(env), args=dict(args or {})
        )
    except SecurityError as problem:
        raise TemplateRefused(f"the message template was refused: {problem}") from None
    except UndefinedError as problem:
        raise TemplateRefused(
            f"the message template uses a missing value: {problem.message}"
        ) from None
    except Exception as problem:
        raise TemplateRefused(f"the message template failed: {problem}") from None
    return text[:MAX_OUTPUT]
