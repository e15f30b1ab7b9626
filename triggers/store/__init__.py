"""Durable wait history and breaker state: one interface, a file and an Airflow backend.

- :class:`WaitStore` is the interface; :class:`WaitRecord` the history entry.
- :class:`FileStore` keeps it in a local directory (outside Airflow, simulator).
- :class:`AirflowStore` keeps it in Airflow Variables. :class:`KeyValueBackend` is its
  seam, with one backend per read path: :class:`VariableBackend` (the Task SDK, from
  triggers and workers), :class:`MetadataBackend` (Airflow's ORM, in the api-server),
  :class:`RestBackend` (the REST API, from a console).

Use one store instance per process (the runtime holds it): stores serialise breaker
updates per source through process-wide locks, whichever instance you use.
"""

from __future__ import annotations

from waitwise.triggers.errors import StoreConflictError, StoreError, WaitRecordError

from .base import DEFAULT_MAX_AGE_S, DEFAULT_RETENTION, BreakerUpdate, CompactionPolicy, WaitStore
from .file import FileStore
from .kv import AirflowStore, CompactionReport
from .kv_protocol import BulkReader, KeyValueBackend
from .records import (
    SOURCE_PATTERN,
    WAIT_RECORD_SCHEMA,
    WaitKey,
    WaitOutcome,
    WaitRecord,
    validate_source,
)
from .rest import RestBackend
from .sql import MetadataBackend
from .variables import VariableBackend

__all__ = [
    "DEFAULT_MAX_AGE_S",
    "DEFAULT_RETENTION",
    "SOURCE_PATTERN",
    "WAIT_RECORD_SCHEMA",
    "AirflowStore",
    "BreakerUpdate",
    "BulkReader",
    "CompactionPolicy",
    "CompactionReport",
    "FileStore",
    "KeyValueBackend",
    "MetadataBackend",
    "RestBackend",
    "StoreConflictError",
    "StoreError",
    "VariableBackend",
    "WaitKey",
    "WaitOutcome",
    "WaitRecord",
    "WaitRecordError",
    "WaitStore",
    "validate_source",
]
