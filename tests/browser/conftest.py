"""The browser tests' artifacts: a directory kept after the run, named in pytest's summary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(os.environ.get("WAITWISE_ARTIFACTS") or Path(__file__).parent.parent / "artifacts")
KEPT: list[str] = []


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Return where screenshots are kept: ``$WAITWISE_ARTIFACTS/browser`` or tests/artifacts/."""
    where = ARTIFACTS / "browser"
    where.mkdir(parents=True, exist_ok=True)
    return where


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the files the browser tests kept, and how long the page took to load."""
    if KEPT:
        terminalreporter.section("browser artifacts")
        for line in KEPT:
            terminalreporter.write_line(line)
