"""Auto-tuning: a source's sparse poll interval and deadline, moved a bounded step at a time.

Opt-in per policy (``Adaptive(auto_tune=True)``).  Where the plan (:mod:`.planner`) decides
per wait from the model, tuning corrects the two settings the model cannot check by itself,
from what the waits actually measured, and records every change with its reason:

- **sparse interval** (``max_interval_s``, the plan's longest interval).  Feedback on the
  detection latency the waits measured (the upper bound ``first_seen - last_miss`` of each
  wait that missed at least once, among the newest :data:`WINDOW` observations): when more
  than ``1 - quantile`` of them came later than ``LATE_MARGIN x target_latency_s`` (a dense
  gap is the target plus a few ms of stamping) the interval shrinks by ``step``; when fewer
  than half of that did, it grows by ``step`` (fewer pokes).  Floor ``target_latency_s``,
  ceiling the policy's own ``max_interval_s``.
- **deadline** (``deadline_s``, an offset from the run's scheduled time).  Target:
  ``timeout_margin x Q(timeout_quantile)`` of the arrival offsets (Turnbull's estimate of the
  newest :data:`WINDOW` observations, censoring included); none when the history cannot say
  when that share arrives (the static deadline stands).  The first tuned deadline is twice
  the target (the one change not bounded by ``step``: there is no tuned value to step
  from); later ones move at most ``step`` towards it.  It applies as a dynamic timeout
  does: never past the static deadline, never sooner than ``min_timeout_s`` after the start.

Guard rails: at most one change per ``tune_every_s`` (changes are slotted by
``floor(at / tune_every_s)``, and of two tunings in one slot, written by two triggerers, the
earliest counts for every reader); every value changes by at most the factor ``1 + step``
per change; floors and ceilings as above; a change needs ``min_history`` observations.

A :class:`Change` is plain JSON kept in the store's per-source change log
(``WaitStore.append_change``); :func:`in_effect` replays the log.  ``revert`` restores the
setting before the latest tuning and *holds* tuning until a ``resume``.  Pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeGuard

import numpy as np

from .turnbull import Floats, estimate

__all__ = [
    "WINDOW",
    "Change",
    "Effect",
    "Rules",
    "Setting",
    "in_effect",
    "propose",
    "resumed",
    "reverted",
]

WINDOW: Final = 200
"""The newest observations a tuning looks at."""
LATE_MARGIN: Final = 1.1
"""A detection counts as late when its gap exceeds ``LATE_MARGIN x target_latency_s``."""

Action = Literal["tune", "revert", "resume"]
_ACTIONS: Final = ("tune", "revert", "resume")


@dataclass(frozen=True, slots=True)
class Setting:
    """What tuning sets: the plan's longest interval and the deadline offset (``None``: static).

    :param max_interval_s: the sparse interval of the plan, seconds.
    :param deadline_s: the deadline, seconds after the run's scheduled time; ``None`` keeps
        the static deadline.
    """

    max_interval_s: float
    deadline_s: float | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of a source's change log.

    :param at: when it was made, epoch seconds; it applies to waits that open after it.
    :param action: ``tune``, ``revert`` (restore, hold tuning) or ``resume`` (tune again).
    :param setting: the setting from ``at`` on.
    :param reason: why, in words and figures.
    """

    at: float
    action: Action
    setting: Setting
    reason: str

    def to_json_dict(self) -> dict[str, Any]:
        """Return the change as plain JSON."""
        return {
            "at": self.at,
            "action": self.action,
            "max_interval_s": self.setting.max_interval_s,
            "deadline_s": self.setting.deadline_s,
            "reason": self.reason,
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> Change:
        """Rebuild a change from :meth:`to_json_dict`.

        :raises ValueError: naming the field, for a missing, mistyped or absurd value.
        """
        at, interval, deadline = data.get("at"), data.get("max_interval_s"), data.get("deadline_s")
        if not _finite(at) or at < 0:
            raise ValueError(f"change at must be epoch seconds, got {at!r}")
        action = data.get("action")
        if action not in _ACTIONS:
            raise ValueError(f"change action must be one of {_ACTIONS}, got {action!r}")
        if not _finite(interval) or interval <= 0:
            raise ValueError(f"change max_interval_s must be seconds > 0, got {interval!r}")
        if deadline is not None and (not _finite(deadline) or deadline <= 0):
            raise ValueError(f"change deadline_s must be seconds > 0 or null, got {deadline!r}")
        reason = data.get("reason")
        if not isinstance(reason, str):
            raise ValueError(f"change reason must be a string, got {reason!r}")
        setting = Setting(float(interval), None if deadline is None else float(deadline))
        return cls(float(at), action, setting, reason)


def _finite(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class Effect:
    """The log replayed up to a time: the setting in force, the last tuning, whether held."""

    setting: Setting | None
    last_tuned_at: float | None
    held: bool


def in_effect(changes: Iterable[Change], before: float, every_s: float) -> Effect:
    """Replay the changes made at or before ``before`` (epoch seconds), oldest first.

    Of several tunings in one slot (``floor(at / every_s)``) only the earliest counts, so two
    triggerers tuning at once cannot move a value twice; reverts and resumes always count.
    """
    setting: Setting | None = None
    last: float | None = None
    held = False
    slots: set[int] = set()
    for change in sorted(changes, key=lambda c: (c.at, c.action)):
        if change.at > before:
            break
        if change.action == "tune":
            slot = math.floor(change.at / every_s)
            if slot in slots or held:
                continue
            slots.add(slot)
            last = change.at
        held = change.action == "revert" or (held and change.action != "resume")
        setting = change.setting
    return Effect(setting, last, held)


@dataclass(frozen=True, slots=True)
class Rules:
    """What :func:`propose` tunes towards (the policy's own parameters).

    :param target_latency_s: how late a detection may be; the floor of the interval.
    :param quantile: the share of detections the target holds for.
    :param ceiling_s: the policy's ``max_interval_s``: the start and ceiling of the interval.
    :param timeout_quantile: the share of arrivals the deadline covers.
    :param timeout_margin: the deadline is this multiple of that quantile's offset.
    :param step: the largest relative change per tuning (0.25: x1.25 or /1.25).
    :param every_s: the least time between two tunings.
    :param min_history: observations needed to tune at all.
    """

    target_latency_s: float
    quantile: float
    ceiling_s: float
    timeout_quantile: float
    timeout_margin: float
    step: float
    every_s: float
    min_history: int


def propose(
    after: Floats, by: Floats, known: Floats, changes: Iterable[Change], rules: Rules, now: float
) -> Change | None:
    """Return the tuning due at ``now``, or ``None`` (not due, held, too little history, no move).

    ``after``/``by``/``known`` are the source's observations (:mod:`.observations`), oldest
    known first; only the newest :data:`WINDOW` count.
    """
    effect = in_effect(changes, now, rules.every_s)
    due = effect.last_tuned_at is None or now - effect.last_tuned_at >= rules.every_s
    if effect.held or not due or after.size < rules.min_history:
        return None
    current = effect.setting or Setting(rules.ceiling_s)
    recent = np.argsort(known, kind="stable")[-WINDOW:]
    after, by = after[recent], by[recent]
    interval, why_interval = _interval(after, by, current.max_interval_s, rules)
    deadline, why_deadline = _deadline(after, by, current.deadline_s, rules)
    new = Setting(interval, deadline)
    if new == current:
        return None
    return Change(now, "tune", new, "; ".join(r for r in (why_interval, why_deadline) if r))


def _interval(after: Floats, by: Floats, current: float, rules: Rules) -> tuple[float, str]:
    """Return the tuned sparse interval and why (the latency feedback of the module doc)."""
    missed = (after > 0) & np.isfinite(by)
    if not missed.any():
        return current, ""
    # A dense gap is target_latency_s plus the few ms between a poke's schedule and its
    # stamp: late means clearly longer (LATE_MARGIN), not a dense gap measured a hair long.
    late = float(np.mean(by[missed] - after[missed] > rules.target_latency_s * LATE_MARGIN))
    budget = 1.0 - rules.quantile
    if late > budget:
        factor, verdict = 1.0 / (1.0 + rules.step), "above"
    elif late < budget / 2:
        factor, verdict = 1.0 + rules.step, "below half of"
    else:
        return current, ""
    new = min(max(current * factor, rules.target_latency_s), rules.ceiling_s)
    if math.isclose(new, current):
        return current, ""
    share = f"{late:.1%} of {int(missed.sum())} detections"
    return new, (
        f"max_interval_s {current:.0f} -> {new:.0f} s: {share} came over "
        f"{rules.target_latency_s:.0f} s late, {verdict} the allowance {budget:.1%}"
    )


def _deadline(
    after: Floats, by: Floats, current: float | None, rules: Rules
) -> tuple[float | None, str]:
    """Return the tuned deadline offset and why (towards margin x the arrival quantile)."""
    quantile = estimate(after, by, np.ones(after.size)).quantile(rules.timeout_quantile)
    if quantile is None:
        if current is None:
            return None, ""
        why = f"deadline back to the static one: under {rules.timeout_quantile:.1%} arrive"
        return None, why
    target = max(rules.timeout_margin * quantile, rules.target_latency_s)
    if current is None:
        new = 2.0 * target
    else:
        new = min(max(target, current / (1.0 + rules.step)), current * (1.0 + rules.step))
    if current is not None and math.isclose(new, current, rel_tol=1e-3):
        return current, ""
    was = "static" if current is None else f"{current:.0f} s"
    return new, (
        f"deadline {was} -> {new:.0f} s after the scheduled time: "
        f"{rules.timeout_quantile:.1%} of arrivals by {quantile:.0f} s, margin "
        f"{rules.timeout_margin:g}"
    )


def reverted(changes: Iterable[Change], now: float, every_s: float, own: Setting) -> Change:
    """Return the change that undoes the latest tuning and holds tuning until resumed.

    The setting restored is the one in force just before that tuning, or ``own`` (the
    policy's untuned setting) when there was none.

    :raises ValueError: when nothing was tuned.
    """
    log = sorted(changes, key=lambda c: (c.at, c.action))
    effect = in_effect(log, now, every_s)
    if effect.last_tuned_at is None:
        raise ValueError("nothing was tuned: there is nothing to revert")
    before = in_effect([c for c in log if c.at < effect.last_tuned_at], now, every_s).setting
    return Change(
        now, "revert", before or own, f"reverted the tuning of {effect.last_tuned_at:.0f}"
    )


def resumed(changes: Iterable[Change], now: float, every_s: float) -> Change:
    """Return the change that lets tuning go on from the setting in force.

    :raises ValueError: when tuning is not held.
    """
    effect = in_effect(changes, now, every_s)
    if not effect.held or effect.setting is None:
        raise ValueError("tuning is not held: there is nothing to resume")
    return Change(now, "resume", effect.setting, "tuning resumed")
