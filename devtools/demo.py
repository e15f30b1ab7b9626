"""``make demo``: a real local Airflow runs dags/waitwise_example.py; print what happened.

Files for the three sources land a few seconds apart while the sensors wait in the
triggerer; the table shows how each wait went and what it cost in worker time.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

from devtools.airflow_harness import AirflowHarness

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "waitwise_example"
ARRIVALS = (  # seconds after the sensors are deferred, relative path
    (3.0, "financial/financial_{ds}.csv"),
    (8.0, "customer/customer_{ds}_part1.json"),
    (14.0, "partner/{ds}/batch.parquet"),
)


def main() -> int:
    work = ROOT / ".demo"
    shutil.rmtree(work, ignore_errors=True)
    data = work / "data"
    t0 = time.monotonic()
    harness = AirflowHarness(dags_folder=ROOT / "dags", data_dir=data, home=work / "home")
    print("Starting a local Airflow (api-server, scheduler, dag-processor, triggerer)...")
    harness.start([DAG_ID])
    ready = time.monotonic() - t0
    try:
        return run_demo(harness, data, ready)
    finally:
        harness.stop()


def run_demo(harness: AirflowHarness, data: Path, ready: float) -> int:
    print(f"Airflow ready in {ready:.1f}s; Airflow processes use {harness.memory_pss_mb():.0f} MB")
    logical = dt.datetime.now(dt.UTC)  # the scheduler already made today's @daily run
    run_id = harness.trigger(DAG_ID, logical_date=logical)
    sensors = {
        "wait_financial": "deferred",
        "wait_customer": "deferred",
        "wait_partner": "deferred",
    }
    harness.wait_for(DAG_ID, run_id, sensors, timeout=90)
    print(f"Run {run_id}: all three sensors deferred, none on a worker.")
    start = time.monotonic()
    for offset, rel in ARRIVALS:
        time.sleep(max(offset - (time.monotonic() - start), 0))
        path = data / rel.format(ds=logical.strftime("%Y%m%d"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("demo\n")
        print(f"  +{offset:4.1f}s  landed {path.relative_to(data)}")
    loads = {f"load_{s}": "success" for s in ("financial", "customer", "partner")}
    harness.wait_for(DAG_ID, run_id, loads, timeout=180)
    print_report(harness, run_id)
    return 0


def print_report(harness: AirflowHarness, run_id: str) -> None:
    tis = harness.task_instances(DAG_ID, run_id)
    header = ("task", "state", "pokes", "waited s", "worker runs", "worker s")
    print("\n{:<16}{:<10}{:>6}{:>10}{:>13}{:>10}".format(*header))
    for task_id, ti in sorted(tis.items()):
        runs = harness.worker_runs(ti["id"])
        pokes, waited = "", ""
        if task_id.startswith("wait_"):
            payload = harness.api(
                "GET",
                f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
            )["value"]
            payload = json.loads(payload) if isinstance(payload, str) else payload
            pokes, waited = str(payload["pokes"]), f"{payload['elapsed_s']:.1f}"
        print(
            f"{task_id:<16}{ti['state']:<10}{pokes:>6}{waited:>10}{len(runs):>13}{sum(runs):>10.2f}"
        )
    print("\nSensors: zero worker runs. Each load task: one worker run, as any Python task.")


if __name__ == "__main__":
    sys.exit(main())
