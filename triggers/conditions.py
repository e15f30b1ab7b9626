r"""Declarative conditions on a JSON document: data that travels in trigger kwargs, never code.

Airflow's ``HttpSensor(response_check=...)`` and ``SqlSensor(success=...)`` take callables, and
a callable cannot be stored in a trigger row and rebuilt in a triggerer.  A waitwise condition
is plain JSON, parsed and checked when the DAG is parsed (:func:`parse_condition`) and
evaluated by a pure function (:meth:`Condition.holds`) that never raises, whatever the document.

The language::

    {"path": "$.status", "op": "==", "value": "ready"}
    {"path": "$.items[0].count", "op": ">=", "value": 100}
    {"path": "$.tags", "op": "exists"}
    {"all": [<condition>, ...]}      every one holds (at least one item)
    {"any": [<condition>, ...]}      at least one holds (at least one item)
    {"not": <condition>}             it does not hold

Paths are a small JSONPath subset: ``$`` (the whole document), ``.key`` (a name of letters,
digits, ``_`` and ``-``, not starting with a digit or ``-``), ``["key"]`` / ``['key']`` (any key;
``\\`` escapes a quote or a backslash) and ``[index]`` (an integer; negative counts from the
end).  A key step on a list, an index step on an object, a missing key or an index out of
range make the path *missing*.

Operators (``value`` is required by all but the last four, which take none):

========== ============================================================================
``==``      equal as JSON values (``1 == 1.0``; ``true`` is not ``1``)
``!=``      present and not equal
``<`` ...   ``<``, ``<=``, ``>``, ``>=``: both numbers, or both strings; otherwise false
``in``      equal to one of ``value`` (a list)
``not_in``  present and equal to none of ``value`` (a list)
``matches`` a string that ``value`` (a regular expression) matches *whole* (anchored);
            patterns are at most :data:`MAX_PATTERN` characters and subjects longer than
            :data:`MAX_SUBJECT` do not match
``exists``  the path is present (``null`` counts as present)
``not_exists``  the path is missing
``truthy``  present and not ``null``, ``false``, ``0``, ``""``, ``[]`` or ``{}``
``falsy``   missing, or one of those
========== ============================================================================

A missing path makes every operator false except ``not_exists`` and ``falsy``.  Limits keep a
condition small enough for a trigger row: at most :data:`MAX_NODES` nodes, nesting depth
:data:`MAX_DEPTH`, path length :data:`MAX_PATH_STEPS`.  Pure: stdlib only.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from waitwise.triggers.errors import PolicyConfigError

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_PATH_STEPS",
    "MAX_PATTERN",
    "MAX_SUBJECT",
    "AllOf",
    "AnyOf",
    "Compare",
    "Condition",
    "JsonPath",
    "Not",
    "Op",
    "check_json",
    "json_equal",
    "parse_condition",
    "parse_path",
]

JSON: TypeAlias = Any
"""A JSON value: ``None``, ``bool``, ``int``, finite ``float``, ``str``, list, str-keyed dict."""

MAX_NODES: Final = 64
MAX_DEPTH: Final = 8
MAX_PATH_STEPS: Final = 32
MAX_PATTERN: Final = 256
MAX_SUBJECT: Final = 10_000
MAX_VALUE_CHARS: Final = 4_096
"""The longest ``value`` (as JSON text) a comparison may carry."""


class Op(enum.StrEnum):
    """The comparison operators (see the module docstring for their meaning)."""

    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    NOT_IN = "not_in"
    MATCHES = "matches"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"
    TRUTHY = "truthy"
    FALSY = "falsy"


_UNARY: Final = frozenset({Op.EXISTS, Op.NOT_EXISTS, Op.TRUTHY, Op.FALSY})
_ORDERED: Final = frozenset({Op.LT, Op.LE, Op.GT, Op.GE})
_ON_MISSING: Final = frozenset({Op.NOT_EXISTS, Op.FALSY})


class _Missing:
    """The value of a path that leads nowhere (distinct from JSON ``null``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

Step: TypeAlias = str | int
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INDEX: Final = re.compile(r"\[(-?\d{1,9})\]")


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A parsed path: the steps from the document root (keys and list indexes)."""

    steps: tuple[Step, ...] = ()

    def select(self, document: JSON) -> JSON:
        """Return the value at this path in ``document``, or :data:`MISSING`."""
        value = document
        for step in self.steps:
            if isinstance(step, str):
                if not isinstance(value, Mapping) or step not in value:
                    return MISSING
                value = value[step]
            else:
                if not isinstance(value, list) or not -len(value) <= step < len(value):
                    return MISSING
                value = value[step]
        return value

    def __str__(self) -> str:
        parts = ["$"]
        for step in self.steps:
            if isinstance(step, int):
                parts.append(f"[{step}]")
            elif _NAME.fullmatch(step):
                parts.append(f".{step}")
            else:
                escaped = step.replace("\\", "\\\\").replace('"', '\\"')
                parts.append(f'["{escaped}"]')
        return "".join(parts)


def parse_path(text: object, where: str = "path") -> JsonPath:
    """Return the :class:`JsonPath` that ``text`` spells (see the module docstring).

    :raises PolicyConfigError: naming ``where``, the path and the position of the first bad
        character.
    """
    if not isinstance(text, str) or not text.startswith("$"):
        raise PolicyConfigError(f"{where} must be a string starting with '$', got {text!r}")
    steps: list[Step] = []
    at = 1
    while at < len(text):
        if len(steps) >= MAX_PATH_STEPS:
            raise PolicyConfigError(f"{where} {text!r} has more than {MAX_PATH_STEPS} steps")
        if text[at] == ".":
            name = _NAME.match(text, at + 1)
            if name is None:
                raise _bad_path(where, text, at + 1, "a name after '.'")
            steps.append(name.group())
            at = name.end()
        elif text.startswith("[", at):
            index = _INDEX.match(text, at)
            if index is not None:
                steps.append(int(index.group(1)))
                at = index.end()
            else:
                key, at = _quoted_key(where, text, at + 1)
                steps.append(key)
        else:
            raise _bad_path(where, text, at, "'.' or '['")
    return JsonPath(tuple(steps))


def _quoted_key(where: str, text: str, at: int) -> tuple[str, int]:
    """Read ``"key"]`` or ``'key']`` from ``at``; return the key and the position after ``]``."""
    if at >= len(text) or text[at] not in "\"'":
        raise _bad_path(where, text, at, "an integer index or a quoted key after '['")
    quote, chars, at = text[at], [], at + 1
    while at < len(text) and text[at] != quote:
        if text[at] == "\\":
            if at + 1 >= len(text) or text[at + 1] not in (quote, "\\"):
                raise _bad_path(where, text, at, f"'\\\\' or '\\{quote}' (the only escapes)")
            at += 1
        chars.append(text[at])
        at += 1
    if at >= len(text) or not text.startswith("]", at + 1):
        raise _bad_path(where, text, at, f"the closing {quote}]")
    return "".join(chars), at + 2


def _bad_path(where: str, text: str, at: int, expected: str) -> PolicyConfigError:
    return PolicyConfigError(f"{where} {text!r}: expected {expected} at position {at}")


@dataclass(frozen=True, slots=True)
class Compare:
    """One comparison of the value at ``path`` with ``value`` (see :class:`Op`).

    Build it with :func:`parse_condition`, which checks that ``value`` suits ``op``.
    """

    path: JsonPath
    op: Op
    value: JSON = None

    def holds(self, document: JSON) -> bool:
        """Return whether the comparison holds for ``document`` (never raises)."""
        return _compare(self.op, self.path.select(document), self.value)

    def matched(self, document: JSON) -> dict[str, JSON]:
        """Return ``{path: value}`` where this comparison holds and its path is present."""
        found = self.path.select(document)
        if found is MISSING or not _compare(self.op, found, self.value):
            return {}
        return {str(self.path): found}

    def to_config(self) -> dict[str, JSON]:
        """Return the plain-JSON form :func:`parse_condition` reads back."""
        config: dict[str, JSON] = {"path": str(self.path), "op": self.op.value}
        if self.op not in _UNARY:
            config["value"] = self.value
        return config

    def __str__(self) -> str:
        if self.op in _UNARY:
            return f"{self.path} {self.op.value}"
        return f"{self.path} {self.op.value} {json.dumps(self.value, ensure_ascii=False)}"


@dataclass(frozen=True, slots=True)
class AllOf:
    """Holds when every condition in ``items`` holds."""

    items: tuple[Condition, ...]

    def holds(self, document: JSON) -> bool:
        """Return whether every item holds for ``document``."""
        return all(item.holds(document) for item in self.items)

    def matched(self, document: JSON) -> dict[str, JSON]:
        """Return the matched values of the items (all of them, when this holds)."""
        return _merged(self.items, document) if self.holds(document) else {}

    def to_config(self) -> dict[str, JSON]:
        """Return ``{"all": [...]}``."""
        return {"all": [item.to_config() for item in self.items]}

    def __str__(self) -> str:
        return "(" + " and ".join(map(str, self.items)) + ")"


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Holds when at least one condition in ``items`` holds."""

    items: tuple[Condition, ...]

    def holds(self, document: JSON) -> bool:
        """Return whether at least one item holds for ``document``."""
        return any(item.holds(document) for item in self.items)

    def matched(self, document: JSON) -> dict[str, JSON]:
        """Return the matched values of the items that hold."""
        return _merged(self.items, document)

    def to_config(self) -> dict[str, JSON]:
        """Return ``{"any": [...]}``."""
        return {"any": [item.to_config() for item in self.items]}

    def __str__(self) -> str:
        return "(" + " or ".join(map(str, self.items)) + ")"


