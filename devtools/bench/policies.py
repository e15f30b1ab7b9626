"""Adaptive polling against fixed, backoff and jitter policies, on simulated arrivals.

``python -m devtools.bench.policies`` (``--quick``: 2,000 waits per scenario and a refit every 5
waits, not 10; ``--waits N``, ``--refit-every K``, ``--seed S``, ``--scenario NAME``).  No
Airflow and no real time: every wait is replayed by :func:`waitwise.triggers.adaptive.replay`,
the trigger's own binding and scheduling code, so this runs anywhere the package imports.

Scenarios: pure generators of :class:`~waitwise.triggers.adaptive.Arrival`, seeded with
``random.Random(seed)``.  Wait ``i`` of a generator called with ``first`` is number
``first + i`` on the scenario's time line, which starts at :data:`ORIGIN` (a Monday): one
wait an hour for ``uniform``, one a day at 06:00 UTC for the others.

- ``uniform`` (:func:`uniform`): the exercise's three sources, each its own replay:
  ``financial`` lands 10-60 s after the start (timeout 5 min), ``customer`` 5-30 min
  (timeout 45 min), ``partner`` 30 min-4 h or, for 20% of the waits, never (timeout 4 h 30).
- ``daily`` (:func:`daily`): Normal(2 h, 15 min) after the start, 30 min later on
  Wednesdays, 85% of weekend waits never land, 5% of the others land 1-3 h late; timeout 6 h.
- ``drift`` (:func:`drift`): ``daily`` without the weekly pattern, 3 min later every day;
  the sensor's start drifts with it (it always starts 2 h before the typical arrival).
- ``outage`` (:func:`outage`): ``daily`` without the weekly pattern, and the last 4 days of
  every 60 nothing lands at all.

Measured waits and history: the measured block is numbers ``WARM_WAITS ..`` of the time
line; ``adaptive warm`` also gets numbers ``0 .. WARM_WAITS - 1`` as its history, drawn by
the same generator with another seed (``--seed + HISTORY_SEED``), i.e. the waits just before
the measured ones.  Every other policy starts from nothing.

Policies, all at a 60 s latency target: constant 30 / 60 / 300 s, Airflow's exponential
backoff, linear, exponential, full jitter over that exponential, the exercise's recent-average
rule, ``adaptive`` cold (no history) and warm, and an oracle.  The oracle is no replay policy:
it knows each wait's earliest possible arrival (the generator's parameters: the mean less
:data:`SD_RANGE` standard deviations, ``None`` when the data cannot land that day) and pokes
at the start, at ``max(start, earliest)``, then every 60 s until it sees the data or reaches
the deadline, where its last poke is.

Output: a markdown table per scenario (latency percentiles over detected waits; "missed that
fixed 60 s detects" counts waits fixed 60 s detected and the policy did not), the adaptive
rows' ETA coverage and the cold start's first :data:`COLD_WAITS` waits beside fixed 60 s, and
a goals block with PASS / FAIL.  Progress and each replay's wall time go to stderr.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from devtools.bench.truth import Mix, Truth, daily_truths, planned_pokes, uniform_truths
from waitwise.triggers.adaptive import Arrival, Replayed, replay
from waitwise.triggers.policy import (
    AirflowExponential,
    Constant,
    Exponential,
    FullJitter,
    IntervalPolicy,
    Linear,
)
from waitwise.triggers.simulate.scenarios import (
    DAILY,
    DRIFT,
    OUTAGE,
    SOURCES,
    DailyPattern,
    daily,
    daily_earliest,
    drift,
    outage,
    uniform,
    uniform_earliest,
)

REPO = Path(__file__).resolve().parents[2]

WAITS = 10_000
QUICK_WAITS = 2_000
WARM_WAITS = 1_000
"""Waits in the warm history block, scheduled just before the measured ones."""
HISTORY_SEED = 1_000_003
"""Added to ``--seed`` for the warm history block: other draws than the measured waits."""
REFIT_EVERY = 10
QUICK_REFIT_EVERY = 5
TARGET_S = 60.0
MAX_INTERVAL_S = 3600.0
ORACLE_INTERVAL_S = 60.0
COLD_WAITS = 300
"""The cold start's first waits, compared with fixed 60 s."""

