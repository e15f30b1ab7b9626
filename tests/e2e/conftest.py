"""One real Airflow for the whole end-to-end session (it takes ~15 s to start)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.airflow_harness import AirflowHarness

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


@pytest.fixture
def data_dir(airflow: AirflowHarness) -> Path:
    assert airflow.data_dir is not None
    return airflow.data_dir
