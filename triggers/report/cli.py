"""``waitwise report``: the report from a console, through one of the store's read paths.

::

    waitwise report --api-url http://airflow:8080 --token "$TOKEN" [--html report.html]
    waitwise report --metadata          # on a host with Airflow's configuration and database
    waitwise report --root /data/waits  # a FileStore

``--api-url`` reads over Airflow's REST API (:class:`~waitwise.triggers.store.RestBackend`;
the token is a JWT from ``POST /auth/token``, or ``$WAITWISE_API_TOKEN``); ``--metadata``
reads Airflow's metadata database through its ORM
(:class:`~waitwise.triggers.store.MetadataBackend`). Exit status: 0, or 2 for bad arguments,
or 1 when the store cannot be read (the error is printed, not a traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from waitwise.triggers.breaker import BreakerSnapshot
from waitwise.triggers.store import AirflowStore, FileStore, WaitRecord, WaitStore

from .render import html_page, text
from .summary import DAY, Report, summarize

__all__ = ["build", "main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="waitwise", description="waitwise's console commands")
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="success, wait times, timeouts and health")
    where = report.add_mutually_exclusive_group(required=True)
    where.add_argument("--api-url", help="Airflow's base URL: read over its REST API")
    where.add_argument("--metadata", action="store_true", help="read Airflow's metadata DB")
    where.add_argument("--root", type=Path, help="a FileStore's root directory")
    report.add_argument("--token", default=os.environ.get("WAITWISE_API_TOKEN"))
    report.add_argument("--namespace", default="waitwise", help="the store's key prefix")
    report.add_argument("--days", type=float, default=7.0, help="the window, in days")
    report.add_argument("--source", action="append", help="only these sources (repeatable)")
    report.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="PROFILE=RELIABILITY",
        help="a custom profile's reliability, e.g. partner_feed=0.8 (presets are known)",
    )
    report.add_argument("--html", type=Path, help="also write the HTML page here")
    from waitwise.triggers.simulate.cli import add_parser as add_simulate

    add_simulate(commands)
    return parser


def _targets(pairs: Sequence[str], parser: argparse.ArgumentParser) -> dict[str, float]:
    found = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            reliability = float(value)
        except ValueError:
            reliability = -1.0
        if not name or not 0 < reliability <= 1:
            parser.error(f"--target must be PROFILE=RELIABILITY in (0, 1], got {pair!r}")
        found[name] = reliability
    return found


async def build(
    store: WaitStore,
    *,
    now: float,
    window_s: float,
    sources: Sequence[str] | None = None,
    targets: dict[str, float] | None = None,
) -> Report:
    """Return the report of ``store``'s sources (or of ``sources``) over the window."""
    names = list(sources) if sources else await store.sources()
    histories: dict[str, list[WaitRecord]] = {}
    breakers: dict[str, BreakerSnapshot | None] = {}
    for name in names:
        histories[name] = await store.history(name)
        breakers[name] = await store.get_breaker(name)
    return summarize(histories, now=now, window_s=window_s, breakers=breakers, targets=targets)


async def _run(args: argparse.Namespace, targets: dict[str, float]) -> Report:
    async with contextlib.AsyncExitStack() as stack:
        store: WaitStore
        if args.root is not None:
            store = FileStore(args.root)
        elif args.metadata:
            from waitwise.triggers.store import MetadataBackend

            store = AirflowStore(MetadataBackend(), namespace=args.namespace)
        else:
            from waitwise.triggers.store import RestBackend

            backend = RestBackend(args.api_url, token=args.token)
            stack.push_async_callback(backend.aclose)
            store = AirflowStore(backend, namespace=args.namespace)
        return await build(
            store, now=time.time(), window_s=args.days * DAY, sources=args.source, targets=targets
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``waitwise <command>``; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "simulate":
        from waitwise.triggers.simulate.cli import run as simulate

        return simulate(args)
    if not 0 < args.days < 36_500:
        parser.error(f"--days must be in (0, 36500), got {args.days!r}")
    targets = _targets(args.target, parser)
    try:
        report = asyncio.run(_run(args, targets))
    except Exception as exc:  # a console command reports, it does not dump a traceback
        print(
            f"waitwise report: cannot read the store: {type(exc).__name__}: {exc}", file=sys.stderr
        )
        return 1
    sys.stdout.write(text(report))
    if args.html is not None:
        args.html.write_text(html_page(report), encoding="utf-8")
        print(f"HTML report written to {args.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
