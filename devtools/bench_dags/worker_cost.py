"""One 30 s file wait, four ways: the worker time each costs is what `make bench` measures."""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk import DAG

from waitwise.operators.file import FileArrivalSensor
from waitwise.triggers.policy import Constant

with DAG(
    "bench_worker_cost",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
):
    path = "bench/{{ run_id | replace(':', '_') | replace('+', '_') }}"
    FileSensor(task_id="poke", filepath=path + "/poke", mode="poke", poke_interval=2, timeout=300)
    FileSensor(
        task_id="reschedule",
        filepath=path + "/reschedule",
        mode="reschedule",
        poke_interval=10,
        timeout=300,
    )
    FileSensor(
        task_id="stock_deferrable",
        filepath=path + "/stock_deferrable",
        deferrable=True,
        poke_interval=2,
        timeout=300,
    )
    FileArrivalSensor(
        task_id="waitwise", filepath=path + "/waitwise", poll=Constant(interval=2.0), timeout=300
    )

with DAG(
    "bench_timeout_cost",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
):
    never = "bench/never/{{ run_id | replace(':', '_') | replace('+', '_') }}"
    FileSensor(
        task_id="stock_deferrable",
        filepath=never,
        deferrable=True,
        poke_interval=2,
        timeout=10,
        retries=2,
    )
    FileArrivalSensor(
        task_id="waitwise",
        filepath=never,
        poll=Constant(interval=2.0),
        timeout=10,
        retries=2,
    )
    FileArrivalSensor(
        task_id="waitwise_soft_fail",
        filepath=never,
        poll=Constant(interval=2.0),
        timeout=10,
        retries=2,
        soft_fail=True,
    )
