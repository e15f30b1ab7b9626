"""Object-store waits against a real S3 API (moto's standalone server on localhost).

Nothing is mocked: every listing is an HTTP request the server logs, and the request counts
asserted here are read from the server's own log.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]
from fsspec.implementations.memory import MemoryFileSystem  # type: ignore[import-untyped]

from devtools.moto_server import MotoServer
from waitwise.triggers.batch import FileBatchTrigger
from waitwise.triggers.errors import PolicyConfigError, ProbeError
from waitwise.triggers.file import FileArrivalTrigger, FileProber
from waitwise.triggers.objectstore import OBJECT_PROBER, ObjectProber, ObjectQuery
from waitwise.triggers.objectstore.query import ObjectStoreError
from waitwise.triggers.objectstore.s3 import classify
from waitwise.triggers.policy import Constant
from waitwise.triggers.runtime import Runtime, use_runtime
from waitwise.triggers.testing import FakeClock, RecordingSink

CONN = "moto_s3"
_names = itertools.count()


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    saved = {k: os.environ.get(k) for k in ("AIRFLOW_CONN_MOTO_S3", "AIRFLOW_CONN_DEAD_S3")}
    os.environ["AIRFLOW_CONN_MOTO_S3"] = server.airflow_conn()
    os.environ["AIRFLOW_CONN_DEAD_S3"] = server.airflow_conn(port=_closed_port())
    try:
        yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


def _closed_port() -> int:
    """Return a port nothing listens on (bound for a moment, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def s3(moto: MotoServer) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=moto.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"bkt-{os.getpid()}-{next(_names)}"
    s3.create_bucket(Bucket=name)
    return name


def lists(moto: MotoServer, bucket: str) -> int:
    """Return how many listing requests of ``bucket`` the server served so far."""
    return sum(1 for r in moto.s3_requests() if r.path.startswith(f"/{bucket}?list-type=2"))


def put(s3: Any, bucket: str, *keys: str) -> None:
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())


# ------------------------------------------------------------------ one listing per prefix
async def test_one_listing_per_prefix_per_tick_serves_every_query_on_it(
    moto: MotoServer, s3: Any, bucket: str
) -> None:
    put(s3, bucket, *(f"in/{i:03}.csv" for i in range(0, 60, 2)), "in/sub/deep.csv", "out/x.csv")
    exact = [ObjectQuery("s3", CONN, bucket, f"in/{i:03}.csv") for i in range(40)]
    globs = [ObjectQuery("s3", CONN, bucket, p) for p in ("in/*.csv", "in/00?.csv", "in/**")]
    prober = ObjectProber()
    try:
        before = lists(moto, bucket)
        results = await prober.probe_batch([*exact, *globs])
        after_one = lists(moto, bucket)
        await prober.probe_batch([*exact, *globs])  # a second tick: one listing again
    finally:
        await prober.aclose()

    assert (after_one - before, lists(moto, bucket) - after_one) == (1, 1)
    assert [bool(r) for r in results[:40]] == [i % 2 == 0 for i in range(40)]
    found = results[40]
    assert isinstance(found, list)
    assert len(found) == 30
    assert "in/sub/deep.csv" not in {f["path"] for f in found}
    item = found[0]
    assert item["path"] == f"s3://{bucket}/in/000.csv"
    assert (item["size"], item["etag"]) == (
        10,
        s3.head_object(Bucket=bucket, Key="in/000.csv")["ETag"].strip('"'),
    )
    assert item["mtime"] > time.time() - 600
    few, deep = results[41], results[42]
    assert isinstance(few, list)
    assert isinstance(deep, list)
    assert [f["path"].rsplit("/", 1)[1] for f in few] == [f"00{i}.csv" for i in (0, 2, 4, 6, 8)]
    assert f"s3://{bucket}/in/sub/deep.csv" in {f["path"] for f in deep}


