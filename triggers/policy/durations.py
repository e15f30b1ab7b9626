"""Durations at the boundary: a number of seconds or a ``timedelta``, checked and made float."""

from __future__ import annotations

import datetime as dt

from .errors import PolicyConfigError

__all__ = ["optional_seconds", "positive_seconds"]


def positive_seconds(name: str, value: object) -> float:
    """Normalize a duration (number or :class:`~datetime.timedelta`) to float seconds > 0.

    :raises PolicyConfigError: naming ``name`` and the value when it is not a positive duration.
    """
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyConfigError(f"{name} must be a number of seconds, got {value!r}")
    if not value > 0 or value == float("inf"):
        raise PolicyConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def optional_seconds(name: str, value: object) -> float | None:
    """Return :func:`positive_seconds` of ``value``, or ``None`` for ``None``."""
    return None if value is None else positive_seconds(name, value)
