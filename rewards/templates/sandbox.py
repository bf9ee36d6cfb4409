"""The sandbox message templates render in: Jinja's immutable sandbox, with every way a short
template could make a lot of work or a lot of memory bounded.

Jinja's own sandbox stops templates reaching Python internals; it does not stop them being
expensive. Here:

- **Operators** (`intercepted_binops`): ``**`` and ``*`` on integers are refused before they run
  when the result would exceed `MAX_INT_BITS` (one big-integer C call holds the GIL for seconds:
  ``9 ** (9 ** 7)`` took 18 s); ``*`` on a text or list, and ``%`` formatting, are refused when
  the result would exceed `MAX_VALUE`.
- **Amplifying calls**: filters and ``str`` methods whose arguments set the size of the result
  (``center``, ``indent``, ``replace``, ``join``, ``format``, ``batch``, ``round``, ...) are
  checked before they run; `range` is bounded by `MAX_RANGE`.
- **Built values**: the template is rewritten after parsing so that every value it builds
  (``~``, ``+``, filters, calls, list and dict literals) is measured (`weight`) against
  `MAX_VALUE`, every ``for`` loop checks the deadline on each item, and every piece of text it
  writes (``{% set %}`` blocks too) counts against `MAX_VALUE`.
- **Time**: `Limits` holds the running render's deadline (per thread); the sandbox checks it on
  every attribute, item, call, operator, loop item and piece of output, so even a pure-Python loop
  with no output stops at the deadline instead of spinning. The deadline is on the render
  thread's own CPU time (`time.thread_time`): what a runaway template spends is CPU, while a
  busy machine or other threads holding the GIL must not make an ordinary message fail (a
  catalogue load refused a one-line message under load when this was wall time). Garbage
  collections that run in the render thread are taken off the clock (`_collection_phase`): a
  full collection walks every object of the process, which in a large process is hundreds of
  milliseconds the template did not spend (a one-line message was refused in CI that way); the
  collections a template itself can cause are bounded by the size limits.

The rewrite uses filters whose names a template cannot write (they contain ``:``), so a template
can neither call nor shadow them.
"""

from __future__ import annotations

import gc
import math
import re
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from typing import Any

from jinja2 import StrictUndefined, nodes, pass_context, pass_environment, pass_eval_context
from jinja2 import filters as builtin
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_OUTPUT = 4000
"""Characters a rendered message may have; rendering stops as soon as the output passes it."""
MAX_VALUE = 4 * MAX_OUTPUT
"""Characters (or items) of any value a template builds, and of all the text it writes
(``{% set %}`` blocks included)."""
MAX_INT_BITS = 4096
"""Bits of an integer that ``**`` or ``*`` may produce (about 1,230 decimal digits)."""
MAX_RANGE = 1000
"""Items of a ``range``."""
TIME_LIMIT = 0.2
"""Seconds one render may take."""
MAX_WORK = 1_000_000
"""Characters that the size-setting operations of one render (``*``, widths, ``replace``,
``join``, ...) may build in all, however many times a loop or ``|map`` repeats them; also the
bound of a single filter whose size is only estimated from above (wordwrap, urlize, tojson,
pprint), whose result is then measured."""
MAX_ROUND_DIGITS = 100
"""Digits ``round`` may keep (``round(5, -10**9)`` computes ``10**(10**9)``)."""

CHECKED = "rewards:checked"
LOOPED = "rewards:looped"
WRITTEN = "rewards:written"


class Overrun(Exception):
    """A render went past a limit. `kind`: "time", "output", "size" or "refused"."""

    def __init__(self, kind: str, detail: str = "", limit: int = 0) -> None:
        super().__init__(detail or kind)
        self.kind = kind
        self.detail = detail
        self.limit = limit


class Limits(threading.local):
    """The render running in this thread: its deadline and the text it has written so far."""

    deadline: float | None = None
    written: int = 0
    built: int = 0
    collecting_since: float | None = None

    def start(self, seconds: float) -> None:
        self.deadline = time.thread_time() + seconds
        self.written = 0
        self.built = 0
        self.collecting_since = None

    def stop(self) -> None:
        self.deadline = None
        self.written = 0
        self.built = 0
        self.collecting_since = None


LIMITS = Limits()


def _collection_phase(phase: str, info: dict[str, int]) -> None:
    """Move the running render's deadline on by the CPU time a garbage collection took in its
    thread (`gc.callbacks` run in the thread that triggered the collection)."""
    if LIMITS.deadline is None:
        return
    if phase == "start":
        LIMITS.collecting_since = time.thread_time()
    elif LIMITS.collecting_since is not None:
        LIMITS.deadline += time.thread_time() - LIMITS.collecting_since
        LIMITS.collecting_since = None


gc.callbacks.append(_collection_phase)


