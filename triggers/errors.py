"""Exceptions raised by waitwise.

The tree::

    WaitwiseError
    ├── PolicyConfigError (ValueError)   bad policy/profile/sensor argument (at DAG-parse time)
    ├── ProbeError                       a transient failure of one check; retried by the trigger
    └── CircuitOpenError                 the source's breaker rejected the wait
"""

from __future__ import annotations

from waitwise.triggers.policy.errors import PolicyConfigError

__all__ = ["CircuitOpenError", "PolicyConfigError", "ProbeError", "WaitwiseError"]


class WaitwiseError(Exception):
    """Root of every waitwise exception."""


class ProbeError(WaitwiseError):
    """A check of the source failed for a transient reason (not "not arrived yet")."""


class CircuitOpenError(WaitwiseError):
    """The circuit breaker of a source rejected a wait."""
