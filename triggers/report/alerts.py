"""Degradation alerts: conditions on the report, one alert per episode, a recovery when it ends.

Conditions, per source (:class:`Rules` holds the numbers):

- ``success_rate``: the recent success rate (over the profile's ``alerts.window`` waits)
  under the profile's ``alerts.min_success_rate`` (a custom profile: under its target);
- ``wait_time``: the window's p95 wait over ``alerts.max_wait_s``, or up by more than
  ``p95_rise`` on the previous window's (either with at least ``min_waits`` successes);
- ``timeouts``: timeouts clustering: at least ``cluster_min`` in one hour of the day, and
  at least half of the source's timeouts;
- ``breaker``: the breaker rejects waits (open or forced open);
- ``health``: the health score under ``health_min``.

An *episode* starts when a condition becomes true and ends when it is known to be false again
(a condition that cannot be told, for want of finished waits or successes, keeps it open): one
alert at the start, one recovery at the end, nothing in between, whatever the number of runs. Its
de-duplication key is ``<condition>:<source>:<start>`` (``:recovered`` for the recovery), so
a receiver can drop a repeat.

Delivery is at least once (:func:`run`): the new messages are saved in the state's outbox
*before* any is delivered, and each is removed (and the state saved) only after its delivery
succeeded. A process that dies in between delivers the outbox on its next run: nothing is
lost, and only the message in flight can come twice (same key). A message that fails
:data:`MAX_ATTEMPTS` runs in a row is given up (logged as an error, kept in the state).
:func:`evaluate` is pure; the state is plain JSON in one key of a
:class:`~waitwise.triggers.store.KeyValueBackend` (an Airflow Variable from a task).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from waitwise.triggers.store import KeyValueBackend

from .summary import Report, SourceSummary

__all__ = ["STATE_KEY", "AlertLedger", "Message", "Rules", "State", "evaluate", "run"]

STATE_KEY: Final = "waitwise-alerts/state"
MAX_ATTEMPTS: Final = 5
"""Failed deliveries (one per run) after which a message is given up."""
DEAD_KEPT: Final = 100
"""Given-up messages kept in the state, newest last."""
log = logging.getLogger(__name__)
_OPEN: Final = frozenset({"open", "forced_open"})


@dataclass(frozen=True, slots=True)
class Rules:
    """The numbers of the conditions (module docstring)."""

    p95_rise: float = 0.5
    min_waits: int = 5
    cluster_min: int = 3
    health_min: int = 50


@dataclass(frozen=True, slots=True)
class Message:
    """One alert or recovery, as plain JSON travels (``to_json_dict``)."""

    key: str
    kind: str  # "alert" or "recovery"
    condition: str
    source: str
    tier: str
    at: float
    text: str
    attempts: int = 0  # failed deliveries so far

    @property
    def episode(self) -> str:
        """Return ``condition:source``: its messages are delivered in order."""
        return f"{self.condition}:{self.source}"

    def to_json_dict(self) -> dict[str, Any]:
        """Return the message as plain JSON."""
        return {
            "key": self.key,
            "kind": self.kind,
            "condition": self.condition,
            "source": self.source,
            "tier": self.tier,
            "at": self.at,
            "text": self.text,
            "attempts": self.attempts,
        }

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> Message:
        """Rebuild a message saved by :meth:`to_json_dict`."""
        return cls(
            str(data["key"]),
            str(data["kind"]),
            str(data["condition"]),
            str(data["source"]),
            str(data["tier"]),
            float(data["at"]),
            str(data["text"]),
            int(data.get("attempts", 0)),
        )


@dataclass(slots=True)
class State:
    """Open episodes, the messages not yet delivered, and those given up.

    ``open`` maps ``condition:source`` to the episode's start; ``dead`` keeps the newest
    :data:`DEAD_KEPT` messages given up after :data:`MAX_ATTEMPTS` failed deliveries.
    """

    open: dict[str, float] = field(default_factory=dict)
    outbox: list[Message] = field(default_factory=list)
    dead: list[Message] = field(default_factory=list)

    def to_json(self) -> str:
        """Return the state as JSON text."""
        data = {
            "open": self.open,
            "outbox": [m.to_json_dict() for m in self.outbox],
            "dead": [m.to_json_dict() for m in self.dead[-DEAD_KEPT:]],
        }
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | None) -> State:
        """Rebuild a state; ``None`` is the empty state.

        :raises ValueError: when ``raw`` is not a state (the caller decides what to do).
        """
        if raw is None:
            return cls()
        data = json.loads(raw)
        opened = {str(k): float(v) for k, v in dict(data["open"]).items()}
        outbox = [Message.from_json_dict(m) for m in data["outbox"]]
        return cls(opened, outbox, [Message.from_json_dict(m) for m in data.get("dead", [])])


def _conditions(s: SourceSummary, rules: Rules) -> dict[str, tuple[bool | None, str]]:
    """Return each condition's state for ``s`` now: holds, does not, or ``None`` (unknown).

    Unknown (too little data to say) leaves an open episode open: no data is no recovery.
    """
    floor = s.alerts.min_success_rate if s.alerts is not None else s.target
    rate = s.recent_success_rate
    found: dict[str, tuple[bool | None, str]] = {}
    if rate is None or floor is None:
        found["success_rate"] = (None, "")
    else:
        found["success_rate"] = (rate < floor, f"recent success rate {rate:.1%} under {floor:.1%}")
    found["wait_time"] = _wait_time(s, rules)
    worst = max(s.timeouts_by_hour, default=0)
    hour = s.timeouts_by_hour.index(worst) if worst else 0
    clustered = worst >= rules.cluster_min and 2 * worst >= s.timeouts
    found["timeouts"] = (
        None if not s.waits else clustered,
        f"{worst} of {s.timeouts} timeouts at {hour:02d}h (UTC)",
    )
    found["breaker"] = (s.breaker in _OPEN, f"breaker {s.breaker}")
    found["health"] = (
        None if s.health is None else s.health < rules.health_min,
        f"health {s.health} under {rules.health_min}",
    )
    return found


def _wait_time(s: SourceSummary, rules: Rules) -> tuple[bool | None, str]:
    p95, before = s.wait_p95_s, s.previous_p95_s
    if p95 is None or s.successes < rules.min_waits:
        return None, ""
    limit = s.alerts.max_wait_s if s.alerts is not None else None
    if limit is not None and p95 > limit:
        return True, f"p95 wait {p95:.0f} s over {limit:.0f} s"
    if before and p95 > before * (1 + rules.p95_rise):
        return True, f"p95 wait {p95:.0f} s, up {p95 / before - 1:.0%} on {before:.0f} s"
    return False, ""


def evaluate(report: Report, state: State, rules: Rules | None = None) -> State:
    """Return the state after ``report``: episodes opened or closed, their messages queued.

    An episode closes only on a condition known to be false: a source absent from the report,
    or one whose condition cannot be told (no finished wait, too few successes), keeps it.
    """
    rules = rules or Rules()
    opened, outbox = dict(state.open), list(state.outbox)
    for s in report.sources:
        conditions = _conditions(s, rules)
        for condition, (holds, why) in sorted(conditions.items()):
            episode = f"{condition}:{s.source}"
            if holds and episode not in opened:
                opened[episode] = report.now
                key = f"{episode}:{report.now:.0f}"
                text = f"[waitwise] {s.source} ({s.tier}): {why}"
                outbox.append(Message(key, "alert", condition, s.source, s.tier, report.now, text))
            elif holds is False and episode in opened:
                since = opened.pop(episode)
                key = f"{episode}:{since:.0f}:recovered"
                text = f"[waitwise] {s.source} ({s.tier}): {condition} recovered"
                outbox.append(
                    Message(key, "recovery", condition, s.source, s.tier, report.now, text)
                )
    return State(opened, outbox, list(state.dead))


class AlertLedger:
    """The alert state in one key of a key-value backend (an Airflow Variable from a task).

    A damaged value is kept aside under ``<key>.corrupt`` and the state starts empty (warned):
    episodes start again (their alerts repeat), and messages queued in it are not sent (they
    stay readable in the copy).
    """

    def __init__(self, backend: KeyValueBackend, key: str = STATE_KEY) -> None:
        self.backend, self.key = backend, key

    async def load(self) -> State:
        """Return the saved state (empty if none or damaged)."""
        raw = await self.backend.get(self.key)
        try:
            return State.from_json(raw)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("The alert state %s is damaged (%s); starting afresh", self.key, exc)
            await self.backend.set(f"{self.key}.corrupt", raw or "")
            return State()

    async def save(self, state: State) -> None:
        """Save ``state``."""
        await self.backend.set(self.key, state.to_json())


async def run(
    report: Report,
    ledger: AlertLedger,
    deliver: Callable[[Message], None],
    rules: Rules | None = None,
) -> list[Message]:
    """Evaluate ``report``, save, then deliver the outbox; return what was delivered.

    ``deliver`` runs in a worker thread (notifiers block). A message whose delivery raises
    stays queued, with its attempt counted, and the later messages of its episode wait behind
    it (an episode's alert never arrives after its recovery); other episodes' go on. After
    :data:`MAX_ATTEMPTS` failed runs it is given up (logged as an error, kept in
    ``State.dead``), so one message that can never be delivered (a 4xx, a broken notifier)
    does not hold the others back for ever.
    """
    state = evaluate(report, await ledger.load(), rules)
    await ledger.save(state)  # the messages are durable before any is delivered
    delivered: list[Message] = []
    blocked: set[str] = set()
    for message in list(state.outbox):
        if message.episode in blocked:
            continue
        try:
            await asyncio.to_thread(deliver, message)
        except Exception as exc:
            _failed(state, message, blocked, exc)
        else:
            state.outbox.remove(message)
            delivered.append(message)
        await ledger.save(state)
    return delivered


def _failed(state: State, message: Message, blocked: set[str], exc: Exception) -> None:
    """Count a failed delivery of ``message``; give it up after :data:`MAX_ATTEMPTS`."""
    tried = dataclasses.replace(message, attempts=message.attempts + 1)
    index = state.outbox.index(message)
    if tried.attempts >= MAX_ATTEMPTS:
        del state.outbox[index]
        state.dead.append(tried)
        log.error(
            "Giving up alert %s after %d failed deliveries",
            message.key,
            tried.attempts,
            exc_info=exc,
        )
        return
    state.outbox[index] = tried
    blocked.add(message.episode)
    log.warning("Delivering alert %s failed; it stays queued", message.key, exc_info=exc)