def tick() -> None:
    """Raise `Overrun("time")` once the running render is past its deadline."""
    deadline = LIMITS.deadline
    if deadline is not None and time.thread_time() > deadline:
        raise Overrun("time")


# --- sizes ---------------------------------------------------------------------------------


def weight(value: object, limit: int = MAX_VALUE) -> int:
    """About how many characters `value` prints as: the length of a text, the items of a list,
    tuple, set or dict (nested ones counted each time they appear, as ``repr`` prints them),
    the digits of a number. Stops counting once past `limit` (then returns more than `limit`)."""
    try:
        return _weight(value, limit, {})
    except RecursionError:
        return limit + 1


def _weight(value: object, limit: int, seen: dict[int, int]) -> int:
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    if isinstance(value, range):
        return len(value)
    if isinstance(value, list | tuple | set | frozenset | dict):
        key = id(value)
        if key in seen:
            return seen[key]
        seen[key] = limit + 1  # a structure that contains itself is too big
        total = 1
        items: Iterable[Any] = value.items() if isinstance(value, dict) else value
        for item in items:
            total += _weight(item, limit - total, seen) + 1
            if total > limit:
                break
        seen[key] = total
        return total
    return 1


def _depth(value: object, limit: int = 64) -> int:
    """How deeply lists, tuples and dicts nest in `value` (counting stops at `limit`)."""
    if limit <= 0 or not isinstance(value, list | tuple | dict):
        return 0
    items: Iterable[Any] = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(item, limit - 1) for item in items), default=0)


def _refuse_size(what: str, size: int, limit: int = MAX_VALUE) -> None:
    """Refuse an operation that would build `size` characters: more than `limit`, or more than
    `MAX_WORK` with what the render's earlier operations built (``items|map('center', 16000)``
    stays under the limit each time)."""
    if size > limit:
        raise Overrun("size", f"{what} would build {size:,}", limit)
    if LIMITS.deadline is not None:
        LIMITS.built += max(size, 0)
        if LIMITS.built > MAX_WORK:
            raise Overrun("size", "what its repetitions, widths and joins build in all", MAX_WORK)


def checked(value: Any) -> Any:
    """A value the template built: refused when it weighs more than `MAX_VALUE`."""
    tick()
    size = len(value) if type(value) is str else weight(value)
    if size > MAX_VALUE:
        raise Overrun("size", "a value it builds is longer", MAX_VALUE)
    return value


def ticking(iterable: Iterable[Any]) -> Iterator[Any]:
    """`iterable`, checking the deadline before each item."""
    for item in iterable:
        tick()
        yield item


# --- operators -----------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_power(base: Any, exponent: Any) -> None:
    if not (_is_int(base) and _is_int(exponent)) or exponent <= 1 or abs(base) <= 1:
        return
    bits = exponent * math.log2(abs(base))
    if bits > MAX_INT_BITS:
        raise Overrun(
            "refused",
            f"{_short(base)} ** {_short(exponent)} would be a number of about {bits:,.0f} bits "
            f"(at most {MAX_INT_BITS:,})",
        )


def _check_product(left: Any, right: Any) -> None:
    if _is_int(left) and _is_int(right):
        bits = left.bit_length() + right.bit_length()
        if bits > MAX_INT_BITS:
            raise Overrun(
                "refused",
                f"{_short(left)} * {_short(right)} would be a number of up to {bits:,} bits "
                f"(at most {MAX_INT_BITS:,})",
            )
        return
    for sequence, count in ((left, right), (right, left)):
        if isinstance(count, int) and isinstance(sequence, str | bytes | list | tuple):
            if count > 0:
                what = f"{type(sequence).__name__} * {count}"
                _refuse_size(what, weight(sequence) * count)
            return


# printf-style conversion specifiers: %[(key)][flags][width][.precision][length]type
_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?[a-zA-Z%]")


def check_percent(template: str | bytes) -> None:
    """Refuse printf-style widths and precisions above `MAX_VALUE` (``'%999999999d' % 1``)."""
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    for match in _PERCENT.finditer(text):
        for part in match.groups():
            if part == "*":
                raise Overrun("refused", "'*' widths in % formatting are not allowed")
            if part:
                _refuse_size(f"the % width {match.group(0)!r}", int(part))


