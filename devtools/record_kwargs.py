"""Print the trigger rows a waitwise release writes, as JSON (test data for compatibility).

Run it with the release's code first on ``sys.path``, e.g. for 0.1.0::

    mkdir -p /tmp/old /tmp/oldpkg/waitwise
    git archive 0bff4ae triggers operators | tar -x -C /tmp/old
    ln -s /tmp/old/triggers /tmp/oldpkg/waitwise/triggers
    ln -s /tmp/old/operators /tmp/oldpkg/waitwise/operators
    PYTHONPATH=/tmp/oldpkg .venv/bin/python -m devtools.record_kwargs \
        > tests/triggers/data/trigger_kwargs_0.1.0.json

The rows: ``start_trigger_args`` kwargs as a serialized DAG keeps them (templated, and as
Airflow renders them in the triggerer), and the kwargs of a trigger deferred from a worker.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from airflow.sdk import DAG

from waitwise.operators.file import FileArrivalSensor
from waitwise.triggers import file as trigger_module
from waitwise.triggers.policy import Exponential, FullJitter, Linear


def main() -> None:
    rows: dict[str, Any] = {}
    with DAG("compat", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)):
        plain = FileArrivalSensor(
            task_id="plain",
            filepath="orders/orders_{{ ds_nodash }}.csv",
            poll=FullJitter(Exponential(initial=10, factor=2, cap=300)),
            timeout=dt.timedelta(hours=2),
            soft_fail=True,
        )
        low = FileArrivalSensor(
            task_id="low",
            filepath="partner/{{ ds_nodash }}/",
            profile="low",
            source="partner_feed",
            recursive=True,
        )
        legacy = FileArrivalSensor(
            task_id="legacy",
            filepath="/data/x.csv",
            poke_interval=30,
            exponential_backoff=True,
            max_wait=600,
            timeout=3600,
            store={"kind": "file", "root": "/var/lib/waitwise"},
        )
        deferred = FileArrivalSensor(
            task_id="deferred",
            filepath="/data/y.csv",
            start_from_trigger=False,
            poll=Linear(initial=15, increment=15, cap=60),
            timeout=900,
        )
    for op in (plain, low, legacy):
        args = op.start_trigger_args
        assert args is not None
        rows[f"start_from_trigger/{op.task_id}"] = {
            "classpath": args.trigger_cls,
            "kwargs": args.trigger_kwargs,
        }
    plain_args = plain.start_trigger_args
    assert plain_args is not None
    rendered = dict(
        plain_args.trigger_kwargs or {},
        filepath="orders/orders_20261129.csv",
        scheduled_at="2026-11-29 00:00:00+00:00",
    )
    rows["start_from_trigger/plain, rendered"] = {
        "classpath": plain_args.trigger_cls,
        "kwargs": rendered,
    }
    trigger = trigger_module.FileArrivalTrigger(
        **deferred.trigger_kwargs(started_at=1_764_374_400.0)
    )
    classpath, kwargs = trigger.serialize()
    rows["defer/deferred"] = {"classpath": classpath, "kwargs": kwargs}
    recorded = {"recorded_from": trigger_module.__file__, "rows": rows}
    print(json.dumps(recorded, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
