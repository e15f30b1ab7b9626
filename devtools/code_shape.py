"""The shape of the code a reader must follow: the path of one wait, and the largest functions.

``python -m devtools.code_shape`` prints, for the waitwise importable from ``sys.path``:

- the path of one wait: a ``FileArrivalSensor`` is built in a DAG, its trigger is rebuilt
  from the kwargs the scheduler stores, and runs under a fake clock until its file lands on
  the third poke; every waitwise function entered on the way is counted (distinct functions,
  the files they live in, and the calls);
- the largest functions of ``triggers/`` and ``operators/`` by lines (docstrings included).

Run it against an older release by putting that release first on ``sys.path`` (see
``devtools/record_kwargs.py``) to compare before and after.
"""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

Trace = tuple[Counter[tuple[str, str]], list[str]]


def _trace_one_wait(data: Path) -> tuple[dict[str, Trace], str]:
    from airflow.sdk import DAG

    import waitwise.triggers
    from waitwise.operators.file import FileArrivalSensor
    from waitwise.triggers.file import FileArrivalTrigger
    from waitwise.triggers.policy import Constant
    from waitwise.triggers.runtime import Runtime, use_runtime
    from waitwise.triggers.testing import FakeClock, RecordingSink

    root = str(Path(waitwise.triggers.__file__).resolve().parents[1])
    phases: dict[str, Trace] = {
        "DAG parse": (Counter(), []),
        "triggerer": (Counter(), []),
    }
    # the file of each call that entered a different file is appended to the phase's list
    calls, hops = phases["DAG parse"]
    target = data / "orders.csv"

    class Lands(FakeClock):
        async def sleep(self, seconds: float) -> None:
            await super().sleep(seconds)
            if len(self.sleeps) >= 2:
                target.touch()

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call":
            path = str(Path(frame.f_code.co_filename).resolve())[len(root) + 1 :]
            if path.startswith(("triggers/", "operators/")) and path != "triggers/testing.py":
                calls[(path, frame.f_code.co_qualname)] += 1
                if not hops or hops[-1] != path:
                    hops.append(path)

    async def wait() -> Any:
        with DAG("shape", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)):
            sensor = FileArrivalSensor(
                task_id="wait", filepath=str(target), poll=Constant(interval=5.0), timeout=60
            )
        args = sensor.start_trigger_args
        assert args is not None
        nonlocal calls, hops
        calls, hops = phases["triggerer"]
        kwargs = dict(args.trigger_kwargs or {}, started_at=1_700_000_000.0)
        trigger = FileArrivalTrigger(**kwargs)
        with use_runtime(Runtime(clock=Lands(), metrics=RecordingSink())):
            return await anext(trigger.run())

    sys.setprofile(profile)
    try:
        event = asyncio.run(wait())
    finally:
        sys.setprofile(None)
    return phases, type(event).__name__


def _largest_functions(root: Path, top: int) -> list[tuple[int, str]]:
    sizes = []
    for package in ("triggers", "operators"):
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    sizes.append((lines, f"{path.relative_to(root)}::{node.name}"))
    return sorted(sizes, reverse=True)[:top]


def main() -> None:
    import waitwise.triggers

    root = Path(waitwise.triggers.__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        phases, status = _trace_one_wait(Path(tmp))
    print(f"waitwise from {root}; one wait ending in {status}, its file landing at poke 3:")
    for phase, (calls, hops) in phases.items():
        files = {path for path, _name in calls}
        print(
            f"  {phase}: {len(calls)} distinct functions in {len(files)} files, "
            f"{sum(calls.values())} calls, {max(len(hops) - 1, 0)} moves between files"
        )
        print(f"    {', '.join(sorted(files))}")
    print("largest functions (lines):")
    for lines, name in _largest_functions(root, 8):
        print(f"  {lines:4d}  {name}")


if __name__ == "__main__":
    main()
