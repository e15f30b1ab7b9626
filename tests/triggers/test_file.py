"""FileArrivalTrigger driven with a fake clock: exact schedules, restarts, errors, cancellation."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from airflow.triggers.base import TaskSkippedEvent, TaskSuccessEvent, TriggerEvent

from waitwise.triggers import file as _fsbatch
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.file import FileArrivalTrigger
from waitwise.triggers.metrics import (
    POKES,
    PROBE_ERRORS,
    WAIT_SECONDS,
    WAITS_ERRORED,
    WAITS_SUCCEEDED,
)
from waitwise.triggers.policy import Constant, Exponential
from waitwise.triggers.runtime import Runtime, use_runtime
from waitwise.triggers.testing import FakeClock, RecordingSink

T0 = 1_700_000_000.0


class LandsAt(FakeClock):
    """A fake clock that creates ``path`` once virtual time reaches ``at``."""

    def __init__(self, path: Path, at: float) -> None:
        super().__init__(now_s=T0)
        self.path, self.at = path, at

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if self.now_s >= self.at and not self.path.exists():
            self.path.write_text("x")


def make(tmp_path: Path, **overrides: object) -> FileArrivalTrigger:
    kwargs: dict[str, object] = {
        "filepath": str(tmp_path / "data.csv"),
        "poll": Exponential(initial=1.0, factor=2.0, cap=8.0).to_config(),
        "timeout": 60.0,
        "started_at": T0,
        "detect": "poll",  # fake-clock schedules: real inotify events would add pokes
    }
    kwargs.update(overrides)
    return FileArrivalTrigger(**kwargs)  # type: ignore[arg-type]


async def first_event(
    trigger: FileArrivalTrigger, clock: FakeClock, sink: RecordingSink | None = None
) -> TriggerEvent:
    with use_runtime(Runtime(clock=clock, metrics=sink or RecordingSink())):
        gen = trigger.run()
        event = await anext(gen)
        with pytest.raises(StopAsyncIteration):
            await anext(gen)
    return event


async def test_exact_sleep_schedule_until_the_file_lands(tmp_path: Path) -> None:
    clock = LandsAt(tmp_path / "data.csv", at=T0 + 20)
    sink = RecordingSink()
    event = await first_event(make(tmp_path), clock, sink)

    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 8.0]  # pokes at +0 +1 +3 +7 +15 +23
    assert event.payload["status"] == "success"
    assert event.payload["pokes"] == 6
    assert event.payload["found"][0]["path"] == str(tmp_path / "data.csv")
    assert event.payload["first_seen_at"] == T0 + 23
    assert sink.names() == [POKES] * 6 + [WAITS_SUCCEEDED, WAIT_SECONDS]


async def test_deadline_clamps_the_last_sleep_and_pokes_at_the_deadline(tmp_path: Path) -> None:
    clock = FakeClock(now_s=T0)
    event = await first_event(make(tmp_path, timeout=20.0), clock)

    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 5.0]  # +15, then clamped to +20
    assert event.payload["status"] == "timeout"
    assert event.payload["pokes"] == 6
    assert event.payload["ended_at"] == T0 + 20
    assert "not found by the deadline" in event.payload["message"]


async def test_rebuilt_trigger_continues_the_schedule_and_keeps_the_deadline(
    tmp_path: Path,
) -> None:
    trigger = make(tmp_path, timeout=40.0)
    _classpath, kwargs = trigger.serialize()
    # The first triggerer died; a new one rebuilds the trigger 10 s after the start.
    rebuilt = FileArrivalTrigger(**json.loads(json.dumps(kwargs)))
    clock = FakeClock(now_s=T0 + 10)
    event = await first_event(rebuilt, clock)

    # Nominal pokes at +0 +1 +3 +7 +15 +23 +31 +39: it pokes at once (+10), then +15 onwards.
    assert clock.sleeps == [5.0, 8.0, 8.0, 8.0, 1.0]
    assert event.payload["ended_at"] == T0 + 40  # not 40 s after the restart
    assert event.payload["started_at"] == T0


async def test_anchor_recovered_from_airflow_trigger_timeout(tmp_path: Path) -> None:
    import datetime as dt

    trigger = make(tmp_path, started_at=None, timeout=30.0, airflow_timeout=90.0)
    trigger.timeout_after = dt.datetime.fromtimestamp(T0 + 90, tz=dt.UTC)  # type: ignore[attr-defined]
    clock = FakeClock(now_s=T0 + 12)
    event = await first_event(trigger, clock)

    assert event.payload["started_at"] == T0
    assert event.payload["deadline"] == T0 + 30
    assert clock.sleeps == [3.0, 8.0, 7.0]  # resume at +12: +15 +23, clamp to +30


async def test_a_check_that_keeps_failing_backs_off_then_ends_as_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")  # stat() raises OSError(ELOOP): a real error
    poll = Constant(interval=2.0).to_config()
    trigger = make(tmp_path, filepath=str(tmp_path / "a"), poll=poll, timeout=600.0)
    clock = FakeClock(now_s=T0)
    sink = RecordingSink()
    event = await first_event(trigger, clock, sink)

    # RetryStrategy's default probe_backoff Exponential(1, 2, 60), max_probe_errors 5:
    # never a sleep of zero, and the 6th error in a row ends the wait.
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert event.payload["status"] == "error"
    assert event.payload["errors"] == 6
    assert event.payload["last_error"].startswith("OSError: [Errno 40] Too many levels")
    # every failed poke is counted as a probe error too (0.1.0's hub path never counted them)
    assert sink.names() == [POKES, PROBE_ERRORS] * 6 + [WAITS_ERRORED, WAIT_SECONDS]


async def test_cancellation_is_clean(tmp_path: Path) -> None:
    sleeping = asyncio.Event()

    class Blocking(FakeClock):
        async def sleep(self, seconds: float) -> None:
            self.sleeps.append(seconds)
            sleeping.set()
            await asyncio.Event().wait()

    clock = Blocking(now_s=T0)
    with use_runtime(Runtime(clock=clock, metrics=RecordingSink())):
        gen = make(tmp_path).run()
        task: asyncio.Task[TriggerEvent] = asyncio.ensure_future(anext(gen))
        await asyncio.wait_for(sleeping.wait(), timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert clock.sleeps == [1.0]


@pytest.mark.parametrize(
    ("soft_fail", "lands", "expected"),
    [
        (False, True, TaskSuccessEvent),
        (True, True, TaskSuccessEvent),
        (True, False, TaskSkippedEvent),
        (False, False, TriggerEvent),  # a hard timeout resumes a worker: no retry burnt
    ],
)
async def test_task_ending_events(
    tmp_path: Path, soft_fail: bool, lands: bool, expected: type
) -> None:
    if lands:
        (tmp_path / "data.csv").write_text("x")
    trigger = make(tmp_path, timeout=5.0, soft_fail=soft_fail, end_from_trigger=True)
    event = await first_event(trigger, FakeClock(now_s=T0))
    assert type(event) is expected


async def test_glob_and_directory_rules_match_file_sensor(tmp_path: Path) -> None:
    (tmp_path / "in" / "deep").mkdir(parents=True)
    (tmp_path / "in" / "deep" / "part-0001.json").write_text("{}")
    assert _fsbatch.check(_fsbatch.FileQuery(str(tmp_path / "in"))) != []
    assert _fsbatch.check(_fsbatch.FileQuery(str(tmp_path / "in/*.json"))) == []
    assert _fsbatch.check(_fsbatch.FileQuery(str(tmp_path / "in/**/*.json"), recursive=True)) != []
    (tmp_path / "empty").mkdir()
    assert _fsbatch.check(_fsbatch.FileQuery(str(tmp_path / "empty"))) == []


def test_serialize_round_trip_is_plain_json(tmp_path: Path) -> None:
    trigger = make(tmp_path, soft_fail=True, recursive=True, seed="k")
    classpath, kwargs = trigger.serialize()
    assert classpath == "waitwise.triggers.file.FileArrivalTrigger"
    assert FileArrivalTrigger(**json.loads(json.dumps(kwargs))).serialize() == (classpath, kwargs)


def test_unknown_kwarg_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="poke_intervall"):
        make(tmp_path, poke_intervall=3)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("timeout", -1, "timeout must be a finite number > 0, got -1"),
        ("timeout", "60", "timeout must be a number of seconds, got '60'"),
        ("filepath", "", "filepath must be a non-empty string, got ''"),
    ],
)
def test_bad_arguments_name_parameter_and_value(
    tmp_path: Path, field: str, value: object, match: str
) -> None:
    with pytest.raises(PolicyConfigError, match=match):
        make(tmp_path, **{field: value})


async def test_probe_alone_checks_the_path_off_the_loop(tmp_path: Path) -> None:
    trigger = make(tmp_path)
    query = await trigger.prepare()

    async def probe() -> Any:
        [result] = await trigger.prober.probe_batch([query])
        return result

    assert await probe() == []
    (tmp_path / "data.csv").write_text("x")
    assert [f["path"] for f in await probe()] == [str(tmp_path / "data.csv")]


def test_a_confined_relative_path_may_not_climb_out_of_its_base(tmp_path: Path) -> None:
    base = tmp_path / "landing"
    base.mkdir()
    query = _fsbatch.resolve_query(
        "in/../orders.csv", str(base), recursive=False, confine=True, conn_id="fs_default"
    )
    assert query.pattern == str(base / "orders.csv")
    with pytest.raises(PolicyConfigError, match=r"filepath '\.\./\.\./etc/passwd' leaves"):
        _fsbatch.resolve_query(
            "../../etc/passwd", str(base), recursive=False, confine=True, conn_id="fs_default"
        )
    free = _fsbatch.resolve_query(
        "../secret", str(base), recursive=False, confine=False, conn_id="fs_default"
    )
    assert free.pattern == str(tmp_path / "secret")


def test_files_reached_through_a_symlink_out_of_the_base_are_not_reported(
    tmp_path: Path,
) -> None:
    base, outside = tmp_path / "landing", tmp_path / "private"
    base.mkdir()
    outside.mkdir()
    (outside / "key.pem").write_text("secret")
    (base / "inbox").symlink_to(outside)  # e.g. planted by whoever may write the landing dir
    (base / "real.csv").write_text("x")

    def found(relative: str, confine: bool) -> list[str]:
        query = _fsbatch.resolve_query(
            relative, str(base), recursive=False, confine=confine, conn_id="c"
        )
        return [Path(f["path"]).name for f in _fsbatch.check(query)]

    assert found("inbox/key.pem", confine=True) == []
    assert found("*", confine=True) == ["real.csv"]
    assert found("inbox/key.pem", confine=False) == ["key.pem"]


async def test_a_path_out_of_the_base_ends_the_wait_as_an_error(tmp_path: Path) -> None:
    class Based(FileArrivalTrigger):
        async def _base_path(self) -> str:  # the fs connection's path, without a database
            return str(tmp_path)

    trigger = Based(
        filepath="../../etc/passwd",
        poll={"kind": "constant", "interval": 1.0},
        timeout=60.0,
        started_at=T0,
    )
    event = await first_event(trigger, FakeClock(now_s=T0))
    assert event.payload["status"] == "error"
    assert event.payload["pokes"] == 0
    assert "leaves the base path" in event.payload["last_error"]


class WrittenUntil(FakeClock):
    """A fake clock whose writer appends to ``path`` at every sleep until ``until``."""

    def __init__(self, path: Path, until: float) -> None:
        super().__init__(now_s=T0)
        self.path, self.until = path, until

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if self.now_s <= self.until:
            with self.path.open("a") as out:
                out.write("more")
            os.utime(self.path, (self.now_s, self.now_s))


async def test_inactivity_period_reports_a_file_once_unmodified_that_long(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("partial")
    os.utime(path, (T0 - 5, T0 - 5))
    clock = FakeClock(now_s=T0)
    trigger = make(tmp_path, inactivity_period=30.0, poll=Constant(10.0).to_config())
    event = await first_event(trigger, clock)

    # Pokes at +0, +10, +20 see it modified 5, 15, 25 s before: too recent; +30 (35 s) reports.
    assert clock.sleeps == [10.0, 10.0, 10.0]
    assert event.payload["status"] == "success"
    assert event.payload["first_seen_at"] == T0 + 30


async def test_a_file_written_all_along_stays_unreported_until_its_writer_stops(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data.csv"
    path.write_text("")
    os.utime(path, (T0, T0))
    clock = WrittenUntil(path, until=T0 + 40)
    trigger = make(tmp_path, inactivity_period=25.0, poll=Constant(10.0).to_config(), timeout=120.0)
    event = await first_event(trigger, clock)

    assert event.payload["first_seen_at"] == T0 + 70  # the first poke 25 s after the last write
    assert path.read_text() == "more" * 4  # written at +10, +20, +30 and +40


def test_inactivity_period_is_in_the_row_only_when_set(tmp_path: Path) -> None:
    _, plain = make(tmp_path).serialize()
    assert "inactivity_period" not in plain  # rows of sensors without it stay as before
    classpath, kwargs = make(tmp_path, inactivity_period=12.5).serialize()
    assert kwargs["inactivity_period"] == 12.5
    assert FileArrivalTrigger(**json.loads(json.dumps(kwargs))).serialize() == (classpath, kwargs)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"inactivity_period": -1}, "inactivity_period must be a number of seconds, .*got -1"),
        ({"inactivity_period": True}, "inactivity_period must be a number of seconds, .*got True"),
        ({"inactivity_period": "30"}, "inactivity_period must be a number of seconds, .*got '30'"),
        (
            {"inactivity_period": 30, "filepath": "s3://bucket/in/data.csv"},
            "inactivity_period applies to filesystem paths, not object URLs",
        ),
    ],
)
def test_a_bad_inactivity_period_is_named(
    tmp_path: Path, overrides: dict[str, object], match: str
) -> None:
    with pytest.raises(PolicyConfigError, match=match):
        make(tmp_path, **overrides)
