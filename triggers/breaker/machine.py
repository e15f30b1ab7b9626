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
from dataclasses import dataclass, replace
from typing import Literal, TypeAlias

from waitwise.triggers.breaker.events import (
    BreakerClosed,
    BreakerEvent,
    BreakerForced,
    BreakerHalfOpened,
    BreakerOpened,
    BreakerProbeExpired,
    BreakerRejected,
    format_utc,
)
from waitwise.triggers.breaker.model import (
    COUNTED_MAX,
    BreakerConfig,
    BreakerConfigError,
    BreakerSnapshot,
    BreakerState,
    _is_seconds,
)

__all__ = ["Decision", "Transition", "Verdict", "decide", "force", "record"]

Transition: TypeAlias = tuple[BreakerSnapshot, list[BreakerEvent]]


class Verdict(enum.Enum):
    """What :func:`decide` tells a wait: go, go as the half-open probe, or end now."""

    ALLOW = "allow"
    PROBE = "probe"
    REJECT = "reject"


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
    snapshot: BreakerSnapshot,
    config: BreakerConfig,
    outcome_ok: bool,
    now: float,
    wait: str | None = None,
) -> Transition:
    """Record a finished wait's outcome and apply the transition it causes.

    A wait already among ``snapshot.counted`` (the same wait run by two triggerers) changes
    nothing; a new one joins it (the newest :data:`COUNTED_MAX` are kept).

    Outcomes always enter the window and the consecutive-failure count. While OPEN
    or forced they never change the state. While HALF_OPEN the first result decides:
    success closes (window and counters cleared), failure re-opens (new cooldown).

    :param snapshot: the current persisted state.
    :param config: the source's breaker settings.
    :param outcome_ok: whether the wait succeeded (the data arrived).
    :param now: epoch seconds UTC.
    :param wait: the wait's id (its task instance and try), ``None`` if it has none.
    :return: the new snapshot and the events to drain, in order.
    """
    _check_now(now)
    if wait is not None:
        if wait in snapshot.counted:
            return snapshot, []
        snapshot = replace(snapshot, counted=(*snapshot.counted, wait)[-COUNTED_MAX:])
    failures = 0 if outcome_ok else snapshot.consecutive_failures + 1
    outcomes = (*snapshot.outcomes, outcome_ok)[-config.window :]
    counted = replace(snapshot, outcomes=outcomes, consecutive_failures=failures)
    if snapshot.state is BreakerState.HALF_OPEN and outcome_ok:
        why = "a half-open probing wait succeeded"
        closed = BreakerSnapshot(
            snapshot.source, reason=why, version=snapshot.version, counted=snapshot.counted
        )
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
