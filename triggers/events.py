"""The payload every waitwise trigger event carries: plain JSON, one ``status`` discriminator."""

from __future__ import annotations

import enum
from typing import TypedDict


class WaitStatus(enum.StrEnum):
    """How a wait ended."""

    SUCCESS = "success"
    TIMEOUT = "timeout"


class FoundItem(TypedDict):
    """One thing the probe found (a file: its path, size in bytes and mtime)."""

    path: str
    size: int
    mtime: float


class WaitPayload(TypedDict):
    """What a wait did, sent in the trigger event and recorded by the sensor.

    Times are epoch seconds (UTC).  ``first_seen_at`` is when a poke first saw the data;
    ``elapsed_s`` runs from ``started_at`` (the wait's anchor, which a restart does not move)
    to ``ended_at``.  ``pokes`` and ``errors`` count this trigger run only: a triggerer restart
    starts them again, while the schedule position and deadline continue.
    """

    status: str
    message: str
    found: list[FoundItem]
    first_seen_at: float | None
    pokes: int
    errors: int
    last_error: str | None
    started_at: float
    deadline: float
    ended_at: float
    elapsed_s: float
