"""The error pure policies raise; the whole tree lives in :mod:`waitwise.triggers.errors`."""

from __future__ import annotations

from waitwise.triggers.errors import PolicyConfigError

__all__ = ["PolicyConfigError"]
