"""Suite-wide set-up: an isolated AIRFLOW_HOME, and a fresh waitwise runtime per test."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

# Before anything imports airflow: never touch ~/airflow, never read a user's config.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="waitwise-unit-airflow-")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

import pytest

from waitwise.triggers import runtime


@pytest.fixture(autouse=True)
def _fresh_runtime() -> Iterator[None]:
    runtime.reset()
    yield
    runtime.reset()
