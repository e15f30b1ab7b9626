"""What a SQL condition wait decides without touching a database (pure: stdlib only).

- :class:`Condition`: the declarative check applied to the first cell of the first row.
  Conditions are data, never callables (a callable cannot travel in trigger kwargs)::

      None / {"op": "truthy"}          bool(cell), as Airflow's SqlSensor (the default)
      {"op": "is_null"}                cell is NULL (or no row)
      {"op": "not_null"}               cell is not NULL
      {"op": ">=", "value": 100}       cell >= 100; also ==, !=, <, <=, >
                                       (NULL or no row: not met, as in SQL)

  A comparison needs a cell of the value's type (numbers with numbers, text with text,
  booleans with booleans); anything else ends the wait with a message saying to compare
  in SQL instead (``SELECT max(day) >= %(day)s``).
- Argument checks (:func:`check_sql`, :func:`check_parameters`) raising
  :class:`~waitwise.triggers.errors.PolicyConfigError` naming the argument and the value.
- :func:`classify_error`: whether a database error is transient (retried with backoff,
  counted by the breaker) or permanent (ends the wait), by SQLSTATE first and by the PEP 249
  exception class second (see :data:`TRANSIENT_SQLSTATE_CLASSES`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from waitwise.triggers.errors import CheckError, PolicyConfigError

__all__ = [
    "BINARY_OPS",
    "CONDITION_OPS",
    "PERMANENT_SQLSTATE_CLASSES",
    "TRANSIENT_SQLSTATE_CLASSES",
    "UNARY_OPS",
    "Condition",
    "ErrorClass",
    "SqlCheckError",
    "Verdict",
    "check_parameters",
    "check_sql",
    "classify_error",
    "count_statements",
    "describe_error",
    "first_cell",
    "json_cell",
    "sqlstate_of",
]

JsonScalar = str | int | float | bool | None

_COMPARE: Final[Mapping[str, Callable[[Any, Any], Any]]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
BINARY_OPS: Final = tuple(_COMPARE)
UNARY_OPS: Final = ("truthy", "is_null", "not_null")
CONDITION_OPS: Final = (*BINARY_OPS, *UNARY_OPS)


SqlCheckError = CheckError
"""The check cannot succeed as written: a permanent error that ends the wait.

