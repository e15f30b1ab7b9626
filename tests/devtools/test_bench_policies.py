"""The policies benchmark's scenario generators, oracle, statistics and tables (not its results)."""

from __future__ import annotations

import itertools
import statistics
from datetime import timedelta

import pytest

from devtools.bench import policies as bench
from waitwise.triggers.adaptive import Arrival
from waitwise.triggers.simulate import scenarios

N = 4_000


def _arrived(waits: list[Arrival]) -> list[float]:
    return [w.arrived_after_s for w in waits if w.arrived_after_s is not None]


@pytest.mark.parametrize("case", bench.CASES, ids=lambda c: f"{c.scenario}-{c.source}")
def test_generators_are_seeded(case: bench.Case) -> None:
    assert case.generate(200, 7, 0) == case.generate(200, 7, 0)
    assert case.generate(200, 7, 0) != case.generate(200, 8, 0)


@pytest.mark.parametrize("case", bench.CASES, ids=lambda c: f"{c.scenario}-{c.source}")
def test_warm_history_is_other_draws_scheduled_just_before_the_measured_waits(
    case: bench.Case,
) -> None:
    history, measured = bench.warm_history(case, 1), bench.measured_waits(case, 50, 1)
    assert len(history) == bench.WARM_WAITS
    period = measured[1].scheduled_at - measured[0].scheduled_at
    assert measured[0].scheduled_at - history[-1].scheduled_at == period
    assert _arrived(history[-50:]) != _arrived(measured)


@pytest.mark.parametrize("source", scenarios.SOURCES, ids=lambda s: s.name)
def test_uniform_lands_in_its_range_hourly(source: scenarios.UniformSource) -> None:
    waits = scenarios.uniform(source, N, 3)
    landed = _arrived(waits)
    assert all(source.low_s <= a <= source.high_s for a in landed)
    assert len(landed) / N == pytest.approx(1.0 - source.never, abs=0.02)
    assert {w.scheduled_at - v.scheduled_at for v, w in itertools.pairwise(waits)} == {
        timedelta(hours=1)
    }
    assert {(w.started_after_s, w.timeout_s) for w in waits} == {(0.0, source.timeout_s)}


def test_partner_never_arrives_for_a_fifth_of_the_waits() -> None:
    waits = scenarios.uniform(scenarios.PARTNER, N, 4)
    assert sum(w.arrived_after_s is None for w in waits) / N == pytest.approx(0.2, abs=0.02)


def _by_weekday(waits: list[Arrival], days: set[int]) -> list[Arrival]:
    return [w for w in waits if w.scheduled_at.weekday() in days]


def test_daily_weekends_mostly_never_arrive_and_weekdays_always_do() -> None:
    waits = scenarios.daily(N, 5)
    weekend, weekdays = _by_weekday(waits, {5, 6}), _by_weekday(waits, {0, 1, 2, 3, 4})
    never = sum(w.arrived_after_s is None for w in weekend) / len(weekend)
    assert never == pytest.approx(0.85, abs=0.03)
    assert all(w.arrived_after_s is not None for w in weekdays)
    assert {(w.scheduled_at.hour, w.started_after_s, w.timeout_s) for w in waits} == {
        (6, 0.0, 6 * 3600.0)
    }


def test_daily_wednesdays_are_half_an_hour_later_and_a_twentieth_is_late() -> None:
    waits = scenarios.daily(N, 6)
    wednesday = statistics.median(_arrived(_by_weekday(waits, {2})))
    others = statistics.median(_arrived(_by_weekday(waits, {0, 1, 3, 4})))
    assert wednesday - others == pytest.approx(1800.0, abs=120.0)
    assert others == pytest.approx(7200.0, abs=120.0)
    weekdays = _arrived(_by_weekday(waits, {0, 1, 3, 4}))
    late = sum(a > 7200.0 + 3600.0 for a in weekdays) / len(weekdays)
    assert late == pytest.approx(0.05, abs=0.015)


