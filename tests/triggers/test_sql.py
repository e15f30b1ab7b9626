"""SqlConditionTrigger against a real PostgreSQL (devtools/postgres.py), with a fake clock.

No mocks for the database: every check runs through Airflow's PostgresHook on a server this
module starts.  Connections come from ``AIRFLOW_CONN_*`` variables, as in a deployment.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from devtools.postgres import PostgresServer, _free_port
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.metrics import POKES, PROBE_ERRORS, WAITS_ERRORED
from waitwise.triggers.policy import Constant, Exponential
from waitwise.triggers.runtime import Runtime, use_runtime
from waitwise.triggers.sql import PROBER, SqlConditionTrigger
from waitwise.triggers.testing import FakeClock, RecordingSink

T0 = 1_700_000_000.0
APP = "ww-sql-test"  # application_name of the sensors' connections (pg_stat_activity)
ACTIVE = "select count(*) from pg_stat_activity where application_name = %s"


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    server = PostgresServer()
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server.start()
    server.query("create table landed (day date primary key, n int not null)")
    server.query("create table names (name text)")
    server.query("insert into names values ('alice')")
    server.query("create table secret (x int)")
    server.query("create role reader login password 'reader'")
    try:
        yield server
    finally:
        PROBER.close()
        server.stop()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(autouse=True)
def _connections(pg: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    base = f"127.0.0.1:{pg.port}/{pg.database}?application_name={APP}"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", f"postgresql://{pg.user}:{pg.password}@{base}")
    monkeypatch.setenv("AIRFLOW_CONN_READER", f"postgresql://reader:reader@{base}")
    dead = f"postgresql://x:y@127.0.0.1:{_free_port()}/none?connect_timeout=2"
    monkeypatch.setenv("AIRFLOW_CONN_DEAD", dead)
    monkeypatch.setenv("AIRFLOW_CONN_HTTP_ONLY", "http://example.invalid")
    pg.query("delete from landed")
    yield
    PROBER.close()


def make(**overrides: Any) -> SqlConditionTrigger:
    kwargs: dict[str, Any] = {
        "conn_id": "warehouse",
        "sql": "select count(*) from landed where day = %(day)s",
        "parameters": {"day": "2024-01-01"},
        "poll": Exponential(initial=1.0, factor=2.0, cap=8.0).to_config(),
        "timeout": 60.0,
        "started_at": T0,
    }
    kwargs.update(overrides)
    return SqlConditionTrigger(**kwargs)


class LandsAt(FakeClock):
    """A fake clock that runs ``sql`` on the server once virtual time reaches ``at``."""

    def __init__(self, server: PostgresServer, at: float, sql: str) -> None:
        super().__init__(now_s=T0)
        self.server, self.at, self.sql, self.done = server, at, sql, False

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if self.now_s >= self.at and not self.done:
            self.done = True
            await asyncio.to_thread(self.server.query, self.sql)


async def first_event(
    trigger: SqlConditionTrigger, clock: FakeClock, sink: RecordingSink | None = None
) -> TriggerEvent:
    with use_runtime(Runtime(clock=clock, metrics=sink or RecordingSink())):
        gen = trigger.run()
        event = await asyncio.wait_for(anext(gen), timeout=60)
        with pytest.raises(StopAsyncIteration):
            await anext(gen)
    return event


# ----------------------------------------------------------------- arrival and schedule
async def test_waits_on_the_exact_schedule_until_the_row_lands(pg: PostgresServer) -> None:
    clock = LandsAt(pg, T0 + 20, "insert into landed values ('2024-01-01', 3)")
    sink = RecordingSink()
    event = await first_event(make(), clock, sink)

    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 8.0]  # pokes at +0 +1 +3 +7 +15 +23
    assert event.payload["status"] == "success"
    assert event.payload["pokes"] == 6
    assert event.payload["first_seen_at"] == T0 + 23
    assert event.payload["found"][0]["value"] == 1
    assert sink.names().count(POKES) == 6


async def test_a_falsy_first_cell_runs_to_the_deadline(pg: PostgresServer) -> None:
    clock = FakeClock(now_s=T0)
    event = await first_event(make(timeout=20.0), clock)
    assert event.payload["status"] == "timeout"
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 5.0]
    assert event.payload["pokes"] == 6


@pytest.mark.parametrize(
    ("condition", "status"),
    [
        (None, "success"),
        ({"op": ">=", "value": 100}, "success"),
        ({"op": ">=", "value": 151}, "timeout"),
        ({"op": "==", "value": 150}, "success"),
        ({"op": "!=", "value": 150}, "timeout"),
        ({"op": "<", "value": 151}, "success"),
        ({"op": "<=", "value": 149}, "timeout"),
        ({"op": ">", "value": 149.5}, "success"),
        ({"op": "truthy"}, "success"),
        ({"op": "is_null"}, "timeout"),
        ({"op": "not_null"}, "success"),
    ],
)
async def test_condition_ops_on_a_real_count(
    pg: PostgresServer, condition: Any, status: str
) -> None:
    pg.query("insert into landed select date '2024-01-01' + g, 1 from generate_series(0, 149) g")
    trigger = make(sql="select count(*) from landed", parameters=None, condition=condition)
    event = await first_event(trigger, FakeClock(now_s=T0))
    assert event.payload["status"] == status


async def test_no_row_is_null(pg: PostgresServer) -> None:
    sql = "select n from landed where day = %(day)s"
    event = await first_event(make(sql=sql, condition={"op": "is_null"}), FakeClock(now_s=T0))
    assert event.payload["status"] == "success"
    assert event.payload["found"][0]["value"] is None


async def test_templated_fields_are_the_attributes_airflow_renders(pg: PostgresServer) -> None:
    trigger = make(
        sql="select count(*) from landed where day = %(day)s and {{ 'n' }} > 0",
        parameters={"day": "{{ ds }}"},
    )
    # What Airflow does in the triggerer for a start_from_trigger sensor: set the rendered
    # templated fields on the trigger's attributes of the same names.
    trigger.sql = "select count(*) from landed where day = %(day)s and n > 0"
    trigger.parameters = {"day": "2024-01-01"}
    pg.query("insert into landed values ('2024-01-01', 2)")
    event = await first_event(trigger, FakeClock(now_s=T0))
    assert event.payload["status"] == "success"


# ----------------------------------------------------------------- bound parameters
async def test_an_injection_attempt_in_parameters_is_inert(pg: PostgresServer) -> None:
    sql = "select count(*) from names where name = %(name)s"
    attack = "nobody' or '1'='1"
    pasted = sql.replace("%(name)s", f"'{attack}'")
    assert pg.query(pasted) == [(1,)]  # pasted into the SQL, it would match every row

    trigger = make(sql=sql, parameters={"name": attack}, timeout=3.0)
    event = await first_event(trigger, FakeClock(now_s=T0))
    assert event.payload["status"] == "timeout"  # bound: no name equals that string

    drop = "x'); drop table names; --"
    trigger = make(sql=sql, parameters={"name": drop}, timeout=3.0)
    assert (await first_event(trigger, FakeClock(now_s=T0))).payload["status"] == "timeout"
    assert pg.query("select count(*) from names") == [(1,)]


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"sql": "selec 1"}, "SyntaxError (SQLSTATE 42601)"),
        ({"sql": "select count(*) from nope"}, "UndefinedTable (SQLSTATE 42P01)"),
        ({"sql": "select nope from landed"}, "UndefinedColumn (SQLSTATE 42703)"),
        ({"sql": "select count(*) from secret", "conn_id": "reader"}, "SQLSTATE 42501"),
        (
            {"sql": "with w as (insert into landed values ('2024-02-01', 1) returning 1) "
             "select count(*) from w"},
            "ReadOnlySqlTransaction (SQLSTATE 25006)",
        ),
        ({"sql": "select 1 / 0"}, "DivisionByZero (SQLSTATE 22012)"),
        ({"conn_id": "missing"}, "The conn_id `missing` isn't defined"),
        ({"conn_id": "http_only"}, "no SQL hook"),
        ({"condition": {"op": "==", "value": "1"}}, "compare in SQL instead"),
    ],
)  # fmt: skip
async def test_permanent_errors_end_the_wait_at_the_first_poke(
    pg: PostgresServer, overrides: dict[str, Any], expected: str
) -> None:
    if "condition" in overrides:
        pg.query("insert into landed values ('2024-01-01', 1)")
    parameters = None if "sql" in overrides else {"day": "2024-01-01"}
    trigger = make(**{"parameters": parameters, **overrides})
    clock = FakeClock(now_s=T0)
    event = await first_event(trigger, clock)
    assert event.payload["status"] == "error"
    assert expected in event.payload["message"]
    assert clock.sleeps == []
    assert pg.query("select count(*) from landed where day = '2024-02-01'") == [(0,)]


async def test_a_refused_connection_is_transient_and_backs_off(pg: PostgresServer) -> None:
    poll = Constant(interval=2.0).to_config()
    trigger = make(conn_id="dead", poll=poll, timeout=600.0)
    clock = FakeClock(now_s=T0)
    sink = RecordingSink()
    event = await first_event(trigger, clock, sink)
    # RetryStrategy's default probe_backoff Exponential(1, 2, 60), max_probe_errors 5
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert event.payload["status"] == "error"
    assert event.payload["errors"] == 6
    assert event.payload["last_error"].startswith("OperationalError: dead: OperationalError")
    assert "retried" in event.payload["last_error"]
    assert sink.names().count(PROBE_ERRORS) == 6
    assert WAITS_ERRORED in sink.names()


async def test_a_statement_timeout_is_transient_then_the_wait_goes_on(
    pg: PostgresServer,
) -> None:
    sql = "select count(*) from landed, pg_sleep(case when %(slow)s then 1 else 0 end)"
    trigger = make(sql=sql, parameters={"slow": True}, query_timeout=0.2, timeout=6.0)
    clock = FakeClock(now_s=T0)
    event = await first_event(trigger, clock)
    assert event.payload["last_error"].startswith("QueryCanceled: warehouse: QueryCanceled")
    assert "SQLSTATE 57014" in event.payload["last_error"]
    # transient: the error backoff (1, 2, then clamped to the deadline), never an error end
    assert clock.sleeps[:3] == [1.0, 2.0, 3.0]
    assert event.payload["status"] == "timeout"
    assert event.payload["errors"] == event.payload["pokes"] >= 4


async def test_a_server_restart_breaks_pooled_connections_once_then_they_reconnect(
    pg: PostgresServer,
) -> None:
    pg.query("insert into landed values ('2024-01-01', 1)")
    await first_event(make(), FakeClock(now_s=T0))
    pool = PROBER.pool("warehouse")
    assert pool is not None
    assert pool.opened == 1
    pg.query(ACTIVE.replace("count(*)", "pg_terminate_backend(pid)"), APP)
    event = await first_event(make(), FakeClock(now_s=T0))
    assert (event.payload["status"], event.payload["errors"]) == ("success", 0)
    assert pool.opened == 2  # the stale connection was dropped and replaced, no error seen


# ----------------------------------------------------------------- the cap and reuse
def _sample_connections(pg: PostgresServer, stop: threading.Event, seen: list[int]) -> None:
    import psycopg2

    conn = psycopg2.connect(pg.dsn(), application_name="ww-observer")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute(
                    "select count(*) from pg_stat_activity where application_name = %s", (APP,)
                )
                (count,) = cur.fetchone() or (0,)
                seen.append(int(count))
                stop.wait(0.01)
    finally:
        conn.close()


async def test_many_sensors_share_at_most_four_connections(pg: PostgresServer) -> None:
    n = 300
    stop, seen = threading.Event(), list[int]()
    observer = threading.Thread(target=_sample_connections, args=(pg, stop, seen))
    observer.start()
    sql = "select %(i)s < 0 from pg_sleep(0.002)"  # never true, ~2 ms a check
    triggers = [
        make(sql=sql, parameters={"i": i}, poll=Constant(interval=1.0).to_config(), timeout=4.0)
        for i in range(n)
    ]
    started = time.monotonic()
    try:
        with use_runtime(Runtime(clock=FakeClock(now_s=T0), metrics=RecordingSink())):
            events = await asyncio.gather(*(anext(t.run()) for t in triggers))
    finally:
        stop.set()
        observer.join()
    elapsed = time.monotonic() - started
    pool = PROBER.pool("warehouse")
    assert pool is not None
    assert {e.payload["status"] for e in events} == {"timeout"}
    assert sum(e.payload["pokes"] for e in events) == n * 5  # +0 +1 +2 +3 +4
    assert max(seen) == 4, seen  # never more than the cap, server side
    assert pool.opened == 4  # opened once each and reused for all 1,500 checks
    assert pool.executed == n * 5
    print(f"\n{n} sensors x 5 pokes: {elapsed:.2f} s, peak connections {max(seen)}")


async def test_identical_checks_due_together_run_once(pg: PostgresServer) -> None:
    triggers = [make(timeout=4.0, poll=Constant(interval=1.0).to_config()) for _ in range(50)]
    rt = Runtime(clock=FakeClock(now_s=T0), metrics=RecordingSink())
    with use_runtime(rt):
        events = await asyncio.gather(*(anext(t.run()) for t in triggers))
        batches = rt.hub().batches
    pool = PROBER.pool("warehouse")
    assert pool is not None
    assert sum(e.payload["pokes"] for e in events) == 50 * 5
    assert pool.executed == batches <= 6  # one statement a batch for the 50 waits, not 250
    # Reused, within the cap (a second thread may start while the first is not yet idle)
    assert 1 <= pool.opened <= pool.cap


async def test_the_loop_is_never_blocked_by_a_slow_check(pg: PostgresServer) -> None:
    sql = "select count(*) > 0 from landed, pg_sleep(0.5)"
    trigger = make(sql=sql, parameters=None, timeout=1.0, poll=Constant(interval=5.0).to_config())
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    task = asyncio.ensure_future(ticker())
    try:
        await first_event(trigger, FakeClock(now_s=T0))
    finally:
        task.cancel()
    assert sum(gaps) > 0.9  # the two checks ran while the ticker kept ticking
    assert max(gaps) < 0.2


# ----------------------------------------------------------------- kwargs
def test_serialize_round_trip_is_plain_json() -> None:
    trigger = make(condition={"op": ">=", "value": 100}, soft_fail=True, query_timeout=5)
    classpath, kwargs = trigger.serialize()
    assert classpath == "waitwise.triggers.sql.SqlConditionTrigger"
    assert kwargs["condition"] == {"op": ">=", "value": 100}
    rebuilt = SqlConditionTrigger(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"conn_id": "bad id!"}, "conn_id must be a connection id"),
        ({"sql": "select 1; select 2"}, "sql must be exactly one statement, got 2"),
        ({"sql": 5}, "sql must be a non-empty string, got 5"),
        ({"parameters": {"d": object}}, r"parameters\['d'\] must be a JSON scalar"),
        ({"condition": {"op": "=~"}}, "condition op must be one of"),
        ({"query_timeout": 0}, "query_timeout must be a finite number > 0, got 0"),
        ({"poke_intervall": 3}, "poke_intervall"),
    ],
)
def test_bad_kwargs_raise_type_error_naming_them(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(TypeError, match=match) as info:
        make(**overrides)
    assert isinstance(info.value, PolicyConfigError)
