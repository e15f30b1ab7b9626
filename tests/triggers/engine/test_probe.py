"""A prober's failure is isolated to the query at fault."""

from __future__ import annotations

from collections.abc import Sequence

from waitwise.triggers.engine.probe import probe_isolated
from waitwise.triggers.engine.progress import ProbeResult
from waitwise.triggers.events import FoundItem

FOUND = [FoundItem(path="/x", size=1, mtime=0.0)]


class Fragile:
    """A prober written without care: one bad query makes the whole batch call raise."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def probe_batch(self, queries: Sequence[str]) -> list[ProbeResult]:
        self.calls.append(list(queries))
        if "poison" in queries:
            raise ValueError("embedded null byte")
        return [FOUND if q == "here" else [] for q in queries]


class Miscounting:
    async def probe_batch(self, queries: Sequence[str]) -> list[ProbeResult]:
        return [[]]  # one result, whatever it was asked


async def test_a_batch_that_raises_is_checked_query_by_query() -> None:
    prober = Fragile()
    results = await probe_isolated(prober, ["here", "poison", "absent"])
    assert results[0] == FOUND
    assert isinstance(results[1], ValueError)
    assert results[2] == []
    assert prober.calls == [["here", "poison", "absent"], ["here"], ["poison"], ["absent"]]


async def test_a_healthy_batch_is_one_call() -> None:
    prober = Fragile()
    assert await probe_isolated(prober, ["here", "absent"]) == [FOUND, []]
    assert prober.calls == [["here", "absent"]]


async def test_a_prober_returning_the_wrong_count_fails_each_query_alone() -> None:
    results = await probe_isolated(Miscounting(), ["a", "b"])
    assert results[0] == []  # asked alone, its one answer is its own
    assert results[1] == []
    results = await probe_isolated(Miscounting(), ["a"])
    assert results == [[]]
