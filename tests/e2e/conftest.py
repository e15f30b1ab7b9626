"""One real Airflow for the whole end-to-end session (it takes ~15 s to start).

``pg_airflow`` is a second one, on PostgreSQL with two triggerers, for the modules that ask
for it (tests/e2e/test_postgres.py); it lives only as long as the module that uses it.
"""

from __future__ import annotations

import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.airflow_harness import AirflowHarness
from devtools.postgres import PostgresServer

DAGS = Path(__file__).parent / "dags"
DAG_IDS = [
    "ww_arrival",
    "ww_timeout",
    "ww_soft_fail",
    "ww_templated",
    "ww_restart",
    "ww_breaker",
    "ww_breaker_pair",
    "ww_reopen",
    "ww_admin",
    "ww_guarded",
    "ww_batch_rules",
    "ww_pool_a",
    "ww_pool_b",
    "ww_events",
]


FIGURES: dict[str, str] = {}


@pytest.fixture(scope="session")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowHarness]:
    data = tmp_path_factory.mktemp("data")
    harness = AirflowHarness(dags_folder=DAGS, data_dir=data)
    # A TERM to pytest (CI cancelling) must still run the clean-up below and atexit's.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    harness.start(DAG_IDS)
    FIGURES["harness ready (db migrate + 4 components + DAGs parsed)"] = f"{harness.ready_s:.1f} s"
    try:
        assert harness.import_errors() == []
        yield harness
    finally:
        FIGURES["peak PSS of all Airflow processes"] = f"{harness.peak_pss_mb:.0f} MB"
        harness.stop()
        signal.signal(signal.SIGTERM, previous)
        left = harness.pids()
        assert left == [], f"the harness left Airflow processes behind: {left}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print what the end-to-end run measured (the figures quoted in closing notes)."""
    if FIGURES:
        terminalreporter.section("waitwise e2e figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL (installed first if missing) on a free port, for one module."""
    server = PostgresServer()
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        server.start()
        how = f"installed in {server.install_s:.1f} s" if server.install_s else "already installed"
        FIGURES["postgres: server ready (initdb + start + createdb)"] = (
            f"{server.ready_s:.1f} s ({how})"
        )
        yield server
    finally:
        FIGURES["postgres: peak PSS of the server"] = f"{server.peak_pss_mb:.0f} MB"
        stopping = time.monotonic()
        server.stop()
        FIGURES["postgres: server stop"] = f"{time.monotonic() - stopping:.1f} s"
        signal.signal(signal.SIGTERM, previous)
        assert server.pids() == []
        assert server.root is not None
        assert not server.root.exists()


PG_TRIGGERERS = ("triggerer", "triggerer#2")
PG_TRIGGERER_CAPACITY = 2  # 4 waits fill both: the sensors of a 4-sensor run are spread 2 + 2


PG_TRIGGERER_JOBS: dict[str, int] = {}  # component name -> its triggerer job id (in PostgreSQL)


def live_triggerer_jobs(server: PostgresServer) -> set[int]:
    """Return the ids of the triggerer jobs whose heartbeat is fresh (read in PostgreSQL)."""
    rows = server.query(
        "select id from job where job_type = 'TriggererJob' and state = 'running' "
        "and latest_heartbeat > now() - interval '10 seconds'"
    )
    return {int(str(job)) for (job,) in rows}


def start_pg_triggerer(harness: AirflowHarness, server: PostgresServer, name: str) -> int:
    """Start triggerer ``name`` (or its first), wait for its job to heartbeat, return its id."""
    known = set(PG_TRIGGERER_JOBS.values())
    if name in harness.components and harness.components[name].alive():
        new = live_triggerer_jobs(server) - known  # the harness started it
    else:
        harness.start_component(name)
        new = set()
    for _ in range(120):
        new = new or live_triggerer_jobs(server) - known
        if len(new) == 1:
            PG_TRIGGERER_JOBS[name] = new.pop()
            return PG_TRIGGERER_JOBS[name]
        time.sleep(0.5)
    raise AssertionError(f"no new heartbeat from {name}: {new}\n{harness.log_tails()}")


def warm_up_triggerers(harness: AirflowHarness) -> None:
    """Have both triggerers make their first Task SDK call before any test runs.

    A triggerer builds Airflow's in-process execution API on its first Task SDK call (a
    wait with a ``source`` reads its breaker Variable): 5-20 s on a busy 2-core machine,
    during which its heartbeat stops.  Past the health-check threshold (10 s here) the other
    triggerer takes its triggers over while it still runs them, which is a fault of its own,
    not the scenario a test asks for.  Four ``ww_reopen`` waits (source ``reopen_feed``, no
    breaker) fill both triggerers (capacity 2 each); their files are there, so they end at
    their first poke.
    """
    assert harness.data_dir is not None
    (harness.data_dir / "never").mkdir(exist_ok=True)
    runs = [harness.trigger("ww_reopen") for _ in range(2 * PG_TRIGGERER_CAPACITY)]
    for run in runs:
        (harness.data_dir / "never" / f"{run}.csv").write_text("warm-up\n")
    for run in runs:
        harness.wait_for("ww_reopen", run, {"sense": {"success", "skipped"}}, timeout=180)
    stalls = [
        float(found)
        for name in PG_TRIGGERERS
        for found in re.findall(r"Heartbeat recovered after ([\d.]+) seconds", harness.logs(name))
    ]
    FIGURES["postgres: triggerer heartbeat stalls at the first Task SDK call"] = (
        ", ".join(f"{s:.1f} s" for s in stalls) or "none over the heartbeat interval"
    )


def wait_both_triggerers_healthy(harness: AirflowHarness, server: PostgresServer) -> None:
    """Wait until every triggerer we started heartbeats (a stalled one may lag behind)."""
    for _ in range(240):
        if live_triggerer_jobs(server) == set(PG_TRIGGERER_JOBS.values()):
            return
        time.sleep(0.25)
    raise AssertionError(f"triggerers not both healthy: {PG_TRIGGERER_JOBS}\n{harness.log_tails()}")


@pytest.fixture(scope="module")
def pg_airflow(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowHarness]:
    """The e2e DAGs on PostgreSQL, with two triggerers of capacity 2 each (stopped first)."""
    started = time.monotonic()
    harness = AirflowHarness(
        dags_folder=DAGS,
        data_dir=tmp_path_factory.mktemp("pg-data"),
        extra_env={
            **postgres_server.airflow_env(),
            "AIRFLOW__TRIGGERER__CAPACITY": str(PG_TRIGGERER_CAPACITY),
        },
    )
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        harness.start(DAG_IDS)
        PG_TRIGGERER_JOBS.clear()
        for name in PG_TRIGGERERS:
            start_pg_triggerer(harness, postgres_server, name)
        warm_up_triggerers(harness)
        wait_both_triggerers_healthy(harness, postgres_server)
        FIGURES["postgres: harness ready (db migrate + 5 components + DAGs parsed + warm-up)"] = (
            f"{time.monotonic() - started:.1f} s"
        )
        assert harness.import_errors() == []
        yield harness
    finally:
        FIGURES["postgres: peak PSS of all Airflow processes"] = f"{harness.peak_pss_mb:.0f} MB"
        stopping = time.monotonic()
        harness.stop()
        FIGURES["postgres: harness stop"] = f"{time.monotonic() - stopping:.1f} s"
        signal.signal(signal.SIGTERM, previous)
        left = harness.pids()
        assert left == [], f"the harness left Airflow processes behind: {left}"


@pytest.fixture
def data_dir(airflow: AirflowHarness) -> Path:
    assert airflow.data_dir is not None
    return airflow.data_dir