FIXED_60 = "fixed 60 s"
ADAPTIVE_COLD = "adaptive cold"
ADAPTIVE_WARM = "adaptive warm"
ORACLE = "oracle"
TRUE_MODEL = "planned, true model"

Generator = Callable[[int, int, int], list[Arrival]]
"""``(count, seed, first) -> waits`` of one scenario source."""
Earliest = Callable[[Arrival], float | None]
"""The earliest possible arrival offset of a wait, ``None`` when it cannot land."""
Truths = Callable[[Arrival], tuple[Truth, Mix]]
"""A wait's true arrival distribution and its source's true mix (:mod:`.truth`)."""


# --- scenarios --------------------------------------------------------------------------
# The generators live in the package (one generator for this bench, the demo and
# `waitwise simulate`): waitwise.triggers.simulate.scenarios.


@dataclass(frozen=True, slots=True)
class Case:
    """One replayed source of a scenario: its generator and its oracle's knowledge."""

    scenario: str
    source: str | None
    generate: Generator
    earliest: Earliest
    truths: Truths


SCENARIOS: dict[str, Callable[..., list[Arrival]]] = {
    "uniform": uniform,
    "daily": daily,
    "drift": drift,
    "outage": outage,
}
DAILY_CASES = (("daily", daily, DAILY), ("drift", drift, DRIFT), ("outage", outage, OUTAGE))
"""The daily scenarios: name, generator, pattern (the oracle's and the truth's knowledge)."""


def _daily_case(name: str, generate: Generator, pattern: DailyPattern) -> Case:
    return Case(
        name,
        None,
        generate,
        functools.partial(daily_earliest, pattern),
        functools.partial(daily_truths, pattern),
    )


CASES: tuple[Case, ...] = (
    *(
        Case(
            "uniform",
            s.name,
            functools.partial(uniform, s),
            functools.partial(uniform_earliest, s),
            functools.partial(uniform_truths, s),
        )
        for s in SOURCES
    ),
    *(_daily_case(name, generate, pattern) for name, generate, pattern in DAILY_CASES),
)


# --- policies and replays ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contender:
    """A policy in the table: how it is replayed."""

    label: str
    policy: IntervalPolicy | str
    learn: bool = False
    warm: bool = False


