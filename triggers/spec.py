"""One definition of a wait: :class:`WaitSpec`, what every waitwise trigger's kwargs hold.

The sensor builds a spec, the trigger serializes it with :meth:`WaitSpec.to_config` (plain
JSON, flat beside the trigger kind's own kwargs) and Airflow rebuilds it anywhere with
:meth:`WaitSpec.from_config`.  Adding a field means adding it here, once.

Compatibility.  Airflow keeps trigger kwargs in its database while a task waits, and keeps
creating rows from the ``start_trigger_args`` of DAGs serialized before an upgrade, so both
directions matter: ``from_config`` reads every version it has ever written (version 1 is
0.1.0's: the same keys, no ``version``), and a field added later gets a default that means
what the older release did.  Unknown keys are rejected (a misspelt argument is an error).

Interning.  Thousands of waits are built from equal poll and retry configs; those frozen
parts are shared (:func:`shared_policy`, :func:`shared_retry`), which saves memory and, at
10,000 waiting sensors, objects every full garbage collection must walk.  Invalid configs are
not cached: each raises again, naming the parameter and value.  Pure: stdlib and the pure
value objects only.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Final

from waitwise.triggers.adaptive.policy import LEARNED
from waitwise.triggers.breaker import BreakerConfig
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.policy import (
    IntervalPolicy,
    optional_seconds,
    policy_from_config,
    positive_seconds,
)
from waitwise.triggers.profiles import OnBreakerOpen, RetryStrategy, parse_on_breaker_open
from waitwise.triggers.store.records import validate_source

__all__ = [
    "DEFAULT_RETRY",
    "SPEC_VERSION",
    "StoreSpec",
    "WaitSpec",
    "shared_policy",
    "shared_retry",
]

SPEC_VERSION: Final = 2
"""Version of :meth:`WaitSpec.to_config`; 1 is 0.1.0's (no ``version`` key, no ``tier``)."""

DEFAULT_RETRY: Final = RetryStrategy()

StoreSpec = Mapping[str, str]
_AIRFLOW_STORE: Final[Mapping[str, str]] = MappingProxyType({"kind": "airflow"})


def shared_policy(config: Mapping[str, Any]) -> IntervalPolicy:
    """Return :func:`policy_from_config` of ``config``, one instance per distinct config."""
    return _policy(_canonical(config))


def shared_retry(config: Mapping[str, Any] | None) -> RetryStrategy:
    """Return :meth:`RetryStrategy.from_config` of ``config`` (the default for ``None``)."""
    return _retry(_canonical(config)) if config else DEFAULT_RETRY


def _canonical(config: Mapping[str, Any]) -> str:
    try:
        return json.dumps(config, sort_keys=True)
    except (TypeError, ValueError):  # not JSON: let the real parser reject it with its message
        return json.dumps(repr(config))


@functools.lru_cache(maxsize=1024)
def _policy(blob: str) -> IntervalPolicy:
    return policy_from_config(json.loads(blob))


@functools.lru_cache(maxsize=1024)
def _retry(blob: str) -> RetryStrategy:
    return RetryStrategy.from_config(json.loads(blob))


def check_store(store: object) -> Mapping[str, str]:
    """Return ``store`` if it names a known store, else raise naming it.

    ``{"kind": "airflow"}`` (Airflow Variables) or ``{"kind": "file", "root": <absolute dir>}``.
    A relative root is refused: it would split a source's history by working directory.

    :raises PolicyConfigError: naming ``store`` and the value.
    """
    if not isinstance(store, Mapping) or any(not isinstance(v, str) for v in store.values()):
        raise PolicyConfigError(f"store must be a mapping of strings, got {store!r}")
    kind, root = store.get("kind"), store.get("root")
    if kind == "airflow" and set(store) == {"kind"}:
        return _AIRFLOW_STORE
    if kind == "file" and set(store) == {"kind", "root"} and root and os.path.isabs(root):
        return MappingProxyType({"kind": "file", "root": root})
    raise PolicyConfigError(
        "store must be {'kind': 'airflow'} or {'kind': 'file', 'root': <absolute dir>}, "
        f"got {dict(store)!r}"
    )


def _check_poll(poll: object, source: object) -> None:
    if not (hasattr(poll, "next_interval") and hasattr(poll, "to_config")):
        raise PolicyConfigError(f"poll must be an interval policy, got {poll!r}")
    if isinstance(poll, LEARNED) and source is None:
        raise PolicyConfigError(f"poll={poll!r} learns from a source's history: set source=<name>")


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise PolicyConfigError(f"{name} must be True or False, got {value!r}")


