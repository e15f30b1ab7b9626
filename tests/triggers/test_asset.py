"""FileAssetTrigger: kwargs, pattern, the shared scan, the cursor, history and the breaker."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from waitwise.triggers import LOW, Constant, Exponential, TriggerArgumentError
from waitwise.triggers.asset import (
    CURSOR_SETTLE_S,
    DEFAULT_POLL,
    Completeness,
    Cursor,
    Entry,
    FileAssetTrigger,
    Listing,
    ScanFailed,
    scan,
    scan_forever,
)
from waitwise.triggers.breaker import BreakerConfig, BreakerState
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.profiles import RetryStrategy
from waitwise.triggers.runtime import Runtime, use_runtime
from waitwise.triggers.store import FileStore, WaitOutcome
from waitwise.triggers.testing import FakeClock, RecordingSink

CLASSPATH = "waitwise.triggers.asset.FileAssetTrigger"
OLD = 1_000_000_000  # an mtime from 2001: what `mv` keeps


class FakeAssetStore:
    """Airflow's per-asset accessor, as far as the trigger uses it (aget / aset)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.sets = 0
        self.fail = False

    async def aget(self, key: str, default: Any = None) -> Any:
        if self.fail:
            raise ConnectionError("supervisor gone")
        return json.loads(json.dumps(self.values.get(key, default)))

    async def aset(self, key: str, value: Any) -> None:
        self.sets += 1
        self.values[key] = json.loads(json.dumps(value))


class FakeAccessors:
    """Airflow's AssetStateStoreAccessors of a trigger watching two assets."""

    def __init__(self, *stores: FakeAssetStore) -> None:
        self._by_name = {f"asset{i}": store for i, store in enumerate(stores)}
        self._by_uri: dict[str, FakeAssetStore] = {}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(str(tmp_path / "history"))


@pytest.fixture
def rt(clock: FakeClock, store: FileStore) -> Iterator[Runtime]:
    with use_runtime(Runtime(clock=clock, metrics=RecordingSink(), store=store)) as current:
        yield current


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "in"
    path.mkdir()
    return path


def trigger_for(directory: Path, **kwargs: Any) -> FileAssetTrigger:
    kwargs.setdefault("pattern", "partner_*.xml")
    kwargs.setdefault("detect", "poll")
    return FileAssetTrigger(directory=str(directory), **kwargs)


def watch_assets(trigger: FileAssetTrigger, store: object) -> None:
    """Hand the trigger its asset state store, as Airflow's triggerer does before it runs."""
    trigger.asset_state_store = store  # type: ignore[assignment]


def land(directory: Path, name: str, text: str = "<x/>", mtime: int | None = None) -> None:
    """Write ``name`` under a temporary name, then rename it into place (as producers do)."""
    tmp = directory.parent / f".{name}.part"
    tmp.write_text(text)
    if mtime is not None:
        os.utime(tmp, (mtime, mtime))
    tmp.rename(directory / name)


async def scans(
    directory: Path, clock: FakeClock, steps: list[Callable[[], None]]
) -> AsyncIterator[Listing]:
    """The shared stream by polling's rule: each step changes the directory, then two scans."""
    judge = Completeness(events=False)
    for step in steps:
        step()
        for _ in range(2):  # the second scan sees the changed files stable
            clock.advance(1.0)
            complete, pending, _ = judge.judge(scan(str(directory)), frozenset())
            yield Listing(str(directory), clock.now(), complete, pending)


def nothing() -> None:
    pass


async def fired(trigger: FileAssetTrigger, stream: AsyncIterator[Any]) -> list[str]:
    return [event.payload["name"] async for event in trigger.filter_shared_stream(stream)]


# ------------------------------------------------------------------------- kwargs


def test_kwargs_round_trip_through_serialize(landing: Path) -> None:
    trigger = trigger_for(landing, source="partner", profile="low")
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert FileAssetTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert isinstance(trigger, BaseEventTrigger)


def test_the_class_path_stored_by_airflow_never_moves(landing: Path) -> None:
    module_name, _, name = CLASSPATH.rpartition(".")
    assert getattr(importlib.import_module(module_name), name) is FileAssetTrigger
    assert f"{FileAssetTrigger.__module__}.{FileAssetTrigger.__qualname__}" == CLASSPATH

    class Mine(FileAssetTrigger):
        pass

    assert Mine(directory=str(landing)).serialize()[0] == f"{__name__}.{Mine.__qualname__}"


