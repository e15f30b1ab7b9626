"""The health score: its formula on hand-made histories."""

from __future__ import annotations

from typing import Any

import pytest

from tests.triggers.store.fakes import make_record
from waitwise.triggers.adaptive.health import WEIGHTS, health
from waitwise.triggers.breaker import BreakerSnapshot, BreakerState
from waitwise.triggers.store import WaitOutcome, WaitRecord

S = 1_700_000_000.0


def waits(outcomes: str, wait_s: list[float] | None = None, **changes: Any) -> list[WaitRecord]:
    """One record per letter: s(uccess), t(imeout), k (skipped), e(rror), c(ancelled)."""
    kinds = {"s": WaitOutcome.SUCCESS, "t": WaitOutcome.TIMEOUT, "k": WaitOutcome.SKIPPED}
    kinds |= {"e": WaitOutcome.ERROR, "c": WaitOutcome.CANCELLED}
    out = []
    for i, letter in enumerate(outcomes):
        start = S + i * 3600
        took = (wait_s or [60.0] * len(outcomes))[i]
        success = kinds[letter] is WaitOutcome.SUCCESS
        out.append(
            make_record(
                i,
                started_at=start,
                ended_at=start + took,
                outcome=kinds[letter],
                detected_at=start + took if success else None,
                **changes,
            )
        )
    return out


def test_a_source_on_target_with_steady_waits_and_a_closed_breaker_scores_100() -> None:
    found = health(waits("s" * 20), target=0.95, breaker=BreakerSnapshot("s"))
    assert found is not None
    assert (found.score, found.success_rate, found.trend, found.breaker) == (
        100,
        1.0,
        1.0,
        "closed",
    )


def test_a_source_that_always_times_out_with_an_open_breaker_scores_0_or_near() -> None:
    snapshot = BreakerSnapshot("s", state=BreakerState.OPEN, opened_at=S, consecutive_failures=5)
    found = health(waits("t" * 20), target=0.95, breaker=snapshot)
    assert found is not None
    assert found.score == round(100 * WEIGHTS["trend"])  # only "no successes to trend" is left
    assert found.parts == {"success": 0.0, "timeouts": 0.0, "trend": 1.0, "breaker": 0.0}


def test_timeouts_within_the_targets_allowance_cost_only_the_success_part() -> None:
    found = health(waits("s" * 19 + "t"), target=0.95)
    assert found is not None
    assert found.parts["timeouts"] == 1.0
    assert found.parts["success"] == pytest.approx(0.95 / 0.95)
    assert found.score == 100


def test_waits_that_doubled_cost_nine_points() -> None:
    found = health(waits("s" * 20, [60.0] * 10 + [120.0] * 10), target=0.9)
    assert found is not None
    assert found.trend == 2.0
    assert found.score == 91  # W = 1 - (2 - 1.2) / 1.8, x 20 points


def test_only_the_newest_window_of_final_outcomes_counts() -> None:
    history = waits("t" * 30 + "c" * 5 + "s" * 10)
    found = health(history, target=0.5, window=10)
    assert found is not None
    assert (found.waits, found.success_rate) == (10, 1.0)
    assert health(waits("ccc"), target=0.5) is None


@pytest.mark.parametrize(("target", "window"), [(0.0, 5), (1.5, 5), (0.9, 0)])
def test_bad_settings_are_refused(target: float, window: int) -> None:
    with pytest.raises(ValueError, match=r"target|window"):
        health(waits("s"), target=target, window=window)
