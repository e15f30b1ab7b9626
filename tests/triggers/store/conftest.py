from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from waitwise.triggers.store import AirflowStore, FileStore, WaitStore

from .fakes import MemoryKV

StoreFactory = Callable[..., WaitStore]


@pytest.fixture(params=["file", "airflow"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Build either backend with a given retention; one shared state per test."""
    kv = MemoryKV()

    def factory(retention: int = 1000) -> WaitStore:
        if request.param == "file":
            return FileStore(tmp_path / "store", retention=retention)
        return AirflowStore(kv, retention=retention, settle_s=0)

    return factory


@pytest.fixture
def store(make_store: StoreFactory) -> WaitStore:
    return make_store()
