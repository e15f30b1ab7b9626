"""FileArrivalSensor without a scheduler: arguments, deferral, event mapping, serialization."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

from waitwise.operators.base import DEADLINE_GRACE, result_from_event
from waitwise.operators.file import FileArrivalSensor
from waitwise.triggers import HIGH
from waitwise.triggers.adaptive import Adaptive
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.file import FileArrivalTrigger
from waitwise.triggers.policy import AirflowExponential, Constant, Exponential


def sensor(**overrides: Any) -> FileArrivalSensor:
    kwargs: dict[str, Any] = {"task_id": "wait", "filepath": "in/{{ ds_nodash }}.csv"}
    kwargs.update(overrides)
    return FileArrivalSensor(**kwargs)


def test_starts_in_the_triggerer_with_json_kwargs() -> None:
    op = sensor(poll=Exponential(initial=1.0, factor=2.0, cap=60.0), timeout=300)
    args = op.start_trigger_args
    assert args is not None
    assert args.trigger_kwargs is not None
    assert op.start_from_trigger is True
    assert args.trigger_cls == "waitwise.triggers.file.FileArrivalTrigger"
    assert args.next_method == "execute_complete"
    assert args.timeout == dt.timedelta(seconds=300 + DEADLINE_GRACE)
    kwargs = json.loads(json.dumps(args.trigger_kwargs))
    assert kwargs["filepath"] == "in/{{ ds_nodash }}.csv"
    assert kwargs["airflow_timeout"] == 300 + DEADLINE_GRACE
    assert kwargs["end_from_trigger"] is True
    assert FileArrivalTrigger(**kwargs).spec.poll == Exponential(initial=1.0, factor=2.0, cap=60.0)


def test_execution_timeout_caps_the_window_as_airflow_does() -> None:
    op = sensor(timeout=300, execution_timeout=dt.timedelta(seconds=200))
    assert op.start_trigger_args is not None
    assert op.start_trigger_args.trigger_kwargs == {
        **(op.start_trigger_args.trigger_kwargs or {}),
        "airflow_timeout": 200.0,
    }


def test_execute_defers_without_a_first_poke() -> None:
    op = sensor(start_from_trigger=False, timeout=120, poll=Constant(interval=5.0))
    op.now = lambda: 1_700_000_000.0  # type: ignore[method-assign]
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context={})
    trigger = deferred.value.trigger
    assert isinstance(trigger, FileArrivalTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == dt.timedelta(seconds=120 + DEADLINE_GRACE)
    assert trigger.spec.started_at == 1_700_000_000.0
    assert trigger.spec.airflow_timeout is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"poke_interval": 7}, Constant(interval=7.0)),
        (
            {"poke_interval": 5, "exponential_backoff": True, "max_wait": 60},
            AirflowExponential(poke_interval=5.0, max_wait=60.0),
        ),
        ({"poll": {"kind": "constant", "interval": 3.0}}, Constant(interval=3.0)),
        (
            {"poll": "adaptive", "source": "feed", "poke_interval": 30},
            Adaptive(30.0, max_interval_s=3600.0, fallback=Constant(30.0)),
        ),
        (
            {"poll": "adaptive", "source": "feed", "profile": "high"},
            Adaptive(60.0, max_interval_s=3600.0, fallback=HIGH.poll),
        ),
    ],
)
def test_airflow_parameters_keep_their_meaning(overrides: dict[str, Any], expected: object) -> None:
    assert sensor(**overrides).policy == expected


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"poll": "fast"}, "poll must be a waitwise interval policy .*'fast'"),
        ({"poll": "adaptive"}, r"poll=Adaptive\(.*\) learns from a source's history: set source="),
        (
            {"poll": {"kind": "adaptive", "quantile": 2}, "source": "feed"},
            r"Adaptive.quantile must be in \(0, 1\), got 2",
        ),
        ({"timeout": -5}, "timeout must be a finite number > 0, got -5"),
        ({"poke_interval": 0}, "poke_interval must be a finite number > 0, got 0"),
        ({"filepath": " "}, "wait: filepath must be a non-empty string, got ' '"),
        (
            {"deferrable": False, "start_from_trigger": True},
            "start_from_trigger=True needs deferrable=True",
        ),
    ],
)
def test_bad_arguments_fail_at_parse_time(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(PolicyConfigError, match=match):
        sensor(**overrides)


def test_result_from_event_success_returns_payload() -> None:
    payload = {"status": "success", "found": [{"path": "/x", "size": 1, "mtime": 0.0}]}
    assert result_from_event(payload, task="wait") == payload


def test_result_from_event_timeout_raises_sensor_timeout() -> None:
    with pytest.raises(AirflowSensorTimeout, match="wait: nothing by the deadline"):
        result_from_event({"status": "timeout", "message": "nothing by the deadline"}, task="wait")


@pytest.mark.parametrize("event", [None, {"x": 1}, {"status": "weird"}])
def test_result_from_event_rejects_foreign_events(event: Any) -> None:
    with pytest.raises(ValueError, match="wait: "):
        result_from_event(event, task="wait")


def test_poke_mode_uses_the_same_check(tmp_path: Any) -> None:
    op = sensor(filepath=str(tmp_path / "f.csv"), deferrable=False)
    assert op.poke(context={}) is False
    (tmp_path / "f.csv").write_text("x")
    assert op.poke(context={}) is True


def test_inactivity_period_travels_to_the_trigger_and_rules_the_worker_check(
    tmp_path: Any,
) -> None:
    op = sensor(filepath=str(tmp_path / "f.csv"), deferrable=False, inactivity_period=60)
    (tmp_path / "f.csv").write_text("x")
    op.now = lambda: os.stat(tmp_path / "f.csv").st_mtime + 30  # type: ignore[method-assign]
    assert op.poke(context={}) is False  # modified 30 s ago
    op.now = lambda: os.stat(tmp_path / "f.csv").st_mtime + 60  # type: ignore[method-assign]
    assert op.poke(context={}) is True
    assert sensor(inactivity_period=60).trigger_kwargs(started_at=None)["inactivity_period"] == 60
    assert "inactivity_period" not in sensor().trigger_kwargs(started_at=None)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"inactivity_period": -2}, "inactivity_period must be a number of seconds, .*got -2"),
        (
            {"inactivity_period": 5, "filepath": "s3://bucket/in/{{ ds }}.csv"},
            "inactivity_period applies to filesystem paths, not object URLs",
        ),
    ],
)
def test_a_bad_inactivity_period_fails_at_parse_time(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(PolicyConfigError, match=match):
        sensor(**overrides)


def test_dag_serialization_keeps_start_trigger_args() -> None:
    from airflow.sdk import DAG
    from airflow.serialization.decoders import smart_decode_trigger_kwargs
    from airflow.serialization.serialized_objects import DagSerialization

    with DAG("ser", schedule=None, start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)) as dag:
        sensor(poll=Exponential(initial=1.0, factor=2.0, cap=60.0), timeout=300)
    task = DagSerialization.from_dict(DagSerialization.to_dict(dag)).get_task("wait")
    assert task.start_from_trigger is True
    # What the triggerer does with the row the scheduler creates from these args.
    assert task.start_trigger_args is not None
    kwargs = smart_decode_trigger_kwargs(task.start_trigger_args.trigger_kwargs)  # type: ignore[no-untyped-call]
    trigger = FileArrivalTrigger(**kwargs)
    assert trigger.spec.poll == Exponential(initial=1.0, factor=2.0, cap=60.0)
    assert trigger.serialize()[1] == kwargs


def test_a_misspelt_keyword_fails_at_parse_time() -> None:
    with pytest.raises(TypeError, match="pole"):
        sensor(pole=3)


def test_profile_supplies_defaults_and_explicit_arguments_win() -> None:
    from waitwise.triggers.profiles import LOW

    op = sensor(profile="low", source="partner_feed")
    assert (op.timeout, op.policy, op.profile) == (LOW.timeout_s, LOW.poll, LOW)
    kwargs = op.wait_spec(started_at=None).to_config()
    assert kwargs["retry"]["max_reopens"] == 2
    assert kwargs["on_breaker_open"] == "skip"
    assert kwargs["source"] == "partner_feed"
    # the Airflow window covers all three windows and both pauses, plus the grace
    assert kwargs["airflow_timeout"] == 3 * 4 * 3600 + 2 * 7200 + 0.001 + DEADLINE_GRACE

    op = sensor(profile="low", timeout=600, poll=Constant(interval=9.0))
    assert (op.timeout, op.policy) == (600, Constant(interval=9.0))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"profile": "ultra"}, "profile must be a ReliabilityProfile or one of"),
        ({"source": "has space"}, "source: source must match"),
    ],
)
def test_bad_profile_or_source_fail_at_parse_time(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(PolicyConfigError, match=match):
        sensor(**overrides)


def test_the_triggerer_renders_the_templated_fields_into_the_wait() -> None:
    # What Airflow's triggerer does for a start_from_trigger task: rebuild the trigger from
    # the kwargs, attach the task instance (which picks the templated fields that are both
    # trigger kwargs and trigger attributes), render them on the trigger's attributes.
    from types import SimpleNamespace

    op = sensor(filepath="orders/{{ ds_nodash }}.csv")
    assert op.start_trigger_args is not None
    trigger = FileArrivalTrigger(**op.start_trigger_args.trigger_kwargs or {})
    trigger.task_instance = SimpleNamespace(task_id="wait", task=op)  # type: ignore[assignment]
    assert set(trigger.template_fields) == {"filepath", "scheduled_at"}
    end = dt.datetime(2026, 11, 29, 6, tzinfo=dt.UTC)
    context: Any = {"ds_nodash": "20261129", "data_interval_end": end}
    trigger.render_template_fields(context=context)

    assert trigger.filepath == "orders/20261129.csv"
    assert trigger.spec.scheduled_at == "2026-11-29 06:00:00+00:00"
    assert trigger.serialize()[1]["scheduled_at"] == "2026-11-29 06:00:00+00:00"


@dataclasses.dataclass(frozen=True)
class HomeMade:
    """A custom policy defined in a DAG file: the triggerer could never rebuild it."""

    kind: str = "home_made"

    def next_interval(self, state: Any, rng: Any) -> float:
        return 5.0

    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind}


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"soft_fail": "false"}, "soft_fail must be True or False, got 'false'"),
        ({"exponential_backoff": "false"}, "exponential_backoff must be True or False"),
        ({"deferrable": 1}, "deferrable must be True or False, got 1"),
        ({"recursive": "yes"}, "recursive must be True or False, got 'yes'"),
        ({"timeout": 1e300}, "timeout must be at most 1e\\+09 seconds, got 1e\\+300"),
        ({"poll": Constant}, "poll must be a waitwise interval policy .*Constant'>"),
        ({"poll": HomeMade()}, "cannot be rebuilt by a triggerer: policy kind must be one of"),
        ({"fs_conn_id": 7}, "fs_conn_id must be a connection id .*got 7"),
        ({"fs_conn_id": "my conn"}, "fs_conn_id must be a connection id .*got 'my conn'"),
        ({"store": {"kind": "file", "root": "rel/dir"}}, "store must be .*absolute dir"),
        ({"store": {"kind": "s3"}}, "store must be"),
    ],
)
def test_every_bad_argument_is_named_at_parse_time(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(PolicyConfigError, match=match):
        sensor(**overrides)


class Lineage:
    """A listener, as a plugin such as OpenLineage registers one."""

    from airflow.listeners import hookimpl

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        pass


@pytest.fixture
def listener() -> Any:
    from airflow.listeners.listener import get_listener_manager

    manager, plugin = get_listener_manager(), Lineage()
    manager.add_listener(plugin)  # type: ignore[no-untyped-call]
    yield plugin
    manager.pm.unregister(plugin)


@pytest.mark.usefixtures("listener")
def test_with_listeners_the_task_ends_on_a_worker_so_they_see_it() -> None:
    from waitwise.triggers.engine.ending import final_event

    op = sensor()
    assert op.start_trigger_args is not None
    kwargs = op.start_trigger_args.trigger_kwargs or {}
    assert kwargs["end_from_trigger"] is False  # decided while the DAG is parsed
    trigger = FileArrivalTrigger(**dict(kwargs, end_from_trigger=True))  # parsed elsewhere
    payload: Any = {"status": "success", "message": "found"}
    event = final_event(trigger.spec, payload)  # the triggerer has listeners too
    assert type(event).__name__ == "TriggerEvent"
    assert event.payload == payload


def test_without_listeners_the_task_ends_in_the_triggerer() -> None:
    op = sensor()
    assert op.start_trigger_args is not None
    assert (op.start_trigger_args.trigger_kwargs or {})["end_from_trigger"] is True
