"""The windows of a wait: the first one, then the re-opened ones.  Pure arithmetic.

Window 0 opens at the wait's anchor and closes ``timeout`` seconds later.  With
re-opening, window ``k`` (1 <= k <= ``max_reopens``) opens ``reopen_backoff`` interval ``k``
after window ``k - 1`` closed, and lasts ``timeout`` again.  The pauses come from the
schedule of the ``reopen_backoff`` policy under the key ``f"{key}#reopen"``, so every process
that knows (anchor, timeout, policy, key) computes the same windows: a trigger rebuilt after a
restart finds which window it is in, or which pause, from the time alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .protocol import IntervalPolicy
from .schedule import interval_at
from .state import PollState

_ROUNDING_MARGIN_S: Final = 0.001


@dataclass(frozen=True, slots=True)
class Window:
    """One period of polling: ``[opens_at, closes_at]``, epoch seconds."""

    index: int
    opens_at: float
    closes_at: float


def plan(
    anchor: float,
    timeout: float,
    *,
    max_reopens: int = 0,
    reopen_backoff: IntervalPolicy | None = None,
    key: str = "",
) -> tuple[Window, ...]:
    """Return every window of a wait, in order (one when ``max_reopens`` is 0).

    :param anchor: when window 0 opens (epoch seconds).
    :param timeout: the length of each window, seconds.
    :param max_reopens: how many windows follow the first.
    :param reopen_backoff: the pause policy; required when ``max_reopens`` > 0.
    :param key: the wait's seed key (jittered pauses are reproducible per wait).
    """
    found = [Window(0, anchor, anchor + timeout)]
    if max_reopens < 0:
        raise ValueError(f"max_reopens must be >= 0, got {max_reopens!r}")
    if max_reopens and reopen_backoff is None:
        raise ValueError("plan() needs reopen_backoff when max_reopens > 0")
    state = PollState()
    for index in range(1, max_reopens + 1):
        assert reopen_backoff is not None
        pause = interval_at(reopen_backoff, f"{key}#reopen", state)
        state = state.advance(pause)
        opens = found[-1].closes_at + pause
        found.append(Window(index, opens, opens + timeout))
    return tuple(found)


def span_bound(timeout: float, max_reopens: int, reopen_backoff: IntervalPolicy | None) -> float:
    """Return an upper bound of ``last closes_at - anchor`` for any key.

    ``(max_reopens + 1) * timeout + max_reopens * reopen_backoff.max_interval``, plus one
    millisecond when there are re-openings, so that float rounding of :func:`plan`'s
    step-by-step sums never exceeds it: what an operator hands Airflow as the trigger timeout
    before it knows the task instance.
    """
    if not (reopen_backoff and max_reopens):
        return timeout
    pauses = max_reopens * reopen_backoff.max_interval
    return (max_reopens + 1) * timeout + pauses + _ROUNDING_MARGIN_S


def current(windows: tuple[Window, ...], now: float) -> Window | None:
    """Return the window that is open at ``now`` or opens next; ``None`` once all closed."""
    for window in windows:
        if now < window.closes_at:
            return window
    return None
