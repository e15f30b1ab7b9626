"""Reliability profiles: one value object per kind of source, bundling how to wait for it.

A profile says what to expect of a source (it lands within ``arrival_window_s`` for a
``reliability`` share of waits) and how to wait for it: the deadline, the poll policy, what a
failed check and a passed deadline mean (:class:`RetryStrategy`), when to stop trying the
source altogether (the breaker) and when to alert.  Presets for the three tiers of the
scenario (financial / customer / partner data) are :data:`HIGH`, :data:`MEDIUM`, :data:`LOW`;
custom profiles are built the same way and any field can be overridden per sensor.

Pure: stdlib, policies and the breaker config only; validated on construction so a bad
profile fails at DAG-parse time with the field and value in the message.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeGuard

from waitwise.triggers.breaker import BreakerConfig
from waitwise.triggers.policy import (
    Constant,
    DecorrelatedJitter,
    Exponential,
    IntervalPolicy,
    Linear,
    PolicyConfigError,
    PollState,
    interval_at,
    policy_from_config,
    rebuildable,
    span_bound,
)


class OnDeadline(enum.Enum):
    """What a passed deadline means."""

    FAIL = "fail"  # fail without retry, as Airflow sensors do
    SKIP = "skip"  # skip the task (and, by default, its downstream)
    REOPEN = "reopen"  # wait again, up to max_reopens times, after reopen_backoff


class OnBreakerOpen(enum.Enum):
    """How a wait the open breaker rejected ends (at once, with zero pokes)."""

    FAIL = "fail"  # task fails (task retries apply: a retry after the cooldown may probe)
    SKIP = "skip"


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_on_breaker_open(value: object) -> OnBreakerOpen:
    """Return the :class:`OnBreakerOpen` named by ``value`` (``"fail"`` or ``"skip"``).

    :raises PolicyConfigError: naming the parameter and the value otherwise.
    """
    try:
        return OnBreakerOpen(value)
    except ValueError:
        allowed = [member.value for member in OnBreakerOpen]
        raise PolicyConfigError(
            f"on_breaker_open must be one of {allowed}, got {value!r}"
        ) from None


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _positive(owner: str, name: str, value: object) -> None:
    if not _is_number(value) or not _finite(value) or value <= 0:
        raise PolicyConfigError(f"{owner}.{name} must be a finite number > 0, got {value!r}")


def _count(owner: str, name: str, value: object, low: int = 0) -> None:
    if type(value) is not int or value < low:
        raise PolicyConfigError(f"{owner}.{name} must be an int >= {low}, got {value!r}")


def _fraction(owner: str, name: str, value: object) -> None:
    if not _is_number(value) or not 0 < value <= 1:
        raise PolicyConfigError(f"{owner}.{name} must be in (0, 1], got {value!r}")


def _policy(owner: str, name: str, value: object) -> None:
    rebuildable(value, f"{owner}.{name}")


def _instance(owner: str, name: str, value: object, kind: Any) -> None:
    if not isinstance(value, kind):
        raise PolicyConfigError(f"{owner}.{name} must be a {kind}, got {value!r}")


@dataclass(frozen=True, slots=True)
class RetryStrategy:
    """The three outcomes of a poke, kept apart.

    - not arrived yet: keep polling on the profile's ``poll`` schedule;
    - probe error (the check itself failed): poke again after ``probe_backoff`` of the
      consecutive error count; after ``max_probe_errors`` consecutive errors the wait ends
      as an error (the task fails; task ``retries`` apply) and the breaker counts a failure;
    - deadline passed: ``on_deadline``; with ``REOPEN`` the wait opens again
      ``reopen_backoff`` later for another full ``timeout``, at most ``max_reopens`` times.

    :param probe_backoff: delay after the n-th consecutive probe error.
    :param max_probe_errors: consecutive probe errors tolerated (>= 1).
    :param on_deadline: what a passed deadline means.
    :param max_reopens: extra windows when ``on_deadline`` is ``REOPEN`` (>= 1 then).
    :param reopen_backoff: pause before re-opened window k (k = 1, 2, ...).
    """

    probe_backoff: IntervalPolicy = field(
        default_factory=lambda: Exponential(initial=1.0, factor=2.0, cap=60.0)
    )
    max_probe_errors: int = 5
    on_deadline: OnDeadline = OnDeadline.FAIL
    max_reopens: int = 0
    reopen_backoff: IntervalPolicy = field(default_factory=lambda: Constant(interval=60.0))

    def __post_init__(self) -> None:
        _policy("RetryStrategy", "probe_backoff", self.probe_backoff)
        _policy("RetryStrategy", "reopen_backoff", self.reopen_backoff)
        _count("RetryStrategy", "max_probe_errors", self.max_probe_errors, 1)
        if not isinstance(self.on_deadline, OnDeadline):
            raise PolicyConfigError(
                f"RetryStrategy.on_deadline must be an OnDeadline, got {self.on_deadline!r}"
            )
        reopening = self.on_deadline is OnDeadline.REOPEN
        _count("RetryStrategy", "max_reopens", self.max_reopens, 1 if reopening else 0)
        if not reopening and self.max_reopens:
            raise PolicyConfigError(
                f"RetryStrategy.max_reopens needs on_deadline=REOPEN, got {self.max_reopens!r}"
            )

    def to_config(self) -> dict[str, Any]:
        """Return plain JSON."""
        return {
            "probe_backoff": self.probe_backoff.to_config(),
            "max_probe_errors": self.max_probe_errors,
            "on_deadline": self.on_deadline.value,
            "max_reopens": self.max_reopens,
            "reopen_backoff": self.reopen_backoff.to_config(),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RetryStrategy:
        """Rebuild from :meth:`to_config`."""
        if not isinstance(config, Mapping):
            raise PolicyConfigError(f"bad RetryStrategy config {config!r}: not a mapping")
        try:
            return cls(
                probe_backoff=policy_from_config(config["probe_backoff"]),
                max_probe_errors=config["max_probe_errors"],
                on_deadline=OnDeadline(config["on_deadline"]),
                max_reopens=config["max_reopens"],
                reopen_backoff=policy_from_config(config["reopen_backoff"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise PolicyConfigError(f"bad RetryStrategy config {dict(config)!r}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class AlertThresholds:
    """When a source counts as degraded (read by monitoring over its recent waits).

    :param min_success_rate: alert when the on-time share falls below this, in (0, 1].
    :param window: how many recent waits the rate is computed over (>= 1).
    :param max_wait_s: alert when a wait takes longer than this (``None``: never).
    """

    min_success_rate: float
    window: int = 20
    max_wait_s: float | None = None

    def __post_init__(self) -> None:
        _fraction("AlertThresholds", "min_success_rate", self.min_success_rate)
        _count("AlertThresholds", "window", self.window, 1)
        if self.max_wait_s is not None:
            _positive("AlertThresholds", "max_wait_s", self.max_wait_s)


def tier_of(reliability: float) -> str:
    """Return the tier of a source expected on time for a ``reliability`` share of waits.

    ``"high"`` from 0.99, ``"medium"`` from 0.9, else ``"low"``: the scenario's financial
    (99.9%), customer (95%) and partner (80%) data; metrics and reports group by it.
    """
    if reliability >= 0.99:
        return "high"
    return "medium" if reliability >= 0.9 else "low"


@dataclass(frozen=True, slots=True)
class ReliabilityProfile:
    """How to wait for one kind of source.

    :param name: profile name, recorded with every wait.
    :param arrival_window_s: the data normally lands within this many seconds.
    :param reliability: the share of waits expected to land within the window, in (0, 1].
    :param timeout_s: the wait's deadline, seconds after it starts.
    :param poll: the poll policy while the data has not arrived.
    :param retry: probe errors and passed deadlines (:class:`RetryStrategy`).
    :param breaker: the source's circuit breaker (``None``: no breaker).
    :param on_breaker_open: how a rejected wait ends.
    :param alerts: degradation thresholds.
    """

    name: str
    arrival_window_s: float
    reliability: float
    timeout_s: float
    poll: IntervalPolicy
    retry: RetryStrategy = field(default_factory=RetryStrategy)
    breaker: BreakerConfig | None = field(default_factory=BreakerConfig)
    on_breaker_open: OnBreakerOpen = OnBreakerOpen.FAIL
    alerts: AlertThresholds = field(default_factory=lambda: AlertThresholds(0.9))

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise PolicyConfigError(f"ReliabilityProfile.name must be a name, got {self.name!r}")
        _positive(self.name, "arrival_window_s", self.arrival_window_s)
        _fraction(self.name, "reliability", self.reliability)
        _positive(self.name, "timeout_s", self.timeout_s)
        _policy(self.name, "poll", self.poll)
        _instance(self.name, "retry", self.retry, RetryStrategy)
        _instance(self.name, "breaker", self.breaker, BreakerConfig | None)
        _instance(self.name, "alerts", self.alerts, AlertThresholds)
        if self.timeout_s < self.arrival_window_s:
            raise PolicyConfigError(
                f"{self.name}.timeout_s ({self.timeout_s!r}) must be >= arrival_window_s "
                f"({self.arrival_window_s!r}): the deadline would fall inside the usual window"
            )
        if not isinstance(self.on_breaker_open, OnBreakerOpen):
            raise PolicyConfigError(
                f"{self.name}.on_breaker_open must be an OnBreakerOpen, "
                f"got {self.on_breaker_open!r}"
            )
        self._check_consistent()

    def _check_consistent(self) -> None:
        """Refuse a profile whose parts cannot work together (named with their values).

        The second poke must be able to come by the deadline (otherwise the wait pokes at
        its start and at its deadline only), and an alert on wait time must be reachable
        within the wait's last deadline.
        """
        first = min(interval_at(self.poll, f"profile#{k}", PollState()) for k in range(8))
        if first > self.timeout_s:
            raise PolicyConfigError(
                f"{self.name}.poll waits {first:g}s after its first poke, past "
                f"timeout_s ({self.timeout_s!r}): it would poke only at the start and deadline"
            )
        retry, limit = self.retry, self.alerts.max_wait_s
        reopens = retry.max_reopens if retry.on_deadline is OnDeadline.REOPEN else 0
        span = span_bound(self.timeout_s, reopens, retry.reopen_backoff)
        if limit is not None and limit > span:
            raise PolicyConfigError(
                f"{self.name}.alerts.max_wait_s ({limit!r}) is beyond the wait's last "
                f"deadline ({span:g}s after its start): the alert could never fire"
            )

    @property
    def tier(self) -> str:
        """Return the reliability tier the profile belongs to (see :func:`tier_of`)."""
        return tier_of(self.reliability)

    def override(self, **changes: Any) -> ReliabilityProfile:
        """Return a copy with ``changes`` applied and validated (per-sensor overrides).

        :raises PolicyConfigError: naming an unknown field or an invalid value.
        """
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise PolicyConfigError(f"{self.name}: unknown profile field(s) {unknown}")
        return dataclasses.replace(self, **changes)


HIGH: Final = ReliabilityProfile(
    name="high",
    arrival_window_s=5 * 60,
    reliability=0.999,
    timeout_s=15 * 60,
    poll=Linear(initial=15.0, increment=15.0, cap=60.0),
    retry=RetryStrategy(max_probe_errors=5, on_deadline=OnDeadline.FAIL),
    breaker=BreakerConfig(failure_threshold=3, cooldown_s=15 * 60),
    alerts=AlertThresholds(min_success_rate=0.99, window=50, max_wait_s=5 * 60),
)
"""Financial data: lands within 5 minutes 99.9% of the time.  Linear backoff, strict."""

MEDIUM: Final = ReliabilityProfile(
    name="medium",
    arrival_window_s=30 * 60,
    reliability=0.95,
    timeout_s=60 * 60,
    poll=Exponential(initial=30.0, factor=2.0, cap=300.0),
    retry=RetryStrategy(max_probe_errors=8, on_deadline=OnDeadline.FAIL),
    breaker=BreakerConfig(failure_threshold=5, cooldown_s=30 * 60),
    alerts=AlertThresholds(min_success_rate=0.9, window=40, max_wait_s=30 * 60),
)
"""Customer data: lands within 30 minutes 95% of the time.  Exponential backoff."""

LOW: Final = ReliabilityProfile(
    name="low",
    arrival_window_s=4 * 60 * 60,
    reliability=0.8,
    timeout_s=4 * 60 * 60,
    poll=DecorrelatedJitter(base=60.0, cap=900.0),
    retry=RetryStrategy(
        probe_backoff=Exponential(initial=5.0, factor=2.0, cap=300.0),
        max_probe_errors=10,
        on_deadline=OnDeadline.REOPEN,
        max_reopens=2,
        reopen_backoff=Exponential(initial=30 * 60, factor=2.0, cap=2 * 60 * 60),
    ),
    breaker=BreakerConfig(
        failure_threshold=5, failure_rate=0.6, window=10, min_calls=5, cooldown_s=2 * 60 * 60
    ),
    on_breaker_open=OnBreakerOpen.SKIP,
    alerts=AlertThresholds(min_success_rate=0.75, window=20),
)
"""Partner data: lands within 4 hours 80% of the time.  Decorrelated jitter; a passed
deadline re-opens the wait twice (after 30 min, then 1 h) before giving up."""

PRESETS: Final[Mapping[str, ReliabilityProfile]] = {p.name: p for p in (HIGH, MEDIUM, LOW)}


def get_profile(profile: str | ReliabilityProfile) -> ReliabilityProfile:
    """Return a preset by name, or ``profile`` itself.

    :raises PolicyConfigError: naming the unknown preset.
    """
    if isinstance(profile, ReliabilityProfile):
        return profile
    found = PRESETS.get(profile) if isinstance(profile, str) else None
    if found is None:
        raise PolicyConfigError(
            f"profile must be a ReliabilityProfile or one of {sorted(PRESETS)}, got {profile!r}"
        )
    return found
