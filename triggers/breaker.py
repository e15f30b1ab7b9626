"""Per-source circuit breaker as a pure state machine (resilience4j / purgatory style).

Transitions (``now`` is epoch seconds UTC, passed in; nothing here reads a clock)::

    CLOSED    --record(): N consecutive failed waits, or failure rate >= r over
                the last `window` waits once `min_calls` are in ------> OPEN
    OPEN      --decide() at/after opened_at + cooldown_s, grants a probe -> HALF_OPEN
    HALF_OPEN --record(): first probe result; ok ----------------------> CLOSED
    HALF_OPEN --record(): first probe result; failed ------------------> OPEN
    any       --force(FORCED_OPEN | FORCED_CLOSED | "reset") ---------> that state

The snapshot is shared between triggerers, so time is wall-clock epoch seconds, never
loop time. The caller persists the returned snapshot (the store bumps ``version``) and
drains the returned events to logs and metrics.

Stale probes: a probe is a whole wait and may never report back (its triggerer died).
When every probe slot is taken and the newest slot was granted ``probe_timeout_s``
(default ``cooldown_s``) ago or more, :func:`decide` counts all in-flight probes as
abandoned, emits :class:`BreakerProbeExpired` and grants a fresh probe. A late result
of an abandoned probe is still recorded like any other result.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeAlias, TypeGuard

from waitwise.triggers.errors import WaitwiseError
from waitwise.triggers.policy.errors import PolicyConfigError

SNAPSHOT_SCHEMA: Final = 1


class BreakerConfigError(PolicyConfigError):
    """Raise for an invalid breaker config; the message names parameter and value."""


class BreakerSnapshotError(WaitwiseError, ValueError):
    """Raise for an invalid or damaged breaker snapshot."""


class BreakerState(enum.Enum):
    """Breaker states; the two ``FORCED_*`` states are the operators' kill switch."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    FORCED_CLOSED = "forced_closed"


class Verdict(enum.Enum):
    """What :func:`decide` tells a wait: go, go as the half-open probe, or end now."""

    ALLOW = "allow"
    PROBE = "probe"
    REJECT = "reject"


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_seconds(value: object) -> TypeGuard[float]:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _require(error: type[ValueError], name: str, value: object, ok: bool, want: str) -> None:
    if not ok:
        raise error(f"{name} must be {want}, got {value!r}")


