"""The bulk form of history both stores share: JSON lines, grouped by UTC day.

A segment is text: a header line, then one record per line in its canonical JSON
(:func:`~waitwise.triggers.store.base.canonical`)::

    #waitwise-segment 1
    {"dag_id":"ingest",...,"schema":2,...}
    {"dag_id":"ingest",...,"schema":1,...}

Compaction writes the lines zlib-compressed and base64-encoded after a
``#waitwise-segment 1 zlib`` header (readers take both forms): JSON lines compress about
tenfold, and every byte of a Variable costs on each read path (Airflow's secrets masker
scans every value it loads from the table, the REST API and the Task SDK carry it as
JSON text).

Why lines and not one JSON document: a damaged line costs only that record (the
reader skips it with a warning), a reader decodes record by record, and Airflow's
REST API, which parses every Variable value that is a JSON object to redact it key
by key, sees one plain string (cheap) instead of thousands of objects. The
FileStore's day files are the same lines without the header.

Records are grouped by the UTC day of their ``ended_at`` (:func:`day_of`); age
retention drops whole days (:func:`day_expired`), counting the age back from the
source's newest day, and never from later than now (:func:`age_reference`): a source
that went quiet keeps its last ``max_age_s`` of history to learn from, and a record
stamped in the future cannot expire the others.
"""

from __future__ import annotations

import base64
import calendar
import json
import logging
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import Final

from waitwise.triggers.errors import WaitRecordError

from .base import canonical
from .records import WaitRecord

HEADER: Final = "#waitwise-segment 1"
ZLIB_HEADER: Final = "#waitwise-segment 1 zlib"
DAY_FORMAT: Final = "%Y%m%d"
logger = logging.getLogger(__name__)


def day_of(epoch_s: float) -> str:
    """Return the UTC day of ``epoch_s`` as ``YYYYMMDD``."""
    return time.strftime(DAY_FORMAT, time.gmtime(epoch_s))


def day_end(day: str) -> float:
    """Return the epoch second at which ``day`` (``YYYYMMDD``, UTC) ends."""
    return calendar.timegm(time.strptime(day, DAY_FORMAT)) + 86_400.0


def age_reference(now: float, days: Iterable[str]) -> float:
    """Return the end of the newest of ``days``, but not later than ``now``."""
    return min([now, max((day_end(day) for day in days), default=now)])


def day_expired(day: str, reference: float, max_age_s: float) -> bool:
    """Return whether every record of ``day`` ended over ``max_age_s`` before ``reference``."""
    return day_end(day) <= reference - max_age_s


def encode_segment(records: Iterable[WaitRecord], *, compress: bool = True) -> str:
    """Return the segment text holding ``records`` (in the order given)."""
    lines = "\n".join(canonical(record) for record in records)
    if not compress:
        return f"{HEADER}\n{lines}"
    packed = base64.b64encode(zlib.compress(lines.encode(), 6)).decode("ascii")
    return f"{ZLIB_HEADER}\n{packed}"


def segment_lines(where: str, raw: str | None) -> list[str] | None:
    """Return the record lines of a segment, or ``None`` if it is not one (warned)."""
    if raw is None:
        return None
    header, _, body = raw.partition("\n")
    if header == ZLIB_HEADER:
        try:
            body = zlib.decompress(base64.b64decode(body, validate=True)).decode()
        except (ValueError, zlib.error) as exc:
            logger.warning("Skipping damaged history segment %s: %s", where, exc)
            return None
    elif header != HEADER:
        logger.warning("Skipping damaged history segment %s: header %r", where, header[:40])
        return None
    return body.splitlines()


def iter_segment(source: str, where: str, raw: str | None) -> Iterator[WaitRecord]:
    """Yield the records of a segment one at a time, as :func:`decode_segment` returns them.

    Line by line: a caller that folds each record away keeps one record alive at a time,
    where :func:`decode_segment` parses the whole segment first (faster, but its thousand
    records survive long enough for the garbage collector to promote them).
    """
    lines = segment_lines(where, raw)
    yield from decode_lines(source, where, lines or (), first_line=2)


def decode_segment(source: str, where: str, raw: str | None) -> list[WaitRecord] | None:
    """Return the records of a segment, or ``None`` if it is not one (warned).

    Damaged lines are skipped with a warning naming ``where`` and the line number.
    """
    lines = segment_lines(where, raw)
    if lines is None:
        return None
    try:  # one parse for the whole segment; any damage falls back to line by line
        items = json.loads(f"[{','.join(lines)}]")
    except (ValueError, RecursionError):
        items = None
    if not isinstance(items, list) or len(items) != len(lines):
        return list(decode_lines(source, where, lines, first_line=2))
    found = (_from_item(source, f"{where}:{n}", item) for n, item in enumerate(items, start=2))
    return [record for record in found if record is not None]


def decode_lines(
    source: str, where: str, lines: Iterable[str | bytes], *, first_line: int = 1
) -> Iterator[WaitRecord]:
    """Yield one record per non-blank line, skipping damaged ones with a warning."""
    for number, line in enumerate(lines, start=first_line):
        if line.strip():
            record = decode_record(source, f"{where}:{number}", line)
            if record is not None:
                yield record


def decode_record(source: str, where: str, raw: str | bytes | None) -> WaitRecord | None:
    """Return the record JSON ``raw`` holds, or ``None`` if absent or damaged (warned)."""
    if raw is None:
        return None
    try:
        item = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        logger.warning("Skipping damaged wait record %s: %s", where, exc)
        return None
    return _from_item(source, where, item)


def _from_item(source: str, where: str, item: object) -> WaitRecord | None:
    try:
        record = WaitRecord.from_json_dict(item)
        if record.source != source:
            raise WaitRecordError(f"record of source {record.source!r}")
    except (ValueError, TypeError) as exc:  # WaitRecordError is a ValueError
        logger.warning("Skipping damaged wait record %s: %s", where, exc)
        return None
    return record
