"""Custom probes through a real ``waitwise.probes`` entry point (a dist-info put on sys.path)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred
from airflow.triggers.base import TriggerEvent

from waitwise.operators.custom import ConditionSensor
from waitwise.triggers.custom import (
    CustomProber,
    ProbeQuery,
    ProbeTrigger,
    clear_probe_cache,
    load_probe,
    probe_names,
    to_result,
)
from waitwise.triggers.errors import PolicyConfigError, ProbeError, TriggerArgumentError
from waitwise.triggers.policy import Constant, Exponential
from waitwise.triggers.profiles import RetryStrategy
from waitwise.triggers.runtime import Runtime, use_runtime
from waitwise.triggers.testing import FakeClock, RecordingSink

PLUGIN = Path(__file__).resolve().parents[1] / "data" / "probe_plugin"
T0 = 1_700_000_000.0


@pytest.fixture(autouse=True)
def plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """Install the example distribution for one test: on sys.path, caches cleared around."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    clear_probe_cache()
    import ww_probe_example  # type: ignore[import-not-found]  # on sys.path from here on

    ww_probe_example.CALLS.clear()
    ww_probe_example.AllAtOnce.READY.clear()
    ww_probe_example.AllAtOnce.BATCHES.clear()
    yield ww_probe_example
    clear_probe_cache()
    sys.modules.pop("ww_probe_example", None)


def make(tmp_path: Path, **overrides: Any) -> ProbeTrigger:
    kwargs: dict[str, Any] = {
        "probe": "min_lines",
        "args": {"path": str(tmp_path / "export.csv"), "min_lines": 2},
        "poll": Exponential(initial=1.0, factor=2.0, cap=8.0).to_config(),
        "timeout": 60.0,
        "started_at": T0,
    }
    kwargs.update(overrides)
    return ProbeTrigger(**kwargs)


async def run_one(trigger: ProbeTrigger, clock: FakeClock) -> TriggerEvent:
    with use_runtime(Runtime(clock=clock, metrics=RecordingSink())):
        return await anext(trigger.run())


class WritesAt(FakeClock):
    def __init__(self, path: Path, at: float, text: str) -> None:
        super().__init__(now_s=T0)
        self.path, self.at, self.text = path, at, text

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if self.now_s >= self.at:
            self.path.write_text(self.text)


def test_the_registered_probes_are_found_by_name() -> None:
    assert probe_names() == ["all_at_once", "broken", "flaky", "min_lines", "wrong"]
    assert type(load_probe("min_lines")).__name__ == "MinLines"  # a class: one instance
    assert load_probe("min_lines") is load_probe("min_lines")


def test_an_unknown_probe_is_a_parse_time_error_listing_the_registered_ones(
    tmp_path: Path,
) -> None:
    with pytest.raises(PolicyConfigError, match=r"probe 'min_line' is not registered .*"):
        ConditionSensor(task_id="t", probe="min_line", args={})
    with pytest.raises(TriggerArgumentError, match="registered: all_at_once, broken, flaky"):
        make(tmp_path, probe="nope")


def test_a_probe_that_cannot_load_is_named() -> None:
    with pytest.raises(PolicyConfigError, match=r"probe 'broken' = ww_probe_example:Missing"):
        load_probe("broken")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({"min_lines": 2}, "refuses args .*path must be a string"),
        ({"path": "/x", "min_lines": 0}, "min_lines must be an integer >= 1"),
        ({"path": float("inf")}, "args\\['path'\\] must be a finite number"),
        (["/x"], "args must be a mapping"),
        ({"path": "x" * 20_000}, "longer than 16384"),
    ],
)
def test_args_are_checked_by_the_probe_at_parse_time(args: Any, match: str) -> None:
    with pytest.raises(PolicyConfigError, match=match):
        ConditionSensor(task_id="t", probe="min_lines", args=args)


async def test_a_custom_probe_gets_the_schedule_and_the_found_items(
    tmp_path: Path, plugin: ModuleType
) -> None:
    path = tmp_path / "export.csv"
    clock = WritesAt(path, T0 + 5, "a\nb\n")
    event = await run_one(make(tmp_path), clock)

    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert event.payload["status"] == "success"
    assert event.payload["found"] == [{"path": str(path), "size": 2, "mtime": T0 + 7}]
    assert len(plugin.CALLS) == 4


