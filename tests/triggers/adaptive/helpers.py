"""Arrivals drawn from known distributions, observed as a poller would observe them."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from waitwise.triggers.adaptive import Observation

DAY = 86_400.0
T0 = 1_700_006_400.0  # 2023-11-15 00:00 UTC, a Wednesday


def polled(
    arrivals: list[float | None], every: float, *, start: float = T0, deadline: float = 6 * 3600
) -> list[Observation]:
    """Observe one arrival a day by polling every ``every`` seconds from offset 0."""
    seen = []
    for day, arrival in enumerate(arrivals):
        at = start + day * DAY
        if arrival is None or arrival > deadline:
            last = math.floor(deadline / every) * every
            seen.append(Observation(at, last, math.inf, at + last))
            continue
        by = math.ceil(max(arrival, 0.0) / every) * every
        seen.append(Observation(at, max(by - every, 0.0), by, at + by))
    return seen


def normal_days(
    n: int, mean: float, sd: float, seed: int = 0, shift: Callable[[int], float] = lambda d: 0.0
) -> list[float | None]:
    rng = random.Random(seed)
    return [max(rng.gauss(mean + shift(d), sd), 0.0) for d in range(n)]
