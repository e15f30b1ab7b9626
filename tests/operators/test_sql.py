"""SqlConditionSensor without a scheduler: arguments, deferral, and poke on a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from devtools.postgres import PostgresServer, _free_port
from waitwise.operators.base import DEADLINE_GRACE
from waitwise.operators.sql import SqlConditionSensor
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.policy import Constant
from waitwise.triggers.sql import Condition, SqlConditionTrigger


def sensor(**overrides: Any) -> SqlConditionSensor:
    kwargs: dict[str, Any] = {
        "task_id": "wait",
        "conn_id": "warehouse",
        "sql": "select count(*) from landed where day = %(day)s",
        "parameters": {"day": "{{ ds }}"},
    }
    kwargs.update(overrides)
    return SqlConditionSensor(**kwargs)


def test_starts_in_the_triggerer_with_json_kwargs() -> None:
    op = sensor(condition={"op": ">=", "value": 100}, timeout=300, poll=Constant(interval=5.0))
    args = op.start_trigger_args
    assert args is not None
    assert args.trigger_kwargs is not None
    assert op.start_from_trigger is True
    assert args.trigger_cls == "waitwise.triggers.sql.SqlConditionTrigger"
    assert args.timeout == dt.timedelta(seconds=300 + DEADLINE_GRACE)
    kwargs = json.loads(json.dumps(args.trigger_kwargs))
    assert kwargs["parameters"] == {"day": "{{ ds }}"}
    assert kwargs["condition"] == {"op": ">=", "value": 100}
    assert kwargs["query_timeout"] == 30.0
    assert SqlConditionTrigger(**kwargs).serialize()[1] == kwargs


def test_templated_fields_match_the_trigger_attributes() -> None:
    op = sensor()
    assert tuple(op.template_fields) == ("sql", "parameters", "scheduled_at")
    trigger = SqlConditionTrigger(**op.trigger_kwargs(started_at=1_700_000_000.0))
    for name in op.template_fields:
        assert hasattr(trigger, name)


def test_condition_objects_are_accepted() -> None:
    op = sensor(condition=Condition(op="not_null"))
    assert op.trigger_kwargs(started_at=None)["condition"] == {"op": "not_null"}


def test_execute_defers_without_a_first_check() -> None:
    op = sensor(start_from_trigger=False, timeout=120)
    op.now = lambda: 1_700_000_000.0  # type: ignore[method-assign]
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context={})
    assert isinstance(deferred.value.trigger, SqlConditionTrigger)
    assert deferred.value.trigger.spec.started_at == 1_700_000_000.0


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"conn_id": ""}, "wait: conn_id must be a connection id"),
        ({"sql": "select 1; drop table landed"}, "wait: sql must be exactly one statement"),
        ({"parameters": {"day": dt.date(2024, 1, 1)}}, r"wait: parameters\['day'\]"),
        ({"parameters": "2024-01-01"}, "wait: parameters must be a dict"),
        ({"condition": lambda cell: cell > 3}, "wait: condition must be a mapping"),
        ({"condition": {"op": ">", "value": None}}, "wait: condition '>' needs a value"),
        ({"query_timeout": -1}, "wait: query_timeout must be a finite number > 0, got -1"),
        ({"soft_fail": "yes"}, "soft_fail must be True or False"),
    ],
)
def test_parse_time_errors_name_the_parameter_and_value(
    overrides: dict[str, Any], match: str
) -> None:
    with pytest.raises(PolicyConfigError, match=match):
        sensor(**overrides)


def test_a_misspelt_argument_fails_at_parse_time() -> None:
    with pytest.raises(TypeError, match="paramters"):
        sensor(paramters={"day": "x"})


# ----------------------------------------------------------------- poke (deferrable=False)
@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    server = PostgresServer()
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server.start()
    server.query("create table landed (day date primary key, n int not null)")
    try:
        yield server
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def warehouse(pg: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> PostgresServer:
    url = f"postgresql://{pg.user}:{pg.password}@127.0.0.1:{pg.port}/{pg.database}"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", url)
    monkeypatch.setenv("AIRFLOW_CONN_DEAD", f"postgresql://x:y@127.0.0.1:{_free_port()}/x")
    pg.query("delete from landed")
    return pg


def test_poke_applies_the_same_rule_on_a_worker(warehouse: PostgresServer) -> None:
    op = sensor(deferrable=False, parameters={"day": "2024-01-01"})
    assert op.poke({}) is False
    warehouse.query("insert into landed values ('2024-01-01', 1)")
    assert op.poke({}) is True
    more = {"op": ">", "value": 1}
    assert (
        sensor(deferrable=False, parameters={"day": "2024-01-01"}, condition=more).poke({}) is False
    )


def test_poke_treats_transient_errors_as_not_yet_and_fails_on_permanent_ones(
    warehouse: PostgresServer,
) -> None:
    assert sensor(deferrable=False, conn_id="dead").poke({}) is False
    with pytest.raises(AirflowException, match="42P01"):
        sensor(deferrable=False, sql="select count(*) from nope", parameters=None).poke({})
    writing = "with w as (insert into landed values ('2024-01-02', 1) returning 1) select 1 from w"
    with pytest.raises(AirflowException, match="read-only"):
        sensor(deferrable=False, sql=writing, parameters=None).poke({})
    assert warehouse.query("select count(*) from landed") == [(0,)]
