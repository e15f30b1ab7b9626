"""S3 bench: N sensors on one bucket prefix, waitwise against Airflow's ``S3KeyTrigger``.

Both sides poll the same N keys (none ever lands) at the same interval against moto's
standalone server (:mod:`devtools.moto_server`) for the same duration, one side after the
other, each in its own fresh interpreter (no shared clients, caches or heap):

- waitwise: N ``FileArrivalTrigger(filepath="s3://bench/in/kI.csv", conn_id=...)``; the poll
  hub hands every due query of a tick to the object prober, which lists the prefix once;
- Airflow: N ``airflow.providers.amazon.aws.triggers.s3.S3KeyTrigger(bucket_key="in/kI.csv")``
  (one ``HeadObject`` per poke, each through a client it builds per poke).

Hosting: a plain asyncio loop running each trigger's ``run()`` as a task, not Airflow's
``TriggerRunner`` (``devtools/bench/_hosted.py`` answers no connection requests, and this
bench does not edit it), so the runner's own per-trigger costs are left out on both sides.
Connections come from ``AIRFLOW_CONN_MOTO_BENCH`` (read through the Task SDK, as outside a
triggerer).

Measured: requests the server logged (per minute), process CPU seconds (``process_time``:
all threads), and pokes (waitwise: its metrics sink's ``pokes``; Airflow: its requests, one
per poke), after a warm-up of one interval.

``python -m devtools.bench.s3 [--quick] [--sensors N] [--interval S] [--seconds S]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

from devtools.moto_server import MotoServer

BUCKET = "bench"
CONN = "moto_bench"


async def _host(side: str, sensors: int, interval: float, seconds: float) -> dict[str, float]:
    """Run ``sensors`` triggers of ``side`` for ``seconds`` after a warm-up; return counts."""
    from waitwise.triggers import metrics
    from waitwise.triggers.runtime import Runtime, use_runtime
    from waitwise.triggers.testing import RecordingSink

    sink = RecordingSink()
    with use_runtime(Runtime(metrics=sink)):
        tasks = [asyncio.ensure_future(_drain(_trigger(side, i, interval))) for i in range(sensors)]
        await asyncio.sleep(interval)  # warm-up: clients built, first pokes spread
        pokes0 = sum(r[2] for r in sink.records if r[1] == metrics.POKES)
        cpu0, wall0 = time.process_time(), time.monotonic()
        print("start", flush=True)  # the parent notes the server's request count here
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        pokes = sum(r[2] for r in sink.records if r[1] == metrics.POKES) - pokes0
        print("stop", flush=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"cpu_s": cpu, "wall_s": wall, "pokes": pokes}


def _trigger(side: str, i: int, interval: float) -> Any:
    if side == "waitwise":
        from waitwise.triggers.file import FileArrivalTrigger
        from waitwise.triggers.policy import Constant

        return FileArrivalTrigger(
            filepath=f"s3://{BUCKET}/in/k{i:05}.csv",
            conn_id=CONN,
            poll=Constant(interval=interval).to_config(),
            timeout=3_600.0,
            started_at=time.time(),
        )
    from airflow.providers.amazon.aws.triggers.s3 import S3KeyTrigger

    return S3KeyTrigger(
        bucket_name=BUCKET, bucket_key=f"in/k{i:05}.csv", aws_conn_id=CONN, poke_interval=interval
    )


async def _drain(trigger: Any) -> None:
    async for _event in trigger.run():
        return


def _child(argv: list[str]) -> int:
    side, sensors, interval, seconds = argv[0], int(argv[1]), float(argv[2]), float(argv[3])
    out = asyncio.run(_host(side, sensors, interval, seconds))
    print(json.dumps(out), flush=True)
    return 0


def _measure(
    server: MotoServer, side: str, sensors: int, interval: float, seconds: float
) -> dict[str, float]:
    env = {**os.environ, "AIRFLOW_CONN_MOTO_BENCH": server.airflow_conn()}
    env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    cmd = [sys.executable, "-m", "devtools.bench.s3", "--child", side, str(sensors),
           str(interval), str(seconds)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    before = after = 0
    result: dict[str, float] = {}
    for line in proc.stdout:
        if line.strip() == "start":
            before = len(server.s3_requests())
        elif line.strip() == "stop":
            after = len(server.s3_requests())
        elif line.startswith("{"):
            result = json.loads(line)
    if proc.wait() != 0 or not result:
        raise RuntimeError(f"{side} bench failed ({proc.returncode})")
    requests = after - before
    pokes = result["pokes"] if side == "waitwise" else float(requests)
    return {
        "requests_per_min": requests * 60.0 / result["wall_s"],
        "pokes_per_min": pokes * 60.0 / result["wall_s"],
        "cpu_ms_per_poke": 1000.0 * result["cpu_s"] / max(pokes, 1.0),
        "cpu_s_per_min": result["cpu_s"] * 60.0 / result["wall_s"],
    }


def run(sensors: int, interval: float, seconds: float) -> dict[str, dict[str, float]]:
    """Measure both sides against one fresh moto server; return their figures."""
    server = MotoServer()
    server.start()
    try:
        import boto3  # type: ignore[import-untyped]

        boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).create_bucket(Bucket=BUCKET)
        return {
            side: _measure(server, side, sensors, interval, seconds)
            for side in ("waitwise", "airflow S3KeyTrigger")
        }
    finally:
        server.stop()


def table(figures: dict[str, dict[str, float]], sensors: int, interval: float) -> str:
    """Return the figures as a Markdown table."""
    lines = [
        f"{sensors} sensors on one prefix, every {interval:g} s, moto server on localhost",
        "",
        "| trigger | S3 requests/min | pokes/min | CPU s/min | CPU ms/poke |",
        "|---|---:|---:|---:|---:|",
    ]
    for side, f in figures.items():
        lines.append(
            f"| {side} | {f['requests_per_min']:.0f} | {f['pokes_per_min']:.0f} | "
            f"{f['cpu_s_per_min']:.2f} | {f['cpu_ms_per_poke']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Parse arguments, run both sides, print the table."""
    if argv[:1] == ["--child"]:
        return _child(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m devtools.bench.s3")
    parser.add_argument("--quick", action="store_true", help="200 sensors for 20 s")
    parser.add_argument("--sensors", type=int, default=1_000)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    sensors, seconds = (200, 20.0) if args.quick else (args.sensors, args.seconds)
    print(table(run(sensors, args.interval, seconds), sensors, args.interval))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
