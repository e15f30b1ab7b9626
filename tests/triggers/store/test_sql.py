"""The api-server read path against Airflow's own ``variable`` table (in-memory SQLite)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from waitwise.triggers.store import AirflowStore, CompactionPolicy, MetadataBackend

from .fakes import NOW, SRC, make_record


class CountingSessions:
    """A ``create_session`` over one in-memory database that counts SELECTs."""

    def __init__(self) -> None:
        from airflow.models.variable import Variable

        engine = create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        Variable.__table__.create(engine)
        self.selects = 0
        event.listen(engine, "before_cursor_execute", self._count)
        self._factory = sessionmaker(engine)
        self._one_at_a_time = threading.Lock()  # one shared connection: no nesting

    def _count(self, *args: Any) -> None:
        self.selects += args[2].lstrip().upper().startswith("SELECT")

    @contextlib.contextmanager
    def __call__(self) -> Iterator[Session]:
        with self._one_at_a_time, self._factory() as session, session.begin():
            yield session


@pytest.fixture
def sessions() -> CountingSessions:
    return CountingSessions()


@pytest.fixture
def backend(sessions: CountingSessions) -> MetadataBackend:
    return MetadataBackend(sessions)


async def test_operations_on_the_variable_table(backend):
    await backend.set("waitwise/finance/a", "1")
    await backend.set("waitwise/finance/a", "2")
    await backend.set("waitwise/Finance/b", "3")  # SQLite's LIKE ignores case; we do not
    await backend.set("waitwise/finance_x/c", "4")  # "_" is a LIKE wildcard; escaped
    got = (await backend.get("waitwise/finance/a"), await backend.get("missing"))
    listed = (await backend.items("waitwise/finance/"), await backend.keys("waitwise/finance/"))
    await backend.delete("waitwise/finance/a")
    await backend.delete("waitwise/finance/a")
    assert (got, listed, await backend.items("waitwise/f")) == (
        ("2", None),
        ({"waitwise/finance/a": "2"}, ["waitwise/finance/a"]),
        {"waitwise/finance_x/c": "4"},
    )


async def test_a_source_is_read_in_one_query(backend, sessions):
    store = AirflowStore(
        backend, compaction=CompactionPolicy(every=None), settle_s=0, now=lambda: NOW
    )
    for i in range(30):
        await store.append(make_record(i))
    await store.compact(SRC)
    await store.append(make_record(30))
    before = sessions.selects
    records = await store.history(SRC)
    assert (len(records), sessions.selects - before) == (31, 1)
