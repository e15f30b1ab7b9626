"""``make bench``: every benchmark, each table with ratios to baselines run beside it."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

from devtools import worker_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--samples", type=int, default=3, help="DAG runs for the worker-seconds table"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller runner table (1,000 triggers), fan-in (100 sensors), policies and pooling"
        " tables",
    )
    args = parser.parse_args()
    # First: it needs no Airflow (simulated arrivals replayed through the trigger's own code).
    policies = importlib.import_module("devtools.bench.policies")
    policies.main(["--quick"] if args.quick else [])
    print()
    learning = importlib.import_module("devtools.bench.learning")
    learning.main(["--quick"] if args.quick else [])
    print()
    print(worker_bench.report(samples=args.samples))
    print()
    # The store bench configures Airflow through its environment before importing it: its
    # own process. Appends, bulk reads and the report per read path at 1k/10k/100k records.
    store = [sys.executable, "-m", "devtools.bench.store", *(["--quick"] if args.quick else [])]
    subprocess.run(store, check=True)
    print()
    fanin = importlib.import_module("devtools.bench.fanin")
    fanin.main(["--n", "100" if args.quick else "1000"])
    print()  # the same without the payload XCom: what the engine costs beside Airflow's push
    fanin.main(["--n", "100" if args.quick else "1000", "--no-xcom"])
    print()
    runner = importlib.import_module("devtools.bench.runner")
    runner.main(["--quick"] if args.quick else [])
    print()
    # Issue 12: batch vs per-file CPU, a 10,000-file landing, inotify vs polling, syscalls
    # per tick of the pooled scan, two triggerers.
    pooling = importlib.import_module("devtools.bench.pooling")
    pooling.main(["--quick"] if args.quick else [])
    print()
    # 1,000 object-store sensors on one prefix against Airflow's S3KeyTrigger (moto's server).
    s3 = [sys.executable, "-m", "devtools.bench.s3", *(["--quick"] if args.quick else [])]
    subprocess.run(s3, check=True)


if __name__ == "__main__":
    main()
