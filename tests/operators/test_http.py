"""HttpConditionSensor without a scheduler: arguments, deferral, rendering, the poke path."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from tests.triggers.test_http import API_KEY, EndpointServer, connection_json
from waitwise.operators.base import DEADLINE_GRACE
from waitwise.operators.http import HttpConditionSensor
from waitwise.triggers.conditions import parse_condition
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.http import HttpConditionTrigger
from waitwise.triggers.policy import Constant

READY = {"path": "$.status", "op": "==", "value": "ready"}


def sensor(**overrides: Any) -> HttpConditionSensor:
    kwargs: dict[str, Any] = {
        "task_id": "wait",
        "http_conn_id": "ww_http",
        "endpoint": "exports/{{ ds_nodash }}",
        "condition": READY,
        "poll": Constant(interval=30.0),
        "timeout": 600,
    }
    kwargs.update(overrides)
    return HttpConditionSensor(**kwargs)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[EndpointServer]:
    endpoint = EndpointServer()
    monkeypatch.setenv("AIRFLOW_CONN_WW_HTTP", connection_json(endpoint.port))
    yield endpoint
    endpoint.close()


def test_starts_in_the_triggerer_with_json_kwargs() -> None:
    op = sensor(request_params={"limit": 1}, expect_status={200, 204})
    args = op.start_trigger_args
    assert args is not None
    assert op.start_from_trigger is True
    assert args.trigger_cls == "waitwise.triggers.http.HttpConditionTrigger"
    assert args.timeout == dt.timedelta(seconds=600 + DEADLINE_GRACE)
    kwargs = json.loads(json.dumps(args.trigger_kwargs))
    assert kwargs["endpoint"] == "exports/{{ ds_nodash }}"
    assert kwargs["expect_status"] == [200, 204]
    assert kwargs["condition"] == READY
    trigger = HttpConditionTrigger(**kwargs)
    assert trigger.serialize()[1] == kwargs


def test_a_parsed_condition_is_accepted() -> None:
    op = sensor(condition=parse_condition(READY))
    assert op.condition == READY


def test_execute_defers_without_a_first_poke() -> None:
    op = sensor(start_from_trigger=False)
    op.now = lambda: 1_700_000_000.0  # type: ignore[method-assign]
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context={})
    assert isinstance(deferred.value.trigger, HttpConditionTrigger)
    assert deferred.value.trigger.spec.started_at == 1_700_000_000.0


def test_dag_serialization_keeps_start_trigger_args() -> None:
    from airflow.sdk import DAG
    from airflow.serialization.decoders import smart_decode_trigger_kwargs
    from airflow.serialization.serialized_objects import DagSerialization

    with DAG("ser", schedule=None, start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)) as dag:
        sensor()
    task = DagSerialization.from_dict(DagSerialization.to_dict(dag)).get_task("wait")
    assert task.start_trigger_args is not None
    kwargs = smart_decode_trigger_kwargs(task.start_trigger_args.trigger_kwargs)  # type: ignore[no-untyped-call]
    assert HttpConditionTrigger(**kwargs).serialize()[1] == kwargs


def test_the_triggerer_renders_the_templated_fields_into_the_wait() -> None:
    op = sensor(request_params={"day": "{{ ds }}"}, json=None)
    assert op.start_trigger_args is not None
    trigger = HttpConditionTrigger(**op.start_trigger_args.trigger_kwargs or {})
    trigger.task_instance = SimpleNamespace(task_id="wait", task=op)  # type: ignore[assignment]
    assert set(trigger.template_fields) == {
        "endpoint",
        "request_params",
        "json",
        "data",
        "scheduled_at",
    }
    end = dt.datetime(2026, 11, 29, 6, tzinfo=dt.UTC)
    context: Any = {"ds_nodash": "20261129", "ds": "2026-11-29", "data_interval_end": end}
    trigger.render_template_fields(context=context)

    kwargs = trigger.serialize()[1]
    assert kwargs["endpoint"] == "exports/20261129"
    assert kwargs["request_params"] == {"day": "2026-11-29"}


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"http_conn_id": "bad id"}, "http_conn_id must be a connection id"),
        ({"endpoint": "https://elsewhere/x"}, "endpoint must be a path"),
        ({"headers": {"X-Api-Key": "k"}}, "looks like a secret"),
        ({"method": "DELETE"}, "method must be one of"),
        ({"condition": {"path": "$.a", "op": "like", "value": 1}}, "condition.op"),
        ({"expect_status": "200"}, "expect_status"),
        ({"soft_fail": "yes"}, "soft_fail must be True or False"),
    ],
)
def test_bad_arguments_fail_at_parse_time(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(PolicyConfigError, match=match):
        sensor(**overrides)


def test_poke_mode_uses_the_same_rules(server: EndpointServer) -> None:
    op = sensor(endpoint="exports/day", deferrable=False)
    assert op.poke(context={}) is False  # 404
    server.routes["/exports/day"] = (200, {"status": "pending"})
    assert op.poke(context={}) is False
    server.routes["/exports/day"] = (200, {"status": "ready"})
    assert op.poke(context={}) is True
    assert server.seen[-1].headers["X-Api-Key"] == API_KEY
    server.routes["/exports/day"] = (403, {})
    with pytest.raises(PolicyConfigError, match="credentials of http connection 'ww_http'"):
        op.poke(context={})
