"""One real Airflow for the whole end-to-end session (it takes ~15 s to start)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="session")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowHarness]:
    data = tmp_path_factory.mktemp("data")
    harness = AirflowHarness(dags_folder=DAGS, data_dir=data)
    harness.start(DAG_IDS)
    try:
        assert harness.import_errors() == []
        yield harness
    finally:
        harness.stop()
        left = harness.pids()
        assert left == [], f"the harness left Airflow processes behind: {left}"


@pytest.fixture
def data_dir(airflow: AirflowHarness) -> Path:
    assert airflow.data_dir is not None
    return airflow.data_dir
