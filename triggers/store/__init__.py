"""Durable wait history and breaker state: one interface, a file and an Airflow backend.

- :class:`WaitStore` is the interface; :class:`WaitRecord` the history entry.
- :class:`FileStore` keeps it in a local directory (outside Airflow, simulator).
- :class:`AirflowStore` keeps it in Airflow Variables through the Task SDK (inside
  triggers and workers); :class:`KeyValueBackend` is its seam for tests.

Use one store instance per process (the runtime holds it): stores serialise breaker
updates per source through process-wide locks, whichever instance you use.
"""

from __future__ import annotations

from waitwise.triggers.errors import StoreConflictError, StoreError, WaitRecordError

from .base import DEFAULT_RETENTION, BreakerUpdate, WaitStore
from .file import FileStore
from .kv import AirflowStore, KeyValueBackend
from .records import (
    SOURCE_PATTERN,
    WAIT_RECORD_SCHEMA,
    WaitKey,
    WaitOutcome,
    WaitRecord,
    validate_source,
)
from .variables import VariableBackend

__all__ = [
    "DEFAULT_RETENTION",
    "SOURCE_PATTERN",
    "WAIT_RECORD_SCHEMA",
    "AirflowStore",
    "BreakerUpdate",
    "FileStore",
    "KeyValueBackend",
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
