"""Start the Task SDK's way to Airflow in a fresh triggerer before a wait needs it.

The first Task SDK call a triggerer's triggers make (a Variable, an XCom, a connection) makes
its supervisor start Airflow's in-process execution API: measured in a real Airflow (the e2e
suite), about 16 s during which the triggerer's heartbeat stalls.  If that first call is a
detected wait's history record or XCom, the detection waits for it.  So the first wait to
start in a triggerer process reads one Variable in a worker thread, in the background, while
its files have not landed yet.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

log = logging.getLogger(__name__)

PROBE_KEY: Final = "waitwise/warm-up"
_STARTED: list[asyncio.Future[None]] = []  # held so the task is not garbage collected


def warm_up() -> None:
    """Start the warm-up once per process (a no-op after the first call)."""
    if not _STARTED:
        _STARTED.append(asyncio.ensure_future(asyncio.to_thread(_touch)))


def forget() -> None:
    """Let the next :func:`warm_up` run again (tests reset process state with it)."""
    _STARTED.clear()


def _touch() -> None:
    try:
        from airflow.sdk import Variable

        Variable.get(PROBE_KEY, default=None)
    except Exception:  # only a head start: the wait's own calls report real failures
        log.debug("Task SDK warm-up failed", exc_info=True)