@dataclass(frozen=True, slots=True)
class Not:
    """Holds when ``item`` does not."""

    item: Condition

    def holds(self, document: JSON) -> bool:
        """Return whether ``item`` does not hold for ``document``."""
        return not self.item.holds(document)

    def matched(self, document: JSON) -> dict[str, JSON]:
        """Return nothing: a negation matches no value."""
        return {}

    def to_config(self) -> dict[str, JSON]:
        """Return ``{"not": ...}``."""
        return {"not": self.item.to_config()}

    def __str__(self) -> str:
        return f"not {self.item}"


Condition: TypeAlias = Compare | AllOf | AnyOf | Not
"""A parsed condition: ``holds(document)``, ``matched(document)``, ``to_config()``."""


def _merged(items: Sequence[Condition], document: JSON) -> dict[str, JSON]:
    out: dict[str, JSON] = {}
    for item in items:
        out.update(item.matched(document))
    return out


def json_equal(a: JSON, b: JSON) -> bool:
    """Return whether ``a`` and ``b`` are equal as JSON values (a boolean is not a number)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _number(value: JSON) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(op: Op, found: JSON, value: JSON) -> bool:
    if found is MISSING:
        return op in _ON_MISSING
    if op in _ORDERED:
        return _ordered(op, found, value)
    return _TESTS[op](found, value)


def _matches(found: JSON, value: JSON) -> bool:
    return (
        isinstance(found, str)
        and len(found) <= MAX_SUBJECT
        and _pattern(value).fullmatch(found) is not None
    )


_TESTS: Final[Mapping[Op, Callable[[JSON, JSON], bool]]] = {
    Op.EQ: json_equal,
    Op.NE: lambda found, value: not json_equal(found, value),
    Op.IN: lambda found, value: any(json_equal(found, item) for item in value),
    Op.NOT_IN: lambda found, value: not any(json_equal(found, item) for item in value),
    Op.MATCHES: _matches,
    Op.EXISTS: lambda found, value: True,
    Op.NOT_EXISTS: lambda found, value: False,
    Op.TRUTHY: lambda found, value: bool(found),
    Op.FALSY: lambda found, value: not found,
}
"""How each operator but the ordering ones tests a present value (see the module docstring)."""


def _ordered(op: Op, found: JSON, value: JSON) -> bool:
    comparable = (_number(found) and _number(value)) or (
        isinstance(found, str) and isinstance(value, str)
    )
    if not comparable:
        return False
    if op is Op.LT:
        return bool(found < value)
    if op is Op.LE:
        return bool(found <= value)
    if op is Op.GT:
        return bool(found > value)
    return bool(found >= value)


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _pattern(text: str) -> re.Pattern[str]:
    """Return the compiled ``text`` (checked at parse time; cached, bounded)."""
    compiled = _PATTERNS.get(text)
    if compiled is None:
        compiled = re.compile(text)
        if len(_PATTERNS) < 1024:
            _PATTERNS[text] = compiled
    return compiled


def check_json(value: object, where: str, *, depth: int = 0) -> JSON:
    """Return ``value`` if it is plain JSON (finite numbers, str keys), else raise naming it.

    Tuples are taken as lists (returned as lists).

    :raises PolicyConfigError: naming ``where`` and the offending part.
    """
    if depth > 32:
        raise PolicyConfigError(f"{where} nests deeper than 32 levels")
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, list | tuple):
        return [check_json(v, f"{where}[{i}]", depth=depth + 1) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return _check_object(value, where, depth)
    what = "a finite number" if isinstance(value, float) else "a JSON value"
    raise PolicyConfigError(f"{where} must be {what}, got {type(value).__name__} {value!r}")


def _check_object(value: Mapping[Any, Any], where: str, depth: int) -> dict[str, JSON]:
    out = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise PolicyConfigError(f"{where} keys must be strings, got {key!r}")
        out[key] = check_json(item, f"{where}[{key!r}]", depth=depth + 1)
    return out


def parse_condition(config: object, where: str = "condition") -> Condition:
    """Return the :class:`Condition` that ``config`` describes (the inverse of ``to_config``).

    A :class:`Condition` already parsed is returned as it is.

    :param where: how error messages name the condition (e.g. ``"condition"``).
    :raises PolicyConfigError: naming the bad part (``condition.all[1].op``) and its value.
    """
    if isinstance(config, Compare | AllOf | AnyOf | Not):
        config = config.to_config()  # re-checked: a hand-built object may break the rules
    budget = [MAX_NODES]
    return _parse(config, where, 1, budget)


def _parse(config: object, where: str, depth: int, budget: list[int]) -> Condition:
    budget[0] -= 1
    if budget[0] < 0:
        raise PolicyConfigError(f"{where}: the condition has more than {MAX_NODES} nodes")
    if depth > MAX_DEPTH:
        raise PolicyConfigError(f"{where}: conditions nest deeper than {MAX_DEPTH} levels")
    if not isinstance(config, Mapping):
        raise PolicyConfigError(f"{where} must be a mapping, got {config!r}")
    keys = set(config)
    for name, build in (("all", AllOf), ("any", AnyOf)):
        if name in keys:
            _only(where, keys, {name})
            return build(_parse_items(config[name], f"{where}.{name}", depth, budget))
    if "not" in keys:
        _only(where, keys, {"not"})
        return Not(_parse(config["not"], f"{where}.not", depth + 1, budget))
    if "path" in keys or "op" in keys:
        return _parse_compare(config, where, keys)
    raise PolicyConfigError(
        f"{where} must have 'path' and 'op', or one of 'all', 'any', 'not'; got {dict(config)!r}"
    )


def _parse_items(items: object, where: str, depth: int, budget: list[int]) -> tuple[Condition, ...]:
    if not isinstance(items, list | tuple) or not items:
        raise PolicyConfigError(f"{where} must be a non-empty list, got {items!r}")
    return tuple(_parse(item, f"{where}[{i}]", depth + 1, budget) for i, item in enumerate(items))


def _only(where: str, keys: set[Any], allowed: set[str]) -> None:
    extra = sorted(map(str, keys - allowed))
    if extra:
        raise PolicyConfigError(f"{where}: unexpected key(s) {extra} beside {sorted(allowed)}")


def _parse_compare(config: Mapping[str, Any], where: str, keys: set[Any]) -> Compare:
    _only(where, keys, {"path", "op", "value"})
    if "path" not in keys or "op" not in keys:
        raise PolicyConfigError(f"{where} needs both 'path' and 'op', got {dict(config)!r}")
    path = parse_path(config["path"], f"{where}.path")
    try:
        op = Op(config["op"])
    except ValueError:
        known = ", ".join(o.value for o in Op)
        raise PolicyConfigError(
            f"{where}.op must be one of {known}; got {config['op']!r}"
        ) from None
    if op in _UNARY:
        if "value" in keys:
            raise PolicyConfigError(f"{where}: op {op.value!r} takes no 'value'")
        return Compare(path, op)
    if "value" not in keys:
        raise PolicyConfigError(f"{where}: op {op.value!r} needs a 'value'")
    value = check_json(config["value"], f"{where}.value")
    if len(json.dumps(value)) > MAX_VALUE_CHARS:
        raise PolicyConfigError(f"{where}.value is longer than {MAX_VALUE_CHARS} characters")
    _check_value(op, value, f"{where}.value")
    return Compare(path, op, value)


def _check_value(op: Op, value: JSON, where: str) -> None:
    if op in _ORDERED and not (_number(value) or isinstance(value, str)):
        raise PolicyConfigError(
            f"{where} for {op.value!r} must be a number or a string, got {value!r}"
        )
    if op in (Op.IN, Op.NOT_IN) and not isinstance(value, list):
        raise PolicyConfigError(f"{where} for {op.value!r} must be a list, got {value!r}")
    if op is Op.MATCHES:
        if not isinstance(value, str) or len(value) > MAX_PATTERN:
            raise PolicyConfigError(
                f"{where} for 'matches' must be a regular expression of at most "
                f"{MAX_PATTERN} characters, got {value!r}"
            )
        try:
            _pattern(value)
        except re.error as exc:
            raise PolicyConfigError(f"{where}: bad regular expression {value!r}: {exc}") from None
