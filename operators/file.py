"""``FileArrivalSensor``: a drop-in for Airflow's ``FileSensor`` that costs no worker time."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import Any

from airflow.triggers.base import StartTriggerArgs

from waitwise.operators.base import PolicySensor
from waitwise.triggers import FileArrivalTrigger, PolicyConfigError
from waitwise.triggers.file import check, check_file_options, resolve_query

_TRIGGER = f"{FileArrivalTrigger.__module__}.{FileArrivalTrigger.__qualname__}"


class FileArrivalSensor(PolicySensor):
    """Wait for a file, a glob match, or a non-empty directory to land.

    Accepts ``FileSensor``'s parameters (``filepath``, ``fs_conn_id``, ``recursive``,
    ``poke_interval``, ``timeout``, ``soft_fail``, ``exponential_backoff``, ``max_wait``, ...)
    plus ``poll=`` (an interval policy), ``profile=`` (a reliability profile or preset name)
    and ``source=`` (shared history and circuit breaker; see ``PolicySensor``).  It starts in
    the triggerer and ends there: arrival and a ``soft_fail`` timeout cost zero worker-seconds;
    a hard timeout costs one short worker run and fails without retry, as Airflow sensors do.

    The XCom ``return_value`` is the wait's payload (``found`` paths with size and mtime,
    ``first_seen_at``, ``pokes``, ``elapsed_s``, ``status``), pushed by the trigger itself, so
    it arrives as a plain dict (Airflow 3.3 double-encodes ``xcoms=`` of task-ending events).

    :param filepath: path or glob pattern (templated); relative paths are joined to the
        ``path`` extra of ``fs_conn_id``.
    :param fs_conn_id: the ``fs`` connection (default ``fs_default``).
    :param recursive: let ``**`` in ``filepath`` match any depth.
    :param confine: keep a relative ``filepath`` inside the connection's base path (default):
        ``../`` out of it fails the wait, and files reached through symlinks pointing
        outside it are not reported.  ``False`` lifts both rules.
    :param detect: how arrivals are seen: ``auto`` (default: inotify events on local
        filesystems, with the policy's schedule as a safety poll; polling alone on network
        and FUSE filesystems), ``events`` (inotify wherever it can be set up) or ``poll``.

    Every other keyword is :class:`~waitwise.operators.base.PolicySensor`'s (``poll``,
    ``profile``, ``source``, ``store``, ``deferrable``, ``start_from_trigger``) or Airflow's
    ``BaseSensorOperator``'s; a misspelt one raises at DAG-parse time, as in any operator.
    """

    template_fields: Sequence[str] = ("filepath", "scheduled_at")
    ui_color = "#91d1ff"

    def __init__(
        self,
        *,
        filepath: str,
        fs_conn_id: str = "fs_default",
        recursive: bool = False,
        confine: bool = True,
        detect: str = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(filepath, str) or not filepath.strip():
            raise PolicyConfigError(
                f"{self.task_id}: filepath must be a non-empty string, got {filepath!r}"
            )
        self.filepath = filepath
        check_file_options(fs_conn_id, recursive=recursive, confine=confine, detect=detect)
        self.fs_conn_id = fs_conn_id
        self.recursive = recursive
        self.confine = confine
        self.detect = detect
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=_TRIGGER,
            next_method="execute_complete",
            trigger_kwargs=self.trigger_kwargs(started_at=None),
            next_kwargs=None,
            timeout=dt.timedelta(seconds=self.trigger_window()),
        )

    def trigger_kwargs(self, *, started_at: float | None) -> dict[str, Any]:
        """Return the trigger's kwargs (plain JSON; ``filepath`` is rendered in the triggerer)."""
        return {
            "filepath": self.filepath,
            "fs_conn_id": self.fs_conn_id,
            "recursive": self.recursive,
            "confine": self.confine,
            **({"detect": self.detect} if self.detect != "auto" else {}),
            **self.wait_spec(started_at=started_at).to_config(),
        }

    def execute(self, context: Any) -> Any:
        """Defer at once (no synchronous first poke), or run classic poke/reschedule."""
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=FileArrivalTrigger(**self.trigger_kwargs(started_at=self.now())),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=self.trigger_window()),
        )
        return None  # unreachable: defer() raises TaskDeferred

    def poke(self, context: Any) -> bool:
        """Check once on a worker (``deferrable=False`` only): same rule as the trigger."""
        base = ""
        if not os.path.isabs(self.filepath):
            from airflow.providers.standard.hooks.filesystem import FSHook

            base = FSHook(self.fs_conn_id).get_path()
        query = resolve_query(
            self.filepath,
            base,
            recursive=self.recursive,
            confine=self.confine,
            conn_id=self.fs_conn_id,
        )
        self.log.info("Poking for %s", query.pattern)
        return bool(check(query))
