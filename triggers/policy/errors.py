"""Errors raised by the pure poll policies.

Exception tree (this package's part of it)::

    ValueError
    └── PolicyConfigError    a policy's parameters or serialized config are invalid
"""

from __future__ import annotations

__all__ = ["PolicyConfigError"]


class PolicyConfigError(ValueError):
    """Raise when a policy is built from invalid parameters or an invalid config.

    The message names the parameter (``Exponential.factor``) and the offending value, so
    a bad sensor argument fails at DAG-parse time with an actionable error.
    """
