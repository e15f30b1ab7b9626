"""Exceptions raised by waitwise, and how an error's kind travels as data.

The tree (``tests/triggers/test_errors.py`` walks the real classes and compares)::

    WaitwiseError
    ├── ConfigError (ValueError)          a bad argument: names the parameter and the value
    │   └── PolicyConfigError             a poll policy, profile or sensor argument (DAG-parse time)
    │       ├── BreakerConfigError        a breaker config
    │       └── TriggerArgumentError (TypeError)
    │                                     a trigger rebuilt from damaged or incompatible kwargs
    ├── ProbeError                        a transient failure of one check; retried with backoff
    ├── CheckError                        a check that cannot succeed as written: ends its wait
    │   └── ObjectStoreError              an object store refused it (``code``: its error code)
    ├── RecordError (ValueError)          stored data that cannot be read or written as it is
    │   ├── WaitRecordError               a wait-history record (or a bad source name)
    │   └── BreakerSnapshotError          a breaker snapshot
    └── StoreError                        the history/breaker store failed
        └── StoreConflictError            a breaker update lost against rivals every time

``TriggerArgumentError`` is a ``TypeError`` as well because Airflow's triggerer turns only a
``TypeError`` from a trigger's constructor into "failed to inflate" (that one task fails);
anything else stops the trigger runner and every wait on it.  Pure: stdlib only.
"""

from __future__ import annotations

__all__ = [
    "BreakerConfigError",
    "BreakerSnapshotError",
    "CheckError",
    "ConfigError",
    "ObjectStoreError",
    "PolicyConfigError",
    "ProbeError",
    "RecordError",
    "StoreConflictError",
    "StoreError",
    "TriggerArgumentError",
    "WaitRecordError",
    "WaitwiseError",
    "error_kind",
]


class WaitwiseError(Exception):
    """Root of every waitwise exception."""


class ConfigError(WaitwiseError, ValueError):
    """An argument is invalid; the message names the parameter and the offending value."""


class PolicyConfigError(ConfigError):
    """A policy, profile or sensor argument is invalid (raised at DAG-parse time)."""


class BreakerConfigError(PolicyConfigError):
    """A circuit-breaker config is invalid."""


class TriggerArgumentError(PolicyConfigError, TypeError):
    """A trigger cannot be rebuilt from its kwargs (a damaged or incompatible stored row)."""


class CheckError(WaitwiseError):
    """A check that cannot succeed as written: a permanent failure that ends its wait.

    A SQL syntax error, a permission denied, a condition that cannot compare what it got.
    """


class ObjectStoreError(CheckError):
    """The object store refused a check for a reason that waiting will not fix.

    A missing bucket, denied access, invalid or missing credentials: the wait ends with this
    message.  ``code`` is the store's error code as data (``"NoSuchBucket"``, ...).
    """

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class ProbeError(WaitwiseError):
    """A check of the source failed for a transient reason (not "not arrived yet").

    :param kind: what failed, as data (e.g. ``"PermissionError"``); recorded in the history,
        never parsed from the message.  Default: the class name of the error it was raised
        from (``raise ProbeError(...) from exc``), else ``"ProbeError"``.
    :param retry_after_s: how long the source asked not to be checked again (an HTTP
        ``Retry-After``), if it said; the next poke waits at least that long, never past the
        wait's deadline.
    """

    def __init__(
        self, message: str, *, kind: str | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self._kind = kind
        self.retry_after_s = retry_after_s

    @property
    def kind(self) -> str:
        """Return what failed (see the class docstring)."""
        if self._kind is not None:
            return self._kind
        cause = self.__cause__
        return type(cause).__name__ if cause is not None else type(self).__name__

    @classmethod
    def wrapping(cls, exc: BaseException) -> ProbeError:
        """Return a probe error carrying ``exc``'s text and kind (``exc`` as its cause)."""
        error = cls(str(exc), kind=type(exc).__name__)
        error.__cause__ = exc
        return error


class RecordError(WaitwiseError, ValueError):
    """Stored data (a record, a snapshot) cannot be read or written as it is."""


class WaitRecordError(RecordError):
    """A wait-history record is invalid (or a source name is)."""


class BreakerSnapshotError(RecordError):
    """A stored breaker snapshot is damaged."""


class StoreError(WaitwiseError):
    """The history/breaker store failed."""


class StoreConflictError(StoreError):
    """A breaker update kept losing against concurrent writers."""


def error_kind(exc: BaseException) -> str:
    """Return the kind of ``exc`` as data: a :class:`ProbeError`'s ``kind``, else its class name."""
    return exc.kind if isinstance(exc, ProbeError) else type(exc).__name__