def test_the_shared_stream_hooks_are_the_triggers() -> None:
    opener = FileAssetTrigger.open_shared_stream
    assert inspect.ismethod(opener)
    assert opener.__self__ is FileAssetTrigger  # a classmethod: the triggerer passes kwargs
    for hook in ("shared_stream_key", "filter_shared_stream", "run"):
        assert hook in vars(FileAssetTrigger)


def test_a_profile_supplies_poll_retry_breaker_and_tier(landing: Path) -> None:
    spec = trigger_for(landing, source="partner", profile="low").spec
    assert (spec.poll, spec.retry, spec.breaker) == (LOW.poll, LOW.retry, LOW.breaker)
    assert (spec.profile, spec.tier) == ("low", "low")


def test_explicit_parts_win_over_the_profile_and_rebuild_without_it(landing: Path) -> None:
    trigger = trigger_for(landing, profile=LOW.override(name="mine"), poll=Constant(2.0))
    kwargs = trigger.serialize()[1]
    assert kwargs["poll"] == Constant(2.0).to_config()
    assert kwargs["profile"] == "mine"  # a custom profile's name: rebuilt from its parts
    assert FileAssetTrigger(**kwargs).spec == trigger.spec


def test_no_profile_polls_by_default_without_a_breaker(landing: Path) -> None:
    spec = trigger_for(landing).spec
    assert (spec.poll, spec.breaker, spec.source, spec.detect) == (DEFAULT_POLL, None, None, "poll")


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"directory": "relative/in"}, "directory must be an absolute path, got 'relative/in'"),
        ({"pattern": "sub/*.xml"}, "pattern must be a glob on file names"),
        ({"pattern": ""}, "pattern must be"),
        ({"detect": "inotify"}, "detect must be one of ['auto', 'events', 'poll'], got 'inotify'"),
        ({"profile": "gold"}, "profile must be a ReliabilityProfile or one of"),
        ({"source": "bad/name"}, "source:"),
        ({"poll": "fast"}, "poll must be an interval policy or its config, got 'fast'"),
        ({"breaker": {"failure_threshold": 0}}, "failure_threshold must be an int >= 1"),
        ({"store": {"kind": "file", "root": "rel"}}, "store must be"),
        ({"version": 7}, "version must be 1, got 7"),
    ],
)
def test_bad_kwargs_name_the_parameter_and_value(
    landing: Path, kwargs: dict[str, Any], named: str
) -> None:
    kwargs = {"directory": str(landing), **kwargs}
    with pytest.raises(PolicyConfigError, match="FileAssetTrigger: ") as raised:
        FileAssetTrigger(**kwargs)
    assert named in str(raised.value)


def test_a_damaged_row_raises_only_type_error(landing: Path) -> None:
    kwargs = trigger_for(landing).serialize()[1]
    for damaged in ({**kwargs, "poll": {"kind": "nope"}}, {**kwargs, "retry": [1]}):
        with pytest.raises(TypeError):
            FileAssetTrigger(**damaged)
    with pytest.raises(TypeError):
        FileAssetTrigger(**kwargs, interval=5)  # type: ignore[call-arg]
    assert issubclass(TriggerArgumentError, TypeError)


def test_the_shared_stream_key_groups_watches_of_one_directory(
    landing: Path, tmp_path: Path
) -> None:
    a = trigger_for(landing, pattern="a_*", source="a")
    b = trigger_for(landing, pattern="b_*", profile="low", poll=DEFAULT_POLL)
    assert a.shared_stream_key() == b.shared_stream_key()
    assert hash(a.shared_stream_key())
    other_poll = trigger_for(landing, poll=Constant(1.0))
    other_dir = trigger_for(tmp_path)
    other_mode = trigger_for(landing, detect="auto")
    for other in (other_poll, other_dir, other_mode):
        assert other.shared_stream_key() != a.shared_stream_key()


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("partner_*.xml", "partner_1.xml", True),
        ("partner_*.xml", "partner_1.XML", False),
        ("partner_*.xml", "other_1.xml", False),
        ("*", ".partner_1.xml.part", False),
        ("*.xml", ".hidden.xml", False),
        (".*", ".hidden.xml", True),
        ("data_[0-9].csv", "data_7.csv", True),
    ],
)
def test_the_pattern_matches_basenames(
    landing: Path, pattern: str, name: str, matches: bool
) -> None:
    assert trigger_for(landing, pattern=pattern).spec.matches(name) is matches


# ------------------------------------------------------------------------- the scan


def test_scan_lists_regular_files_only(landing: Path) -> None:
    (landing / "a.xml").write_text("a")
    (landing / "sub").mkdir()
    (landing / "link.xml").symlink_to(landing / "a.xml")
    assert [e.name for e in scan(str(landing))] == ["a.xml"]


def entry(name: str, ctime_ns: int, size: int = 1) -> Entry:
    return Entry(name, size, 0.0, 0, ctime_ns)


def test_polling_counts_a_file_complete_once_two_scans_agree() -> None:
    judge = Completeness(events=False)
    assert judge.judge([entry("a", 5)], frozenset()) == ((), (entry("a", 5),), True)
    assert judge.judge([entry("a", 6, size=2)], frozenset()) == ((), (entry("a", 6, 2),), True)
    assert judge.judge([entry("a", 6, size=2)], frozenset()) == ((entry("a", 6, 2),), (), False)


def test_with_events_a_file_is_complete_unless_being_written() -> None:
    judge = Completeness(events=True)
    judge.judge([], frozenset())  # the first scan judges by polling's rule
    listed = [entry("b", 2), entry("a", 1)]
    assert judge.judge(listed, frozenset({"b"})) == ((entry("a", 1),), (entry("b", 2),), True)


async def test_the_scan_backs_off_while_nothing_changes_and_starts_over_after(
    rt: Runtime, clock: FakeClock, landing: Path
) -> None:
    spec = trigger_for(landing, poll=Exponential(initial=1.0, factor=2.0, cap=8.0)).spec
    stream = scan_forever(spec)
    for _ in range(5):
        await anext(stream)
    land(landing, "partner_1.xml")
    for _ in range(3):
        await anext(stream)
    await stream.aclose()
    # empty: 1 2 4 8 8 (capped) | the file appears: 1 | stable: 2
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 8.0, 1.0, 2.0]


async def test_a_failed_listing_is_a_raw_event_and_backs_off_as_an_idle_one(
    rt: Runtime, clock: FakeClock, tmp_path: Path
) -> None:
    poll = Exponential(initial=3.0, factor=2.0, cap=10.0)
    stream = scan_forever(trigger_for(tmp_path / "missing", poll=poll).spec)
    raws = [await anext(stream) for _ in range(4)]
    await stream.aclose()
    assert {type(raw) for raw in raws} == {ScanFailed}
    assert {raw.kind for raw in raws if isinstance(raw, ScanFailed)} == {"FileNotFoundError"}
    assert clock.sleeps == [3.0, 6.0, 10.0]


# ------------------------------------------------------------------------- the cursor


def test_the_cursor_never_passes_a_file_still_being_written() -> None:
    cursor = Cursor.baseline([entry("old", 10)])
    assert cursor == Cursor(10, {"old": 10})
    moved = cursor.advance([entry("b", 30)], pending=[entry("a", 20)])
    assert moved == Cursor(20, {"b": 30})
    assert moved.is_new(entry("a", 25))  # a completes later: fires
    assert not moved.is_new(entry("b", 30))
    assert moved.is_new(entry("b", 40))  # replaced under the same name: fires again
    assert Cursor.from_json(json.loads(json.dumps(moved.to_json()))) == moved


async def test_files_present_at_the_first_start_do_not_fire_new_ones_do(
    rt: Runtime, clock: FakeClock, landing: Path
) -> None:
    land(landing, "partner_0.xml")
    asset = FakeAssetStore()
    trigger = trigger_for(landing)
    watch_assets(trigger, asset)
    steps = [nothing, lambda: land(landing, "partner_1.xml"), lambda: land(landing, "x.csv")]
    assert await fired(trigger, scans(landing, clock, steps)) == ["partner_1.xml"]
    assert asset.sets >= 1  # the first scan writes the cursor at once


async def test_a_restart_neither_repeats_nor_skips(
    rt: Runtime, clock: FakeClock, landing: Path
) -> None:
    asset = FakeAssetStore()
    first = trigger_for(landing)
    watch_assets(first, asset)

    def settle() -> None:
        clock.advance(CURSOR_SETTLE_S)

    steps = [nothing, lambda: land(landing, "partner_1.xml"), settle]
    assert await fired(first, scans(landing, clock, steps)) == ["partner_1.xml"]
    # Down for a while: one file lands meanwhile, one after the restart.
    land(landing, "partner_2.xml")
    again = trigger_for(landing)
    watch_assets(again, asset)
    steps = [nothing, lambda: land(landing, "partner_3.xml")]
    assert await fired(again, scans(landing, clock, steps)) == ["partner_2.xml", "partner_3.xml"]


async def test_an_unsaved_firing_fires_again_after_a_restart(
    rt: Runtime, clock: FakeClock, landing: Path
) -> None:
    asset = FakeAssetStore()
    first = trigger_for(landing)
    watch_assets(first, asset)
    steps = [nothing, lambda: land(landing, "partner_1.xml")]
    assert await fired(first, scans(landing, clock, steps)) == ["partner_1.xml"]
    again = trigger_for(landing)
    watch_assets(again, asset)
    assert await fired(again, scans(landing, clock, [nothing])) == ["partner_1.xml"]


async def test_a_file_renamed_in_with_an_old_mtime_fires(
    rt: Runtime, clock: FakeClock, landing: Path
) -> None:
    land(landing, "partner_new.xml")  # the newest mtime seen so far
    trigger = trigger_for(landing)
    watch_assets(trigger, FakeAssetStore())
    steps = [nothing, lambda: land(landing, "partner_old.xml", mtime=OLD)]
    names = [
        (event.payload["name"], event.payload["mtime"])
        async for event in trigger.filter_shared_stream(scans(landing, clock, steps))
    ]
    assert names == [("partner_old.xml", float(OLD))]


async def event_scans(
    directory: Path, clock: FakeClock, steps: list[tuple[Callable[[], None], frozenset[str]]]
) -> AsyncIterator[Listing]:
    """The shared stream by the events rule: each step, then one scan with ``writing``."""
    judge = Completeness(events=True)
    for step, writing in steps:
        step()
        clock.advance(CURSOR_SETTLE_S)
        complete, pending, _ = judge.judge(scan(str(directory)), writing)
        yield Listing(str(directory), clock.now(), complete, pending)


async def test_a_file_being_written_fires_once_complete_even_after_newer_ones(
    rt: Runtime, clock: FakeClock, landing: Path
) -> None:
    asset = FakeAssetStore()
    trigger = trigger_for(landing)
    watch_assets(trigger, asset)
    slow = {"partner_slow.xml"}

    def slow_then_fast() -> None:
        (landing / "partner_slow.xml").write_text("half")  # still open: inotify says writing
        land(landing, "partner_fast.xml")

    none: frozenset[str] = frozenset()
    steps = [(nothing, none), (slow_then_fast, frozenset(slow)), (nothing, frozenset(slow))]
    assert await fired(trigger, event_scans(landing, clock, steps)) == ["partner_fast.xml"]
    # Restarted from the cursor saved while the slow file was still being written: the slow
    # one (closed meanwhile) is not skipped, the fast one does not fire twice.
    again = trigger_for(landing)
    watch_assets(again, asset)
    steps = [(nothing, none), (nothing, none)]
    assert await fired(again, event_scans(landing, clock, steps)) == ["partner_slow.xml"]


async def test_a_cursor_that_cannot_be_read_is_retried_never_baselined(
    rt: Runtime, clock: FakeClock, landing: Path
) -> None:
    asset = FakeAssetStore()
    asset.values["ignored"] = 1
    first = trigger_for(landing)
    watch_assets(first, asset)
    await fired(first, scans(landing, clock, [nothing]))  # baseline: empty directory
    asset.fail = True
    again = trigger_for(landing)
    watch_assets(again, asset)

    def recover() -> None:
        asset.fail = False

    steps = [lambda: land(landing, "partner_1.xml"), recover]
    assert await fired(again, scans(landing, clock, steps)) == ["partner_1.xml"]


async def test_a_trigger_watching_two_assets_keeps_its_cursor_in_both(
    rt: Runtime, clock: FakeClock, landing: Path
) -> None:
    one, two = FakeAssetStore(), FakeAssetStore()
    trigger = trigger_for(landing)
    watch_assets(trigger, FakeAccessors(one, two))
    await fired(trigger, scans(landing, clock, [nothing]))
    key = trigger.spec.cursor_key
    assert one.values[key] == two.values[key]
    assert one.values[key]["directory"] == str(landing)


# ------------------------------------------------------------------------- history, breaker


