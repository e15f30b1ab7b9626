"""The payload every waitwise trigger event carries: plain JSON, one ``status`` discriminator."""

from __future__ import annotations

import enum
from typing import NotRequired, TypedDict


class WaitStatus(enum.StrEnum):
    """How a wait ended."""

    SUCCESS = "success"  # the data arrived
    TIMEOUT = "timeout"  # the last window closed without it
    ERROR = "error"  # the check kept failing (max_probe_errors in a row)
    BREAKER_OPEN = "breaker_open"  # the source's breaker rejected the wait: no poke made


class FoundItem(TypedDict):
    """One thing the probe found (a file: its path, size in bytes and mtime).

    An object in a store (``path`` is its URL, ``mtime`` its last-modified time) adds its
    ``etag`` where the store gives one.  A batch adds, per file, when a poke first saw it and
    the member (path or pattern) that matched it.
    """

    path: str
    size: int
    mtime: float
    etag: NotRequired[str]
    first_seen_at: NotRequired[float]
    member: NotRequired[str]


class WaitPayload(TypedDict):
    """What a wait did, sent in the trigger event and recorded by the sensor.

    Times are epoch seconds (UTC).  ``first_seen_at`` is when a poke first saw the data;
    ``elapsed_s`` runs from ``started_at`` (the wait's anchor, which a restart does not move)
    to ``ended_at``; ``deadline`` is when the last window closes; ``reopens`` counts windows
    re-opened after a deadline.  ``pokes`` and ``errors`` count this trigger run only: a
    triggerer restart starts them again, while the schedule position and deadline continue.
    With a learned poll policy, ``model_version`` names the arrival model the pokes were
    planned with and ``eta`` is its prediction when the wait started (``at``, ``low_at``,
    ``high_at``: the median and the 80% interval, epoch seconds; ``arrives``: the chance
    the data arrives at all); both are ``None`` otherwise.
    """

    status: str
    message: str
    found: list[FoundItem]
    first_seen_at: float | None
    pokes: int
    reopens: int
    errors: int
    last_error: str | None
    started_at: float
    deadline: float
    ended_at: float
    elapsed_s: float
    model_version: str | None
    eta: dict[str, float] | None
