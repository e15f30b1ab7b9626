"""Poll policies that learn from a source's history, and the plan they bind to for one wait.

A learned policy is configured like any other (frozen, plain-JSON ``to_config``, rebuilt
by kind) and on its own polls like its ``fallback``: that is the cold start, and what a
wait without history, scheduled time or readable store gets.  For one wait the engine (and
:func:`~waitwise.triggers.adaptive.replay`, with the very same code) calls :meth:`bind`
with the source's :class:`~.knowledge.Knowledge`; the result is a plain
:class:`~waitwise.triggers.policy.IntervalPolicy` for that wait's first window.

- :class:`Adaptive`: the arrival model (:mod:`.model`) and the latency-target plan
  (:mod:`.planner`).
- :class:`RecentAverage`: the exercise's rule, for comparison: a constant interval of the
  mean of the last ``window`` successful waits divided by 4, clamped to
  ``[base_interval, max_interval]``.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from typing import ClassVar, Final

from waitwise.triggers.policy import Constant, IntervalPolicy, PollState
from waitwise.triggers.policy._base import PolicyBase, check_number, check_policy, check_seconds
from waitwise.triggers.policy.errors import PolicyConfigError
from waitwise.triggers.policy.protocol import JSON, MIN_INTERVAL

from .knowledge import TRUSTED_FROM, Knowledge
from .model import Distribution, Learning
from .planner import Plan, plan, shared_cutoff
from .tuning import Rules, Setting, in_effect

__all__ = ["SAFETY", "Adaptive", "Bound", "Eta", "Planned", "RecentAverage"]

SAFETY: Final = 0.8
"""Share of the latency budget the plan spends: the rest absorbs the model's error."""


@dataclass(frozen=True, slots=True)
class Eta:
    """Predicted arrival given the time already waited, offsets after the scheduled time.

    :param median_s: the median arrival offset, given the data arrives.
    :param low_s: the 10% quantile (with ``high_s``, the 80% interval).
    :param high_s: the 90% quantile.
    :param arrives: the probability the data arrives at all (within the history's horizon).
    """

    median_s: float
    low_s: float
    high_s: float
    arrives: float

    @classmethod
    def of(cls, dist: Distribution, waited: float) -> Eta | None:
        """Return the ETA after ``waited`` seconds, ``None`` if no arrival is expected."""
        qs = [dist.given_after(waited, q) for q in (0.5, 0.1, 0.9)]
        if any(q is None for q in qs):
            return None
        median, low, high = (float(q) for q in qs if q is not None)
        return cls(median, low, high, dist.arrives_after(waited))

    def to_json(self) -> dict[str, float]:
        """Return the ETA as plain JSON (event payload, record, log)."""
        return {
            "median_s": round(self.median_s, 3),
            "low_s": round(self.low_s, 3),
            "high_s": round(self.high_s, 3),
            "arrives": round(self.arrives, 4),
        }


@dataclass(frozen=True, slots=True)
class Bound:
    """What a learned policy decided for one wait's first window.

    :param policy: the intervals to poll with.
    :param model_version: the model it planned with; ``None``: the fallback (cold start).
    :param eta: the predicted arrival at the window's start, if any.
    :param plan: the planned pokes, if any.
    :param closes_at: a learned deadline before the window's own (dynamic timeouts), if any.
    """

    policy: IntervalPolicy
    model_version: str | None = None
    eta: Eta | None = None
    plan: Plan | None = None
    closes_at: float | None = None


