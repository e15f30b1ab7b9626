"""Replay waits through the trigger's own scheduling code: no Airflow, no real time.

For notebooks, benchmarks and what-if analysis::

    from waitwise.triggers.adaptive import Arrival, replay

    waits = [Arrival(scheduled_at=day, arrived_after_s=412.0, timeout_s=3600.0), ...]
    results = replay(waits, policy="adaptive", history=past_waits, learn=True,
                     target_latency_s=60.0, seed=0)
    results[0].pokes, results[0].latency_s, results[0].poke_offsets, results[0].eta_s

Each wait is polled as the trigger polls its first window: the policy is bound to the
history (:meth:`~.policy.Adaptive.bind`, the same call the engine makes), its intervals
are drawn by :func:`~waitwise.triggers.policy.interval_at` under the key
``f"{seed}:{i}"`` and raised to ``MIN_INTERVAL``, the first poke is at the start, and the
last poke is at the deadline.  Offsets count from ``scheduled_at``; a poke at offset ``t``
sees the data when ``t >= arrived_after_s``; latency is that poke's offset minus the
arrival.  With ``learn=True`` each wait, once scored, joins the history as the trigger
records it: ``(last miss, first seen]``, or censored at the last poke when not seen.
History given as :class:`Arrival` is first recorded the same way, polled by the policy's
cold start (what a source's first waits would have recorded); history given as
:class:`~waitwise.triggers.store.WaitRecord` is used as stored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from waitwise.triggers.policy import (
    Constant,
    IntervalPolicy,
    PollState,
    interval_at,
    policy_from_config,
)
from waitwise.triggers.policy.errors import PolicyConfigError
from waitwise.triggers.store.records import WaitRecord

from .knowledge import RECENT_WAITS, Knowledge
from .observations import MAX_OFFSET_S, Observation
from .policy import LEARNED, Adaptive, Bound, RecentAverage

__all__ = ["Arrival", "Replayed", "named_policy", "replay"]

MAX_POKES: Final = 1_000_000
"""Pokes one replayed wait may make (a guard against a policy of tiny intervals)."""
REFIT_EVERY: Final = 1
"""Waits between refits when learning (1: the model is refitted after every wait)."""


@dataclass(frozen=True, slots=True)
class Arrival:
    """One wait to replay.

    :param scheduled_at: the run's scheduled time (timezone-aware).
    :param arrived_after_s: when the data landed, seconds after ``scheduled_at``; ``None``
        when it never did.
    :param timeout_s: the wait's timeout, counted from its start.
    :param started_after_s: when the sensor started, seconds after ``scheduled_at`` (negative:
        before it).
    :raises ValueError: naming the field, for a naive datetime or NaN, negative or
        far-future offsets.
    """

    scheduled_at: datetime
    arrived_after_s: float | None
    timeout_s: float
    started_after_s: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.scheduled_at, datetime) or self.scheduled_at.tzinfo is None:
            raise ValueError(
                f"scheduled_at must be a timezone-aware datetime, got {self.scheduled_at!r}"
            )
        for name in ("arrived_after_s", "timeout_s", "started_after_s"):
            value = getattr(self, name)
            if value is None and name == "arrived_after_s":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number of seconds, got {value!r}")
            low = -MAX_OFFSET_S if name == "started_after_s" else 0.0
            if not low <= value <= MAX_OFFSET_S:
                raise ValueError(
                    f"{name} must be in [{low:g}, {MAX_OFFSET_S:g}] seconds, got {value!r}"
                )
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s!r}")

    @property
    def epoch(self) -> float:
        """Return ``scheduled_at`` in epoch seconds."""
        return self.scheduled_at.timestamp()

    @property
    def deadline_s(self) -> float:
        """Return the deadline's offset after the scheduled time."""
        return self.started_after_s + self.timeout_s


@dataclass(frozen=True, slots=True)
class Replayed:
    """How one replayed wait went.

    :param pokes: pokes made.
    :param poke_offsets: each poke's offset after the scheduled time.
    :param detected: whether a poke saw the data by the deadline.
    :param latency_s: the detecting poke's offset minus the arrival; ``None`` if not detected.
    :param eta_s: the predicted median arrival offset at the start, if the policy had one.
    :param eta_low_s: the ETA's 80% interval, low end.
    :param eta_high_s: the ETA's 80% interval, high end.
    :param model_version: the model the wait planned with; ``None``: the cold start.
    """

    pokes: int
    poke_offsets: tuple[float, ...]
    detected: bool
    latency_s: float | None
    eta_s: float | None = None
    eta_low_s: float | None = None
    eta_high_s: float | None = None
    model_version: str | None = None


def named_policy(name: str, target_latency_s: float, max_interval_s: float) -> IntervalPolicy:
    """Return the policy a name stands for in :func:`replay`.

    ``"adaptive"`` and ``"recent_average"`` are the learned policies (the target as their
    dense / base interval); a built-in kind (``"constant"``, ``"exponential"``,
    ``"airflow_exponential"``, ...) gets parameters from the target: its first interval
    is ``target_latency_s`` and its cap ``max_interval_s``.
    """
    t, cap = target_latency_s, max_interval_s
    configs: dict[str, dict[str, object]] = {
        "adaptive": {"kind": "adaptive", "target_latency_s": t, "max_interval_s": cap},
        "recent_average": {"kind": "recent_average", "base_interval": t, "max_interval_s": cap},
        "constant": {"kind": "constant", "interval": t},
        "linear": {"kind": "linear", "initial": t, "increment": t, "cap": cap},
        "exponential": {"kind": "exponential", "initial": t, "factor": 2.0, "cap": cap},
        "airflow_exponential": {"kind": "airflow_exponential", "poke_interval": t, "max_wait": cap},
        "full_jitter": {"kind": "full_jitter", "inner": {"kind": "constant", "interval": 2 * t}},
        "equal_jitter": {"kind": "equal_jitter", "inner": {"kind": "constant", "interval": t}},
        "decorrelated_jitter": {"kind": "decorrelated_jitter", "base": t, "cap": cap},
    }
    if name not in configs:
        raise PolicyConfigError(
            f"policy must be a policy or one of {sorted(configs)}, got {name!r}"
        )
    return policy_from_config(configs[name])  # type: ignore[arg-type]


