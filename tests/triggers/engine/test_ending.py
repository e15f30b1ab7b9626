"""How a wait ends: its history record and its XCom written together, each delivered alone."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.bases.xcom import BaseXCom
from airflow.sdk.execution_time import task_runner
from airflow.sdk.execution_time import xcom as sdk_xcom
from airflow.triggers.base import TaskSuccessEvent

from waitwise.triggers.engine.ending import XCOM_IN_FLIGHT, finish
from waitwise.triggers.engine.progress import Tally
from waitwise.triggers.engine.wait import Wait
from waitwise.triggers.events import FoundItem, WaitStatus
from waitwise.triggers.metrics import RECORD_FAILURES, XCOM_FAILURES
from waitwise.triggers.policy import Constant
from waitwise.triggers.runtime import Runtime
from waitwise.triggers.spec import WaitSpec
from waitwise.triggers.store import FileStore, WaitRecord
from waitwise.triggers.testing import FakeClock, RecordingSink

T0 = 1_700_000_000.0
GUARD_S = 10.0  # only a broken (sequential) finish waits this long: it fails, not hangs


class Comms:
    """Airflow's ``SUPERVISOR_COMMS`` of the triggerer: records what reaches the parent.

    ``gate``: awaited before each async request is answered (the parent is busy);
    ``failures``: how many requests fail first.
    """

    def __init__(self, gate: asyncio.Event | None = None, failures: int = 0) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.threads: list[bool] = []
        self.gate, self.failures = gate, failures
        self.started = asyncio.Event()
        self.in_flight = self.most_in_flight = 0

    async def asend(self, msg: Any) -> None:
        self.sent.append((type(msg).__name__, msg))
        self.threads.append(threading.current_thread() is threading.main_thread())
        self.started.set()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
        finally:
            self.in_flight -= 1
        if self.failures:
            self.failures -= 1
            raise ConnectionError("supervisor busy")

    def send(self, msg: Any) -> None:  # the sync API, from a worker thread
        self.sent.append((type(msg).__name__, msg))
        self.threads.append(threading.current_thread() is threading.main_thread())


class GatedStore(FileStore):
    """A file store whose batch append starts, then waits for ``gate``."""

    def __init__(self, root: Path, gate: asyncio.Event) -> None:
        super().__init__(root)
        self.gate, self.started = gate, asyncio.Event()

    async def append_many(self, records: list[WaitRecord]) -> None:
        self.started.set()
        await self.gate.wait()
        await super().append_many(records)


@pytest.fixture
def comms(monkeypatch: pytest.MonkeyPatch) -> Comms:
    fake = Comms()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", fake, raising=False)
    return fake


def ending_wait(store: FileStore, sink: RecordingSink, *, xcom_push: bool = True) -> Wait:
    spec = WaitSpec(
        poll=Constant(interval=1.0),
        timeout=60.0,
        started_at=T0,
        end_from_trigger=True,
        xcom_push=xcom_push,
        source="src",
        store={"kind": "file", "root": "/unused"},
    )
    task = SimpleNamespace(dag_id="d", task_id="t", run_id="r", map_index=-1, try_number=1)
    runtime = Runtime(clock=FakeClock(now_s=T0 + 5), metrics=sink, store=store)
    return Wait(spec, None, None, "/data/x", "Test", "k", task, runtime)  # type: ignore[arg-type]


def found_tally() -> Tally:
    tally = Tally(started_at=T0, deadline=T0 + 60, pokes=3)
    tally.found = [FoundItem(path="/data/x", size=1, mtime=T0 + 4)]
    return tally


async def test_record_and_xcom_are_in_flight_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each side waits until the other has started: only a finish that writes both at
    # once can end (a record-then-XCom finish would wait for ever, here GUARD_S).
    store = GatedStore(tmp_path, asyncio.Event())
    comms = Comms(gate=store.started)
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    store.gate = comms.started
    sink = RecordingSink()

    event = await asyncio.wait_for(
        finish(ending_wait(store, sink), WaitStatus.SUCCESS, found_tally()), GUARD_S
    )

    assert isinstance(event, TaskSuccessEvent)
    assert [r.task_id for r in await store.history("src")] == ["t"]
    assert [name for name, _msg in comms.sent] == ["SetXCom"]


async def test_default_backend_pushes_on_the_loop_without_a_thread(
    tmp_path: Path, comms: Comms
) -> None:
    await finish(
        ending_wait(FileStore(tmp_path), RecordingSink()), WaitStatus.SUCCESS, found_tally()
    )

    [(name, msg)] = comms.sent
    assert name == "SetXCom"
    assert (msg.key, msg.dag_id, msg.task_id, msg.run_id, msg.map_index) == (
        "return_value",
        "d",
        "t",
        "r",
        -1,
    )
    assert msg.value["status"] == "success"
    assert msg.value["found"] == [{"path": "/data/x", "size": 1, "mtime": T0 + 4}]
    assert comms.threads == [True]  # asend on the loop's (main) thread, not to_thread


async def test_custom_backend_pushes_in_a_thread(
    tmp_path: Path, comms: Comms, monkeypatch: pytest.MonkeyPatch
) -> None:
    class CustomXCom(BaseXCom):
        """A backend whose serialization may block (an object store upload)."""

    monkeypatch.setattr(sdk_xcom, "XCom", CustomXCom)
    await finish(
        ending_wait(FileStore(tmp_path), RecordingSink()), WaitStatus.SUCCESS, found_tally()
    )

    assert [name for name, _msg in comms.sent] == ["SetXCom"]
    assert comms.threads == [False]


@pytest.mark.parametrize(
    ("failures", "attempts", "xcom_failures"),
    [(2, 3, 0), (3, 3, 1)],
)
async def test_a_failing_xcom_push_is_retried_alone_and_never_stops_the_record(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failures: int,
    attempts: int,
    xcom_failures: int,
) -> None:
    comms = Comms(failures=failures)
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    store, sink = FileStore(tmp_path), RecordingSink()
    wait = ending_wait(store, sink)

    event = await finish(wait, WaitStatus.SUCCESS, found_tally())

    assert isinstance(event, TaskSuccessEvent)
    assert len(comms.sent) == attempts
    assert wait.runtime.clock.sleeps == [1.0, 4.0]  # type: ignore[attr-defined]
    assert sink.names().count(XCOM_FAILURES) == xcom_failures
    assert RECORD_FAILURES not in sink.names()
    assert [r.outcome.value for r in await store.history("src")] == ["success"]


async def test_no_xcom_when_the_task_does_not_push(tmp_path: Path, comms: Comms) -> None:
    store = FileStore(tmp_path)
    wait = ending_wait(store, RecordingSink(), xcom_push=False)

    event = await finish(wait, WaitStatus.SUCCESS, found_tally())

    assert isinstance(event, TaskSuccessEvent)
    assert comms.sent == []
    assert len(await store.history("src")) == 1


async def test_xcom_pushes_of_waits_ending_together_are_few_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The parent answers in arrival order: a record or breaker request sent after them
    # must not wait behind every push of a fan-in.
    gate = asyncio.Event()
    comms = Comms(gate=gate)
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    store, sink = FileStore(tmp_path), RecordingSink()
    endings = [
        asyncio.ensure_future(finish(ending_wait(store, sink), WaitStatus.SUCCESS, found_tally()))
        for _ in range(3 * XCOM_IN_FLIGHT)
    ]
    await comms.started.wait()
    for _ in range(5):
        await asyncio.sleep(0)

    assert comms.in_flight == XCOM_IN_FLIGHT
    gate.set()
    events = await asyncio.gather(*endings)

    assert all(isinstance(event, TaskSuccessEvent) for event in events)
    assert len(comms.sent) == 3 * XCOM_IN_FLIGHT
    assert comms.most_in_flight == XCOM_IN_FLIGHT
