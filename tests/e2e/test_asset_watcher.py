"""Issue 12, asset-watcher mode: a DAG scheduled on files landing, in a real Airflow.

Its own Airflow (dags_asset/): two assets watched by :class:`FileAssetTrigger` on one landing
directory (``partner_*.xml`` with source ``partner``, ``customer_*.csv``), one DAG scheduled
on each.  A partner file is there before Airflow starts: by the first-start contract it does
not fire.  Then partner files land one after another (written under a hidden temporary name,
renamed into place): each triggers one run of the partner DAG, none of the customer DAG, and
its payload names the file; a customer file triggers the customer DAG.  Each firing is a
success record in the partner source's history.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.airflow_harness import AirflowHarness
from tests.e2e.conftest import FIGURES
from waitwise.triggers.store import FileStore, WaitOutcome

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DAGS = Path(__file__).parent / "dags_asset"
PARTNER, CUSTOMER = "ww_on_partner_file", "ww_on_customer_file"


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("landing")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("history")


@pytest.fixture(scope="module")
def airflow(landing: Path, history: Path) -> Iterator[AirflowHarness]:
    land(landing, "partner_0.xml")  # there before the watcher: the first start skips it
    harness = AirflowHarness(
        dags_folder=DAGS,
        extra_env={"WAITWISE_ASSET_DIR": str(landing), "WAITWISE_ASSET_STORE": str(history)},
    )
    harness.start([PARTNER, CUSTOMER])
    FIGURES["asset watcher: harness ready"] = f"{harness.ready_s:.1f} s"
    try:
        assert harness.import_errors() == []
        yield harness
    finally:
        harness.stop()
        assert harness.pids() == []


def land(directory: Path, name: str) -> None:
    """Write ``name`` under a hidden temporary name in ``directory``, then rename it in."""
    part = directory / f".{name}.part"
    part.write_text(f"<file name='{name}'/>\n")
    part.rename(directory / name)


def wait_until(what: str, check: Callable[[], Any], timeout: float, harness: AirflowHarness) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{harness.log_tails()}")


def runs(harness: AirflowHarness, dag_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = harness.api("GET", f"/dags/{dag_id}/dagRuns?limit=100")[
        "dag_runs"
    ]
    return sorted(found, key=lambda run: str(run["run_after"]))


def fired_names(harness: AirflowHarness, asset: str) -> list[str]:
    events = harness.api("GET", "/assets/events?limit=100&order_by=timestamp")["asset_events"]
    return [e["extra"]["payload"]["name"] for e in events if e["name"] == asset]


def successful_runs(harness: AirflowHarness, dag_id: str, count: int) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        found = runs(harness, dag_id)
        ok = len(found) >= count and all(run["state"] == "success" for run in found)
        return found if ok else None

    found: list[dict[str, Any]] = wait_until(f"{count} run(s) of {dag_id}", done, 60, harness)
    return found


def watching(harness: AirflowHarness) -> bool:
    """Return whether both watchers have taken their first listing (the first-start cursor)."""
    return harness.logs("triggerer").count("file(s) already there") >= 2


def test_files_landing_trigger_one_run_each(
    airflow: AirflowHarness, landing: Path, history: Path
) -> None:
    started = time.monotonic()
    wait_until("the watchers' first listing", lambda: watching(airflow), 60, airflow)
    FIGURES["asset watcher: DAGs parsed to watchers listing"] = (
        f"{time.monotonic() - started:.1f} s"
    )

    landed = time.monotonic()
    land(landing, "partner_1.xml")
    first = successful_runs(airflow, PARTNER, 1)
    FIGURES["asset watcher: rename to DAG run success (1 s poll)"] = (
        f"{time.monotonic() - landed:.1f} s"
    )
    land(landing, "partner_2.xml")
    land(landing, "customer_1.csv")
    both = successful_runs(airflow, PARTNER, 2)
    successful_runs(airflow, CUSTOMER, 1)

    assert [run["run_type"] for run in both] == ["asset_triggered"] * 2
    assert both[0]["dag_run_id"] == first[0]["dag_run_id"]
    assert fired_names(airflow, "ww_partner_drop") == ["partner_1.xml", "partner_2.xml"]
    assert fired_names(airflow, "ww_customer_drop") == ["customer_1.csv"]
    time.sleep(3)  # a few more scans: nothing fires twice, partner_0 never
    assert len(runs(airflow, PARTNER)) == 2
    assert len(runs(airflow, CUSTOMER)) == 1

    scans = airflow.logs("triggerer").count(f"Shared scan of {landing} started")
    assert scans == 1  # two watchers of one directory: one shared scan

    records = asyncio.run(FileStore(str(history)).history("partner"))
    assert [r.outcome for r in records] == [WaitOutcome.SUCCESS] * 2
    assert sorted(r.run_id.split("@")[0] for r in records) == ["partner_1.xml", "partner_2.xml"]
    assert {r.dag_id for r in records} == {"asset_watcher"}
