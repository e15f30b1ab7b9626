from __future__ import annotations

import math
import re

import pytest

from waitwise.triggers.policy import PollState


def test_first_poke_is_attempt_one_at_time_zero():
    assert PollState() == PollState(attempt=1, elapsed=0.0, previous=0.0)


@pytest.mark.parametrize(
    ("state", "interval", "expected"),
    [
        (PollState(), 2.5, PollState(2, 2.5, 2.5)),
        (PollState(2, 2.5, 2.5), 4.0, PollState(3, 6.5, 4.0)),
        (PollState(10, 100.0, 30.0), 0.01, PollState(11, 100.01, 0.01)),
    ],
)
def test_advance_moves_to_the_next_poke(state, interval, expected):
    assert state.advance(interval) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attempt": 0}, "PollState.attempt must be >= 1, got 0"),
        ({"elapsed": -1.0}, "PollState.elapsed must be >= 0, got -1.0"),
        ({"elapsed": math.nan}, "PollState.elapsed must be >= 0, got nan"),
        ({"previous": -0.5}, "PollState.previous must be >= 0, got -0.5"),
        ({"previous": math.nan}, "PollState.previous must be >= 0, got nan"),
    ],
)
def test_rejects_impossible_states(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        PollState(**kwargs)


def test_is_frozen():
    with pytest.raises(AttributeError):
        PollState().attempt = 2  # type: ignore[misc]
