"""Wait for objects in a store (``s3://`` and any scheme an installed provider registers).

``FileArrivalTrigger`` and ``FileBatchTrigger`` route a URL with a scheme other than
``file://`` here: the wait's query is an :class:`ObjectQuery` and its prober
:data:`OBJECT_PROBER`, which answers every object query due in a tick with one listing per
prefix (:mod:`.query` for the rules, :mod:`.prober` for the batch, :mod:`.s3` and
:mod:`.generic` for the I/O).  Credentials come from the Airflow connection ``conn_id`` only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Final

from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.objectstore.prober import S3_SCHEMES, ObjectGroup, ObjectProber, probe_once
from waitwise.triggers.objectstore.query import (
    ObjectEntry,
    ObjectQuery,
    ObjectStoreError,
    ObjectUrl,
    parse_location,
)

__all__ = [
    "OBJECT_PROBER",
    "ObjectEntry",
    "ObjectGroup",
    "ObjectProber",
    "ObjectQuery",
    "ObjectStoreError",
    "ObjectUrl",
    "check_location",
    "check_locations",
    "check_scheme",
    "object_query",
    "parse_location",
    "probe_once",
]

OBJECT_PROBER: Final = ObjectProber()
"""The one prober of every object wait in a process (the hub batches by prober identity)."""

_PROVIDERS: Final = {
    "s3": "airflow-waitwise[s3] (apache-airflow-providers-amazon with aiobotocore)",
    "gs": "apache-airflow-providers-google with gcsfs",
    "gcs": "apache-airflow-providers-google with gcsfs",
    "abfs": "apache-airflow-providers-microsoft-azure with adlfs",
    "abfss": "apache-airflow-providers-microsoft-azure with adlfs",
    "az": "apache-airflow-providers-microsoft-azure with adlfs",
    "adl": "apache-airflow-providers-microsoft-azure with adlfs",
}


def check_scheme(name: str, url: ObjectUrl) -> ObjectUrl:
    """Return ``url`` if an installed provider handles its scheme, else raise naming ``name``.

    S3 needs the amazon provider and aiobotocore (checked without importing them); any other
    scheme must be registered with Airflow's ``ObjectStoragePath`` by an installed provider.
    """
    if url.scheme in S3_SCHEMES:
        found = all(importlib.util.find_spec(m) for m in ("aiobotocore", "botocore"))
        found = found and _provider_installed("amazon")
    else:
        from airflow.sdk.io.fs import has_fs

        found = has_fs(url.scheme)
    if not found:
        family = "s3" if url.scheme in S3_SCHEMES else url.scheme
        need = _PROVIDERS.get(family, f"the Airflow provider that registers {url.scheme}://")
        raise PolicyConfigError(
            f"{name}: no filesystem for {url.scheme}:// in {str(url)!r}: install {need}"
        )
    return url


def _provider_installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(f"airflow.providers.{name}") is not None
    except ModuleNotFoundError:
        return False


def check_location(name: str, value: str, conn_id: str | None) -> ObjectUrl | str:
    """Return ``value`` as an object URL whose scheme a provider handles, or as a local path.

    ``file://`` URLs are local paths.  ``conn_id`` is for object URLs only.

    :raises PolicyConfigError: naming ``name``: a malformed URL, a scheme no installed
        provider handles, or a ``conn_id`` given with a local path.
    """
    where = parse_location(name, value)
    if isinstance(where, ObjectUrl):
        return check_scheme(name, where)
    if conn_id is not None:
        raise PolicyConfigError(
            f"{name}: conn_id={conn_id!r} is for object URLs, but {value!r} is a local path "
            "(relative paths use fs_conn_id)"
        )
    return where


def check_locations(
    name: str, values: Sequence[str], conn_id: str | None
) -> list[ObjectUrl] | list[str]:
    """Return every entry of ``values`` by :func:`check_location`: all URLs, or all paths.

    :raises PolicyConfigError: naming ``name``: an entry :func:`check_location` refuses, or
        local paths and object URLs mixed in one list.
    """
    found = [check_location(f"{name}[{i}]", value, conn_id) for i, value in enumerate(values)]
    urls = [where for where in found if isinstance(where, ObjectUrl)]
    paths = [where for where in found if isinstance(where, str)]
    if urls and paths:
        raise PolicyConfigError(
            f"{name} mixes local paths ({paths[0]!r}, ...) and object URLs ({str(urls[0])!r}, "
            "...): use one sensor for each"
        )
    return urls or paths


async def object_query(url: ObjectUrl, conn_id: str | None, limit: int) -> ObjectQuery:
    """Return the query for ``url`` once its connection's client is built.

    :raises Exception: the connection does not exist or cannot be used (the wait ends).
    """
    await OBJECT_PROBER.connect(url.scheme, conn_id)
    return ObjectQuery(url.scheme, conn_id, url.bucket, url.key, limit)