def test_drift_moves_the_arrival_and_the_start_three_minutes_a_day() -> None:
    waits = scenarios.drift(N, 7)
    assert all(w.started_after_s == pytest.approx(180.0 * scenarios.day_number(w)) for w in waits)
    early, late = _arrived(waits[:200]), _arrived(waits[-200:])
    days = scenarios.day_number(waits[-1]) - scenarios.day_number(waits[199])
    per_day = (statistics.median(late) - statistics.median(early)) / days
    assert per_day == pytest.approx(180.0, abs=5.0)
    ahead = statistics.median(
        w.arrived_after_s - w.started_after_s for w in waits if w.arrived_after_s
    )
    assert ahead == pytest.approx(7200.0, abs=120.0)
    assert all(w.arrived_after_s is not None for w in waits)


def test_outage_four_days_of_every_sixty_never_arrive() -> None:
    waits = scenarios.outage(600, 8)
    out = {scenarios.day_number(w) for w in waits if w.arrived_after_s is None}
    assert out == {d for d in range(600) if d % 60 >= 56}
    assert {w.scheduled_at.weekday() for w in waits} == set(range(7))


def test_earliest_is_mean_less_four_sd_or_none() -> None:
    wednesday = next(w for w in scenarios.daily(14, 1) if w.scheduled_at.weekday() == 2)
    monday = scenarios.daily(1, 1)[0]
    assert scenarios.daily_earliest(scenarios.DAILY, wednesday) == 2.5 * 3600 - 3600
    assert scenarios.daily_earliest(scenarios.DAILY, monday) == 3600.0
    outage_day = scenarios.outage(1, 1, first=57)[0]
    assert scenarios.daily_earliest(scenarios.OUTAGE, outage_day) is None
    day_ten = scenarios.drift(1, 1, first=10)[0]
    assert scenarios.daily_earliest(scenarios.DRIFT, day_ten) == 1800.0 + 3600.0
    assert (
        scenarios.uniform_earliest(
            scenarios.CUSTOMER, scenarios.uniform(scenarios.CUSTOMER, 1, 1)[0]
        )
        == 300.0
    )


def _wait(arrival: float | None, start: float = 0.0, timeout: float = 600.0) -> Arrival:
    return Arrival(scenarios.ORIGIN, arrival, timeout, start)


@pytest.mark.parametrize(
    ("wait", "earliest", "offsets"),
    [
        (_wait(130.0), 100.0, [0.0, 100.0, 160.0]),
        (_wait(50.0), 100.0, [0.0, 100.0]),
        (_wait(0.0), 100.0, [0.0]),
        (_wait(130.0, start=200.0), 100.0, [200.0]),
        (_wait(250.0, start=200.0), 100.0, [200.0, 260.0]),
        (_wait(None), None, [0.0, 600.0]),
        (_wait(None, timeout=250.0), 100.0, [0.0, 100.0, 160.0, 220.0, 250.0]),
        (_wait(700.0), 500.0, [0.0, 500.0, 560.0, 600.0]),
    ],
)
def test_oracle_pokes_at_start_earliest_then_every_minute_to_the_deadline(
    wait: Arrival, earliest: float | None, offsets: list[float]
) -> None:
    assert bench.oracle_offsets(wait, earliest) == offsets


def test_run_oracle_scores_latency_and_misses() -> None:
    waits = [_wait(130.0), _wait(None), _wait(700.0)]
    outcome = bench.run_oracle(waits, lambda w: 100.0)
    assert outcome.pokes == (3, 11, 11)
    assert outcome.latencies == (30.0, None, None)


def test_percentile_interpolates() -> None:
    assert bench.percentile([], 50) is None
    assert bench.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert bench.percentile([0.0, 10.0], 95) == pytest.approx(9.5)
    assert bench.percentile([5.0], 99) == 5.0


def _outcome(
    label: str,
    pokes: list[int],
    latencies: list[float | None],
    etas: list[tuple[float, float] | None] | None = None,
) -> bench.Outcome:
    etas = etas or [None] * len(pokes)
    return bench.Outcome(label, tuple(pokes), tuple(latencies), tuple(etas), 1.25)