async def test_each_firing_is_a_success_record_of_the_source(
    rt: Runtime, clock: FakeClock, store: FileStore, landing: Path
) -> None:
    trigger = trigger_for(landing, source="partner", profile="low")
    start = clock.now()
    steps = [nothing, lambda: land(landing, "partner_1.xml"), lambda: land(landing, "x.csv")]
    events = [e async for e in trigger.filter_shared_stream(scans(landing, clock, steps))]
    (event,) = events
    (record,) = await store.history("partner")
    ctime_ns = (landing / "partner_1.xml").stat().st_ctime_ns
    assert record.outcome is WaitOutcome.SUCCESS
    assert record.key == (
        "asset_watcher",
        trigger.spec.watch_id,
        f"partner_1.xml@{ctime_ns}",
        -1,
        1,
    )
    assert (record.profile, record.scheduled_at, record.deadline_at) == ("low", None, None)
    assert record.started_at == start
    assert record.first_seen_at == record.detected_at == event.payload["detected_at"]
    assert record.last_miss_at == start + 3.0  # the scan before
    assert record.pokes == 4
    assert event.payload == {
        "status": "success",
        "message": f"{landing / 'partner_1.xml'} landed (4 bytes)",
        "path": str(landing / "partner_1.xml"),
        "name": "partner_1.xml",
        "size": 4,
        "mtime": (landing / "partner_1.xml").stat().st_mtime,
        "ctime_ns": ctime_ns,
        "detected_at": start + 4.0,
        "source": "partner",
        "profile": "low",
    }


async def failures(directory: str, clock: FakeClock, count: int) -> AsyncIterator[ScanFailed]:
    for _ in range(count):
        clock.advance(1.0)
        yield ScanFailed(directory, clock.now(), "PermissionError", "denied")


async def test_repeated_probe_errors_open_the_source_breaker(
    rt: Runtime, clock: FakeClock, store: FileStore, landing: Path
) -> None:
    breaker = BreakerConfig(failure_threshold=2, cooldown_s=60.0)
    retry = RetryStrategy(max_probe_errors=3)
    trigger = trigger_for(landing, source="partner", breaker=breaker, retry=retry)
    assert await fired(trigger, failures(str(landing), clock, 5)) == []
    snapshot = await store.get_breaker("partner")
    assert snapshot is not None
    assert snapshot.state is BreakerState.CLOSED  # one failure counted (3 errors in a row)
    assert await fired(trigger, failures(str(landing), clock, 6)) == []
    snapshot = await store.get_breaker("partner")
    assert snapshot is not None
    assert snapshot.state is BreakerState.OPEN
    outcomes = [r.outcome for r in await store.history("partner")]
    assert outcomes == [WaitOutcome.ERROR] * 3
    assert {r.last_error_kind for r in await store.history("partner")} == {"PermissionError"}


async def test_a_watch_without_a_source_records_nothing(
    rt: Runtime, clock: FakeClock, store: FileStore, landing: Path
) -> None:
    trigger = trigger_for(landing)
    steps = [nothing, lambda: land(landing, "partner_1.xml")]
    assert await fired(trigger, scans(landing, clock, steps)) == ["partner_1.xml"]
    assert await store.sources() == []


# ------------------------------------------------------------------------- run() alone


async def test_run_scans_alone_and_fires_each_new_file(
    rt: Runtime, clock: FakeClock, landing: Path
) -> None:
    trigger = trigger_for(landing, poll=Constant(1.0))
    asset = FakeAssetStore()
    asset.values[trigger.spec.cursor_key] = Cursor(0).to_json()  # no first-start baseline
    watch_assets(trigger, asset)
    land(landing, "partner_1.xml")
    run = trigger.run()
    first: TriggerEvent = await asyncio.wait_for(anext(run), timeout=10)
    land(landing, "partner_2.xml")
    second: TriggerEvent = await asyncio.wait_for(anext(run), timeout=10)
    await run.aclose()
    assert [first.payload["name"], second.payload["name"]] == ["partner_1.xml", "partner_2.xml"]
    assert clock.sleeps == [1.0, 1.0, 1.0]  # seen, stable (fired) | seen, stable (fired)


async def test_with_inotify_a_file_fires_on_close_not_while_written(landing: Path) -> None:
    pytest.importorskip("waitwise.triggers.notify")
    trigger = trigger_for(landing, detect="events", poll=Constant(30.0))  # no poll in time
    asset = FakeAssetStore()
    asset.values[trigger.spec.cursor_key] = Cursor(0).to_json()
    watch_assets(trigger, asset)
    run = trigger.run()
    waiting = asyncio.ensure_future(anext(run))
    with (landing / "partner_1.xml").open("w") as handle:
        handle.write("<half")
        handle.flush()
        done, _ = await asyncio.wait({waiting}, timeout=0.5)  # real time: inotify's events
        assert done == set()
        handle.write("/>")
    event: TriggerEvent = await asyncio.wait_for(waiting, timeout=5)
    await run.aclose()
    assert (event.payload["name"], event.payload["size"]) == ("partner_1.xml", 7)
