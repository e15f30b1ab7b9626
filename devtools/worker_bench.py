"""Worker-seconds per sensor for one 30 s file wait, measured in one real Airflow run.

For each sample, a DAG run starts four sensors (poke, reschedule, stock deferrable FileSensor,
FileArrivalSensor); their files land 30 s after all four are waiting; the cost of each is the
sum of its workers' own "Workload finished duration=" records.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from devtools.airflow_harness import AirflowHarness

DAG_ID = "bench_worker_cost"
MODES = ("poke", "reschedule", "stock_deferrable", "waitwise")
WAITING = {
    "poke": {"running"},
    "reschedule": {"up_for_reschedule", "running"},
    "stock_deferrable": {"deferred"},
    "waitwise": {"deferred"},
}
BASELINE = {"poke": 30.2, "reschedule": 5.5, "stock_deferrable": 0.29, "waitwise": 0.0}


def sample(harness: AirflowHarness, data: Path, wait_s: float) -> dict[str, tuple[int, float]]:
    run_id = harness.trigger(DAG_ID)
    harness.wait_for(DAG_ID, run_id, WAITING, timeout=120)
    time.sleep(wait_s)
    folder = data / "bench" / run_id.replace(":", "_").replace("+", "_")
    folder.mkdir(parents=True, exist_ok=True)
    for mode in MODES:
        (folder / mode).write_text("x")
    harness.wait_for(DAG_ID, run_id, dict.fromkeys(MODES, "success"), timeout=180)
    time.sleep(2)  # the last worker's record is written right after the state change
    tis = harness.task_instances(DAG_ID, run_id)
    return {
        m: (len(harness.worker_runs(tis[m]["id"])), harness.worker_seconds(tis[m]["id"]))
        for m in MODES
    }


TIMEOUT_DAG = "bench_timeout_cost"
TIMEOUT_MODES = {
    "stock_deferrable": "failed",
    "waitwise": "failed",
    "waitwise_soft_fail": "skipped",
}


def timeout_sample(harness: AirflowHarness) -> dict[str, tuple[int, float]]:
    """One hard timeout (10 s, retries=2) per sensor kind: what ending a wait costs."""
    run_id = harness.trigger(TIMEOUT_DAG)
    harness.wait_for(TIMEOUT_DAG, run_id, TIMEOUT_MODES, timeout=180)
    tis = harness.task_instances(TIMEOUT_DAG, run_id)
    return {
        m: (len(harness.worker_runs(tis[m]["id"])), harness.worker_seconds(tis[m]["id"]))
        for m in TIMEOUT_MODES
    }


Samples = list[dict[str, tuple[int, float]]]


def run(samples: int = 3, wait_s: float = 30.0) -> tuple[Samples, Samples]:
    """Return the arrival samples and the timeout samples, from one real Airflow."""
    root = Path(__file__).parent
    harness = AirflowHarness(dags_folder=root / "bench_dags", parallelism=4)
    harness.start([DAG_ID, TIMEOUT_DAG])
    try:
        assert harness.home is not None
        arrivals = [sample(harness, harness.home / "data", wait_s) for _ in range(samples)]
        timeouts = [timeout_sample(harness) for _ in range(samples)]
        return arrivals, timeouts
    finally:
        harness.stop()


def table(results: Samples, title: str = "", modes: tuple[str, ...] = MODES) -> str:
    stock = statistics.median(r["stock_deferrable"][1] for r in results)
    title = title or "Worker-seconds per sensor, one 30 s file wait"
    lines = [
        f"{title} (median of {len(results)} samples, one Airflow run)",
        "",
        "| mode | worker runs (median) | worker-seconds median | min / max "
        "| vs stock deferrable | baseline.md |",
        "|---|---|---|---|---|---|",
    ]
    for mode in modes:
        secs = [r[mode][1] for r in results]
        runs = statistics.median(r[mode][0] for r in results)
        med = statistics.median(secs)
        ratio = f"{med / stock:.2f}x" if stock else "n/a"
        spread = f"{min(secs):.2f} / {max(secs):.2f}"
        baseline = BASELINE.get(mode, "-") if modes == MODES else "-"
        lines.append(f"| {mode} | {runs:g} | {med:.2f} | {spread} | {ratio} | {baseline} |")
    return "\n".join(lines)


def report(samples: int = 3) -> str:
    """Run both measurements and return the two tables."""
    arrivals, timeouts = run(samples)
    title = "Worker-seconds per sensor, hard timeout after 10 s with retries=2"
    return "\n\n".join([table(arrivals), table(timeouts, title, tuple(TIMEOUT_MODES))])


if __name__ == "__main__":
    print(report())
