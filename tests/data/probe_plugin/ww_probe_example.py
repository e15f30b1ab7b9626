"""Example probes a user's package registers under ``waitwise.probes`` (used by the tests).

This directory is a tiny installed distribution: ``ww_probe_example-1.0.dist-info`` holds its
metadata and entry points, so putting the directory on ``sys.path`` is installing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from waitwise.triggers.custom import ProbeContext
from waitwise.triggers.errors import ProbeError
from waitwise.triggers.events import FoundItem

CALLS: list[dict[str, Any]] = []
"""Every call of :class:`MinLines` (tests count them)."""


class MinLines:
    """Arrived when the text file ``path`` has at least ``min_lines`` lines.

    A missing file is "not yet"; an unreadable one (a permission error) is transient.
    """

    def check_args(self, args: Mapping[str, Any]) -> None:
        if not isinstance(args.get("path"), str):
            raise ValueError(f"path must be a string, got {args.get('path')!r}")
        lines = args.get("min_lines", 1)
        if isinstance(lines, bool) or not isinstance(lines, int) or lines < 1:
            raise ValueError(f"min_lines must be an integer >= 1, got {lines!r}")

    async def __call__(
        self, args: Mapping[str, Any], context: ProbeContext
    ) -> list[FoundItem] | bool:
        CALLS.append(dict(args))
        path = Path(args["path"])
        try:
            text = await asyncio.to_thread(path.read_text)
        except FileNotFoundError:
            return False
        except PermissionError as exc:
            raise ProbeError(f"cannot read {path}") from exc
        lines = len(text.splitlines())
        if lines < args.get("min_lines", 1):
            return False
        return [{"path": str(path), "size": lines, "mtime": context.now}]


class AllAtOnce:
    """A batch probe: ``{"key": k}`` arrived when ``k`` is in the shared set ``READY``."""

    READY: ClassVar[set[str]] = set()
    BATCHES: ClassVar[list[int]] = []

    async def probe_batch(
        self, args: Sequence[Mapping[str, Any]], context: ProbeContext
    ) -> list[bool | BaseException]:
        type(self).BATCHES.append(len(args))
        return [
            a["key"] in self.READY if a.get("key") != "boom" else KeyError("boom") for a in args
        ]


async def flaky(args: Mapping[str, Any], context: ProbeContext) -> bool:
    """A function probe whose endpoint is down: a transient error every time."""
    raise ConnectionError(f"{args.get('host', 'service')} refused the connection")


async def wrong(args: Mapping[str, Any], context: ProbeContext) -> Any:
    """A probe that breaks the contract (returns a string)."""
    return "yes"
