"""What the built-in policies share: config encoding and parameter validation."""

from __future__ import annotations

import math
from dataclasses import Field, fields
from typing import Any, ClassVar

from .errors import PolicyConfigError
from .protocol import JSON, MIN_INTERVAL, IntervalPolicy

# Attempt numbers past 2**53 are indistinguishable as floats, and saturating them keeps
# `factor ** n` and `2 ** n` from building enormous ints.
MAX_ATTEMPT = 2**53


class PolicyBase:
    """Mixin for the built-in frozen-dataclass policies: ``kind``, :meth:`to_config`."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]
    kind: ClassVar[str]

    @property
    def monotone(self) -> bool:
        """Return whether intervals never decrease from one attempt to the next."""
        return False

    def to_config(self) -> dict[str, JSON]:
        """Return the policy as plain JSON: ``kind`` plus one entry per parameter."""
        config: dict[str, JSON] = {"kind": self.kind}
        for field in fields(self):
            value = getattr(self, field.name)
            is_policy = isinstance(value, IntervalPolicy)
            config[field.name] = value.to_config() if is_policy else value
        return config


def check_number(policy: object, name: str, minimum: float, bound: str | None = None) -> float:
    """Validate ``policy.<name>`` as a finite number >= ``minimum``; store it as float.

    :param policy: the frozen dataclass to validate (set via ``object.__setattr__``).
    :param name: the parameter to check.
    :param minimum: the smallest accepted value.
    :param bound: the name of the parameter ``minimum`` comes from, for the message.
    :raises PolicyConfigError: naming the parameter and the offending value.
    """
    value = getattr(policy, name)
    where = f"{type(policy).__name__}.{name}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyConfigError(f"{where} must be a number, got {value!r}")
    if not math.isfinite(_as_float(value)):
        raise PolicyConfigError(f"{where} must be finite, got {value!r}")
    if value < minimum:
        limit = f"{bound} ({minimum!r})" if bound else repr(minimum)
        raise PolicyConfigError(f"{where} must be >= {limit}, got {value!r}")
    object.__setattr__(policy, name, float(value))
    return float(value)


def check_seconds(policy: object, name: str) -> float:
    """Validate ``policy.<name>`` as a duration of at least :data:`MIN_INTERVAL`."""
    return check_number(policy, name, MIN_INTERVAL)


def check_policy(policy: object, name: str) -> None:
    """Validate that ``policy.<name>`` is an :class:`IntervalPolicy`.

    :raises PolicyConfigError: naming the parameter and the offending value.
    """
    value = getattr(policy, name)
    if not isinstance(value, IntervalPolicy):
        where = f"{type(policy).__name__}.{name}"
        raise PolicyConfigError(f"{where} must be an interval policy, got {value!r}")


def steps(attempt: int) -> int:
    """Return ``attempt - 1``, saturated at :data:`MAX_ATTEMPT`: the growth exponent."""
    return min(attempt, MAX_ATTEMPT) - 1


def _as_float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf
