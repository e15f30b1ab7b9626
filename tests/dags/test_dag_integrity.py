"""Every DAG in dags/ imports cleanly and has the expected tasks."""

from __future__ import annotations

from pathlib import Path

from airflow.dag_processing.dagbag import DagBag

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_example_dags_import_without_errors() -> None:
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert sorted(bag.dags) == ["waitwise_breaker_admin", "waitwise_example", "waitwise_monitoring"]
    dag = bag.dags.get("waitwise_example")
    assert dag is not None
    assert sorted(dag.task_ids) == [
        "load_customer",
        "load_financial",
        "load_partner",
        "wait_customer",
        "wait_financial",
        "wait_partner",
    ]
