"""The demo's scenario in short (12 days, the last 5 live), asserting what `make demo` claims.

Runs `devtools.demo` against the shipped `dags/` in its own real Airflow: every tier's
outcomes, zero worker runs for every sensor, the partner's breaker opening on the outage and
closing after, the alert and its recovery delivered to a real local webhook, fewer pokes per
wait once the history is learned, and the HTML report written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from devtools import demo
from tests.e2e.conftest import FIGURES

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def test_the_demo_scenario_holds_what_it_claims(tmp_path: Path) -> None:
    args = argparse.Namespace(days=12, live=5, seed=demo.SEED, work=tmp_path / "demo")
    out = demo.run(args)

    assert out.broken == []
    results = out.demo.results
    assert [r.day for r in results] == list(range(7, 12))
    for result in results:
        assert result.states["financial"] == "success"
        assert result.states["customer"] == "success"
        assert sum(result.sensor_worker_runs.values()) == 0, result
    outage = {r.day: r.states["partner"] for r in results if r.day in out.demo.outage}
    assert outage == {8: "skipped", 9: "skipped"}
    states = [state for _, state in out.demo.breaker_states]
    assert "open" in states
    assert states[-1] == "closed"
    kinds = {(a["kind"], a["condition"], a["source"]) for a in out.alerts}
    assert ("alert", "breaker", "partner") in kinds
    assert ("recovery", "breaker", "partner") in kinds
    _, pokes = demo.pokes_table(out.history)
    assert sum(late for _, late in pokes.values()) < sum(early for early, _ in pokes.values())
    assert out.batch["status"] == "success"
    assert len(out.batch["found"]) == 4
    assert out.page.read_text().startswith("<!DOCTYPE html>")
    FIGURES["demo (12 days, 5 live): wall time, peak PSS"] = (
        f"{out.seconds:.0f} s, {out.peak_mb:.0f} MB"
    )