def contenders() -> tuple[Contender, ...]:
    """Return the replayed policies, in table order (the oracle comes last)."""
    exponential = Exponential(initial=TARGET_S, factor=2.0, cap=MAX_INTERVAL_S)
    return (
        Contender("fixed 30 s", Constant(30.0)),
        Contender(FIXED_60, Constant(60.0)),
        Contender("fixed 300 s", Constant(300.0)),
        Contender("airflow exponential", AirflowExponential(TARGET_S, MAX_INTERVAL_S)),
        Contender("linear", Linear(TARGET_S, TARGET_S, MAX_INTERVAL_S)),
        Contender("exponential", exponential),
        Contender("full jitter", FullJitter(inner=exponential)),
        Contender("recent average", "recent_average", learn=True),
        Contender(ADAPTIVE_COLD, "adaptive", learn=True),
        Contender(ADAPTIVE_WARM, "adaptive", learn=True, warm=True),
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one policy did on one source's waits, wait by wait.

    :param label: the policy's row label.
    :param pokes: pokes per wait.
    :param latencies: detection latency per wait, ``None`` when not detected.
    :param etas: the 80% ETA interval at each wait's start, ``None`` when there was none.
    :param wall_s: the wall time the replay took.
    """

    label: str
    pokes: tuple[int, ...]
    latencies: tuple[float | None, ...]
    etas: tuple[tuple[float, float] | None, ...]
    wall_s: float

    @classmethod
    def of(cls, label: str, results: Sequence[Replayed], wall_s: float) -> Outcome:
        """Return the outcome of a replay's results."""
        return cls(
            label,
            tuple(r.pokes for r in results),
            tuple(r.latency_s for r in results),
            tuple(_eta(r) for r in results),
            wall_s,
        )

    @property
    def detected(self) -> tuple[bool, ...]:
        """Return whether each wait was detected."""
        return tuple(latency is not None for latency in self.latencies)


def _eta(result: Replayed) -> tuple[float, float] | None:
    if result.eta_low_s is None or result.eta_high_s is None:
        return None
    return (result.eta_low_s, result.eta_high_s)


def run_contender(
    contender: Contender,
    waits: Sequence[Arrival],
    history: Sequence[Arrival],
    refit_every: int,
) -> Outcome:
    """Replay ``waits`` with one policy (jitter seed 0) and time it."""
    started = time.perf_counter()
    results = replay(
        waits,
        contender.policy,
        history=history if contender.warm else (),
        learn=contender.learn,
        target_latency_s=TARGET_S,
        max_interval_s=MAX_INTERVAL_S,
        seed=0,
        refit_every=refit_every,
    )
    return Outcome.of(contender.label, results, time.perf_counter() - started)


def oracle_offsets(wait: Arrival, earliest: float | None) -> list[float]:
    """Return the oracle's pokes: the start, ``max(start, earliest)``, then every 60 s.

    It stops at the poke that sees the data, or at the deadline (always poked); with
    ``earliest=None`` (the data cannot land) it pokes at the start and the deadline.
    """
    start, deadline, arrival = wait.started_after_s, wait.deadline_s, wait.arrived_after_s
    offsets = [start]
    following = deadline if earliest is None else max(start, earliest)
    if following <= start:
        following = start + ORACLE_INTERVAL_S
    while not (arrival is not None and offsets[-1] >= arrival) and offsets[-1] < deadline:
        offsets.append(min(following, deadline))
        following = offsets[-1] + ORACLE_INTERVAL_S
    return offsets


def run_oracle(waits: Sequence[Arrival], earliest: Earliest) -> Outcome:
    """Return the oracle's outcome (:func:`oracle_offsets` for every wait)."""
    started = time.perf_counter()
    pokes, latencies = [], []
    for wait in waits:
        offsets = oracle_offsets(wait, earliest(wait))
        arrival = wait.arrived_after_s
        seen = arrival is not None and offsets[-1] >= arrival
        pokes.append(len(offsets))
        latencies.append(offsets[-1] - arrival if seen and arrival is not None else None)
    wall = time.perf_counter() - started
    return Outcome(ORACLE, tuple(pokes), tuple(latencies), (None,) * len(waits), wall)


def run_true_model(waits: Sequence[Arrival], truths: Truths) -> Outcome:
    """Return the adaptive planner's outcome given the true distributions (:mod:`.truth`)."""
    pokes, latencies, wall = planned_pokes(
        waits, truths, target_s=TARGET_S, max_interval_s=MAX_INTERVAL_S
    )
    return Outcome(TRUE_MODEL, tuple(pokes), tuple(latencies), (None,) * len(waits), wall)


@dataclass(frozen=True, slots=True)
class CaseResult:
    """Every policy's outcome on one case's measured waits."""

    case: Case
    waits: tuple[Arrival, ...]
    outcomes: dict[str, Outcome]

    @property
    def name(self) -> str:
        """Return ``scenario`` or ``scenario/source``."""
        return self.case.scenario + (f"/{self.case.source}" if self.case.source else "")


def measured_waits(case: Case, count: int, seed: int) -> list[Arrival]:
    """Return the measured block: numbers ``WARM_WAITS ..`` of the time line."""
    return case.generate(count, seed, WARM_WAITS)


def warm_history(case: Case, seed: int) -> list[Arrival]:
    """Return the warm history: numbers ``0 .. WARM_WAITS - 1``, drawn with another seed."""
    return case.generate(WARM_WAITS, seed + HISTORY_SEED, 0)


def run_case(case: Case, count: int, seed: int, refit_every: int) -> CaseResult:
    """Replay every policy (and the oracle) on one case, logging wall times to stderr."""
    waits, history = measured_waits(case, count, seed), warm_history(case, seed)
    outcomes = {}
    for contender in contenders():
        _progress(f"{case.scenario} {case.source or ''} {contender.label}: {count:,} waits ...")
        outcome = run_contender(contender, waits, history, refit_every)
        _progress(f"    {outcome.wall_s:.1f} s")
        outcomes[contender.label] = outcome
    outcomes[ORACLE] = run_oracle(waits, case.earliest)
    outcomes[TRUE_MODEL] = run_true_model(waits, case.truths)
    return CaseResult(case, tuple(waits), outcomes)


def _progress(message: str) -> None:
    print(f"[policies] {message}", file=sys.stderr, flush=True)


# --- statistics -------------------------------------------------------------------------


def mean(values: Sequence[float]) -> float | None:
    """Return the mean, ``None`` for no values."""
    return sum(values) / len(values) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Return the ``q``-th percentile, linearly interpolated; ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def detected_latencies(outcome: Outcome, limit: int | None = None) -> list[float]:
    """Return the latencies of the detected waits (of the first ``limit`` waits)."""
    return [v for v in outcome.latencies[:limit] if v is not None]


def mean_pokes(outcome: Outcome, limit: int | None = None) -> float:
    """Return the mean pokes per wait (over the first ``limit`` waits)."""
    pokes = outcome.pokes[:limit]
    return sum(pokes) / len(pokes) if pokes else 0.0


def arrived_in_time(waits: Sequence[Arrival]) -> int:
    """Return how many waits' data landed by their deadline."""
    return sum(
        1 for w in waits if w.arrived_after_s is not None and w.arrived_after_s <= w.deadline_s
    )


def missed(outcome: Outcome, baseline: Outcome) -> int:
    """Return the waits ``baseline`` detected and ``outcome`` did not."""
    return sum(1 for b, o in zip(baseline.detected, outcome.detected, strict=True) if b and not o)


def eta_coverage(outcome: Outcome, waits: Sequence[Arrival]) -> tuple[float | None, int]:
    """Return the share of detected waits with an ETA whose arrival lay in its 80% interval.

    :returns: ``(share, waits counted)``; the share is ``None`` when no wait counted.
    """
    inside = counted = 0
    for wait, eta, seen in zip(waits, outcome.etas, outcome.detected, strict=True):
        if eta is None or not seen or wait.arrived_after_s is None:
            continue
        counted += 1
        inside += eta[0] <= wait.arrived_after_s <= eta[1]
    return (inside / counted if counted else None), counted


def ratio(value: float | None, reference: float | None) -> float | None:
    """Return ``value / reference``; ``None`` if either is missing or the reference is 0."""
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


# --- tables -----------------------------------------------------------------------------


COLUMNS = (
    "policy",
    "pokes/wait (mean)",
    "x fixed 60 s",
    "latency p50",
    "p95",
    "p99",
    "detected / arrived before deadline",
    "missed that fixed 60 s detects",
    "wall s",
)


def seconds(value: float | None) -> str:
    """Return a duration cell: ``-`` for none."""
    return "-" if value is None else f"{value:,.1f} s"


def times(value: float | None) -> str:
    """Return a ratio cell (``0.25x``): ``-`` for none."""
    return "-" if value is None else f"{value:.2f}x"


def row(result: CaseResult, label: str) -> list[str]:
    """Return one policy's table row (the source column first for multi-source scenarios)."""
    outcome, fixed = result.outcomes[label], result.outcomes[FIXED_60]
    latencies = detected_latencies(outcome)
    pokes = mean_pokes(outcome)
    cells = [
        label,
        f"{pokes:,.2f}",
        times(ratio(pokes, mean_pokes(fixed))),
        *(seconds(percentile(latencies, q)) for q in (50, 95, 99)),
        f"{len(latencies):,} / {arrived_in_time(result.waits):,}",
        f"{missed(outcome, fixed):,}",
        f"{outcome.wall_s:.1f}",
    ]
    return [*cells[:1], result.case.source, *cells[1:]] if result.case.source else cells


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return a markdown table, numbers right-aligned."""
    align = ["---", *("---" if h == "source" else "---:" for h in header[1:])]
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def table(results: Sequence[CaseResult]) -> str:
    """Return a scenario's table: for each policy, one row per source."""
    header = list(COLUMNS)
    if any(r.case.source for r in results):
        header.insert(1, "source")
    labels = list(results[0].outcomes)
    return markdown(header, [row(r, label) for label in labels for r in results])


def notes(result: CaseResult) -> list[str]:
    """Return the lines under the table: ETA coverage, and the cold start's first waits."""
    where = f" ({result.case.source})" if result.case.source else ""
    lines = []
    for label in (ADAPTIVE_WARM, ADAPTIVE_COLD):
        share, counted = eta_coverage(result.outcomes[label], result.waits)
        covered = "-" if share is None else f"{share:.1%}"
        lines.append(
            f"- {label}{where}: ETA 80% interval holds the arrival for {covered} of "
            f"{counted:,} detected waits with an ETA"
        )
    lines.append(cold_line(result, where))
    return lines


def cold_comparison(result: CaseResult) -> tuple[float, float, float | None, float | None]:
    """Return cold and fixed 60 s pokes/wait and p95 latency over the first COLD_WAITS waits."""
    cold, fixed = result.outcomes[ADAPTIVE_COLD], result.outcomes[FIXED_60]
    return (
        mean_pokes(cold, COLD_WAITS),
        mean_pokes(fixed, COLD_WAITS),
        percentile(detected_latencies(cold, COLD_WAITS), 95),
        percentile(detected_latencies(fixed, COLD_WAITS), 95),
    )


def cold_line(result: CaseResult, where: str) -> str:
    """Return the cold start's first-waits line."""
    cold_pokes, fixed_pokes, cold_p95, fixed_p95 = cold_comparison(result)
    return (
        f"- {ADAPTIVE_COLD}{where}, first {COLD_WAITS} waits: {cold_pokes:,.2f} pokes/wait vs "
        f"fixed 60 s {fixed_pokes:,.2f} ({times(ratio(cold_pokes, fixed_pokes))}); p95 latency "
        f"{seconds(cold_p95)} vs {seconds(fixed_p95)} ({times(ratio(cold_p95, fixed_p95))})"
    )


def scenario_report(scenario: str, results: Sequence[CaseResult]) -> str:
    """Return a scenario's heading, description, table and notes."""
    doc = (inspect.getdoc(SCENARIOS[scenario]) or "").splitlines()[0]
    count = len(results[0].waits)
    lines = [f"### {scenario}: {doc}", "", f"{count:,} measured waits per source.", ""]
    lines += [table(results), ""]
    lines += [line for r in results for line in notes(r)]
    return "\n".join(lines)


# --- goals ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Goal:
    """One goal on one case: whether it held, and the numbers."""

    name: str
    passed: bool
    detail: str

    def __str__(self) -> str:
        return f"- {'PASS' if self.passed else 'FAIL'} {self.name}: {self.detail}"


POKE_GOALS: dict[str, tuple[str, float]] = {
    "daily": (FIXED_60, 0.2),
    "drift": (FIXED_60, 0.3),
    "uniform": (ORACLE, 1.1),
}
"""Scenario -> (reference row, most adaptive warm's pokes may be as a multiple of it)."""
P95_MAX = 1.1
"""Most a p95 latency may be, as a multiple of fixed 60 s's."""
COLD_MAX = 1.1
"""Most the cold start's first waits' pokes and p95 may be, as a multiple of fixed 60 s's."""


def _within(value: float | None, reference: float | None, most: float) -> bool:
    """Return whether ``value <= most x reference`` (both missing: vacuously true)."""
    if value is None or reference is None:
        return value is None
    return value <= most * reference


def efficiency_goal(result: CaseResult) -> Goal | None:
    """Return the scenario's pokes-and-p95 goal for adaptive warm, if it has one."""
    if result.case.scenario not in POKE_GOALS:
        return None
    reference, most = POKE_GOALS[result.case.scenario]
    warm, fixed = result.outcomes[ADAPTIVE_WARM], result.outcomes[FIXED_60]
    pokes, ref_pokes = mean_pokes(warm), mean_pokes(result.outcomes[reference])
    p95 = percentile(detected_latencies(warm), 95)
    fixed_p95 = percentile(detected_latencies(fixed), 95)
    passed = _within(pokes, ref_pokes, most) and _within(p95, fixed_p95, P95_MAX)
    return Goal(
        f"{result.name}: adaptive warm pokes <= {most}x {reference}, p95 <= {P95_MAX}x fixed 60 s",
        passed,
        f"pokes {pokes:,.2f} vs {ref_pokes:,.2f} ({times(ratio(pokes, ref_pokes))}), "
        f"p95 {seconds(p95)} vs {seconds(fixed_p95)} ({times(ratio(p95, fixed_p95))})",
    )


def cold_goal(result: CaseResult) -> Goal:
    """Return the cold-start goal: first COLD_WAITS waits within COLD_MAX of fixed 60 s."""
    cold_pokes, fixed_pokes, cold_p95, fixed_p95 = cold_comparison(result)
    passed = _within(cold_pokes, fixed_pokes, COLD_MAX) and _within(cold_p95, fixed_p95, COLD_MAX)
    return Goal(
        f"{result.name}: cold start, first {COLD_WAITS} waits, pokes and p95 <= {COLD_MAX}x "
        "fixed 60 s",
        passed,
        f"pokes {times(ratio(cold_pokes, fixed_pokes))}, p95 {times(ratio(cold_p95, fixed_p95))}",
    )


def no_miss_goal(result: CaseResult) -> Goal:
    """Return the goal that adaptive (warm and cold) misses nothing fixed 60 s detects."""
    fixed = result.outcomes[FIXED_60]
    counts = {
        label: missed(result.outcomes[label], fixed) for label in (ADAPTIVE_WARM, ADAPTIVE_COLD)
    }
    return Goal(
        f"{result.name}: adaptive misses no arrival fixed 60 s detects",
        not any(counts.values()),
        ", ".join(f"{label} missed {n:,}" for label, n in counts.items()),
    )


def goals(result: CaseResult) -> list[Goal]:
    """Return every goal evaluated on one case."""
    found = [efficiency_goal(result), cold_goal(result), no_miss_goal(result)]
    return [g for g in found if g is not None]


def goals_block(found: Sequence[Goal]) -> str:
    """Return the goals block, and how many passed."""
    passed = sum(g.passed for g in found)
    lines = ["### goals", "", *(str(g) for g in found), "", f"{passed} / {len(found)} passed"]
    return "\n".join(lines)


# --- command line -----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.bench.policies",
        description="Adaptive polling vs fixed, backoff and jitter policies (simulated).",
    )
    parser.add_argument("--waits", type=int, help=f"measured waits per source ({WAITS:,})")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_WAITS:,} waits, refit every {QUICK_REFIT_EVERY} waits",
    )
    parser.add_argument(
        "--refit-every",
        type=int,
        help=(
            f"learned policies refit after this many waits "
            f"({REFIT_EVERY}; --quick: {QUICK_REFIT_EVERY})"
        ),
    )
    parser.add_argument("--seed", type=int, default=1, help="the scenarios' seed (1)")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="run only this scenario (repeatable)",
    )
    return parser


