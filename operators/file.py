"""File sensors that cost no worker time.

``FileArrivalSensor`` is a drop-in for Airflow's ``FileSensor``; ``FileBatchSensor`` waits for
a set of related files in one task.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Sequence
from typing import Any, ClassVar

from waitwise.operators.base import PolicySensor
from waitwise.triggers import FileArrivalTrigger, FileBatchTrigger, PolicyConfigError
from waitwise.triggers.batch import BatchQuery, check_complete, check_filepaths
from waitwise.triggers.file import (
    FileQuery,
    check,
    check_all,
    check_file_options,
    check_inactivity,
    inactivity_kwargs,
    resolve_query,
)
from waitwise.triggers.filescan import ready
from waitwise.triggers.objectstore import (
    ObjectQuery,
    ObjectUrl,
    check_location,
    check_locations,
    probe_once,
)


class _FileSensor(PolicySensor):
    """What the file sensors share: the ``fs`` options, deferral, the worker-side check."""

    trigger_cls: ClassVar[type[FileArrivalTrigger] | type[FileBatchTrigger]]

    def __init__(
        self,
        *,
        fs_conn_id: str,
        recursive: bool,
        confine: bool,
        detect: str,
        conn_id: str | None,
        inactivity_period: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_file_options(
            fs_conn_id, recursive=recursive, confine=confine, detect=detect, conn_id=conn_id
        )
        self.inactivity_period = check_inactivity(inactivity_period, ())
        self.fs_conn_id = fs_conn_id
        self.recursive = recursive
        self.confine = confine
        self.detect = detect
        self.conn_id = conn_id

    def file_kwargs(self) -> dict[str, Any]:
        """Return the options every file trigger takes (defaults left out of the row)."""
        return {
            "fs_conn_id": self.fs_conn_id,
            "recursive": self.recursive,
            "confine": self.confine,
            **({"detect": self.detect} if self.detect != "auto" else {}),
            **({"conn_id": self.conn_id} if self.conn_id is not None else {}),
            **inactivity_kwargs(self.inactivity_period),
        }

    def _objects(self, filepaths: Sequence[str]) -> list[ObjectQuery] | None:
        """Return the object queries of ``filepaths`` if they are URLs, else ``None``."""
        where = check_locations("filepaths", filepaths, self.conn_id)
        urls = [url for url in where if isinstance(url, ObjectUrl)]
        if not urls:
            return None
        return [ObjectQuery(u.scheme, self.conn_id, u.bucket, u.key) for u in urls]

    def _queries(self, filepaths: Sequence[str]) -> list[FileQuery]:
        """Resolve ``filepaths`` on a worker (``deferrable=False``): the trigger's rules."""
        where = check_locations("filepaths", filepaths, self.conn_id)
        filepaths = [path for path in where if isinstance(path, str)]
        base = ""
        if not all(os.path.isabs(path) for path in filepaths):
            from airflow.providers.standard.hooks.filesystem import FSHook

            base = FSHook(self.fs_conn_id).get_path()
        return [
            dataclasses.replace(
                resolve_query(
                    path,
                    base,
                    recursive=self.recursive,
                    confine=self.confine,
                    conn_id=self.fs_conn_id,
                ),
                inactivity_s=self.inactivity_period,
            )
            for path in filepaths
        ]


