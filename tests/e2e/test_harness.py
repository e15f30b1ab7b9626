"""The harness itself: Airflow sees the provider, the DAGs parse, cleanup is complete."""

from __future__ import annotations

import json

import pytest

from devtools.airflow_harness import AirflowHarness

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]


def test_providers_list_shows_waitwise(airflow: AirflowHarness) -> None:
    out = airflow.cli("providers", "list", "--output", "json")
    names = {p["package_name"] for p in json.loads(out)}
    assert "airflow-waitwise" in names


def test_example_and_test_dags_parse_without_errors(airflow: AirflowHarness) -> None:
    assert airflow.import_errors() == []