def replay(
    waits: Sequence[Arrival],
    policy: IntervalPolicy | str = "adaptive",
    *,
    history: Sequence[Arrival | WaitRecord] = (),
    learn: bool = True,
    target_latency_s: float = 60.0,
    max_interval_s: float = 3600.0,
    seed: int | str = 0,
    refit_every: int = REFIT_EVERY,
) -> list[Replayed]:
    """Replay ``waits`` in order with ``policy`` (module docstring); one result per wait.

    :param policy: an :class:`IntervalPolicy` or a name (:func:`named_policy`).
    :param history: past waits the policy learns from before the first.
    :param learn: add each replayed wait to the history once it is scored.
    :param target_latency_s: for a named policy, its latency target / first interval.
    :param max_interval_s: for a named policy, its longest interval.
    :param seed: the jitter key's prefix: the same seed replays the same pokes.
    :param refit_every: when learning, refit after this many new waits (the trigger refits
        when its cached model is older than its refresh time).
    """
    chosen = (
        named_policy(policy, target_latency_s, max_interval_s)
        if isinstance(policy, str)
        else policy
    )
    observed, waited = _seed_history(history, chosen, seed)
    knowledge = Knowledge(tuple(observed), tuple(waited[-RECENT_WAITS:]))
    results: list[Replayed] = []
    for i, wait in enumerate(waits):
        bound = _bind(chosen, knowledge, wait)
        result = _poll(wait, bound, f"{seed}:{i}")
        results.append(result)
        if learn:
            observed.append(_observation(wait, result))
            if result.detected:
                waited.append(result.poke_offsets[-1] - wait.started_after_s)
            if (i + 1) % max(refit_every, 1) == 0:
                knowledge = Knowledge(tuple(observed), tuple(waited[-RECENT_WAITS:]))
    return results


def _bind(policy: IntervalPolicy, knowledge: Knowledge, wait: Arrival) -> Bound:
    if isinstance(policy, LEARNED):
        opens = wait.epoch + wait.started_after_s
        return policy.bind(knowledge, wait.epoch, opens, opens + wait.timeout_s)
    return Bound(policy)


def _poll(wait: Arrival, bound: Bound, key: str) -> Replayed:
    """Poke as the trigger does: at the start, by the policy, and at the deadline."""
    offsets = [wait.started_after_s]
    arrival, deadline = wait.arrived_after_s, wait.deadline_s
    if bound.closes_at is not None:  # a learned deadline (dynamic timeouts)
        deadline = min(deadline, bound.closes_at - wait.epoch)
    state = PollState()
    while not (arrival is not None and offsets[-1] >= arrival) and offsets[-1] < deadline:
        if len(offsets) >= MAX_POKES:
            break
        step = interval_at(bound.policy, key, state)
        state = state.advance(step)
        offsets.append(min(wait.started_after_s + state.elapsed, deadline))
    detected = arrival is not None and offsets[-1] >= arrival
    eta = bound.eta
    return Replayed(
        pokes=len(offsets),
        poke_offsets=tuple(offsets),
        detected=detected,
        latency_s=offsets[-1] - arrival if detected and arrival is not None else None,
        eta_s=eta.median_s if eta else None,
        eta_low_s=eta.low_s if eta else None,
        eta_high_s=eta.high_s if eta else None,
        model_version=bound.model_version,
    )


def _observation(wait: Arrival, result: Replayed) -> Observation:
    """Return what the trigger would record of ``result``: the interval it bounds."""
    offsets = result.poke_offsets
    known = wait.epoch + offsets[-1]
    if result.detected:
        after = offsets[-2] if len(offsets) > 1 else 0.0
        return Observation(wait.epoch, after, offsets[-1], known)
    return Observation(wait.epoch, offsets[-1], math.inf, known)


def _seed_history(
    history: Sequence[Arrival | WaitRecord], policy: IntervalPolicy, seed: int | str
) -> tuple[list[Observation], list[float]]:
    """Return the history's observations and successful wait durations, oldest first."""
    records = [h for h in history if isinstance(h, WaitRecord)]
    knowledge = Knowledge.from_records(records)
    observed, waited = list(knowledge.observations), list(knowledge.waits)
    cold = policy.cold if isinstance(policy, Adaptive) else _cold(policy)
    for i, past in enumerate(h for h in history if isinstance(h, Arrival)):
        result = _poll(past, Bound(cold), f"{seed}:history:{i}")
        observed.append(_observation(past, result))
        if result.detected:
            waited.append(result.poke_offsets[-1] - past.started_after_s)
    observed.sort(key=lambda o: o.scheduled_at)
    return observed, waited


def _cold(policy: IntervalPolicy) -> IntervalPolicy:
    if isinstance(policy, RecentAverage):
        return Constant(policy.base_interval)
    return policy


def epoch_datetime(epoch: float) -> datetime:
    """Return the UTC datetime of ``epoch`` (for building :class:`Arrival` from records)."""
    return datetime.fromtimestamp(epoch, UTC)
