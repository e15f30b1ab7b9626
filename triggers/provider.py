"""Provider metadata that Airflow's ProvidersManager reads through the entry point."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow lists in ``airflow providers list``."""
    return {
        "package-name": "airflow-waitwise",
        "name": "waitwise",
        "description": "Zero-worker deferrable sensors with policy-driven async polling.",
        "versions": ["0.1.0"],
        "integrations": [
            {
                "integration-name": "waitwise",
                "external-doc-url": "https://pypi.org/project/airflow-waitwise/",
                "tags": ["software"],
            }
        ],
        "sensors": [
            {
                "integration-name": "waitwise",
                "python-modules": ["waitwise.operators.file"],
            }
        ],
        "triggers": [
            {
                "integration-name": "waitwise",
                "python-modules": ["waitwise.triggers.file"],
            }
        ],
    }
