"""Durations at the boundary: a number of seconds or a ``timedelta``, checked and made float."""

from __future__ import annotations

import datetime as dt
from typing import Final

from .errors import PolicyConfigError

__all__ = ["MAX_SECONDS", "optional_seconds", "positive_seconds"]

MAX_SECONDS: Final = 1e9
"""The longest duration accepted (about 31.7 years): beyond it Airflow's own arithmetic
(``timedelta``, its trigger timeout) overflows far from the argument that caused it."""


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
    if value > MAX_SECONDS:
        raise PolicyConfigError(f"{name} must be at most {MAX_SECONDS:g} seconds, got {value!r}")
    return float(value)


def optional_seconds(name: str, value: object) -> float | None:
    """Return :func:`positive_seconds` of ``value``, or ``None`` for ``None``."""
    return None if value is None else positive_seconds(name, value)