def _require_counts(obj: object, names: tuple[str, ...], low: int, error: type[ValueError]) -> None:
    for name in names:
        value = getattr(obj, name)
        _require(error, name, value, _is_int(value) and value >= low, f"an int >= {low}")


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """How a source's breaker trips and recovers.

    :param failure_threshold: open after this many consecutive failed waits (>= 1).
    :param failure_rate: also open when the failed share of the last ``window``
        waits is at least this, in (0, 1]; ``None`` disables the rate rule.
    :param window: how many recent outcomes the snapshot keeps (>= 1).
    :param min_calls: the rate rule needs at least this many outcomes (1..window).
    :param cooldown_s: seconds from opening to half-open (> 0).
    :param half_open_max_probes: probing waits allowed at once while half-open.
    :param probe_timeout_s: seconds after which in-flight probes count as
        abandoned (> 0); ``None`` means ``cooldown_s``.
    """

    failure_threshold: int = 5
    failure_rate: float | None = None
    window: int = 20
    min_calls: int = 10
    cooldown_s: float = 300.0
    half_open_max_probes: int = 1
    probe_timeout_s: float | None = None

    def __post_init__(self) -> None:
        err, rate, probe = BreakerConfigError, self.failure_rate, self.probe_timeout_s
        counts = ("failure_threshold", "window", "min_calls", "half_open_max_probes")
        _require_counts(self, counts, 1, err)
        window_ok = self.min_calls <= self.window
        _require(err, "min_calls", self.min_calls, window_ok, f"<= window ({self.window})")
        rate_ok = rate is None or (_is_seconds(rate) and 0 < rate <= 1)
        _require(err, "failure_rate", rate, rate_ok, "None or in (0, 1]")
        cooldown_ok = _is_seconds(self.cooldown_s) and self.cooldown_s > 0
        _require(err, "cooldown_s", self.cooldown_s, cooldown_ok, "finite seconds > 0")
        probe_ok = probe is None or (_is_seconds(probe) and probe > 0)
        _require(err, "probe_timeout_s", probe, probe_ok, "None or finite seconds > 0")

    @property
    def effective_probe_timeout_s(self) -> float:
        """Return ``probe_timeout_s``, defaulting to ``cooldown_s``."""
        return self.cooldown_s if self.probe_timeout_s is None else self.probe_timeout_s

    def to_config(self) -> dict[str, Any]:
        """Return a plain JSON-able dict, the inverse of :meth:`from_config`."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BreakerConfig:
        """Build a config from :meth:`to_config` output; unknown keys are rejected.

        :param config: parameter name -> value; missing ones take their defaults.
        """
        if not isinstance(config, Mapping):
            raise BreakerConfigError(f"breaker config must be a mapping: {config!r}")
        unknown = sorted(set(config) - {f.name for f in fields(cls)})
        if unknown:
            raise BreakerConfigError(f"unknown breaker config parameter(s): {unknown}")
        return cls(**config)


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """Everything the store persists for one source's breaker.

    :param source: the source this breaker guards.
    :param outcomes: recent wait outcomes, newest last, ``True`` = success.
    :param opened_at: when it last opened; required while ``OPEN``.
    :param half_open_probes_in_flight: probes granted and not yet reported.
    :param half_open_started_at: when the newest probe slot was granted; required
        while probes are in flight.
    :param reason: why the breaker is in its state (shown in rejections).
    :param version: bumped by the store on every persisted update.
    """

    source: str
    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    outcomes: tuple[bool, ...] = ()
    opened_at: float | None = None
    half_open_probes_in_flight: int = 0
    half_open_started_at: float | None = None
    reason: str = ""
    version: int = 0

    def __post_init__(self) -> None:
        err, state, outcomes = BreakerSnapshotError, self.state, self.outcomes
        source_ok = isinstance(self.source, str) and self.source != ""
        _require(err, "source", self.source, source_ok, "a non-empty str")
        _require(err, "state", state, isinstance(state, BreakerState), "a BreakerState")
        counts = ("consecutive_failures", "half_open_probes_in_flight", "version")
        _require_counts(self, counts, 0, err)
        ok = isinstance(outcomes, tuple) and all(type(o) is bool for o in outcomes)
        _require(err, "outcomes", outcomes, ok, "a tuple of bools")
        _require(err, "reason", self.reason, isinstance(self.reason, str), "a str")
        times = {
            "opened_at": state is BreakerState.OPEN,
            "half_open_started_at": self.half_open_probes_in_flight != 0,
        }
        for name, required in times.items():
            value = getattr(self, name)
            ok = _is_seconds(value) or (value is None and not required)
            _require(err, name, value, ok, "epoch seconds" + ("" if required else " or None"))

    def to_json_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict, the inverse of :meth:`from_json_dict`."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(state=self.state.value, outcomes=list(self.outcomes))
        return {"schema": SNAPSHOT_SCHEMA, **data}

    @classmethod
    def from_json_dict(cls, data: object) -> BreakerSnapshot:
        """Rebuild a snapshot; raise :class:`BreakerSnapshotError` on damaged input.

        :param data: a decoded JSON object as written by :meth:`to_json_dict`.
        """
        if not isinstance(data, Mapping):
            raise BreakerSnapshotError(f"breaker snapshot must be an object: {data!r}")
        if data.get("schema") != SNAPSHOT_SCHEMA:
            raise BreakerSnapshotError(f"unsupported schema {data.get('schema')!r}")
        expected = {"schema"} | {f.name for f in fields(cls)}
        if set(data) != expected:
            diff = sorted(map(str, set(data) ^ expected))
            raise BreakerSnapshotError(f"snapshot fields differ from schema: {diff}")
        values = {k: v for k, v in data.items() if k != "schema"}
        try:
            values["state"] = BreakerState(values["state"])
        except ValueError:
            raise BreakerSnapshotError(f"unknown state {values['state']!r}") from None
        if isinstance(values["outcomes"], list):  # anything else fails validation
            values["outcomes"] = tuple(values["outcomes"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class _Event:
    source: str
    at: float


@dataclass(frozen=True, slots=True)
class BreakerOpened(_Event):
    """Opened (from CLOSED, or from HALF_OPEN after a failed probe)."""

    failures: int
    reason: str


@dataclass(frozen=True, slots=True)
class BreakerHalfOpened(_Event):
    """The cooldown elapsed and the first probe was granted."""

    opened_at: float


@dataclass(frozen=True, slots=True)
class BreakerClosed(_Event):
    """A half-open probe succeeded and the breaker closed."""

    reason: str


@dataclass(frozen=True, slots=True)
class BreakerRejected(_Event):
    """A wait was rejected; ``half_open_at`` is ``None`` while forced open."""

    reason: str
    half_open_at: float | None


@dataclass(frozen=True, slots=True)
class BreakerProbeExpired(_Event):
    """In-flight probes were deemed abandoned and a fresh probe was granted."""

    probe_started_at: float
    probes_dropped: int


@dataclass(frozen=True, slots=True)
class BreakerForced(_Event):
    """An operator forced the breaker (or reset it)."""

    previous: BreakerState
    state: BreakerState
    note: str


BreakerEvent: TypeAlias = (
    BreakerOpened
    | BreakerHalfOpened
    | BreakerClosed
    | BreakerRejected
    | BreakerProbeExpired
    | BreakerForced
)
Transition: TypeAlias = tuple[BreakerSnapshot, list[BreakerEvent]]


def format_utc(at: float) -> str:
    """Format epoch seconds as ISO-8601 UTC, e.g. ``2024-05-01T06:00:00Z``."""
    try:
        moment = datetime.fromtimestamp(at, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return f"epoch {at!r}"
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict; persist ``snapshot`` if it changed and drain ``events``."""

    verdict: Verdict
    snapshot: BreakerSnapshot
    events: tuple[BreakerEvent, ...] = ()
    reason: str = ""
    half_open_at: float | None = None

    @property
    def allowed(self) -> bool:
        """Return whether the wait may poll (as a normal wait or as the probe)."""
        return self.verdict is not Verdict.REJECT

    @property
    def message(self) -> str:
        """Return the rejection text: source, reason and when it will half-open."""
        state = self.snapshot.state
        head = f"circuit breaker for source {self.snapshot.source!r} is "
        if self.allowed:
            return f"{head}{state.value.replace('_', '-')} and allows the wait"
        head += f"{state.value.replace('_', '-')}: {self.reason}"
        if self.half_open_at is None:
            return f"{head}; it stays open until an operator resets it"
        when = format_utc(self.half_open_at)
        if state is BreakerState.HALF_OPEN:
            return f"{head}; the next probe is allowed at {when}"
        return f"{head}; it will half-open at {when}"