class FileArrivalSensor(_FileSensor):
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
    :param conn_id: for an object URL (``s3://bucket/in/{{ ds_nodash }}/*.csv``, any scheme
        Airflow's ``ObjectStoragePath`` knows from an installed provider): its connection
        (default: the scheme's, ``aws_default``).  The event's ``found`` gives each object's
        URL, ``size``, ``mtime`` (last modified) and ``etag``.
    :param inactivity_period: report a file only once it has not been modified for this many
        seconds (Airflow's name for it in ``GCSUploadSessionCompleteSensor``).  Where no
        inotify watch sees the writer close the file (``detect="poll"``, network and FUSE
        filesystems), polling cannot tell a file still being written: set it above the
        longest pause of your writers.  ``0`` (default): at once.  Local paths only.

    Every other keyword is :class:`~waitwise.operators.base.PolicySensor`'s (``poll``,
    ``profile``, ``source``, ``store``, ``deferrable``, ``start_from_trigger``) or Airflow's
    ``BaseSensorOperator``'s; a misspelt one raises at DAG-parse time, as in any operator.
    """

    template_fields: Sequence[str] = ("filepath", "scheduled_at")
    ui_color = "#91d1ff"
    trigger_cls = FileArrivalTrigger

    def __init__(
        self,
        *,
        filepath: str,
        fs_conn_id: str = "fs_default",
        recursive: bool = False,
        confine: bool = True,
        detect: str = "auto",
        conn_id: str | None = None,
        inactivity_period: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            fs_conn_id=fs_conn_id,
            recursive=recursive,
            confine=confine,
            detect=detect,
            conn_id=conn_id,
            inactivity_period=inactivity_period,
            **kwargs,
        )
        if not isinstance(filepath, str) or not filepath.strip():
            raise PolicyConfigError(
                f"{self.task_id}: filepath must be a non-empty string, got {filepath!r}"
            )
        where = check_location(f"{self.task_id}: filepath", filepath, conn_id)
        check_inactivity(inactivity_period, [where])
        self.filepath = filepath
        self.start_in_triggerer()

    def trigger_kwargs(self, *, started_at: float | None) -> dict[str, Any]:
        """Return the trigger's kwargs (plain JSON; ``filepath`` is rendered in the triggerer)."""
        return {
            "filepath": self.filepath,
            **self.file_kwargs(),
            **self.wait_spec(started_at=started_at).to_config(),
        }

    def poke(self, context: Any) -> bool:
        """Check once on a worker (``deferrable=False`` only): same rule as the trigger."""
        objects = self._objects([self.filepath])
        if objects is not None:
            self.log.info("Poking for %s", objects[0].pattern)
            (found,) = asyncio.run(probe_once(objects))
            if isinstance(found, BaseException):
                raise found
            return bool(found)
        (query,) = self._queries([self.filepath])
        self.log.info("Poking for %s", query.pattern)
        (found,) = ready([query], [check(query)], self.now())
        return bool(found)


class FileBatchSensor(_FileSensor):
    """Wait for a set of related files in one task, one trigger and one check a tick.

    ``filepaths`` lists paths and/or glob patterns (templated; relative ones joined to the
    ``path`` extra of ``fs_conn_id``); ``complete`` says when the batch is there: ``"all"``
    (every entry matched a file), ``"any"``, or an integer ``k`` (at least ``k`` distinct
    files).  One deadline (``timeout``), one profile, one history record for the set.  The
    XCom ``return_value`` is the payload; its ``found`` lists each file once with ``size``,
    ``mtime``, ``first_seen_at`` (when a poke first saw it) and the ``member`` that matched
    it.  A wait that ends without the batch complete lists what had arrived and names, in
    its message, the entries with no file.

    Takes :class:`FileArrivalSensor`'s other parameters (``fs_conn_id``, ``recursive``,
    ``confine``, ``detect``, ``inactivity_period``, ``conn_id`` for object URLs: all entries
    URLs, or none) and
    :class:`~waitwise.operators.base.PolicySensor`'s.
    """

    template_fields: Sequence[str] = ("filepaths", "scheduled_at")
    ui_color = "#7fc6f5"
    trigger_cls = FileBatchTrigger

    def __init__(
        self,
        *,
        filepaths: list[str],
        complete: str | int = "all",
        fs_conn_id: str = "fs_default",
        recursive: bool = False,
        confine: bool = True,
        detect: str = "auto",
        conn_id: str | None = None,
        inactivity_period: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            fs_conn_id=fs_conn_id,
            recursive=recursive,
            confine=confine,
            detect=detect,
            conn_id=conn_id,
            inactivity_period=inactivity_period,
            **kwargs,
        )
        self.filepaths = check_filepaths(filepaths)
        where = check_locations(f"{self.task_id}: filepaths", self.filepaths, conn_id)
        check_inactivity(inactivity_period, where)
        check_complete(complete)
        self.complete = complete
        self.start_in_triggerer()

    def trigger_kwargs(self, *, started_at: float | None) -> dict[str, Any]:
        """Return the trigger's kwargs (plain JSON; ``filepaths`` render in the triggerer)."""
        return {
            "filepaths": list(self.filepaths),
            "complete": self.complete,
            **self.file_kwargs(),
            **self.wait_spec(started_at=started_at).to_config(),
        }

    def poke(self, context: Any) -> bool:
        """Check the set once on a worker (``deferrable=False`` only): the trigger's rule."""
        need = check_complete(self.complete)
        self.log.info("Poking for %d entries (%s)", len(self.filepaths), self.complete)
        objects = self._objects(self.filepaths)
        if objects is not None:
            (result,) = asyncio.run(
                probe_once([BatchQuery(tuple(objects), need, "poll", self.now)])
            )
        else:
            members = tuple(self._queries(self.filepaths))
            found = ready(members, check_all(members), self.now())
            result = BatchQuery(members, need, "poll", self.now).combine(found)
        if isinstance(result, BaseException):
            raise result
        return bool(result)
