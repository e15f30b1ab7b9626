"""Records become censored arrival intervals; bad values are refused, naming the field."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from tests.triggers.store.fakes import make_record
from waitwise.triggers.adaptive import Observation, from_records, observe
from waitwise.triggers.adaptive.observations import columns
from waitwise.triggers.store import WaitOutcome, WaitRecord

S = 1_700_000_000.0
K = S + 100  # when the records were written (ended_at): what a wait can know


def rec(i: int = 1, **changes: Any) -> WaitRecord:
    base = {"scheduled_at": S, "started_at": S, "ended_at": S + 100, "outcome": WaitOutcome.SUCCESS}
    return make_record(i, **{**base, **changes})


def test_a_later_poke_bounds_the_arrival_on_both_sides() -> None:
    seen = observe(rec(last_miss_at=S + 40, first_seen_at=S + 60))
    assert seen == Observation(S, 40.0, 60.0, K)


def test_a_hit_on_the_first_poke_is_left_censored() -> None:
    assert observe(rec(first_seen_at=S + 5)) == Observation(S, 0.0, 5.0, K)


@pytest.mark.parametrize("outcome", [WaitOutcome.TIMEOUT, WaitOutcome.SKIPPED, WaitOutcome.ERROR])
def test_a_wait_that_never_saw_the_data_is_right_censored_at_its_last_miss(
    outcome: WaitOutcome,
) -> None:
    seen = observe(rec(outcome=outcome, last_miss_at=S + 300))
    assert seen == Observation(S, 300.0, math.inf, K)


@pytest.mark.parametrize(
    "changes",
    [
        {"scheduled_at": None, "first_seen_at": S + 5},
        {"outcome": WaitOutcome.REOPENED, "last_miss_at": S + 5},
        {"outcome": WaitOutcome.CANCELLED, "last_miss_at": S + 5},
        {"outcome": WaitOutcome.BREAKER_OPEN},
        {"outcome": WaitOutcome.TIMEOUT},  # schema 1: no last miss, nothing known
        {"ended_at": S + 500 * 86_400.0, "first_seen_at": S + 5},  # absurdly far
    ],
)
def test_records_that_say_nothing_about_arrival_are_left_out(changes: dict[str, Any]) -> None:
    assert observe(rec(**changes)) is None


def test_data_there_before_the_scheduled_time_arrived_at_offset_0() -> None:
    assert observe(rec(started_at=S - 50, first_seen_at=S - 10)) == Observation(S, 0.0, 0.0, K)


def test_the_tries_of_one_task_instance_are_one_arrival() -> None:
    first = rec(1, try_number=1, outcome=WaitOutcome.TIMEOUT, last_miss_at=S + 300)
    second = rec(1, try_number=2, last_miss_at=S + 320, first_seen_at=S + 380)
    other = rec(2, first_seen_at=S + 10)
    assert from_records([second, other, first]) == [
        Observation(S, 0.0, 10.0, K),
        Observation(S, 320.0, 380.0, K),
    ]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((math.nan, 0.0, 1.0), "scheduled_at"),
        ((-1.0, 0.0, 1.0), "scheduled_at"),
        ((S, -1.0, 1.0), "after_s"),
        ((S, math.nan, 1.0), "after_s"),
        ((S, 5.0, 4.0), "by_s"),
        ((S, 5.0, math.nan), "by_s"),
        ((S, 5.0, 1e12), "by_s"),
        ((S, 5.0, 6.0, math.nan), "known_at"),
    ],
)
def test_bad_observations_are_refused_naming_the_field(args: tuple[float, ...], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Observation(*args)


def test_columns_say_what_the_observations_say() -> None:
    rng = random.Random(4)
    history = []
    for i in range(200):
        run = i // 2  # two tries of most runs
        at = S + run * 86_400.0
        miss = at + rng.uniform(0, 100)
        outcome = rng.choice([WaitOutcome.SUCCESS, WaitOutcome.TIMEOUT, WaitOutcome.CANCELLED])
        seen = miss + rng.uniform(0, 50) if outcome is WaitOutcome.SUCCESS else None
        history.append(
            make_record(
                run,
                try_number=i % 2 + 1,
                scheduled_at=at,
                started_at=at,
                ended_at=(seen or miss) + i % 2,
                outcome=outcome,
                last_miss_at=miss,
                first_seen_at=seen,
            )
        )
    objects = sorted(from_records(history), key=lambda o: o.known_at)
    arrays = [column.tolist() for column in columns(history)]
    assert [(o.scheduled_at, o.after_s, o.by_s, o.known_at) for o in objects] == list(
        zip(*arrays, strict=True)
    )


def test_a_success_read_twice_counts_once_in_the_recent_waits() -> None:
    from waitwise.triggers.adaptive import Knowledge

    records = [make_record(i, last_miss_at=None) for i in range(3)]
    knowledge = Knowledge.from_records([*records, records[1]])  # a segment and a loose copy
    assert len(knowledge.waits) == 3