def _check_now(now: float) -> None:
    if not _is_seconds(now):
        raise ValueError(f"now must be finite epoch seconds, got {now!r}")


def decide(snapshot: BreakerSnapshot, config: BreakerConfig, now: float) -> Decision:
    """Decide whether a new wait for ``snapshot.source`` may start at ``now``.

    :param snapshot: the current persisted state.
    :param config: the source's breaker settings.
    :param now: epoch seconds UTC.
    :return: ALLOW when closed; PROBE when this wait is a half-open probe (the
        snapshot then holds the probe slot and must be persisted); else REJECT.
    """
    _check_now(now)
    state, source = snapshot.state, snapshot.source
    if state in (BreakerState.CLOSED, BreakerState.FORCED_CLOSED):
        return Decision(Verdict.ALLOW, snapshot)
    if state is BreakerState.FORCED_OPEN:
        return _reject(snapshot, now, snapshot.reason, None)
    if state is BreakerState.OPEN:
        # OPEN implies opened_at (BreakerSnapshot checks it); `or` only narrows.
        opened_at = snapshot.opened_at or 0.0
        if now < opened_at + config.cooldown_s:
            return _reject(snapshot, now, snapshot.reason, opened_at + config.cooldown_s)
        why = f"probing after a {config.cooldown_s:g}s cooldown ({snapshot.reason})"
        probe = replace(_probe_slot(snapshot, 1, now), state=BreakerState.HALF_OPEN)
        probe = replace(probe, reason=why)
        return Decision(Verdict.PROBE, probe, (BreakerHalfOpened(source, now, opened_at),))
    in_flight = snapshot.half_open_probes_in_flight
    if in_flight < config.half_open_max_probes:
        return Decision(Verdict.PROBE, _probe_slot(snapshot, in_flight + 1, now))
    started = snapshot.half_open_started_at or 0.0  # set while probes fly
    if now < started + config.effective_probe_timeout_s:
        why = f"{in_flight} probing wait(s) in flight since {format_utc(started)}"
        return _reject(snapshot, now, why, started + config.effective_probe_timeout_s)
    expired = BreakerProbeExpired(source, now, started, in_flight)
    return Decision(Verdict.PROBE, _probe_slot(snapshot, 1, now), (expired,))