@dataclass(frozen=True, slots=True)
class Planned(PolicyBase):
    """Poke at a plan's offsets: the policy one wait's first window runs with.

    Formula: after the poke at elapsed ``e`` (seconds since the window opened, offset
    ``opens_at_s + e``), wait until the plan's next offset; past the plan, ``tail``.
    Never serialized into trigger kwargs: it is rebuilt for each wait by :meth:`Adaptive.bind`.

    :param offsets: the plan's poke offsets after the scheduled time, ascending.
    :param opens_at_s: the window's opening, as an offset after the scheduled time.
    :param tail: the interval past the plan's last poke.
    """

    kind: ClassVar[str] = "planned"
    offsets: tuple[float, ...]
    opens_at_s: float
    tail: float

    @property
    def max_interval(self) -> float:
        """Return the longest planned gap, or ``tail``."""
        gaps = (b - a for a, b in zip(self.offsets, self.offsets[1:], strict=False))
        return max(max(gaps, default=self.tail), self.tail)

    def next_interval(self, state: PollState, rng: random.Random) -> float:
        """Return the time to the next planned offset after this poke, or ``tail``."""
        offset = self.opens_at_s + state.elapsed
        i = bisect.bisect_right(self.offsets, offset + 1e-9)
        return self.tail if i == len(self.offsets) else max(self.offsets[i] - offset, MIN_INTERVAL)

    def to_config(self) -> dict[str, JSON]:
        """Return the plan as JSON, for logs (the kind is not rebuildable)."""
        return {"kind": self.kind, "offsets": list(self.offsets), "opens_at_s": self.opens_at_s}


