"""FileBatchTrigger: a set of files, one rule, one deadline, one check a tick."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from waitwise.triggers import FileArrivalTrigger, FileBatchTrigger, PolicyConfigError
from waitwise.triggers.batch import MAX_MEMBERS
from waitwise.triggers.policy import Constant
from waitwise.triggers.runtime import Runtime, use_runtime
from waitwise.triggers.testing import FakeClock, RecordingSink

T0 = 1_700_000_000.0


class Landing(FakeClock):
    """A clock that lands files at given offsets from T0 as fake time passes."""

    def __init__(self, plan: dict[float, list[Path]]) -> None:
        super().__init__(now_s=T0)
        self.plan = dict(sorted(plan.items()))

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        for at in [at for at in self.plan if T0 + at <= self.now_s]:
            for path in self.plan.pop(at):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(path.name)


def batch(paths: list[Path | str], complete: str | int = "all", **kwargs: Any) -> FileBatchTrigger:
    kwargs.setdefault("timeout", 30.0)
    return FileBatchTrigger(
        filepaths=[str(p) for p in paths],
        complete=complete,
        poll=Constant(interval=1.0).to_config(),
        started_at=T0,
        detect="poll",
        **kwargs,
    )


async def run(
    clock: FakeClock, *triggers: FileBatchTrigger | FileArrivalTrigger
) -> list[TriggerEvent]:
    with use_runtime(Runtime(clock=clock, metrics=RecordingSink())):
        return list(await asyncio.gather(*(anext(t.run()) for t in triggers)))


async def test_all_waits_for_every_member_and_reports_each_arrival(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    clock = Landing({2.0: [a], 5.0: [b]})
    (event,) = await run(clock, batch([a, b]))
    payload = event.payload
    assert payload["status"] == "success"
    assert payload["first_seen_at"] == T0 + 5
    assert [(f["path"], f["first_seen_at"], f["member"]) for f in payload["found"]] == [
        (str(a), T0 + 2, str(a)),
        (str(b), T0 + 5, str(b)),
    ]
    assert payload["pokes"] == 6  # 0, 1, ..., 5: one check a tick for the whole set


async def test_any_ends_at_the_first_file(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    (event,) = await run(Landing({3.0: [b]}), batch([a, b], "any"))
    assert event.payload["status"] == "success"
    assert [f["path"] for f in event.payload["found"]] == [str(b)]
    assert event.payload["first_seen_at"] == T0 + 3


async def test_k_counts_distinct_files_over_globs(tmp_path: Path) -> None:
    parts = [tmp_path / f"part-{i}.csv" for i in range(5)]
    clock = Landing({float(i + 1): [p] for i, p in enumerate(parts)})
    members: list[Path | str] = [tmp_path / "part-*.csv", parts[0]]  # part-0 matched twice
    (event,) = await run(clock, batch(members, 3))
    assert event.payload["status"] == "success"
    assert event.payload["first_seen_at"] == T0 + 3
    assert sorted(Path(f["path"]).name for f in event.payload["found"]) == [
        "part-0.csv",
        "part-1.csv",
        "part-2.csv",
    ]


async def test_a_batch_that_times_out_says_what_arrived_and_what_did_not(tmp_path: Path) -> None:
    a, b, c = (tmp_path / n for n in ("a.csv", "b.csv", "c.csv"))
    (event,) = await run(Landing({1.0: [a]}), batch([a, b, c], timeout=5.0, soft_fail=True))
    payload = event.payload
    assert payload["status"] == "timeout"
    assert [f["path"] for f in payload["found"]] == [str(a)]
    assert f"no file for 2 of 3: {b}, {c}" in payload["message"]


async def test_a_batch_and_single_file_waits_share_one_listing_a_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed: list[float] = []
    real, clock = os.scandir, Landing({4.0: [tmp_path / f"f{i}.csv" for i in range(6)]})

    def counting(path: Any = ".") -> Any:
        listed.append(clock.now())
        return real(path)

    monkeypatch.setattr(os, "scandir", counting)
    singles = [
        FileArrivalTrigger(
            filepath=str(tmp_path / f"f{i}.csv"),
            poll=Constant(interval=1.0).to_config(),
            timeout=30.0,
            started_at=T0,
            detect="poll",
        )
        for i in range(2)
    ]
    events = await run(
        clock, batch([tmp_path / "*.csv"], 6), batch([tmp_path / "f5.csv"]), *singles
    )
    assert [e.payload["status"] for e in events] == ["success"] * 4
    assert listed == [T0 + t for t in range(5)]  # one listing per tick for all four waits


async def test_an_unreadable_member_is_a_probe_error_unless_the_rule_holds_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    (good / "x.csv").write_text("x")
    real = os.scandir

    def failing(path: Any = ".") -> Any:
        if str(path) == str(bad):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", failing)
    members: list[Path | str] = [good / "*.csv", bad / "*.csv"]
    any_event, all_event = await run(
        FakeClock(now_s=T0), batch(members, "any"), batch(members, "all", timeout=3.0)
    )
    assert any_event.payload["status"] == "success"
    assert all_event.payload["errors"] >= 1
    assert "PermissionError" in (all_event.payload["last_error"] or "")


def test_kwargs_round_trip_as_plain_json(tmp_path: Path) -> None:
    trigger = batch([tmp_path / "a", "rel/*.csv"], 2, fs_conn_id="fs_in")
    classpath, kwargs = trigger.serialize()
    assert classpath == "waitwise.triggers.batch.FileBatchTrigger"
    rebuilt = FileBatchTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["filepaths"] == [str(tmp_path / "a"), "rel/*.csv"]
    assert kwargs["complete"] == 2


@pytest.mark.parametrize(
    ("change", "names"),
    [
        (lambda kw: kw.update(filepaths="a.csv"), "filepaths must be a non-empty list"),
        (lambda kw: kw.update(filepaths=[]), "filepaths must be a non-empty list"),
        (lambda kw: kw.update(filepaths=["a", ""]), "filepaths[1] must be a non-empty string"),
        (lambda kw: kw.update(filepaths=["a"] * (MAX_MEMBERS + 1)), "at most 10000"),
        (lambda kw: kw.update(complete=0), "complete must be 'all', 'any' or an integer"),
        (lambda kw: kw.update(complete=True), "got True"),
        (lambda kw: kw.update(complete="most"), "got 'most'"),
        (lambda kw: kw.update(detect="inotify"), "detect must be one of auto, events, poll"),
    ],
)
def test_bad_arguments_are_named(change: Callable[[dict[str, Any]], None], names: str) -> None:
    kwargs: dict[str, Any] = {
        "filepaths": ["/in/a.csv"],
        "timeout": 10.0,
        "poll": {"kind": "constant", "interval": 1.0},
    }
    change(kwargs)
    with pytest.raises(PolicyConfigError, match=names.replace("[", r"\[").replace("]", r"\]")):
        FileBatchTrigger(**kwargs)


async def test_inactivity_period_holds_back_recent_members_of_a_shared_listing(
    tmp_path: Path,
) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for path, mtime in ((a, T0 - 100.0), (b, T0 - 2.0)):
        path.write_text(path.name)
        os.utime(path, (mtime, mtime))
    single = FileArrivalTrigger(
        filepath=str(b),
        poll=Constant(interval=1.0).to_config(),
        timeout=30.0,
        started_at=T0,
        detect="poll",
    )
    settled, at_once = await run(FakeClock(now_s=T0), batch([a, b], inactivity_period=5.0), single)

    # One listing a tick serves both; only the batch waits for b to be 5 s quiet.
    assert [(f["path"], f["first_seen_at"]) for f in settled.payload["found"]] == [
        (str(a), T0),
        (str(b), T0 + 3),
    ]
    assert at_once.payload["first_seen_at"] == T0
    assert (
        FileBatchTrigger(**batch([a], inactivity_period=5.0).serialize()[1]).inactivity_period
        == 5.0
    )