async def test_a_listing_reads_every_page_of_a_thousand_keys(
    moto: MotoServer, s3: Any, bucket: str
) -> None:
    def fill(part: int) -> None:
        for i in range(part, 2_100, 8):
            s3.put_object(Bucket=bucket, Key=f"big/{i:05}.csv", Body=b"")

    await asyncio.gather(*(asyncio.to_thread(fill, part) for part in range(8)))
    queries = [ObjectQuery("s3", CONN, bucket, k) for k in ("big/02099.csv", "big/*.csv")]
    queries.append(ObjectQuery("s3", CONN, bucket, "big/*.csv", limit=5_000))
    prober = ObjectProber()
    try:
        before = lists(moto, bucket)
        last, capped, every = await prober.probe_batch(queries)
    finally:
        await prober.aclose()

    assert lists(moto, bucket) - before == 3  # 1,000 + 1,000 + 100 keys
    assert isinstance(last, list)
    assert last[0]["path"].endswith("big/02099.csv")
    assert isinstance(capped, list)
    assert len(capped) == 100
    assert isinstance(every, list)
    assert len(every) == 2_100


async def test_a_few_plain_keys_are_asked_alone(moto: MotoServer, s3: Any, bucket: str) -> None:
    put(s3, bucket, "solo/a.csv", "solo/a.csv.bak")
    queries = [ObjectQuery("s3", CONN, bucket, k) for k in ("solo/a.csv", "solo/b.csv")]
    prober = ObjectProber()
    try:
        found, missing = await prober.probe_batch(queries)
    finally:
        await prober.aclose()
    paths = [r.path for r in moto.s3_requests() if r.path.startswith(f"/{bucket}?list-type=2")]

    assert len(paths) == 2
    assert all("max-keys=1&" in p or p.endswith("max-keys=1") for p in paths)
    assert isinstance(found, list)
    assert [f["path"] for f in found] == [f"s3://{bucket}/solo/a.csv"]
    assert missing == []  # "solo/b.csv" is not "solo/a.csv.bak"


# ------------------------------------------------------------------ errors
async def test_a_missing_bucket_ends_only_the_waits_on_it(s3: Any, bucket: str) -> None:
    put(s3, bucket, "in/a.csv")
    prober = ObjectProber()
    try:
        ok, gone = await prober.probe_batch(
            [ObjectQuery("s3", CONN, bucket, "in/a.csv"), ObjectQuery("s3", CONN, "nobkt", "a")]
        )
    finally:
        await prober.aclose()
    assert isinstance(ok, list)
    assert ok
    assert isinstance(gone, ObjectStoreError)
    assert gone.code == "NoSuchBucket"
    assert "s3://nobkt/a" in str(gone)


async def test_a_closed_port_is_a_transient_probe_error(moto: MotoServer) -> None:
    prober = ObjectProber()
    try:
        (result,) = await prober.probe_batch([ObjectQuery("s3", "dead_s3", "bkt", "a.csv")])
    finally:
        await prober.aclose()
    assert isinstance(result, ProbeError)
    assert result.kind == "EndpointConnectionError"


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [
        (503, "SlowDown", True),
        (500, "InternalError", True),
        (429, "TooManyRequests", True),
        (400, "RequestTimeout", True),
        (403, "AccessDenied", False),
        (403, "InvalidAccessKeyId", False),
        (403, "SignatureDoesNotMatch", False),
        (404, "NoSuchBucket", False),
    ],
)
def test_service_errors_are_classified_by_status_and_code(
    status: int, code: str, transient: bool
) -> None:
    exc = ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "ListObjectsV2",
    )
    found = classify(exc, "listing s3://b/p")
    assert isinstance(found, ProbeError if transient else ObjectStoreError)
    assert (found.kind if isinstance(found, ProbeError) else found.code) == code
    assert found.__cause__ is exc


async def test_a_missing_connection_raises_when_the_client_is_built() -> None:
    from airflow.sdk.exceptions import AirflowNotFoundException

    prober = ObjectProber()
    try:
        with pytest.raises(AirflowNotFoundException):
            await prober.connect("s3", "no_such_conn")
    finally:
        await prober.aclose()