def _result(scenario: str, source: str | None, **outcomes: bench.Outcome) -> bench.CaseResult:
    case = next(c for c in bench.CASES if c.scenario == scenario)
    waits = (_wait(100.0), _wait(200.0), _wait(None), _wait(900.0))
    fixed = _outcome(bench.FIXED_60, [4, 5, 11, 12], [20.0, 40.0, None, None])
    found = {bench.FIXED_60: fixed, **{o.label: o for o in outcomes.values()}}
    return bench.CaseResult(
        bench.Case(scenario, source, case.generate, case.earliest, case.truths), waits, found
    )


def test_missed_and_eta_coverage() -> None:
    fixed = _outcome(bench.FIXED_60, [1, 1, 1], [1.0, 2.0, None])
    other = _outcome("x", [1, 1, 1], [None, 2.0, None], [(0.0, 50.0), (0.0, 50.0), None])
    waits = [_wait(10.0), _wait(100.0), _wait(None)]
    assert bench.missed(other, fixed) == 1
    assert bench.eta_coverage(other, waits) == (0.0, 1)
    assert bench.eta_coverage(fixed, waits) == (None, 0)
    assert bench.arrived_in_time([*waits, _wait(900.0)]) == 2


def test_table_has_a_row_per_policy_and_ratios_to_fixed_60() -> None:
    adaptive = _outcome("adaptive", [2, 2, 6, 6], [30.0, 60.0, None, None])
    text = bench.table([_result("daily", None, a=adaptive)])
    lines = text.splitlines()
    assert lines[0] == "| " + " | ".join(bench.COLUMNS) + " |"
    assert len(lines) == 4
    assert lines[3].split(" | ")[:4] == ["| adaptive", "4.00", "0.50x", "45.0 s"]
    assert lines[3].endswith("| 2 / 2 | 0 | 1.2 |")


def test_multi_source_table_has_a_source_column_and_sub_rows() -> None:
    results = [_result("uniform", name) for name in ("financial", "customer")]
    lines = bench.table(results).splitlines()
    assert lines[0].startswith("| policy | source | pokes/wait")
    assert [line.split(" | ")[1] for line in lines[2:]] == ["financial", "customer"]


def _adaptive_pair(warm_pokes: int, warm_latency: float) -> dict[str, bench.Outcome]:
    return {
        "warm": _outcome(bench.ADAPTIVE_WARM, [warm_pokes] * 4, [warm_latency, 40.0, None, None]),
        "cold": _outcome(bench.ADAPTIVE_COLD, [4, 5, 11, 11], [20.0, 40.0, None, None]),
    }


def test_goals_pass_and_fail_on_their_thresholds() -> None:
    passing = bench.goals(_result("daily", None, **_adaptive_pair(1, 20.0)))
    assert [g.passed for g in passing] == [True, True, True]
    failing = bench.goals(_result("daily", None, **_adaptive_pair(2, 20.0)))
    assert [g.passed for g in failing] == [False, True, True]
    assert str(failing[0]).startswith("- FAIL daily: adaptive warm pokes <= 0.2x fixed 60 s")
    slow = bench.goals(_result("drift", None, **_adaptive_pair(1, 400.0)))
    assert not slow[0].passed


def test_outage_has_no_poke_goal_and_counts_adaptive_misses() -> None:
    pair = _adaptive_pair(1, 20.0)
    pair["cold"] = _outcome(bench.ADAPTIVE_COLD, [1] * 4, [None, 40.0, None, None])
    found = bench.goals(_result("outage", None, **pair))
    assert [g.passed for g in found] == [True, False]
    assert "adaptive cold missed 1" in found[1].detail


def test_notes_report_eta_coverage_and_the_cold_start() -> None:
    lines = bench.notes(_result("daily", None, **_adaptive_pair(1, 20.0)))
    assert len(lines) == 3
    assert lines[2].startswith(f"- adaptive cold, first {bench.COLD_WAITS} waits: 7.75 pokes/wait")