Raised for permanent database errors (syntax, undefined table, permission denied, ...) and
for a condition that cannot compare the cell it got (:class:`~waitwise.triggers.errors.CheckError`).
"""


def _value_kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | decimal.Decimal):
        return "number"
    if isinstance(value, str):
        return "text"
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class Condition:
    """A check on the first cell: ``op`` and, for a comparison, the ``value`` to compare with.

    :param op: one of :data:`CONDITION_OPS`.
    :param value: a JSON scalar (not ``None``) for the comparisons, absent for the others.
    """

    op: str = "truthy"
    value: JsonScalar = None

    def __post_init__(self) -> None:
        if self.op not in CONDITION_OPS:
            raise PolicyConfigError(
                f"condition op must be one of {', '.join(CONDITION_OPS)}, got {self.op!r}"
            )
        if self.op in UNARY_OPS and self.value is not None:
            raise PolicyConfigError(
                f"condition {self.op!r} takes no value, got value={self.value!r}"
            )
        if self.op in BINARY_OPS:
            ok = isinstance(self.value, str | int | float) and not (
                isinstance(self.value, float) and not math.isfinite(self.value)
            )
            if not ok:
                raise PolicyConfigError(
                    f"condition {self.op!r} needs a value (a number, string or boolean), "
                    f"got value={self.value!r}"
                )

    @classmethod
    def from_config(cls, config: object) -> Condition:
        """Return the condition ``config`` describes (``None``: truthy).

        :raises PolicyConfigError: naming ``condition`` and the offending value or key.
        """
        if config is None:
            return cls()
        if isinstance(config, Condition):
            return config
        if not isinstance(config, Mapping):
            raise PolicyConfigError(
                f"condition must be a mapping like {{'op': '>=', 'value': 100}} or None, "
                f"got {config!r}"
            )
        unknown = sorted(str(key) for key in set(config) - {"op", "value"})
        if unknown:
            raise PolicyConfigError(f"condition has unknown key(s) {unknown}: {dict(config)!r}")
        if "op" not in config:
            raise PolicyConfigError(f"condition needs an 'op', got {dict(config)!r}")
        return cls(op=config["op"], value=config.get("value"))

    def to_config(self) -> dict[str, Any]:
        """Return the condition as plain JSON (``value`` only for comparisons)."""
        if self.op in UNARY_OPS:
            return {"op": self.op}
        return {"op": self.op, "value": self.value}

    def describe(self) -> str:
        """Return the condition as people read it (``first cell >= 100``)."""
        if self.op in UNARY_OPS:
            return f"first cell {self.op.replace('_', ' ')}"
        return f"first cell {self.op} {self.value!r}"

    def holds(self, cell: object) -> bool:
        """Return whether ``cell`` (the first cell; ``None`` for NULL or no row) meets it.

        A comparison with NULL is not met (SQL's unknown).

        :raises SqlCheckError: a comparison between a cell and a value of different types.
        """
        if self.op == "truthy":
            return bool(cell)
        if self.op == "is_null":
            return cell is None
        if self.op == "not_null":
            return cell is not None
        if cell is None:
            return False
        cell_kind, value_kind = _value_kind(cell), _value_kind(self.value)
        if cell_kind != value_kind:
            raise SqlCheckError(
                f"condition {self.op} {self.value!r} cannot compare a {value_kind} with the "
                f"first cell {cell!r} ({cell_kind}); compare in SQL instead, e.g. "
                "SELECT max(day) >= %(day)s"
            )
        value: object = self.value
        if isinstance(cell, decimal.Decimal) and isinstance(value, float):
            value = decimal.Decimal(repr(value))  # 0.1 as written, not its binary expansion
        return bool(_COMPARE[self.op](cell, value))


# ----------------------------------------------------------------- arguments
_DOLLAR = re.compile(r"\$([A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")


def count_statements(sql: str) -> int:
    """Return how many statements ``sql`` holds (PostgreSQL's lexical rules, approximately).

    Semicolons inside quotes (``'...'``, ``"..."``, ``E'...'`` with backslash escapes,
    dollar quotes ``$tag$...$tag$``) and comments (``--``, nested ``/* */``) do not split;
    empty statements (``;;``, a trailing ``;``) do not count.
    """
    count, has_content, i, n = 0, False, 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch == ";":
            count += has_content
            has_content = False
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _block_comment_end(sql, i)
        elif ch.isspace():
            i += 1
        else:
            has_content = True
            i = _token_end(sql, i)
    return count + has_content


def _block_comment_end(sql: str, i: int) -> int:
    depth, i = 1, i + 2
    while i < len(sql) and depth:
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def _token_end(sql: str, i: int) -> int:
    """Return the index after the quoted literal or the one character at ``i``."""
    ch = sql[i]
    if ch in "'\"":
        escapes = ch == "'" and i > 0 and sql[i - 1] in "eE"
        j = i + 1
        while j < len(sql):
            if escapes and sql[j] == "\\":
                j += 2
                continue
            if sql[j] == ch:
                if sql.startswith(ch * 2, j):  # a doubled quote stays inside
                    j += 2
                    continue
                return j + 1
            j += 1
        return len(sql)
    if ch == "$":
        match = _DOLLAR.match(sql, i)
        if match and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            end = sql.find(match.group(0), match.end())
            return len(sql) if end < 0 else end + len(match.group(0))
    return i + 1


def check_sql(sql: object) -> str:
    """Return ``sql`` if it is one non-empty statement, else raise naming it."""
    if not isinstance(sql, str) or not sql.strip():
        raise PolicyConfigError(f"sql must be a non-empty string, got {sql!r}")
    found = count_statements(sql)
    if found != 1:
        raise PolicyConfigError(f"sql must be exactly one statement, got {found}: {sql!r}")
    return sql


def _is_scalar(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)


def _check_value(where: str, value: object) -> JsonScalar | list[JsonScalar]:
    if _is_scalar(value):
        return value  # type: ignore[return-value]  # narrowed by _is_scalar
    if isinstance(value, list | tuple) and all(_is_scalar(item) for item in value):
        return list(value)
    raise PolicyConfigError(
        f"parameters{where} must be a JSON scalar (string, number, boolean, null) or a list "
        f"of them, got {value!r}"
    )


def check_parameters(
    parameters: object,
) -> dict[str, JsonScalar | list[JsonScalar]] | list[JsonScalar | list[JsonScalar]] | None:
    """Return ``parameters`` as plain JSON (a dict by name, a list by position, or ``None``).

    Values are JSON scalars, or lists of them (bound as arrays, e.g. ``= ANY(%(ids)s)``).

    :raises PolicyConfigError: naming the offending key or index and its value.
    """
    if parameters is None:
        return None
    if isinstance(parameters, Mapping):
        out: dict[str, JsonScalar | list[JsonScalar]] = {}
        for key, value in parameters.items():
            if not isinstance(key, str):
                raise PolicyConfigError(f"parameters keys must be strings, got {key!r}")
            out[key] = _check_value(f"[{key!r}]", value)
        return out
    if isinstance(parameters, list | tuple):
        return [_check_value(f"[{i}]", value) for i, value in enumerate(parameters)]
    raise PolicyConfigError(
        f"parameters must be a dict (named: %(name)s) or a list (positional: %s), "
        f"got {parameters!r}"
    )


# ----------------------------------------------------------------- results
def first_cell(row: object) -> object:
    """Return the first cell of ``row`` (a tuple, a mapping from a dict cursor, or ``None``)."""
    if row is None:
        return None
    if isinstance(row, Mapping):
        return next(iter(row.values()), None)
    if isinstance(row, Sequence) and not isinstance(row, str | bytes):
        return row[0] if len(row) else None
    return row


def json_cell(cell: object) -> JsonScalar:
    """Return ``cell`` as a JSON value for the event payload (exact where JSON allows).

    Text longer than 200 characters is cut (the payload travels in trigger events and XCom).
    """
    if cell is None or isinstance(cell, bool | int):
        return cell
    if isinstance(cell, float):
        return cell if math.isfinite(cell) else str(cell)
    if isinstance(cell, decimal.Decimal):
        if cell.is_finite() and cell == cell.to_integral_value():
            return int(cell)
        return str(cell)
    if isinstance(cell, dt.date | dt.time):
        return cell.isoformat()
    text = str(cell)
    return text if len(text) <= 200 else text[:199] + "…"


# ----------------------------------------------------------------- errors
class ErrorClass(enum.Enum):
    """What a failed check means for the wait."""

    TRANSIENT = "transient"
    """Retried with the retry strategy's backoff; counts towards the breaker."""
    PERMANENT = "permanent"
    """Ends the wait as an error at once: retrying cannot help."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """How a database error is handled, and why (for the message)."""

    error_class: ErrorClass
    reason: str
    sqlstate: str | None = None


TRANSIENT_SQLSTATE_CLASSES: Final[Mapping[str, str]] = {
    "08": "connection exception",
    "40": "transaction rollback (serialization failure, deadlock)",
    "53": "insufficient resources (e.g. too many connections)",
    "57": "operator intervention (server shutting down, statement timeout)",
    "58": "system error",
    "XX": "internal error",
}
"""SQLSTATE classes (first two characters) of errors retried with backoff."""

PERMANENT_SQLSTATE_CLASSES: Final[Mapping[str, str]] = {
    "0A": "feature not supported",
    "21": "cardinality violation",
    "22": "data exception",
    "23": "integrity constraint violation",
    "25": "invalid transaction state (a write in the read-only transaction)",
    "28": "invalid authorization (wrong user or password)",
    "2B": "dependent privilege descriptors still exist",
    "3D": "invalid catalog name (no such database)",
    "3F": "invalid schema name",
    "42": "syntax error or access rule violation (undefined table or column, permission denied)",
    "44": "with check option violation",
}
"""SQLSTATE classes of errors that end the wait (retrying cannot help)."""

_TRANSIENT_CLASSES: Final = ("OperationalError", "InterfaceError", "InternalError")
_PERMANENT_CLASSES: Final = (
    "ProgrammingError",
    "DataError",
    "IntegrityError",
    "NotSupportedError",
)
_SQLSTATE = re.compile(r"[0-9A-Z]{5}")


def sqlstate_of(exc: BaseException) -> str | None:
    """Return the SQLSTATE ``exc`` carries (psycopg's ``sqlstate``, psycopg2's ``pgcode``)."""
    for attribute in ("sqlstate", "pgcode"):
        code = getattr(exc, attribute, None)
        if isinstance(code, str) and _SQLSTATE.fullmatch(code):
            return code
    return None


def classify_error(exc: BaseException) -> Verdict:
    """Return whether ``exc``, raised by a check, is transient or permanent.

    In order: the SQLSTATE class (:data:`TRANSIENT_SQLSTATE_CLASSES`,
    :data:`PERMANENT_SQLSTATE_CLASSES`); then the PEP 249 class in the exception's MRO
    (``OperationalError``, ``InterfaceError``, ``InternalError``: transient;
    ``ProgrammingError``, ``DataError``, ``IntegrityError``, ``NotSupportedError``:
    permanent); then OS-level failures (``OSError``, ``TimeoutError``: transient), and any
    other ``DatabaseError``/``Error`` of a driver (transient: bounded by the retry strategy's
    ``max_probe_errors``).  Everything else (a missing connection id, a hook that is not a
    SQL hook, :class:`SqlCheckError`) is permanent.
    """
    state = sqlstate_of(exc)
    by_state = _by_sqlstate(state)
    if by_state is not None:
        return by_state
    names = [cls.__name__ for cls in type(exc).__mro__]
    for name in names:
        if name in _TRANSIENT_CLASSES:
            return Verdict(ErrorClass.TRANSIENT, f"DB-API {name}", state)
        if name in _PERMANENT_CLASSES:
            return Verdict(ErrorClass.PERMANENT, f"DB-API {name}", state)
    if isinstance(exc, OSError | TimeoutError):
        return Verdict(ErrorClass.TRANSIENT, "network or timeout", state)
    if isinstance(exc, SqlCheckError):
        return Verdict(ErrorClass.PERMANENT, "the check cannot succeed as written", state)
    if "DatabaseError" in names or names[:2] == ["Error", "Exception"]:  # a driver's own
        return Verdict(ErrorClass.TRANSIENT, "database error", state)
    return Verdict(ErrorClass.PERMANENT, "not a database error", state)


def describe_error(exc: BaseException, verdict: Verdict) -> str:
    """Return ``exc`` for people: ``Class (SQLSTATE code): message [reason; retried or not]``."""
    code = f" (SQLSTATE {verdict.sqlstate})" if verdict.sqlstate else ""
    retried = "retried" if verdict.error_class is ErrorClass.TRANSIENT else "not retried"
    return f"{type(exc).__name__}{code}: {str(exc).strip()} [{verdict.reason}; {retried}]"


def _by_sqlstate(state: str | None) -> Verdict | None:
    group = state[:2] if state else ""
    if group in TRANSIENT_SQLSTATE_CLASSES:
        return Verdict(ErrorClass.TRANSIENT, TRANSIENT_SQLSTATE_CLASSES[group], state)
    if group in PERMANENT_SQLSTATE_CLASSES:
        return Verdict(ErrorClass.PERMANENT, PERMANENT_SQLSTATE_CLASSES[group], state)
    return None
