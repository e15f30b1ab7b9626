"""The breaker override operator: the store changes and a breaker.forced metric is counted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from waitwise.operators import BreakerOverrideOperator
from waitwise.triggers import BreakerState
from waitwise.triggers.runtime import Runtime, use_runtime
from waitwise.triggers.store import FileStore
from waitwise.triggers.testing import FakeClock, RecordingSink


def test_forcing_a_breaker_open_is_stored_and_counted(tmp_path: Path) -> None:
    sink = RecordingSink()
    rt = Runtime(clock=FakeClock(now_s=1_700_000_000.0), metrics=sink)
    operator = BreakerOverrideOperator(
        task_id="override",
        source="feed",
        action="force_open",
        note="vendor outage",
        store={"kind": "file", "root": str(tmp_path)},
    )
    with use_runtime(rt):
        found = operator.execute({})
    assert found["state"] == BreakerState.FORCED_OPEN.value
    stored = asyncio.run(FileStore(tmp_path).get_breaker("feed"))
    assert stored is not None
    assert stored.state is BreakerState.FORCED_OPEN
    assert sink.records == [
        ("incr", "waitwise.breaker.forced", 1.0, {"source": "feed", "action": "force_open"})
    ]