@dataclass(frozen=True, slots=True)
class Adaptive(PolicyBase):
    """Poll where the source's history says the data arrives, to a latency target.

    With history (at least ``min_history`` observed waits and a scheduled time), the first
    window polls by the plan of :mod:`.planner`: intervals of ``target_latency_s`` where
    arrival is likely, up to ``max_interval`` elsewhere, so that at the ``quantile`` of
    arrivals detection comes at most ``target_latency_s`` late; the model and the ETA are
    those of :mod:`.model`.  Otherwise, and in re-opened windows, it polls like
    ``fallback`` (by default a constant ``target_latency_s``).

    The cold start earns its savings: a model plans only once it has foreseen the recent
    arrivals it was not fitted on (:meth:`Knowledge.trusted`), and the share of arrivals the
    plan may leave to sparse polling grows with the evidence, ``SAFETY x (1 - quantile) x
    min(1, n / trust_from)`` for ``n`` observations: a short history has not seen its tails,
    and a plan from it would poll them sparsely.

    :param target_latency_s: how late after arrival detection may be, at ``quantile``.
    :param quantile: the share of arrivals the target holds for, in (0, 1).
    :param max_interval: the longest interval, >= ``target_latency_s``.
    :param fallback: the policy of the cold start; ``None``: ``Constant(target_latency_s)``.
    :param half_life_days: recency weighting of the history (:class:`~.model.Learning`).
    :param timezone: the DAG's timezone, for weekday and hour patterns.
    :param min_history: observed waits needed before the history is used.
    :param dynamic_timeout: end the wait at a deadline learned from the history (see
        :meth:`_deadline`), never later than the static one.
    :param timeout_quantile: the share of arrivals the learned deadline covers (a profile's
        ``reliability``).
    :param timeout_margin: the learned deadline is this multiple of that quantile's offset.
    :param min_timeout_s: the learned deadline comes at least this long after the start.
    :param auto_tune: let the source's history tune the plan's longest interval and the
        deadline, a bounded step at a time, every change recorded in the store's change log
        (:mod:`.tuning`; ``revert_tuning`` undoes the latest).
    :param tune_step: the largest relative change of a tuned value per tuning (0.25: x1.25).
    :param tune_every_s: the least time between two tunings of a source.
    :param trust_from: observations from which the model is used without the cold-start
        check and with the whole lateness budget (``0``: from ``min_history`` on, unchecked).
    """

    kind: ClassVar[str] = "adaptive"
    target_latency_s: float = 60.0
    quantile: float = 0.95
    max_interval_s: float = 3600.0
    fallback: IntervalPolicy | None = None
    half_life_days: float = 90.0
    timezone: str = "UTC"
    min_history: int = 10
    dynamic_timeout: bool = False
    timeout_quantile: float = 0.99
    timeout_margin: float = 1.25
    min_timeout_s: float = 60.0
    auto_tune: bool = False
    tune_step: float = 0.25
    tune_every_s: float = 86_400.0
    trust_from: int = TRUSTED_FROM

    def __post_init__(self) -> None:
        check_seconds(self, "target_latency_s")
        for flag in ("dynamic_timeout", "auto_tune"):
            if not isinstance(getattr(self, flag), bool):
                raise PolicyConfigError(
                    f"Adaptive.{flag} must be True or False, got {getattr(self, flag)!r}"
                )
        step = check_number(self, "tune_step", 0.0)
        if not 0.0 < step <= 1.0:
            raise PolicyConfigError(f"Adaptive.tune_step must be in (0, 1], got {step!r}")
        check_number(self, "tune_every_s", 60.0)
        self._check_trust_from()
        tq = check_number(self, "timeout_quantile", 0.0)
        if not 0.0 < tq < 1.0:
            raise PolicyConfigError(f"Adaptive.timeout_quantile must be in (0, 1), got {tq!r}")
        check_number(self, "timeout_margin", 1.0)
        check_seconds(self, "min_timeout_s")
        check_number(self, "max_interval_s", self.target_latency_s, "target_latency_s")
        q = check_number(self, "quantile", 0.0)
        if not 0.0 < q < 1.0:
            raise PolicyConfigError(f"Adaptive.quantile must be in (0, 1), got {q!r}")
        if self.fallback is not None:
            check_policy(self, "fallback")
        try:
            self.learning  # noqa: B018 - validates half_life_days, timezone, min_history
        except ValueError as exc:
            raise PolicyConfigError(f"Adaptive.{exc}") from exc

    @property
    def learning(self) -> Learning:
        """Return how the history is learned from."""
        return Learning(self.half_life_days, self.timezone, self.min_history)

    def _check_trust_from(self) -> None:
        if type(self.trust_from) is not int or self.trust_from < 0:
            raise PolicyConfigError(
                f"Adaptive.trust_from must be an int >= 0, got {self.trust_from!r}"
            )

    @property
    def rules(self) -> Rules:
        """Return what auto-tuning tunes towards (:mod:`.tuning`)."""
        return Rules(
            self.target_latency_s,
            self.quantile,
            self.max_interval_s,
            self.timeout_quantile,
            self.timeout_margin,
            self.tune_step,
            self.tune_every_s,
            max(self.min_history, 30),
        )

    @property
    def cold(self) -> IntervalPolicy:
        """Return the policy of the cold start."""
        return self.fallback or Constant(self.target_latency_s)

    @property
    def max_interval(self) -> float:
        """Return the longest interval of the plan or the fallback."""
        return max(self.max_interval_s, self.cold.max_interval)

    def next_interval(self, state: PollState, rng: random.Random) -> float:
        """Return the fallback's interval (unbound: no history)."""
        return self.cold.next_interval(state, rng)

    def bind(
        self,
        knowledge: Knowledge | None,
        scheduled_at: float | None,
        opens_at: float,
        closes_at: float,
    ) -> Bound:
        """Return the policy of the window ``[opens_at, closes_at]`` (epoch seconds).

        The fallback when there is no knowledge, no scheduled time, too little history, or
        a model that has not yet foreseen the recent arrivals (:meth:`Knowledge.trusted`).
        """
        if knowledge is None or scheduled_at is None:
            return Bound(self.cold)
        budget = SAFETY * (1.0 - self.quantile)
        if self.trust_from:  # the cold start earns its savings (class docstring)
            if not knowledge.trusted(self.learning, opens_at, budget, self.trust_from):
                return Bound(self.cold)
            budget *= min(1.0, knowledge.count(opens_at) / self.trust_from)
        found_model = knowledge.distribution(self.learning, opens_at, scheduled_at)
        if found_model is None:
            return Bound(self.cold)
        model, dist = found_model
        start = opens_at - scheduled_at
        deadline = self._deadline(dist, scheduled_at, opens_at, closes_at)
        sparse = self.max_interval_s
        tuned = self._tuned(knowledge, opens_at)
        if tuned is not None:
            sparse = min(max(tuned.max_interval_s, self.target_latency_s), self.max_interval_s)
            if tuned.deadline_s is not None:
                at_least = opens_at + self.min_timeout_s
                deadline = min(deadline, max(scheduled_at + tuned.deadline_s, at_least))
        window = (max(start, 0.0), max(deadline - scheduled_at, 0.0))
        # The budget is the source's, spent over its mix of runs (a weekend that mostly
        # stays empty polls sparsely), not each wait's apart: see planner.shared_cutoff.
        mix = knowledge.mix(self.learning, opens_at, scheduled_at)
        cutoff = shared_cutoff(mix, *window, dense=self.target_latency_s, budget=budget)
        found = plan(
            dist, *window, dense=self.target_latency_s, sparse=sparse, budget=budget, cutoff=cutoff
        )
        policy = Planned(tuple(found.offsets), start, sparse)
        eta = Eta.of(dist, max(start, 0.0))
        closes = deadline if deadline < closes_at else None
        return Bound(policy, model.version, eta, found, closes)

    def _tuned(self, knowledge: Knowledge, opens_at: float) -> Setting | None:
        """Return the tuned setting in force when the window opened (``None``: untuned).

        Only changes made before the opening count, so a trigger rebuilt after a restart
        plans with the same setting.
        """
        if not self.auto_tune:
            return None
        return in_effect(knowledge.changes, opens_at, self.tune_every_s).setting

    def _deadline(
        self, dist: Distribution, scheduled_at: float, opens_at: float, closes_at: float
    ) -> float:
        """Return the window's deadline: learned when ``dynamic_timeout``, else ``closes_at``.

        Learned: ``scheduled_at + timeout_margin * Q(timeout_quantile)``, ``Q`` the arrival
        quantile, at least ``min_timeout_s`` after the opening and never past ``closes_at``
        (the static timeout, and Airflow's own trigger timeout above it).  When the history
        cannot say when that share of the data arrives, the static deadline stands.
        """
        if not self.dynamic_timeout:
            return closes_at
        quantile = dist.quantile(self.timeout_quantile)
        if quantile is None:
            return closes_at
        learned = scheduled_at + self.timeout_margin * quantile
        return min(max(learned, opens_at + self.min_timeout_s), closes_at)