def check_format(template: str) -> None:
    """Refuse ``str.format`` widths above `MAX_VALUE` and widths taken from fields."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return  # str.format raises the same error itself
    for _literal, _field, spec, _conversion in parsed:
        if not spec:
            continue
        if "{" in spec:
            raise Overrun("refused", "format widths taken from fields are not allowed")
        for digits in re.findall(r"\d+", spec):
            _refuse_size(f"the format width {spec!r}", int(digits))


def _check_modulo(left: Any, _right: Any) -> None:
    if isinstance(left, str | bytes):
        check_percent(left)


def _short(number: int) -> str:
    return str(number) if number.bit_length() < 64 else f"a {number.bit_length()}-bit number"


# --- str / bytes / int methods --------------------------------------------------------------


def _argument(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name)


def _check_replace(text: Any, old: Any, new: Any, count: Any) -> None:
    if type(text) not in (str, bytes) or type(old) is not type(text) or type(new) is not type(text):
        return
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    _refuse_size("replace", len(text) + found * (len(new) - len(old)))


def _check_method(function: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    owner = getattr(function, "__self__", None)
    name = getattr(function, "__name__", "")
    if isinstance(owner, str | bytes):
        if name in ("center", "ljust", "rjust", "zfill"):
            width = _argument(args, kwargs, 0, "width")
            if isinstance(width, int):
                _refuse_size(name, width)
        elif name == "expandtabs":
            size = _argument(args, kwargs, 0, "tabsize")
            tab = "\t" if isinstance(owner, str) else b"\t"
            if isinstance(size, int):
                _refuse_size(name, len(owner) + owner.count(tab) * size)  # type: ignore[arg-type]
        elif name == "replace":
            if len(args) >= 2:
                _check_replace(owner, args[0], args[1], _argument(args, kwargs, 2, "count"))
        elif name == "join":
            items = _argument(args, kwargs, 0, "iterable")
            if isinstance(items, Sized):
                _refuse_size(name, max(len(items) - 1, 0) * len(owner) + weight(items))
        elif name == "translate":
            table = _argument(args, kwargs, 0, "table")
            if isinstance(table, Mapping):
                longest = max((weight(v) for v in table.values()), default=1)
                _refuse_size(name, len(owner) * longest)
    elif _is_int(owner) and name == "to_bytes":
        length = _argument(args, kwargs, 0, "length")
        if isinstance(length, int):
            _refuse_size(name, length)


# --- filters -------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _center(value: Any, width: Any = 80) -> str:
    tick()
    if isinstance(width, int):
        _refuse_size("center", width)
    return builtin.do_center(value, width)


def _indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> str:
    tick()
    text = _text(s)
    unit = width if isinstance(width, int) else len(_text(width))
    _refuse_size("indent", len(text) + max(unit, 0) * (text.count("\n") + 1))
    return builtin.do_indent(s, width, first, blank)


@pass_eval_context
def _replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> str:
    tick()
    _check_replace(_text(s), _text(old), _text(new), count)
    return builtin.do_replace(eval_ctx, s, old, new, count)


@pass_eval_context
def _join(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> str:
    tick()
    items: Any = value if isinstance(value, Sized) else list(ticking(value))
    _refuse_size("join", max(len(items) - 1, 0) * len(_text(d)) + weight(items))
    return builtin.sync_do_join(eval_ctx, items, d, attribute)


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    tick()
    check_percent(_text(value))
    return builtin.do_format(value, *args, **kwargs)


def _batch(value: Any, linecount: Any, fill_with: Any = None) -> Iterator[list[Any]]:
    tick()
    if isinstance(linecount, int):
        _refuse_size("batch", linecount)
    return builtin.do_batch(ticking(value), linecount, fill_with)


def _slice(value: Any, slices: Any, fill_with: Any = None) -> Iterator[Any]:
    tick()
    if isinstance(slices, int):
        _refuse_size("slice", slices)
    return builtin.sync_do_slice(value, slices, fill_with)


@pass_environment
def _sum(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
    tick()
    if not isinstance(start, int | float):
        raise Overrun("refused", "sum only adds numbers")
    return builtin.sync_do_sum(environment, ticking(iterable), attribute, start)


def _round(value: Any, precision: Any = 0, method: str = "common") -> float:
    tick()
    if isinstance(precision, int) and abs(precision) > MAX_ROUND_DIGITS:
        raise Overrun("refused", f"round keeps at most {MAX_ROUND_DIGITS} digits")
    return builtin.do_round(value, precision, method)  # type: ignore[arg-type]


@pass_environment
def _wordwrap(
    environment: Any,
    s: Any,
    width: Any = 79,
    break_long_words: bool = True,
    wrapstring: Any = None,
    break_on_hyphens: bool = True,
) -> str:
    tick()
    text = _text(s)
    joint = environment.newline_sequence if wrapstring is None else _text(wrapstring)
    _refuse_size("wordwrap", len(text) * (1 + len(joint)), MAX_WORK)
    return builtin.do_wordwrap(
        environment, s, width, break_long_words, wrapstring, break_on_hyphens
    )


@pass_eval_context
def _urlize(
    eval_ctx: Any,
    value: Any,
    trim_url_limit: Any = None,
    nofollow: bool = False,
    target: Any = None,
    rel: Any = None,
    extra_schemes: Any = None,
) -> str:
    tick()
    text = _text(value)
    extra = len(_text(target or "")) + len(_text(rel or "")) + 60
    _refuse_size("urlize", 3 * len(text) + len(text.split()) * extra, MAX_WORK)
    return builtin.do_urlize(eval_ctx, value, trim_url_limit, nofollow, target, rel, extra_schemes)


@pass_eval_context
def _tojson(eval_ctx: Any, value: Any, indent: Any = None) -> Any:
    tick()
    unit = indent if isinstance(indent, int) else len(_text(indent or ""))
    _refuse_size(
        "tojson", 8 * weight(value, MAX_WORK) * (1 + _depth(value) * max(unit, 0)), MAX_WORK
    )
    return builtin.do_tojson(eval_ctx, value, indent)


def _pprint(value: Any) -> str:
    tick()
    _refuse_size("pprint", 8 * weight(value, MAX_WORK) * (1 + _depth(value)), MAX_WORK)
    return builtin.do_pprint(value)


def _range(*args: Any) -> range:
    tick()
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise Overrun("refused", f"a range of {len(numbers):,} items (at most {MAX_RANGE:,})")
    return numbers


@pass_context
def _checked_filter(context: Context, value: Any) -> Any:
    return checked(value)


@pass_context
def _looped_filter(context: Context, iterable: Any) -> Iterator[Any]:
    tick()
    return ticking(iterable)


@pass_context
def _written_filter(context: Context, value: Any) -> str:
    text = _text(value)
    LIMITS.written += len(text)
    if LIMITS.written > MAX_VALUE:
        raise Overrun("size", "the text it writes, {% set %} blocks included", MAX_VALUE)
    tick()
    return text


_GUARDED_FILTERS: dict[str, Callable[..., Any]] = {
    "center": _center,
    "indent": _indent,
    "replace": _replace,
    "join": _join,
    "format": _format,
    "batch": _batch,
    "slice": _slice,
    "sum": _sum,
    "round": _round,
    "wordwrap": _wordwrap,
    "urlize": _urlize,
    "tojson": _tojson,
    "pprint": _pprint,
    CHECKED: _checked_filter,
    LOOPED: _looped_filter,
    WRITTEN: _written_filter,
}


# --- the rewrite ---------------------------------------------------------------------------

_BUILT = (
    nodes.Filter,
    nodes.Call,
    nodes.Concat,
    nodes.List,
    nodes.Tuple,
    nodes.Dict,
    nodes.Add,
    nodes.Mul,
    nodes.Mod,
    nodes.Pow,
)


def _wrap(node: nodes.Node, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class _Bounds(NodeTransformer):
    """Measures what the template builds, ticks its loops and counts what it writes."""

    def generic_visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> nodes.Node:
        node = super().generic_visit(node, *args, **kwargs)
        if not isinstance(node, _BUILT):
            return node
        if isinstance(node, nodes.Tuple) and node.ctx != "load":
            return node  # an assignment target
        if isinstance(node, nodes.Filter) and node.node is None:
            return node  # the filter of a {% filter %} or {% set %} block: applied to its text
        return _wrap(node, CHECKED)

    def visit_For(self, node: nodes.For, *args: Any, **kwargs: Any) -> nodes.Node:
        node = super().generic_visit(node, *args, **kwargs)  # type: ignore[assignment]
        node.iter = _wrap(node.iter, LOOPED)
        return node

    def visit_Output(self, node: nodes.Output, *args: Any, **kwargs: Any) -> nodes.Node:
        node = super().generic_visit(node, *args, **kwargs)  # type: ignore[assignment]
        node.nodes = [
            _wrap(
                nodes.Const(child.data, lineno=child.lineno)
                if isinstance(child, nodes.TemplateData)
                else child,
                WRITTEN,
            )
            for child in node.nodes
        ]
        return node


class MessageEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with the bounds above."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(autoescape=False, undefined=StrictUndefined, trim_blocks=True)
        self.filters.update(_GUARDED_FILTERS)
        self.globals["range"] = _range
        self.globals.pop("lipsum", None)

    def bounded(self, tree: nodes.Template) -> nodes.Template:
        """`tree` rewritten so that what it builds, loops over and writes is checked."""
        result = _Bounds().visit(tree)
        assert isinstance(result, nodes.Template)
        result.set_environment(self)
        return result

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to {attribute!r} is not allowed in a message template")

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        tick()
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            _check_product(left, right)
        elif operator == "%":
            _check_modulo(left, right)
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        tick()
        return super().getitem(obj, argument)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        tick()
        _check_method(obj, args, kwargs)
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        template = value.__self__

        def bounded_format(*args: Any, **kwargs: Any) -> str:
            tick()
            check_format(template)
            return wrapper(*args, **kwargs)

        return bounded_format
