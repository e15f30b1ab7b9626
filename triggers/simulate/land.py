"""Landing the demo's files: their content, and writing them as producers should (blocking).

A file is written under a hidden temporary name in its directory and renamed into place, so a
sensor never sees it half-written (inotify reports the rename as ``IN_MOVED_TO``).  Contents
are small, valid CSV / JSON / XML, deterministic for the source and day, so the downstream
tasks of the example DAGs have something to read.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from waitwise.triggers.simulate.demo import DemoSource, Landing

__all__ = ["content", "land", "land_day"]


def content(source: str, ds_nodash: str) -> str:
    """Return the file body of ``source`` for the run of ``ds_nodash`` (3-7 records)."""
    rng = random.Random(f"{source}:{ds_nodash}")
    rows = [
        (f"{source[:3]}-{i:03d}", round(rng.uniform(10, 1000), 2)) for i in range(rng.randint(3, 7))
    ]
    if source == "financial":
        return "id,amount\n" + "".join(f"{key},{value}\n" for key, value in rows)
    if source == "customer":
        return json.dumps([{"id": key, "spend": value} for key, value in rows], indent=1) + "\n"
    items = "".join(f'  <item id="{key}" value="{value}"/>\n' for key, value in rows)
    return f'<?xml version="1.0"?>\n<delivery date="{ds_nodash}">\n{items}</delivery>\n'


def land(root: Path, relpath: str, body: str) -> Path:
    """Write ``body`` to ``root / relpath`` through a hidden temporary name and a rename."""
    target = root / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.parent / f".{target.name}.part"
    staged.write_text(body, encoding="utf-8")
    os.replace(staged, target)
    return target


def land_day(
    root: Path,
    landings: Sequence[Landing],
    sources: Sequence[DemoSource],
    ds_nodash: str,
    started: dict[str, float],
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    on_land: Callable[[Landing, Path], None] | None = None,
) -> None:
    """Land one day's files, each ``offset_s`` after its wait started (``started[source]``).

    Blocks until the last file of the day has landed; landings that never land are skipped.
    """
    by_name = {s.name: s for s in sources}
    due = [landing for landing in landings if landing.offset_s is not None]
    due.sort(key=lambda landing: started[landing.source] + (landing.offset_s or 0.0))
    for landing in due:
        sleep(max(started[landing.source] + (landing.offset_s or 0.0) - clock(), 0.0))
        path = land(
            root, by_name[landing.source].relpath(ds_nodash), content(landing.source, ds_nodash)
        )
        if on_land is not None:
            on_land(landing, path)