async def test_a_transient_error_backs_off_then_ends_the_wait(tmp_path: Path) -> None:
    retry = RetryStrategy(probe_backoff=Constant(interval=5.0), max_probe_errors=2)
    clock = FakeClock(now_s=T0)
    trigger = make(tmp_path, probe="flaky", args={"host": "queue"}, retry=retry.to_config())
    event = await run_one(trigger, clock)

    assert clock.sleeps == [5.0, 5.0]
    assert event.payload["status"] == "error"
    assert event.payload["last_error"] == (
        "ConnectionError: queue refused the connection"  # kind kept as data
    )


async def test_a_probe_that_breaks_its_contract_ends_the_wait(tmp_path: Path) -> None:
    event = await run_one(make(tmp_path, probe="wrong", args={}), FakeClock(now_s=T0))
    assert event.payload["status"] == "error"
    assert event.payload["pokes"] == 1
    assert "returned 'yes'" in event.payload["last_error"]


async def test_a_batch_probe_gets_every_distinct_due_query_in_one_call(
    tmp_path: Path, plugin: ModuleType
) -> None:
    keys = ["a", "b", "a", "c"]
    plugin.AllAtOnce.READY.update({"a", "b", "c"})
    prober = CustomProber()
    queries = [ProbeQuery.of("all_at_once", {"key": k}) for k in [*keys, "boom"]]
    queries.append(ProbeQuery.of("min_lines", {"path": str(tmp_path / "none")}))
    with use_runtime(Runtime(clock=FakeClock(now_s=T0), metrics=RecordingSink())):
        results = await prober.probe_batch(queries)

    assert plugin.AllAtOnce.BATCHES == [4]  # a, b, c, boom: "a" asked twice, probed once
    assert [r if isinstance(r, list) else type(r).__name__ for r in results] == [
        [{"path": "probe:all_at_once", "size": 0, "mtime": T0}],
        [{"path": "probe:all_at_once", "size": 0, "mtime": T0}],
        [{"path": "probe:all_at_once", "size": 0, "mtime": T0}],
        [{"path": "probe:all_at_once", "size": 0, "mtime": T0}],
        "KeyError",
        [],
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, [{"path": "probe:p", "size": 0, "mtime": T0}]),
        (False, []),
        ([{"path": "x", "size": 1, "mtime": 2}], [{"path": "x", "size": 1, "mtime": 2.0}]),
        (TimeoutError("slow"), "ProbeError"),
        (ProbeError("down"), "ProbeError"),
        (RuntimeError("bug"), "RuntimeError"),
        (None, "TypeError"),
        ([{"path": "x"}], "TypeError"),
    ],
)
def test_to_result(value: object, expected: Any) -> None:
    result = to_result("p", value, T0)
    assert (type(result).__name__ if isinstance(result, BaseException) else result) == expected


def test_the_sensor_starts_in_the_triggerer_and_round_trips(tmp_path: Path) -> None:
    sensor = ConditionSensor(
        task_id="t",
        probe="min_lines",
        args={"path": "/data/{{ ds }}.csv", "min_lines": 10},
        poll=Constant(interval=60.0),
        timeout=3600,
    )
    args = sensor.start_trigger_args
    assert args is not None
    assert args.trigger_cls == "waitwise.triggers.custom.ProbeTrigger"
    kwargs = json.loads(json.dumps(args.trigger_kwargs))
    assert kwargs["probe"] == "min_lines"
    assert ProbeTrigger(**kwargs).serialize()[1] == kwargs
    sensor.start_from_trigger = False
    sensor.now = lambda: T0  # type: ignore[method-assign]
    with pytest.raises(TaskDeferred):
        sensor.execute(context={})


def test_the_sensor_is_deferrable_only() -> None:
    with pytest.raises(PolicyConfigError, match="deferrable only"):
        ConditionSensor(task_id="t", probe="flaky", args={}, deferrable=False)
