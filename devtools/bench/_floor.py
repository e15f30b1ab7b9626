"""The runner's floor: a trigger that polls nothing and yields the moment the files land.

Its detection latency and CPU per event are what Airflow's TriggerRunner alone costs to hand
10,000 events to the supervisor, so a file trigger's detection figures can be split into the
runner's share and the trigger's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

_LANDED: dict[int, asyncio.Event] = {}


def landed() -> asyncio.Event:
    """Return the running loop's landing signal (set by the bench right after the rename)."""
    key = id(asyncio.get_running_loop())
    if key not in _LANDED:
        _LANDED[key] = asyncio.Event()
    return _LANDED[key]


class LandingTrigger(BaseTrigger):
    """Wait for the landing signal, then yield one event carrying the path, and return."""

    def __init__(self, *, path: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.path = path

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{__name__}.LandingTrigger", {"path": self.path}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await landed().wait()
        yield TriggerEvent({"status": "success", "path": self.path})  # type: ignore[no-untyped-call]