def code_version() -> str:
    """Return the git commit of the replayed code, and whether ``triggers/`` differs from it."""
    import waitwise.triggers

    where = Path(waitwise.triggers.__file__).resolve().parent
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--", str(where))
    except (OSError, subprocess.SubprocessError):
        return f"{where} (not a git checkout)"
    return f"{where} at {head}" + (", with uncommitted changes" if dirty else "")


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> None:
    """Print every scenario's table, then the goals."""
    args = _parser().parse_args(argv)
    count = args.waits or (QUICK_WAITS if args.quick else WAITS)
    refit = args.refit_every or (QUICK_REFIT_EVERY if args.quick else REFIT_EVERY)
    started = time.perf_counter()
    print(
        f"## Poll policies on simulated arrivals ({count:,} waits per source, "
        f"learned policies refit every {refit} waits, seed {args.seed}, target 60 s)\n",
    )
    print(f"Replayed code: {code_version()}.\n", flush=True)
    found: list[Goal] = []
    for scenario in args.scenario or list(SCENARIOS):
        results = [run_case(c, count, args.seed, refit) for c in CASES if c.scenario == scenario]
        print(scenario_report(scenario, results) + "\n", flush=True)
        found += [g for r in results for g in goals(r)]
    print(goals_block(found))
    print(f"\nwall time: {time.perf_counter() - started:,.0f} s")


if __name__ == "__main__":
    main()
