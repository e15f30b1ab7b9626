"""Every DAG in dags/ imports cleanly, has the expected tasks, and wires its source's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag

from waitwise.triggers.simulate.wiring import DEMO_ENV

DAGS = Path(__file__).resolve().parents[2] / "dags"
TIERS = {"waitwise_financial": "high", "waitwise_customer": "medium", "waitwise_partner": "low"}


def _bag() -> DagBag:
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag


def test_example_dags_import_without_errors() -> None:
    bag = _bag()
    assert sorted(bag.dags) == [
        "waitwise_batch_example",
        "waitwise_breaker_admin",
        "waitwise_customer",
        "waitwise_financial",
        "waitwise_monitoring",
        "waitwise_partner",
    ]
    for dag_id in TIERS:
        source = dag_id.removeprefix("waitwise_")
        assert sorted(bag.dags[dag_id].task_ids) == [f"load_{source}", f"wait_{source}"]


@pytest.mark.parametrize("compressed", [False, True])
def test_each_tier_dag_waits_with_its_profile_and_learns(
    compressed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DEMO_ENV, "1" if compressed else "0")
    bag = _bag()
    for dag_id, tier in TIERS.items():
        source = dag_id.removeprefix("waitwise_")
        sensor: Any = bag.dags[dag_id].get_task(f"wait_{source}")
        assert sensor.profile.name == tier
        assert sensor.source == source
        assert type(sensor.policy).__name__ == "Adaptive"
        timeout = {"high": 15 * 60, "medium": 60 * 60, "low": 4 * 60 * 60}[tier]
        if compressed:  # the scenario's deadline, divided by the source's factor
            assert sensor.timeout < timeout / 4
            assert sensor.scheduled_at == "{{ dag_run.start_date | string }}"
        else:
            assert sensor.timeout == timeout
    partner: Any = bag.dags["waitwise_partner"].get_task("wait_partner")
    assert partner.soft_fail is True