def _check_text(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise PolicyConfigError(f"{name} must be a string or None, got {value!r}")


@dataclass(frozen=True, slots=True)
class WaitSpec:
    """Everything a waitwise trigger knows about its wait, apart from what it checks.

    :param poll: the interval policy while the data has not arrived.
    :param timeout: seconds from the opening of a window to its deadline.
    :param started_at: the anchor in epoch seconds, when the caller knows it (the worker's
        ``defer`` path); ``None`` on the ``start_from_trigger`` path.
    :param airflow_timeout: the trigger timeout (seconds) the operator gave Airflow; with
        ``timeout_after`` it recovers the anchor on the ``start_from_trigger`` path.
    :param soft_fail: end a timed-out wait as skipped instead of failed.
    :param end_from_trigger: end the task in the triggerer with task-ending events.
    :param xcom_push: when the task ends in the triggerer, push the payload as its
        ``return_value`` XCom from there.
    :param seed: key for the deterministic jitter; ``None``: the task instance's identity.
    :param retry: probe errors and passed deadlines (:class:`RetryStrategy`).
    :param source: the data source's name: turns on wait history and its breaker.
    :param profile: the reliability profile's name, recorded with the history.
    :param tier: the profile's reliability tier (``high``/``medium``/``low``), for metrics.
    :param breaker: the source's breaker config (``None``: no breaker).
    :param on_breaker_open: how a wait the open breaker rejects ends.
    :param store: where history and breaker state live (see :func:`check_store`).
    :param scheduled_at: when the data was due (ISO 8601), rendered by Airflow.
    """

    poll: IntervalPolicy
    timeout: float
    started_at: float | None = None
    airflow_timeout: float | None = None
    soft_fail: bool = False
    end_from_trigger: bool = False
    xcom_push: bool = False
    seed: str | None = None
    retry: RetryStrategy = DEFAULT_RETRY
    source: str | None = None
    profile: str | None = None
    tier: str | None = None
    breaker: BreakerConfig | None = None
    on_breaker_open: OnBreakerOpen = OnBreakerOpen.FAIL
    store: StoreSpec = field(default_factory=lambda: _AIRFLOW_STORE)
    scheduled_at: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        _check_poll(self.poll, self.source)
        set_(self, "timeout", positive_seconds("timeout", self.timeout))
        set_(self, "airflow_timeout", optional_seconds("airflow_timeout", self.airflow_timeout))
        if self.started_at is not None and not _is_epoch(self.started_at):
            raise PolicyConfigError(f"started_at must be epoch seconds, got {self.started_at!r}")
        for name in ("soft_fail", "end_from_trigger", "xcom_push"):
            _check_bool(name, getattr(self, name))
        for name in ("seed", "profile", "tier", "scheduled_at"):
            _check_text(name, getattr(self, name))
        if self.source is not None:
            set_(self, "source", _source(self.source))
        if not isinstance(self.retry, RetryStrategy):
            raise PolicyConfigError(f"retry must be a RetryStrategy, got {self.retry!r}")
        if self.breaker is not None and not isinstance(self.breaker, BreakerConfig):
            raise PolicyConfigError(f"breaker must be a BreakerConfig, got {self.breaker!r}")
        set_(self, "on_breaker_open", parse_on_breaker_open(self.on_breaker_open))
        set_(self, "store", check_store(self.store))

    def to_config(self) -> dict[str, Any]:
        """Return the spec as flat plain JSON, with ``version`` (the trigger's kwargs)."""
        return {
            "version": SPEC_VERSION,
            "poll": self.poll.to_config(),
            "timeout": self.timeout,
            "started_at": self.started_at,
            "airflow_timeout": self.airflow_timeout,
            "soft_fail": self.soft_fail,
            "end_from_trigger": self.end_from_trigger,
            "xcom_push": self.xcom_push,
            "seed": self.seed,
            "retry": self.retry.to_config(),
            "source": self.source,
            "profile": self.profile,
            "tier": self.tier,
            "breaker": self.breaker.to_config() if self.breaker else None,
            "on_breaker_open": self.on_breaker_open.value,
            "store": dict(self.store),
            "scheduled_at": self.scheduled_at,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WaitSpec:
        """Rebuild a spec from :meth:`to_config` of this or any earlier version.

        :raises PolicyConfigError: naming an unknown or missing key, an unknown version or
            an invalid value.
        """
        values = dict(config)
        version = values.pop("version", 1)
        if version not in (1, SPEC_VERSION) or isinstance(version, bool):
            raise PolicyConfigError(f"version must be 1 or {SPEC_VERSION}, got {version!r}")
        unknown = sorted(set(values) - _FIELDS)
        if unknown:
            raise PolicyConfigError(f"unknown wait argument(s) {unknown}")
        for name in ("poll", "timeout"):
            if name not in values:
                raise PolicyConfigError(f"missing wait argument {name!r}")
        values["poll"] = _parsed("poll", shared_policy, values["poll"])
        values["retry"] = _parsed("retry", shared_retry, values.get("retry"))
        breaker = values.get("breaker")
        values["breaker"] = BreakerConfig.from_config(breaker) if breaker else None
        if values.get("store") is None:
            values["store"] = _AIRFLOW_STORE
        return cls(**values)


_FIELDS: Final = frozenset(f.name for f in fields(WaitSpec))


def _parsed(name: str, parse: Any, value: object) -> Any:
    if value is not None and not isinstance(value, Mapping):
        raise PolicyConfigError(f"{name} must be a config mapping, got {value!r}")
    return parse(value)


def _source(value: object) -> str:
    try:
        return validate_source(value)
    except ValueError as exc:
        raise PolicyConfigError(f"source: {exc}") from exc


def _is_epoch(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and 0 <= value < 1e11
