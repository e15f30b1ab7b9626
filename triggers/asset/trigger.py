"""The asset watcher's trigger: :class:`FileAssetTrigger` and its shared stream hooks."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Hashable, Mapping
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from waitwise.triggers import runtime
from waitwise.triggers.asset.cursor import CursorStore
from waitwise.triggers.asset.listing import scan_forever
from waitwise.triggers.asset.spec import (
    SPEC_VERSION,
    UNSET,
    BreakerArg,
    PolicyArg,
    RetryArg,
    _fail,
    _Unset,
    build_spec,
)
from waitwise.triggers.asset.watch import Watch
from waitwise.triggers.base import rebuilding
from waitwise.triggers.profiles import ReliabilityProfile

__all__ = ["FileAssetTrigger"]

log = logging.getLogger(__name__)


class FileAssetTrigger(BaseEventTrigger):
    """Fire once per new complete file in ``directory`` matching ``pattern`` (asset watchers).

    :param directory: the absolute directory watched (files directly in it).
    :param pattern: a glob on basenames (:func:`fnmatch.fnmatchcase`); hidden files match
        only a pattern starting with ``.``.
    :param detect: ``"auto"`` (inotify where the filesystem notifies, else polling),
        ``"events"`` or ``"poll"``.
    :param source: the data source's name: history records and its breaker.
    :param profile: a preset's name (``"high"``, ``"medium"``, ``"low"``) or a
        :class:`~waitwise.triggers.profiles.ReliabilityProfile`: ``poll``, ``retry``,
        ``breaker`` and ``tier`` default to its.
    :param poll: the idle scan policy (a policy or its config); default :data:`DEFAULT_POLL`.
    :param retry: a :class:`~waitwise.triggers.profiles.RetryStrategy` or its config.
    :param breaker: a :class:`~waitwise.triggers.breaker.BreakerConfig`, its config or ``None``.
    :param tier: the tier metric tag.
    :param store: where history and breaker state live.
    :param version: the kwargs' version (written by :meth:`serialize`).

    A bad argument raises :class:`~waitwise.triggers.errors.TriggerArgumentError` (a
    ``ValueError`` naming it for a DAG author, and the ``TypeError`` Airflow's triggerer
    expects from a damaged row).
    """

    # Airflow stores the class path (serialize()) in its trigger rows: keep the path it has
    # had since before the split into modules, where the package re-exports the class.
    __module__ = "waitwise.triggers.asset"

    def __init__(
        self,
        *,
        directory: str,
        pattern: str = "*",
        detect: str = "auto",
        source: str | None = None,
        profile: str | ReliabilityProfile | None = None,
        poll: PolicyArg = UNSET,
        retry: RetryArg = UNSET,
        breaker: BreakerArg = UNSET,
        tier: str | _Unset | None = UNSET,
        store: Mapping[str, str] | _Unset = UNSET,
        version: int = SPEC_VERSION,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        with rebuilding(type(self)):
            if version != SPEC_VERSION or isinstance(version, bool):
                raise _fail("version", version, str(SPEC_VERSION))
            self.spec = build_spec(
                directory=directory,
                pattern=pattern,
                detect=detect,
                source=source,
                profile=profile,
                poll=poll,
                retry=retry,
                breaker=breaker,
                tier=tier,
                store=store,
            )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return ``(classpath, kwargs)``: :meth:`WatchSpec.to_config`, plain JSON."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}", self.spec.to_config()

    def shared_stream_key(self) -> Hashable:
        """Return what makes two watches' scans the same: directory, detection and poll."""
        spec = self.spec
        poll = json.dumps(spec.poll.to_config(), sort_keys=True)
        return ("waitwise.asset", spec.directory, spec.detect, poll)

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """Scan the directory forever for every watch of the group (:func:`scan_forever`)."""
        spec = cls(**kwargs).spec
        log.info("Shared scan of %s started (detect=%s)", spec.directory, spec.detect)
        async for raw in scan_forever(spec):
            yield raw

    async def filter_shared_stream(
        self, shared_stream: AsyncIterator[Any]
    ) -> AsyncIterator[TriggerEvent]:
        """Yield one event per new complete matching file of the shared scans."""
        watch = Watch(
            self.spec,
            CursorStore(self.asset_state_store, self.spec.cursor_key, self.spec),
            runtime.current().clock.now(),
        )
        async for raw in shared_stream:
            for event in await watch.handle(raw):
                yield event

    async def run(self) -> AsyncGenerator[TriggerEvent, None]:
        """Watch alone (no shared stream): the same scan and filter, in this trigger."""
        async for event in self.filter_shared_stream(scan_forever(self.spec)):
            yield event
