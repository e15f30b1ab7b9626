"""Issue 15: 100 sensors of one source whose files land together all end, none queued.

Against a real Airflow of its own: its triggerer must import the floor trigger from
``devtools`` (``PYTHONPATH`` holds the repo root) and its capacity, page limits and
concurrency are set for the fan-in (:func:`devtools.bench.fanin.airflow_env`); the session
harness has neither.  The scenario is ``make bench``'s fan-in (:mod:`devtools.bench.fanin`)
at N=100: 3 failed waits of the source first (the breaker then holds failures, so the
fan-in's successes must change it), then 100 floor tasks, then 100 ``FileArrivalSensor``s,
each fan-in landing all its files in one rename.

What this test checks is behaviour: every task succeeds, every history record is present
once with the right outcome, the breaker is consistent, and the endings do not queue one
after another.  The last is a regression guard, not the speed goal: before issue 15 each
ending held a per-source lock for ~0.4 s, so the last of 100 waits ended ~40 s after landing
(12x the floor).  The guard is ``QUEUE_FACTOR`` x the floor's last (measured in this test,
same Airflow) + ``SLACK_S`` (10-14 s), which a queue of 0.2 s per ending breaks at N=100 while
a loaded 2-core CI machine (GC pauses of 0.4-0.6 s in the triggerer, two independent 1 s
poll phases) does not.  The goal itself (within 2x the floor) is measured, with its ratio,
by ``make bench`` (guide: tests check behaviour, benchmarks check speed); a CI run at 3.2x
showed a 2x timer here fails on noise, not on a regression.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.airflow_harness import AirflowHarness
from devtools.bench import fanin
from tests.e2e.conftest import FIGURES

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DAGS = Path(__file__).parent / "dags_fanin"
N = 100
QUEUE_FACTOR = 4.0
SLACK_S = 6.0
SETTLE_S = 3.0  # all triggers running -> landing: each has poked once


@pytest.fixture(scope="module")
def fanin_airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowHarness]:
    data = tmp_path_factory.mktemp("fanin-data")
    harness = fanin.harness_for(DAGS, data, N)
    # A TERM to pytest (CI cancelling) must still run the clean-up below and atexit's.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        harness.start(list(fanin.DAG_IDS.values()))
        FIGURES["fan-in harness ready"] = f"{harness.ready_s:.1f} s"
        assert harness.import_errors() == []
        yield harness
    finally:
        harness.stop()
        signal.signal(signal.SIGTERM, previous)
        left = harness.pids()
        assert left == [], f"the harness left Airflow processes behind: {left}"


def test_fan_in_of_one_source_ends_without_queueing(fanin_airflow: AirflowHarness) -> None:
    airflow = fanin_airflow
    assert airflow.data_dir is not None
    for kind in ("floor", "waitwise"):
        tasks = airflow.api("GET", f"/dags/{fanin.DAG_IDS[kind]}/tasks")["total_entries"]
        assert tasks == N, f"{kind} DAG has {tasks} tasks, want {N}"

    fanin.seed(airflow, airflow.data_dir)
    runs = {
        kind: fanin.fan_in(airflow, kind, N, airflow.data_dir, settle=SETTLE_S, timeout=180)
        for kind in fanin.KINDS
    }
    store = fanin.check_store(airflow, runs["waitwise"].run_id, N, N)
    floor, waitwise = runs["floor"], runs["waitwise"]
    bound = QUEUE_FACTOR * floor.last + SLACK_S
    report = fanin.Report(
        n=N,
        runs=runs,
        store=store,
        ready_s=airflow.ready_s,
        wall_s=0.0,
        peak_pss_mb=airflow.peak_pss_mb,
        waitwise_file="the editable install",
        tree="tests/e2e/test_fanin.py",
        triggerer_blocked=airflow.logs("triggerer").count("async thread was blocked"),
    )
    summary = fanin.table(report)
    FIGURES[f"fan-in of {N}: waitwise first / median / last done after landing"] = (
        f"{waitwise.first:.1f} / {waitwise.median:.1f} / {waitwise.last:.1f} s "
        f"(floor last {floor.last:.1f} s, {waitwise.last / floor.last:.1f}x, "
        f"goal {fanin.GOAL:g}x; guard {bound:.1f} s)"
    )

    assert floor.states == {"success": N}, summary
    assert waitwise.states == {"success": N}, summary
    assert store.present_all, f"history records missing\n{summary}"
    assert store.duplicates == 0, summary
    assert not store.wrong_outcome, summary
    assert not store.breaker_problems, f"breaker inconsistent\n{summary}"
    assert waitwise.last <= bound, (
        f"the last of {N} waits ended {waitwise.last:.1f} s after landing, bound {bound:.1f} s "
        f"({QUEUE_FACTOR:g} x floor {floor.last:.1f} s + {SLACK_S:g} s): endings queue\n"
        f"{summary}\n" + _tail(airflow)
    )


def _tail(airflow: AirflowHarness) -> str:
    """Return the triggerer's last notable lines (waitwise's, warnings, errors, blocked loop)."""
    words = ("waitwise", "warning", "error", "blocked")
    with contextlib.suppress(Exception):
        lines = airflow.logs("triggerer").splitlines()
        notable = [ln[:300] for ln in lines if any(w in ln.lower() for w in words)]
        return "triggerer log, notable lines:\n" + "\n".join(notable[-20:])
    return ""
