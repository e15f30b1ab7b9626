"""Wait for a set of related files in one trigger: one deadline, one profile, one check a tick.

A batch is a list of paths and/or glob patterns (its *members*) and a completion rule:

- ``"all"``: every member matched at least one file;
- ``"any"``: at least one file matched;
- an integer ``k``: at least ``k`` distinct files matched, over all members.

Every tick the batch's members are checked with every other file query due (one worker
thread, one listing per directory: :mod:`waitwise.triggers.filescan`).  Each file's first
sighting is kept (``first_seen_at``, beside its ``mtime``), so the event reports when each
file arrived; a wait that ends without its batch complete reports what had arrived and
which members had not.  First sightings live in the trigger run: after a triggerer restart
they start again at the restart (``mtime`` is unaffected).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from waitwise.triggers import runtime
from waitwise.triggers.base import PolicyTrigger, rebuilding
from waitwise.triggers.engine.probe import Prober
from waitwise.triggers.engine.progress import ProbeResult
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.events import FoundItem
from waitwise.triggers.file import (
    FileArrivalTrigger,
    FileQuery,
    check_file_options,
    check_filepath,
    check_inactivity,
    fs_base_path,
    inactivity_kwargs,
    resolve_queries,
)
from waitwise.triggers.objectstore import (
    OBJECT_PROBER,
    ObjectQuery,
    ObjectUrl,
    check_locations,
    object_query,
)
from waitwise.triggers.spec import WaitSpec

__all__ = ["MAX_MEMBERS", "BatchQuery", "FileBatchTrigger", "check_complete", "check_filepaths"]

MAX_MEMBERS: Final = 10_000
"""At most this many paths or patterns in one batch."""

MAX_FILES: Final = 10_000
"""At most this many files are reported for one glob member."""


@dataclass(slots=True)
class BatchQuery:
    """A batch's members, its rule (``need``: ``None`` for all), and what it has seen.

    Implements :class:`waitwise.triggers.file.QueryGroup`.  ``now`` is the runtime's clock.
    """

    members: tuple[FileQuery | ObjectQuery, ...]
    need: int | None
    detect: str
    now: Callable[[], float]
    seen: dict[str, float] = field(default_factory=dict)  # path -> first sighting
    latest: list[list[FoundItem]] = field(default_factory=list)  # per member, last poke

    def combine(self, results: Sequence[ProbeResult]) -> ProbeResult:
        """Return every file found once the rule holds, else ``[]``, or the error that blocks it.

        An error of one member (its directory unreadable, say) is the batch's error unless
        the other members already complete it.
        """
        now = self.now()
        found = [r if not isinstance(r, BaseException) else [] for r in results]
        self.latest = found
        for items in found:
            for item in items:
                self.seen.setdefault(item["path"], now)
        if self._complete(found):
            return self._report(found)
        error = next((r for r in results if isinstance(r, BaseException)), None)
        return error if error is not None else []

    def partial(self) -> tuple[list[FoundItem], str]:
        """Return what had arrived at the last poke, and a note naming what had not."""
        found = self.latest or [[] for _ in self.members]
        missing = [m.pattern for m, items in zip(self.members, found, strict=True) if not items]
        items = self._report(found)
        note = f"{len(items)} file(s) arrived"
        if missing:
            shown = ", ".join(missing[:5]) + (
                f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            )
            note += f"; no file for {len(missing)} of {len(self.members)}: {shown}"
        return items, note

    def _complete(self, found: list[list[FoundItem]]) -> bool:
        if self.need is None:
            return all(found)
        return len({item["path"] for items in found for item in items}) >= self.need

    def _report(self, found: list[list[FoundItem]]) -> list[FoundItem]:
        report: dict[str, FoundItem] = {}
        for member, items in zip(self.members, found, strict=True):
            for item in items:
                if item["path"] not in report:
                    report[item["path"]] = FoundItem(
                        path=item["path"],
                        size=item["size"],
                        mtime=item["mtime"],
                        first_seen_at=self.seen[item["path"]],
                        member=member.pattern,
                    )
                    if "etag" in item:
                        report[item["path"]]["etag"] = item["etag"]
        return list(report.values())


class FileBatchTrigger(PolicyTrigger):
    """Wait for a set of files (paths and/or glob patterns) with a completion rule.

    :param filepaths: the members: paths or glob patterns, relative ones joined to the
        ``path`` extra of ``fs_conn_id`` (as :class:`~waitwise.triggers.FileArrivalTrigger`);
        or object URLs (``s3://bucket/in/*.csv``), all of them: local paths and URLs cannot mix.
    :param conn_id: the connection of object URLs (default: the scheme's, ``aws_default``).
    :param complete: ``"all"`` (default), ``"any"`` or an integer ``k >= 1`` (at least ``k``
        distinct files): the module docstring.
    :param fs_conn_id: the ``fs`` connection used for relative paths.
    :param recursive: let ``**`` match any depth.
    :param confine: keep relative paths (and files reached through symlinks) inside the
        connection's base path.
    :param detect: ``auto``, ``events`` or ``poll``
        (:data:`waitwise.triggers.file.DETECT_MODES`).
    :param inactivity_period: report a file only once unmodified this many seconds (see
        :class:`~waitwise.triggers.FileArrivalTrigger`); local paths only.
    :param wait: the :class:`~waitwise.triggers.spec.WaitSpec` fields.

    The event's ``found`` lists each file once (``path``, ``size``, ``mtime``,
    ``first_seen_at``, and the ``member`` that matched it).
    """

    # The file kind's own prober object: the hub checks batches and single files due in a
    # tick in one thread hop, and one listing of a directory serves both.
    prober: ClassVar[Prober] = FileArrivalTrigger.prober

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
        **wait: Any,
    ) -> None:
        with rebuilding(type(self)):
            super().__init__(WaitSpec.from_config(wait))
            self.filepaths = check_filepaths(filepaths)
            self.need = check_complete(complete)
            check_file_options(
                fs_conn_id, recursive=recursive, confine=confine, detect=detect, conn_id=conn_id
            )
            where = check_locations("filepaths", self.filepaths, conn_id)
            self.inactivity_period = check_inactivity(inactivity_period, where)
        if where and isinstance(where[0], ObjectUrl):  # this wait's kind is the object store's
            self.prober = OBJECT_PROBER  # type: ignore[misc]  # the engine reads self.prober
        self.conn_id = conn_id
        self.complete = complete
        self.fs_conn_id = fs_conn_id
        self.recursive = recursive
        self.confine = confine
        self.detect = detect

    def kind_kwargs(self) -> dict[str, Any]:
        """Return the batch kind's kwargs (plain JSON)."""
        return {
            "filepaths": list(self.filepaths),
            "complete": self.complete,
            "fs_conn_id": self.fs_conn_id,
            "recursive": self.recursive,
            "confine": self.confine,
            "detect": self.detect,
            **({"conn_id": self.conn_id} if self.conn_id is not None else {}),
            **inactivity_kwargs(self.inactivity_period),
        }

    def describe(self) -> str:
        """Return the batch in a few words: its size, rule and first member."""
        first = self.filepaths[0] + (", ..." if len(self.filepaths) > 1 else "")
        return f"batch of {len(self.filepaths)} ({self.complete}: {first})"

    async def prepare(self) -> BatchQuery:
        """Resolve relative members through the ``fs`` connection (async API)."""
        limit = max(MAX_FILES, self.need or 0)
        where = check_locations("filepaths", self.filepaths, self.conn_id)
        if where and isinstance(where[0], ObjectUrl):
            urls = [url for url in where if isinstance(url, ObjectUrl)]
            found = tuple([await object_query(url, self.conn_id, limit) for url in urls])
            return BatchQuery(found, self.need, self.detect, runtime.current().clock.now)
        members = await resolve_queries(
            [path for path in where if isinstance(path, str)],
            self._base_path,
            recursive=self.recursive,
            confine=self.confine,
            detect=self.detect,
            conn_id=self.fs_conn_id,
            limit=limit,
            inactivity_s=self.inactivity_period,
        )
        return BatchQuery(tuple(members), self.need, self.detect, runtime.current().clock.now)

    async def _base_path(self) -> str:
        return await fs_base_path(self.fs_conn_id)


def check_filepaths(filepaths: object) -> list[str]:
    """Return ``filepaths`` if it is a non-empty list of paths, at most :data:`MAX_MEMBERS`."""
    if isinstance(filepaths, str) or not isinstance(filepaths, (list, tuple)) or not filepaths:
        raise PolicyConfigError(
            f"filepaths must be a non-empty list of paths or glob patterns, got {filepaths!r}"
        )
    if len(filepaths) > MAX_MEMBERS:
        raise PolicyConfigError(
            f"filepaths holds {len(filepaths)} entries; at most {MAX_MEMBERS} (use a glob)"
        )
    for i, path in enumerate(filepaths):
        try:
            check_filepath(path)
        except PolicyConfigError:
            raise PolicyConfigError(
                f"filepaths[{i}] must be a non-empty string, got {path!r}"
            ) from None
    return list(filepaths)


def check_complete(complete: object) -> int | None:
    """Return the number of files ``complete`` needs (``None``: every member), or raise."""
    if complete == "all":
        return None
    if complete == "any":
        return 1
    if isinstance(complete, int) and not isinstance(complete, bool) and complete >= 1:
        return complete
    raise PolicyConfigError(
        f"complete must be 'all', 'any' or an integer >= 1 (files), got {complete!r}"
    )
