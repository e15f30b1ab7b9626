"""One directory listing serves every wait on it; inotify events poke waits at once."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from airflow.triggers.base import TriggerEvent

from waitwise.triggers import FileArrivalTrigger, FileBatchTrigger, runtime
from waitwise.triggers.engine.hub import Watch
from waitwise.triggers.engine.sharing import Sharers
from waitwise.triggers.notify import events_for_loop
from waitwise.triggers.policy import Constant
from waitwise.triggers.runtime import Runtime, use_runtime
from waitwise.triggers.testing import FakeClock, RecordingSink

T0 = 1_700_000_000.0


class LandsAt(FakeClock):
    def __init__(self, path: Path, at: float) -> None:
        super().__init__(now_s=T0)
        self.path, self.at = path, at

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if self.now_s >= self.at and not self.path.exists():
            self.path.write_text("x")


def waiting(path: Path | str, started_at: float, detect: str = "poll") -> FileArrivalTrigger:
    return FileArrivalTrigger(
        filepath=str(path),
        poll=Constant(interval=1.0).to_config(),
        timeout=30.0,
        started_at=started_at,
        detect=detect,
    )


async def test_one_listing_ends_every_wait_on_the_directory_whatever_its_phase(
    tmp_path: Path,
) -> None:
    clock = LandsAt(tmp_path / "in.csv", at=T0 + 2.1)
    # Four waits a quarter-second apart: nominal pokes at +2.25, +2.5, +2.75 and +3.0 after
    # the landing; two more waits on other names keep the directory listed (>= 4 queries).
    waits = [waiting(tmp_path / "in.csv", T0 - 0.25 * i) for i in range(4)]
    waits += [waiting(tmp_path / f"other{i}.csv", T0) for i in range(2)]
    with use_runtime(Runtime(clock=clock, metrics=RecordingSink())):
        tasks = [asyncio.ensure_future(anext(w.run())) for w in waits]
        events = await asyncio.gather(*tasks[:4])
        found_by_looks = runtime.current().hub().looks_found
        for task in tasks[4:]:
            task.cancel()
        await asyncio.gather(*tasks[4:], return_exceptions=True)
    assert [e.payload["status"] for e in events] == ["success"] * 4
    assert {e.payload["first_seen_at"] for e in events} == {T0 + 2.25}  # one listing for all
    assert found_by_looks == 3


async def test_a_look_that_finds_nothing_leaves_the_schedule_alone(tmp_path: Path) -> None:
    clock = LandsAt(tmp_path / "late.csv", at=T0 + 100)
    waits = [waiting(tmp_path / f"f{i}.csv", T0 - 0.25 * i) for i in range(4)]
    with use_runtime(Runtime(clock=clock, metrics=RecordingSink())):
        events = await asyncio.gather(*(anext(w.run()) for w in waits))
    # each: the poke at its (re)start, then its nominal pokes up to its deadline: 31; the
    # looks other waits' pokes gave it are not pokes
    assert [e.payload["pokes"] for e in events] == [31, 31, 31, 31]
    assert {e.payload["status"] for e in events} == {"timeout"}


class Still(FakeClock):
    """Virtual time that stands still: a sleep of 10 ms or more lasts until cancelled.

    The hub's naps end only when it is woken, so any poke after the first is an event's.
    """

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(seconds if seconds < 0.01 else 3600)


async def _until(condition: object, what: str) -> None:
    for _ in range(500):  # at most 5 s of real time: events arrive in microseconds
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def _start(trigger: FileArrivalTrigger | FileBatchTrigger) -> asyncio.Task[TriggerEvent]:
    task = asyncio.ensure_future(anext(trigger.run()))
    hub = runtime.current().hub()
    await _until(lambda: hub.batches >= 1, "the first poke")
    return task


async def test_a_file_renamed_into_place_is_detected_by_its_event(tmp_path: Path) -> None:
    with use_runtime(Runtime(clock=Still(now_s=T0), metrics=RecordingSink())):
        task = await _start(waiting(tmp_path / "in.csv", T0, detect="auto"))
        staged = tmp_path.parent / f"{tmp_path.name}.staged"
        staged.write_text("done")
        os.rename(staged, tmp_path / "in.csv")
        event = await asyncio.wait_for(task, 5)
    assert event.payload["status"] == "success"
    assert event.payload["pokes"] == 2  # the first, then the event's (virtual time stood still)


async def test_a_file_being_written_is_reported_only_once_closed(tmp_path: Path) -> None:
    target = tmp_path / "big.csv"
    with use_runtime(Runtime(clock=Still(now_s=T0), metrics=RecordingSink())):
        task = await _start(
            FileBatchTrigger(
                filepaths=[str(target), str(tmp_path / "small.csv")],
                poll=Constant(interval=1.0).to_config(),
                timeout=30.0,
                started_at=T0,
            )
        )
        hub = runtime.current().hub()
        events = events_for_loop()
        with target.open("w") as writer:
            writer.write("partial,")
            writer.flush()
            await _until(lambda: "big.csv" in events.writing(str(tmp_path)), "IN_MODIFY")
            before = hub.batches
            (tmp_path / "small.csv").write_text("x")  # the other member completes: a poke
            await _until(lambda: hub.batches > before, "the poke small.csv caused")
            assert not task.done()  # big.csv was there, but being written
            writer.write("rest\n")
        event = await asyncio.wait_for(task, 5)  # closed: IN_CLOSE_WRITE
    assert event.payload["status"] == "success"
    found = {Path(f["path"]).name: f for f in event.payload["found"]}
    assert found["big.csv"]["size"] == len("partial,rest\n")


async def test_an_event_for_another_name_does_not_poke_a_wait(tmp_path: Path) -> None:
    with use_runtime(Runtime(clock=Still(now_s=T0), metrics=RecordingSink())):
        task = await _start(waiting(tmp_path / "mine.csv", T0, detect="auto"))
        hub = runtime.current().hub()
        for i in range(20):
            (tmp_path / f"other{i}.csv").write_text("x")
        (tmp_path / "mine.csv.part").write_text("x")
        os.rename(tmp_path / "mine.csv.part", tmp_path / "mine.csv")
        event = await asyncio.wait_for(task, 5)
    assert event.payload["pokes"] == 2  # its first, then its own file's event: not 22
    assert hub.batches == 2


@dataclass
class _Waiting:
    """What :class:`Sharers` reads of a wait."""

    future: asyncio.Future[Any]
    share: tuple[str, ...]
    in_flight: bool = False


async def test_others_are_the_pending_sharers_and_ended_waits_leave_their_keys() -> None:
    loop = asyncio.get_running_loop()
    ended = _Waiting(loop.create_future(), ("a",))
    due = [_Waiting(loop.create_future(), ("b",)) for _ in range(2)]
    other = _Waiting(loop.create_future(), ("b",))
    probing = _Waiting(loop.create_future(), ("b",), in_flight=True)
    sharers = Sharers()
    for entry in (ended, *due, other, probing):
        sharers.add(cast("Watch", entry), entry.share)
    ended.future.set_result(None)

    # The key whose waits all ended is dropped, whichever order the keys come in.
    assert sharers.others(["b", "a"], cast("list[Watch]", due)) == [cast("Watch", other)]
    assert len(sharers) == 4
    assert sharers.shared(cast("list[Watch]", due)) == {"b"}