def _probe_slot(snapshot: BreakerSnapshot, in_flight: int, now: float) -> BreakerSnapshot:
    return replace(snapshot, half_open_probes_in_flight=in_flight, half_open_started_at=now)


def _reject(
    snapshot: BreakerSnapshot, now: float, reason: str, half_open_at: float | None
) -> Decision:
    event = BreakerRejected(snapshot.source, now, reason, half_open_at)
    return Decision(Verdict.REJECT, snapshot, (event,), reason, half_open_at)


def record(
    snapshot: BreakerSnapshot, config: BreakerConfig, outcome_ok: bool, now: float
) -> Transition:
    """Record a finished wait's outcome and apply the transition it causes.

    Outcomes always enter the window and the consecutive-failure count. While OPEN
    or forced they never change the state. While HALF_OPEN the first result decides:
    success closes (window and counters cleared), failure re-opens (new cooldown).

    :param snapshot: the current persisted state.
    :param config: the source's breaker settings.
    :param outcome_ok: whether the wait succeeded (the data arrived).
    :param now: epoch seconds UTC.
    :return: the new snapshot and the events to drain, in order.
    """
    _check_now(now)
    failures = 0 if outcome_ok else snapshot.consecutive_failures + 1
    outcomes = (*snapshot.outcomes, outcome_ok)[-config.window :]
    counted = replace(snapshot, outcomes=outcomes, consecutive_failures=failures)
    if snapshot.state is BreakerState.HALF_OPEN and outcome_ok:
        why = "a half-open probing wait succeeded"
        closed = BreakerSnapshot(snapshot.source, reason=why, version=snapshot.version)
        return closed, [BreakerClosed(snapshot.source, now, why)]
    if snapshot.state is BreakerState.HALF_OPEN:
        return _open(counted, now, "the half-open probing wait failed")
    reason = None if outcome_ok else _trip_reason(counted, config)
    if snapshot.state is BreakerState.CLOSED and reason is not None:
        return _open(counted, now, reason)
    return counted, []


def _trip_reason(snapshot: BreakerSnapshot, config: BreakerConfig) -> str | None:
    failures, outcomes = snapshot.consecutive_failures, snapshot.outcomes
    if failures >= config.failure_threshold:
        return f"{failures} consecutive failed waits (limit {config.failure_threshold})"
    rate = config.failure_rate
    if rate is None or len(outcomes) < config.min_calls:
        return None
    observed = outcomes.count(False) / len(outcomes)
    if observed < rate:
        return None
    return f"{observed:.0%} of the last {len(outcomes)} waits failed (limit {rate:.0%})"


def _open(snapshot: BreakerSnapshot, now: float, reason: str) -> Transition:
    opened = replace(snapshot, half_open_probes_in_flight=0, half_open_started_at=None)
    opened = replace(opened, state=BreakerState.OPEN, opened_at=now, reason=reason)
    failures = snapshot.consecutive_failures
    return opened, [BreakerOpened(snapshot.source, now, failures, reason)]


def force(
    snapshot: BreakerSnapshot,
    target: BreakerState | Literal["reset"],
    now: float,
    *,
    note: str = "",
) -> Transition:
    """Apply an operator override; the version is kept (the store bumps it).

    :param snapshot: the current persisted state.
    :param target: ``FORCED_OPEN`` (reject every wait until reset), ``FORCED_CLOSED``
        (allow every wait, never trip) or ``"reset"`` (CLOSED, window and counters
        cleared).
    :param now: epoch seconds UTC.
    :param note: free text for the audit trail and rejection messages.
    :raise BreakerConfigError: for any other target.
    """
    _check_now(now)
    source, version = snapshot.source, snapshot.version
    if target == "reset":
        new = BreakerSnapshot(source, reason=note or "reset by an operator", version=version)
    elif target in (BreakerState.FORCED_OPEN, BreakerState.FORCED_CLOSED):
        is_open = target is BreakerState.FORCED_OPEN
        why = note or f"forced {'open' if is_open else 'closed'} by an operator"
        new = replace(
            BreakerSnapshot(source, outcomes=snapshot.outcomes, version=version),
            consecutive_failures=snapshot.consecutive_failures,
            state=target,
            opened_at=now if is_open else None,
            reason=why,
        )
    else:
        want = "FORCED_OPEN, FORCED_CLOSED or 'reset'"
        raise BreakerConfigError(f"target must be {want}, got {target!r}")
    return new, [BreakerForced(source, now, snapshot.state, new.state, note)]
