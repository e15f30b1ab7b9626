from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from waitwise.triggers.store import AirflowStore, CompactionPolicy, FileStore, WaitStore

from .fakes import NOW, MemoryKV

StoreFactory = Callable[..., WaitStore]


@pytest.fixture(params=["file", "airflow"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Build either backend with a given retention; one shared state per test."""
    kv = MemoryKV()

    def factory(retention: int = 1000, **options: object) -> WaitStore:
        """Compaction only when a test calls ``compact``; the clock stands at NOW."""
        options = {"compaction": CompactionPolicy(every=None), "now": lambda: NOW, **options}
        if request.param == "file":
            return FileStore(tmp_path / "store", retention=retention, **options)  # type: ignore[arg-type]
        return AirflowStore(kv, retention=retention, settle_s=0, **options)  # type: ignore[arg-type]

    return factory


@pytest.fixture
def store(make_store: StoreFactory) -> WaitStore:
    return make_store()