@dataclass(frozen=True, slots=True)
class RecentAverage(PolicyBase):
    """The exercise's rule: the mean of the last ``window`` successful waits, divided by 4.

    Formula: ``clamp(mean(waits[-window:]) / 4, base_interval, max_interval)``, constant
    through the wait; ``base_interval`` with no successful wait on record.

    :param base_interval: the shortest interval, and the cold start's.
    :param max_interval_s: the longest interval, >= ``base_interval``.
    :param window: successful waits averaged.
    """

    kind: ClassVar[str] = "recent_average"
    base_interval: float = 60.0
    max_interval_s: float = 3600.0
    window: int = 10

    def __post_init__(self) -> None:
        check_seconds(self, "base_interval")
        check_number(self, "max_interval_s", self.base_interval, "base_interval")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise PolicyConfigError(
                f"RecentAverage.window must be an int >= 1, got {self.window!r}"
            )

    @property
    def max_interval(self) -> float:
        """Return ``max_interval_s``."""
        return self.max_interval_s

    def next_interval(self, state: PollState, rng: random.Random) -> float:
        """Return ``base_interval`` (unbound: no history)."""
        return self.base_interval

    def bind(
        self,
        knowledge: Knowledge | None,
        scheduled_at: float | None,
        opens_at: float,
        closes_at: float,
    ) -> Bound:
        """Return the constant interval the recent waits give (the class formula)."""
        waits = list(knowledge.waits[-self.window :]) if knowledge is not None else []
        if not waits:
            return Bound(Constant(self.base_interval))
        interval = min(max(sum(waits) / len(waits) / 4.0, self.base_interval), self.max_interval_s)
        return Bound(Constant(interval), f"avg{len(waits)}")


LEARNED: Final = (Adaptive, RecentAverage)
"""The policy classes that bind to a source's history."""
