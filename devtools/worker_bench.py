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


def run(samples: int = 3, wait_s: float = 30.0) -> list[dict[str, tuple[int, float]]]:
    root = Path(__file__).parent
    harness = AirflowHarness(dags_folder=root / "bench_dags", parallelism=4)
    harness.start([DAG_ID])
    try:
        assert harness.home is not None
        return [sample(harness, harness.home / "data", wait_s) for _ in range(samples)]
    finally:
        harness.stop()


def table(results: list[dict[str, tuple[int, float]]]) -> str:
    stock = statistics.median(r["stock_deferrable"][1] for r in results)
    lines = [
        "Worker-seconds per sensor, one 30 s file wait "
        f"(median of {len(results)} samples, one Airflow run)",
        "",
        "| mode | worker runs (median) | worker-seconds median | min / max "
        "| vs stock deferrable | baseline.md |",
        "|---|---|---|---|---|---|",
    ]
    for mode in MODES:
        secs = [r[mode][1] for r in results]
        runs = statistics.median(r[mode][0] for r in results)
        med = statistics.median(secs)
        ratio = f"{med / stock:.2f}x" if stock else "n/a"
        spread = f"{min(secs):.2f} / {max(secs):.2f}"
        lines.append(f"| {mode} | {runs:g} | {med:.2f} | {spread} | {ratio} | {BASELINE[mode]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run()))