# ------------------------------------------------------------------ the loop is never blocked
async def _max_loop_lag(work: Any, step: float = 0.005) -> tuple[float, Any]:
    """Run ``work`` while a watchdog measures the loop's longest stall past ``step``."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    done = asyncio.Event()

    async def watchdog() -> None:
        nonlocal worst
        while not done.is_set():
            start = loop.time()
            await asyncio.sleep(step)
            worst = max(worst, loop.time() - start - step)

    dog = asyncio.ensure_future(watchdog())
    try:
        result = await work
    finally:
        done.set()
        await dog
    return worst, result


async def test_fifty_concurrent_probes_never_block_the_loop(s3: Any, bucket: str) -> None:
    put(s3, bucket, *(f"p{i}/k.csv" for i in range(0, 50, 5)))
    prober = ObjectProber()
    await prober.connect("s3", CONN)  # client built: what is measured is the probes
    queries = [ObjectQuery("s3", CONN, bucket, f"p{i}/*.csv") for i in range(50)]
    try:
        lag, results = await _max_loop_lag(
            asyncio.gather(*(prober.probe_batch([q]) for q in queries))
        )
    finally:
        await prober.aclose()
    assert [bool(r[0]) for r in results] == [i % 5 == 0 for i in range(50)]
    assert lag < 0.2, f"the loop stalled {lag:.3f}s"  # Airflow's triggerer warns from 0.2 s


class SlowMemoryFs(MemoryFileSystem):  # type: ignore[misc]
    """fsspec's in-memory filesystem whose calls block like a remote one's (0.2 s each)."""

    cachable = False

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> Any:
        time.sleep(0.2)  # a sync fsspec call blocks its caller: it must run in the pool
        return super().ls(path, detail=detail, **kwargs)


async def test_a_sync_filesystem_lists_in_the_bounded_pool_off_the_loop() -> None:
    fs = SlowMemoryFs()
    fs.store.clear()
    fs.pipe({f"/bkt/d{i}/a.csv": b"x" for i in range(8)})
    prober = ObjectProber(fs_factory=lambda scheme, conn_id: fs)
    queries = [ObjectQuery("memory", None, "bkt", f"d{i}/*.csv") for i in range(8)]
    try:
        await prober.connect("memory", None)
        started = time.monotonic()
        lag, results = await _max_loop_lag(prober.probe_batch(queries))
        took = time.monotonic() - started
    finally:
        await prober.aclose()
    assert all(isinstance(r, list) and len(r) == 1 for r in results)
    first = results[0]
    assert isinstance(first, list)
    assert first[0]["path"] == "memory://bkt/d0/a.csv"
    assert lag < 0.2
    assert 0.38 < took < 0.75  # eight 0.2 s listings, four threads: two rounds


# ------------------------------------------------------------------ through the triggers
T0 = 1_700_000_000.0
POLL = Constant(interval=5.0).to_config()


async def _event(trigger: Any, clock: FakeClock) -> dict[str, Any]:
    with use_runtime(Runtime(clock=clock, metrics=RecordingSink())):
        gen = trigger.run()
        event = await anext(gen)
        with pytest.raises(StopAsyncIteration):
            await anext(gen)
    return dict(event.payload)


class PutsAt(FakeClock):
    """A fake clock that puts an object once virtual time reaches ``at``."""

    def __init__(self, s3: Any, bucket: str, key: str, at: float) -> None:
        super().__init__(now_s=T0)
        self.s3, self.bucket, self.key, self.at = s3, bucket, key, at

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if self.now_s >= self.at:
            await asyncio.to_thread(put, self.s3, self.bucket, self.key)


async def test_an_arrival_trigger_on_an_s3_glob_finds_the_object(s3: Any, bucket: str) -> None:
    trigger = FileArrivalTrigger(
        filepath=f"s3://{bucket}/in/20240101/*.csv",
        conn_id=CONN,
        poll=Constant(interval=5.0).to_config(),
        timeout=60.0,
        started_at=T0,
    )
    clock = PutsAt(s3, bucket, "in/20240101/part-0.csv", at=T0 + 12)
    try:
        payload = await _event(trigger, clock)
    finally:
        await OBJECT_PROBER.aclose()
    assert clock.sleeps == [5.0, 5.0, 5.0]  # pokes at +0 +5 +10 +15: found at +15
    assert payload["status"] == "success"
    assert payload["found"][0]["path"] == f"s3://{bucket}/in/20240101/part-0.csv"
    assert payload["pokes"] == 4


async def test_a_trigger_with_a_missing_connection_ends_as_an_error(bucket: str) -> None:
    trigger = FileArrivalTrigger(
        filepath=f"s3://{bucket}/a.csv", conn_id="nowhere", timeout=60.0, started_at=T0, poll=POLL
    )
    payload = await _event(trigger, FakeClock(now_s=T0))
    assert payload["status"] == "error"
    assert "nowhere" in payload["message"]
    assert payload["pokes"] == 0


async def test_a_trigger_on_a_missing_bucket_ends_at_its_first_poke() -> None:
    trigger = FileArrivalTrigger(
        filepath="s3://no-such-bucket/a.csv", conn_id=CONN, timeout=60.0, started_at=T0, poll=POLL
    )
    try:
        payload = await _event(trigger, FakeClock(now_s=T0))
    finally:
        await OBJECT_PROBER.aclose()
    assert (payload["status"], payload["pokes"]) == ("error", 1)
    assert payload["last_error"].startswith("ObjectStoreError: listing s3://no-such-bucket/a.csv")
    assert "NoSuchBucket" in payload["last_error"]


async def test_a_batch_of_urls_completes_from_one_listing(s3: Any, bucket: str) -> None:
    put(s3, bucket, "b/x.csv", "b/y.csv")
    trigger = FileBatchTrigger(
        filepaths=[f"s3://{bucket}/b/x.csv", f"s3://{bucket}/b/y.csv", f"s3://{bucket}/b/z*"],
        complete=2,
        conn_id=CONN,
        timeout=60.0,
        poll=POLL,
        started_at=T0,
    )
    assert trigger.prober is OBJECT_PROBER
    try:
        payload = await _event(trigger, FakeClock(now_s=T0))
    finally:
        await OBJECT_PROBER.aclose()
    assert payload["status"] == "success"
    assert sorted((f["path"], f["member"]) for f in payload["found"]) == [
        (f"s3://{bucket}/b/x.csv", f"s3://{bucket}/b/x.csv"),
        (f"s3://{bucket}/b/y.csv", f"s3://{bucket}/b/y.csv"),
    ]
    assert all(f["etag"] for f in payload["found"])


def test_file_urls_are_local_paths_and_keep_the_file_prober(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x")
    trigger = FileArrivalTrigger(filepath=f"file://{tmp_path}/a.csv", poll=POLL, timeout=5.0)
    assert isinstance(trigger.prober, FileProber)
    assert "conn_id" not in trigger.serialize()[1]


def test_conn_id_travels_only_when_set() -> None:
    bare = FileArrivalTrigger(filepath="s3://bkt/a.csv", poll=POLL, timeout=5.0)
    named = FileArrivalTrigger(filepath="s3://bkt/a.csv", conn_id=CONN, poll=POLL, timeout=5.0)
    assert "conn_id" not in bare.serialize()[1]
    classpath, kwargs = named.serialize()
    assert kwargs["conn_id"] == CONN
    assert FileArrivalTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert bare.prober is OBJECT_PROBER


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filepath": "gs://bkt/a.csv"}, "install apache-airflow-providers-google"),
        ({"filepath": "s3:///a.csv"}, "no bucket in 's3:///a.csv'"),
        ({"filepath": "s3://bkt"}, "no key in 's3://bkt'"),
        ({"filepath": "file://rel/a.csv"}, "a file:// URL needs an absolute path"),
        ({"filepath": "/tmp/a.csv", "conn_id": CONN}, "conn_id='moto_s3' is for object URLs"),
        ({"filepath": "s3://bkt/a", "conn_id": "bad id"}, "conn_id must be a connection id"),
    ],
)
def test_bad_locations_are_refused_naming_the_parameter(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(PolicyConfigError, match=r"filepath|conn_id") as err:
        FileArrivalTrigger(**kwargs, poll=POLL, timeout=5.0)
    assert message in str(err.value)


def test_a_batch_mixing_paths_and_urls_is_refused() -> None:
    with pytest.raises(PolicyConfigError, match="filepaths mixes local paths"):
        FileBatchTrigger(filepaths=["/tmp/a.csv", "s3://bkt/b.csv"], poll=POLL, timeout=5.0)
