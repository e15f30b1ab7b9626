"""Opt-in experiments: measure a proposed waitwise change without editing triggers/.

Never active in the default table.  Each installs, in the benchmark child only, the code a
proposal would put in ``triggers/``, so its effect is measured in the same runner.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

RESOLVE_CHUNK = 256


def install_batch_window(window_s: float) -> None:
    """Proposed ``FileBatcher._drain``: coalesce for ``window_s``, wake waiters in chunks.

    1. Hold a new batch open ``window_s`` before the thread hop, so pokes spread over the
       interval share one hop (today a batch forms only while another is in flight, and
       evenly spread pokes mostly find none: about one hop per poke).
    2. Resolve at most RESOLVE_CHUNK futures per loop iteration: waking every waiter of a
       10,000-file batch in one iteration runs all their event paths back to back.
    """
    from waitwise.triggers import _fsbatch

    async def _drain(self: Any) -> None:
        try:
            while self._pending:
                await asyncio.sleep(window_s)
                batch, self._pending = self._pending, []
                self.batches += 1
                try:
                    results = await asyncio.to_thread(_fsbatch.check_all, [q for q, _ in batch])
                except BaseException as exc:  # handed to every waiter, re-raised here
                    _fsbatch._fail(batch, exc)
                    raise
                await _resolve_in_chunks(batch, results)
        finally:
            self._running = False

    _fsbatch.FileBatcher._drain = _drain  # type: ignore[method-assign]


async def _resolve_in_chunks(batch: list[Any], results: dict[Any, Any]) -> None:
    from waitwise.triggers import _fsbatch

    for start in range(0, len(batch), RESOLVE_CHUNK):
        try:
            _fsbatch._resolve(batch[start : start + RESOLVE_CHUNK], results)
            await asyncio.sleep(0)
        except BaseException as exc:  # cancelled between chunks: release the rest
            _fsbatch._fail(batch[start:], exc)
            raise


def install_quiet_success() -> None:
    """Drop waitwise's own INFO line per finished wait (the runner logs the event anyway)."""
    logging.getLogger("waitwise.triggers.base").setLevel(logging.WARNING)


def install(cfg: dict[str, Any]) -> list[str]:
    """Install the experiments ``cfg`` names; return their labels."""
    labels = []
    if cfg.get("batch_window"):
        install_batch_window(cfg["batch_window"])
        labels.append(f"batch_window={cfg['batch_window']}")
    if cfg.get("quiet_success"):
        install_quiet_success()
        labels.append("quiet_success")
    return labels
