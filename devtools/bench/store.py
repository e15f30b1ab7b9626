"""History store bench: append cost and bulk-read time at 1,000 / 10,000 / 100,000 records.

``python -m devtools.bench.store [--quick] [--paths file,orm,rest] [--sizes 1000,10000]``

For each read path and size N, one fresh source is seeded with N compacted records spread
over 300 days (written as segments directly: 100,000 single appends through the REST API
would take most of an hour and measure nothing new), then:

- **append**: ``appends`` more records through ``AirflowStore.append`` / ``FileStore.append``
  (automatic compaction off), ending in the last ten minutes, the mean cost per record.
  It must not grow with N.
- **compact**: one ``compact()`` folding those loose records into today's segment.
- **bulk read**: ``history()`` of the whole source (retention set above N), median of
  ``rounds``; the number of records read is checked.
- **report**: one read of the source and its report built from it (``summarize`` over the
  whole span, the text and the HTML page): what ``waitwise report`` (rest), the plugin (orm)
  and a FileStore reader (file) pay per source. Goal (issue 11): under 5 s for 10,000.

Paths: ``file`` (FileStore in a temporary directory), ``orm`` (AirflowStore over
``MetadataBackend``: Airflow's ORM on a real metadata database, SQLite made by
``airflow db migrate`` in a temporary AIRFLOW_HOME: what the api-server's plugin does),
``rest`` (AirflowStore over ``RestBackend``: a real api-server on that database, started
alone by :mod:`devtools.airflow_harness`, "all admins" mode, no token). Environment
variables for Airflow are set before Airflow is imported, so run it as a fresh process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from devtools.airflow_harness import AirflowHarness

DAY = 86_400.0
SPREAD_DAYS = 300


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    path: str
    records: int
    append_ms: float
    compact_s: float
    read_s: float
    read_min_s: float
    read_max_s: float
    found: int
    report_s: float


def make_records(source: str, count: int, now: float, tag: str, span_s: float) -> list[Any]:
    """Return ``count`` distinct waits of ``source`` ending over the ``span_s`` before now."""
    from waitwise.triggers.store import WaitOutcome, WaitRecord

    step = span_s / max(count, 1)
    base = WaitRecord(
        source=source,
        profile="medium",
        dag_id="ingest_orders",
        task_id="wait_for_orders",
        run_id="x",
        try_number=1,
        started_at=0.0,
        ended_at=0.0,
        outcome=WaitOutcome.SUCCESS,
        pokes=7,
    )
    records = []
    for i in range(count):
        ended = now - span_s + i * step
        records.append(
            replace(
                base,
                run_id=f"scheduled__{tag}{i:07d}",
                started_at=ended - 900,
                ended_at=ended,
                scheduled_at=ended - 1000,
                first_seen_at=ended - 4,
                detected_at=ended,
                last_miss_at=ended - 34,
                deadline_at=ended + 2700,
            )
        )
    return records


async def seed_segments(backend: Any, namespace: str, records: list[Any], size: int) -> None:
    """Write ``records`` as the store's compacted segments, ``size`` records at most each."""
    from waitwise.triggers.store.kv_layout import SourceKeys
    from waitwise.triggers.store.segments import day_of, encode_segment

    keys = SourceKeys(f"{namespace}/{records[0].source}/")
    by_day: dict[str, list[Any]] = {}
    for record in records:
        by_day.setdefault(day_of(record.ended_at), []).append(record)
    for day, chunk in by_day.items():
        for start in range(0, len(chunk), size):
            part = chunk[start : start + size]
            await backend.set(keys.segment(day, len(part)), encode_segment(part))


def seed_files(root: Path, records: list[Any]) -> None:
    """Write ``records`` as FileStore day files."""
    from waitwise.triggers.store import file_history
    from waitwise.triggers.store.segments import day_of

    by_day: dict[str, list[Any]] = {}
    for record in records:
        by_day.setdefault(day_of(record.ended_at), []).append(record)
    for day, chunk in by_day.items():
        file_history.append_lines(root / records[0].source, day, chunk)


