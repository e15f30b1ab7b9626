"""``waitwise simulate``: the demo scenario's files, deterministic for a seed, in compressed time.

Prints the plan of ``--days`` simulated days (each source's arrival in simulated and real
seconds after its wait starts, or ``never``), and with ``--land DAY`` writes that day's files
under ``--root`` in real time, starting now (``ds_nodash`` of the day: ``--ds``, default
today's date less the days after it).  ``--outage SOURCE:FIRST-LAST`` makes a source's files
never land on those days.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from waitwise.triggers.simulate.demo import DEMO_SOURCES, Landing, plan_days
from waitwise.triggers.simulate.land import land_day

__all__ = ["add_parser", "main", "parse_outages"]

DEFAULT_SEED = 35


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` command to the ``waitwise`` console script."""
    sim = commands.add_parser("simulate", help="the demo scenario's files, in compressed time")
    sim.add_argument("--days", type=int, default=16, help="simulated days (default 16)")
    sim.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the scenario's seed")
    sim.add_argument(
        "--outage",
        action="append",
        default=[],
        metavar="SOURCE:FIRST-LAST",
        help="no file of SOURCE lands on days FIRST..LAST, e.g. partner:12-13",
    )
    sim.add_argument("--root", type=Path, help="the data directory files land under")
    sim.add_argument("--land", type=int, metavar="DAY", help="land DAY's files now, in real time")
    sim.add_argument("--ds", help="the run's ds_nodash for --land (default: by the calendar)")


def parse_outages(values: Sequence[str], days: int) -> dict[str, set[int]]:
    """Return ``SOURCE:FIRST-LAST`` values as days per source; raise ValueError naming one."""
    names = {s.name for s in DEMO_SOURCES}
    found: dict[str, set[int]] = {}
    for value in values:
        name, _, span = value.partition(":")
        first, _, last = span.partition("-")
        try:
            lo, hi = int(first), int(last or first)
        except ValueError:
            raise ValueError(f"--outage must be SOURCE:FIRST-LAST, got {value!r}") from None
        if name not in names or not 0 <= lo <= hi < days:
            raise ValueError(
                f"--outage {value!r}: SOURCE one of {sorted(names)}, days within 0..{days - 1}"
            )
        found.setdefault(name, set()).update(range(lo, hi + 1))
    return found


def _table(landings: Sequence[Landing], days: int) -> str:
    lines = ["day  " + "".join(f"{s.name:>24}" for s in DEMO_SOURCES)]
    for day in range(days):
        cells = []
        for source in DEMO_SOURCES:
            (landing,) = [x for x in landings if x.source == source.name and x.day == day]
            if landing.simulated_s is None or landing.offset_s is None:
                cells.append(f"{'never':>24}")
            else:
                cells.append(f"{landing.simulated_s:>11.0f}s = {landing.offset_s:>6.1f}s real")
        lines.append(f"{day:>3}  " + "".join(cells))
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Run ``waitwise simulate`` with parsed ``args``; return the exit status."""
    try:
        outages = parse_outages(args.outage, args.days)
    except ValueError as exc:
        print(f"waitwise simulate: {exc}", file=sys.stderr)
        return 2
    landings = plan_days(args.days, args.seed, outages)
    sys.stdout.write(_table(landings, args.days))
    if args.land is None:
        return 0
    if args.root is None or not 0 <= args.land < args.days:
        print("waitwise simulate: --land needs --root and a day in range", file=sys.stderr)
        return 2
    today = dt.datetime.now(dt.UTC).date()
    ds = args.ds or (today - dt.timedelta(days=args.days - 1 - args.land)).strftime("%Y%m%d")
    now = time.time()
    day = [x for x in landings if x.day == args.land]
    land_day(
        args.root,
        day,
        DEMO_SOURCES,
        ds,
        dict.fromkeys((s.name for s in DEMO_SOURCES), now),
        on_land=lambda landing, path: print(f"+{time.time() - now:5.1f}s landed {path}"),
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``waitwise simulate ...`` on its own (``python -m waitwise.triggers.simulate.cli``)."""
    parser = argparse.ArgumentParser(prog="waitwise")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["simulate", *(argv if argv is not None else sys.argv[1:])]))


if __name__ == "__main__":
    sys.exit(main())
