"""The file sensors with object URLs: arguments at DAG-parse time, trigger kwargs, the poke path.

The poke path (``deferrable=False``) runs against moto's standalone server on localhost.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest

from devtools.moto_server import MotoServer
from waitwise.operators.file import FileArrivalSensor, FileBatchSensor
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.file import FileArrivalTrigger
from waitwise.triggers.objectstore import OBJECT_PROBER


def test_a_url_sensor_starts_in_the_triggerer_with_the_object_prober() -> None:
    op = FileArrivalSensor(
        task_id="wait", filepath="s3://landing/in/{{ ds_nodash }}/*.csv", conn_id="partner_s3"
    )
    args = op.start_trigger_args
    assert args is not None
    assert args.trigger_kwargs is not None
    kwargs = json.loads(json.dumps(args.trigger_kwargs))
    assert (kwargs["filepath"], kwargs["conn_id"]) == (
        "s3://landing/in/{{ ds_nodash }}/*.csv",
        "partner_s3",
    )
    assert FileArrivalTrigger(**kwargs).prober is OBJECT_PROBER


def test_sensors_without_conn_id_keep_their_trigger_kwargs() -> None:
    local = FileArrivalSensor(task_id="wait", filepath="in/a.csv").start_trigger_args
    url = FileArrivalSensor(task_id="wait", filepath="s3://landing/a.csv").start_trigger_args
    assert local is not None
    assert url is not None
    assert local.trigger_kwargs is not None
    assert url.trigger_kwargs is not None
    assert "conn_id" not in local.trigger_kwargs
    assert "conn_id" not in url.trigger_kwargs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filepath": "gcs://b/a"}, "wait: filepath: no filesystem for gcs://"),
        ({"filepath": "s3://bkt"}, "wait: filepath: no key in 's3://bkt'"),
        ({"filepath": "in/a.csv", "conn_id": "x"}, "is for object URLs"),
    ],
)
def test_a_bad_location_fails_at_parse_time(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyConfigError) as err:
        FileArrivalSensor(task_id="wait", **kwargs)
    assert message in str(err.value)


def test_a_batch_sensor_refuses_paths_mixed_with_urls() -> None:
    with pytest.raises(PolicyConfigError, match=r"wait: filepaths mixes local paths"):
        FileBatchSensor(task_id="wait", filepaths=["in/a.csv", "s3://bkt/in/b.csv"])


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    saved = os.environ.get("AIRFLOW_CONN_MOTO_POKE")
    os.environ["AIRFLOW_CONN_MOTO_POKE"] = server.airflow_conn()
    try:
        yield server
    finally:
        if saved is None:
            os.environ.pop("AIRFLOW_CONN_MOTO_POKE", None)
        else:
            os.environ["AIRFLOW_CONN_MOTO_POKE"] = saved
        server.stop()


def test_the_poke_path_lists_the_store_on_a_worker(moto: MotoServer) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=moto.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="poked")
    one = FileArrivalSensor(
        task_id="one", filepath="s3://poked/in/*.csv", conn_id="moto_poke", deferrable=False
    )
    batch = FileBatchSensor(
        task_id="batch",
        filepaths=["s3://poked/in/a.csv", "s3://poked/in/b.csv"],
        conn_id="moto_poke",
        deferrable=False,
    )
    assert (one.poke({}), batch.poke({})) == (False, False)
    s3.put_object(Bucket="poked", Key="in/a.csv", Body=b"a")
    assert (one.poke({}), batch.poke({})) == (True, False)
    s3.put_object(Bucket="poked", Key="in/b.csv", Body=b"b")
    assert batch.poke({}) is True
