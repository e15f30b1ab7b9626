"""Key names of one source in an :class:`~waitwise.triggers.store.kv.AirflowStore`.

::

    ns/<source>/breaker                               breaker snapshot and lineage
    ns/<source>/wait/<digest24>.<token32>             one record, written once (loose)
    ns/<source>/wait/<ended_ms:013d>-<digest24>       one record written by 0.1.0 (legacy)
    ns/<source>/seg/<YYYYMMDD>.<count>.<token32>      a segment: ``count`` records of a day
    ns/<source>/corrupt/<sha256>                      a damaged value, kept aside
    ns/<source>/tune/<at_ms:013d>.<token32>           one change-log entry (auto-tuning)

``digest24`` hashes the wait's key (task instance and try); ``token32`` is random, so
every key is written once by one writer and never overwritten: what a compactor has
read is what it deletes. A segment's key carries its day and record count, so
retention and merge decisions need only a listing of keys.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Final

from .records import WaitKey, WaitRecord

LOOSE: Final = re.compile(r"wait/[0-9a-f]{24}\.[0-9a-f]{32}")
LEGACY: Final = re.compile(r"wait/\d{13,}-[0-9a-f]{24}")
SEGMENT: Final = re.compile(r"seg/(\d{8})\.(\d{1,9})\.[0-9a-f]{32}")
logger = logging.getLogger(__name__)


def digest(key: WaitKey | str) -> str:
    """Return the SHA-256 hex digest of ``key``'s canonical JSON."""
    return hashlib.sha256(json.dumps(key, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Segment:
    """A listed segment key: its day and how many records it was written with."""

    key: str
    day: str
    count: int


@dataclass(frozen=True, slots=True)
class Listing:
    """The history keys of one source: loose and legacy records, and segments."""

    loose: list[str] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SourceKeys:
    """Key names under ``<namespace>/<source>/``.

    :param prefix: ``<namespace>/<source>/``, both already validated.
    """

    prefix: str

    @property
    def breaker(self) -> str:
        """Return the breaker's key."""
        return f"{self.prefix}breaker"

    def loose(self, record: WaitRecord) -> str:
        """Return a fresh key for one write of ``record``."""
        return f"{self.prefix}wait/{digest(record.key)[:24]}.{uuid.uuid4().hex}"

    def segment(self, day: str, count: int) -> str:
        """Return a fresh key for a segment of ``count`` records of ``day``."""
        return f"{self.prefix}seg/{day}.{count}.{uuid.uuid4().hex}"

    def change(self, at: float) -> str:
        """Return a fresh key for a change-log entry made at ``at`` (epoch seconds)."""
        return f"{self.prefix}tune/{round(at * 1000):013d}.{uuid.uuid4().hex}"

    def corrupt(self, raw: str) -> str:
        """Return where a damaged value is kept aside (one key per content)."""
        return f"{self.prefix}corrupt/{digest(raw)}"

    def classify(self, keys: list[str]) -> Listing:
        """Sort ``keys`` into a :class:`Listing`, warning about foreign history keys."""
        listing = Listing()
        for key in sorted(keys):
            rest = key[len(self.prefix) :] if key.startswith(self.prefix) else ""
            segment = SEGMENT.fullmatch(rest)
            if segment:
                listing.segments.append(Segment(key, segment.group(1), int(segment.group(2))))
            elif LOOSE.fullmatch(rest) or LEGACY.fullmatch(rest):
                listing.loose.append(key)
            elif rest.startswith(("wait/", "seg/")):
                logger.warning("Skipping foreign key %s under %s", key, self.prefix)
        return listing
