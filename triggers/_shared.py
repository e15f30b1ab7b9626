"""Interned value objects: thousands of triggers built from equal configs share one instance.

Policies and retry strategies are frozen, so sharing them is safe; it saves memory and, more
to the point at 10,000 waiting sensors, objects that every full garbage collection must walk.
Invalid configs are not cached: each one raises again, naming the parameter and value.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from waitwise.triggers.policy import IntervalPolicy, policy_from_config
from waitwise.triggers.profiles import RetryStrategy

DEFAULT_RETRY = RetryStrategy()


def shared_policy(config: Mapping[str, Any]) -> IntervalPolicy:
    """Return :func:`policy_from_config` of ``config``, one instance per distinct config."""
    return _policy(_canonical(config))


def shared_retry(config: Mapping[str, Any] | None) -> RetryStrategy:
    """Return :meth:`RetryStrategy.from_config` of ``config`` (the default for ``None``)."""
    return _retry(_canonical(config)) if config else DEFAULT_RETRY


def _canonical(config: Mapping[str, Any]) -> str:
    try:
        return json.dumps(config, sort_keys=True)
    except TypeError:  # not JSON: let the real parser reject it with its own message
        return json.dumps(repr(config))


@functools.lru_cache(maxsize=1024)
def _policy(blob: str) -> IntervalPolicy:
    return policy_from_config(json.loads(blob))


@functools.lru_cache(maxsize=1024)
def _retry(blob: str) -> RetryStrategy:
    return RetryStrategy.from_config(json.loads(blob))