async def measure(path: str, store: Any, source: str, count: int, appends: int, rounds: int) -> Row:
    """Time appends, one compaction and ``rounds`` bulk reads of ``source``."""
    now = time.time()
    extra = make_records(source, appends, now, tag="new", span_s=600)  # the last 10 minutes
    started = time.perf_counter()
    for record in extra:
        await store.append(record)
    append_ms = (time.perf_counter() - started) * 1000 / appends
    started = time.perf_counter()
    await store.compact(source)
    compact_s = time.perf_counter() - started
    reads, found = [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        found = len(await store.history(source))
        reads.append(time.perf_counter() - started)
    median = statistics.median(reads)
    report_s = await time_report(store, source)
    return Row(path, count, append_ms, compact_s, median, min(reads), max(reads), found, report_s)


async def time_report(store: Any, source: str) -> float:
    """Return the seconds to read ``source`` and build its report (text and HTML page)."""
    from waitwise.triggers.report import html_page, summarize, text

    started = time.perf_counter()
    history = await store.history(source)
    report = summarize({source: history}, now=time.time(), window_s=SPREAD_DAYS * DAY)
    text(report)
    html_page(report)
    return time.perf_counter() - started


def store_options(count: int) -> dict[str, Any]:
    """Options that keep every record: retention above N, manual compaction."""
    from waitwise.triggers.store import CompactionPolicy

    return {"retention": count * 2 + 1000, "compaction": CompactionPolicy(every=None)}


async def bench_file(root: Path, count: int, appends: int, rounds: int) -> Row:
    """FileStore in ``root``."""
    from waitwise.triggers.store import FileStore

    source = f"file-{count}"
    seed_files(
        root, make_records(source, count, time.time() - 3600, tag="old", span_s=SPREAD_DAYS * DAY)
    )
    store = FileStore(root, **store_options(count))
    return await measure("file", store, source, count, appends, rounds)


async def bench_kv(path: str, backend: Any, seeder: Any, count: int, a: int, r: int) -> Row:
    """AirflowStore over ``backend``, its source seeded through ``seeder``."""
    from waitwise.triggers.store import AirflowStore

    source = f"{path}-{count}"
    records = make_records(source, count, time.time() - 3600, tag="old", span_s=SPREAD_DAYS * DAY)
    await seed_segments(seeder, "waitwise", records, 1000)
    store = AirflowStore(backend, settle_s=0.25, **store_options(count))
    return await measure(path, store, source, count, a, r)


def start_airflow(home: Path, rest: bool) -> AirflowHarness:
    """Migrate a metadata DB in ``home``, point this process at it, start an api-server."""
    (home / "dags").mkdir(parents=True, exist_ok=True)
    harness = AirflowHarness(dags_folder=home / "dags", home=home, keep_home=True)
    harness.port = int(os.environ.get("BENCH_PORT", "0")) or _free_port()
    harness.cli("db", "migrate", timeout=300)
    os.environ.update(harness.env())
    if rest:
        harness.start_component("api-server")
        wait_for_api(harness, timeout_s=180)
    return harness


def wait_for_api(harness: AirflowHarness, timeout_s: float) -> None:
    """Wait until the api-server answers with a healthy metadata database."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            health = harness.api("GET", "/monitor/health")
            if health["metadatabase"]["status"] == "healthy":
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"api-server not healthy after {timeout_s} s\n{harness.log_tails()}")
        time.sleep(0.5)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run(args: argparse.Namespace, home: Path, port: int) -> list[Row]:
    """Run every requested path and size; Airflow is already configured."""
    rows = []
    for count in args.sizes:
        if "file" in args.paths:
            rows.append(await bench_file(home / "files", count, args.appends, args.rounds))
            print_row(rows[-1])
        if "orm" in args.paths or "rest" in args.paths:
            from waitwise.triggers.store import MetadataBackend, RestBackend

            orm = MetadataBackend()
            if "orm" in args.paths:
                rows.append(await bench_kv("orm", orm, orm, count, args.appends, args.rounds))
                print_row(rows[-1])
            if "rest" in args.paths:
                rest = RestBackend(f"http://127.0.0.1:{port}")
                try:
                    row = await bench_kv("rest", rest, orm, count, args.appends, args.rounds)
                finally:
                    await rest.aclose()
                rows.append(row)
                print_row(rows[-1])
    return rows


HEADER = (
    "| path | records | append ms/record | compact (s) | bulk read s (median; min-max) | read "
    "| report s (read + build) |\n"
    "|---|---|---|---|---|---|---|"
)


def print_row(row: Row) -> None:
    """Print one table line as soon as it is measured."""
    print(
        f"| {row.path} | {row.records:,} | {row.append_ms:.2f} | {row.compact_s:.2f} | "
        f"{row.read_s:.2f} ({row.read_min_s:.2f}-{row.read_max_s:.2f}) | {row.found:,} "
        f"| {row.report_s:.2f} |",
        flush=True,
    )


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m devtools.bench.store")
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 only, 1 round")
    parser.add_argument("--paths", default="file,orm,rest", type=lambda s: s.split(","))
    sizes: Callable[[str], list[int]] = lambda s: [int(n) for n in s.split(",")]  # noqa: E731
    parser.add_argument("--sizes", default=[1_000, 10_000, 100_000], type=sizes)
    parser.add_argument("--appends", default=200, type=int)
    parser.add_argument("--rounds", default=3, type=int)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.rounds = [n for n in args.sizes if n <= 10_000], 1
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the bench and print the table."""
    args = parse(sys.argv[1:] if argv is None else argv)
    home = Path(tempfile.mkdtemp(prefix="waitwise-store-bench-"))
    harness = None
    started = time.perf_counter()
    try:
        if {"orm", "rest"} & set(args.paths):
            harness = start_airflow(home, rest="rest" in args.paths)
        print(HEADER, flush=True)
        asyncio.run(run(args, home, harness.port if harness else 0))
    finally:
        if harness is not None:
            harness.stop()
        shutil.rmtree(home, ignore_errors=True)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
