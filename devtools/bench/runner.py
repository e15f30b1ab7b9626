"""N waiting file triggers in Airflow's own TriggerRunner: waitwise next to FileTrigger.

Each measurement runs in a fresh interpreter (:mod:`devtools.bench._hosted`, whose docstring
says how the runner is hosted without a triggerer parent).  Columns:

- CPU %: process CPU time (all threads, so waitwise's batch thread counts) / wall time over a
  window that starts once every trigger has poked after the last one was created, plus 2 s.
- CPU per trigger-second: that CPU / (N x window).  Per poke, gross: CPU / pokes.  Per poke,
  net: (CPU per trigger-second - hosting) / pokes per trigger-second, where "hosting" is the
  same trigger's run with a 1 h interval (no poke in the window): baseline.md's
  ``a + b / interval`` split; ``b`` (stock ~14.6 us there) is the trigger's, ``a`` the runner's.
- Pokes: stock counts calls of the ``glob`` its module imported (one per ``run`` iteration);
  waitwise adds up its ``waitwise.pokes`` counter, seen through the runtime's metrics sink
  (the hub adds the number of queries of each batch: one per probe).
- Memory per trigger: (RSS after the window - RSS before the workloads were built) / N.
- Loop lag: a watchdog task sleeping 0.1 s records its overshoot (Airflow's own watchdog
  logs "blocked" when the overshoot passes 0.1 s); p99 and max.  ``gc.callbacks`` time every
  collection, so a stall can be matched to a gc pause.
- Detection: the N files are created beforehand in a staging directory, renamed into place in
  one syscall (all land at once); latency = when each trigger's event is appended to the
  runner's ``events`` deque (what the runner hands the supervisor at its next 1 s sync) minus
  the rename.  CPU per event = CPU from the rename to the last event / events.

Setups (each a row pair, plus the runner floor for the largest N):

- gc normal: the triggerer as shipped (logging at INFO).
- gc frozen: ``gc.freeze()`` once all triggers run, so full collections over Airflow's
  per-trigger greenback portals (baseline.md) no longer cause the stalls being compared.
- log WARNING: ``[logging] logging_level = WARNING`` in the runner process, as one would set
  for the triggerer alone.  For every event Airflow's runner logs "Trigger fired event" and
  "trigger completed" at INFO through structlog's async methods, each of which runs in the
  default thread pool: when thousands of events arrive at once that queue, not the trigger,
  sets the detection tail.
- runner floor: a trigger that polls nothing and yields the moment the files land
  (:mod:`devtools.bench._floor`): Airflow's own share of every row's detection figures.

Every cell is the median of ``--repeat`` rounds; rounds interleave the triggers (stock,
waitwise, stock, ...) so a noisy neighbour on the shared machine hits both alike.

``--waitwise-path DIR`` measures another build of waitwise: a copy installed with
``pip install --no-deps --target DIR`` comes first on the child's path and the editable
install is kept out of it (``_hosted.isolate_waitwise``); each result's ``waitwise_file`` says
where ``waitwise.triggers`` was imported from.  :mod:`devtools.bench.ab` builds two refs and
compares them this way, interleaved.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HOSTING_INTERVAL = 3600.0
WHICH = ("stock", "waitwise")
FLOOR = "floor"  # the runner alone: a trigger that yields as the files land (see _floor.py)
BATCH = "batch"  # waitwise's FileBatchTrigger (devtools.bench.pooling)
LABEL = {
    "stock": "Airflow FileTrigger",
    "waitwise": "FileArrivalTrigger",
    FLOOR: "runner floor (yields on landing)",
}


@dataclass(frozen=True)
class Setup:
    """How the runner process is set up for one row pair (see the module docstring)."""

    label: str
    gc_freeze: bool = False
    log_level: str | None = None  # None: Airflow's default (INFO)


SETUPS = (
    Setup("gc normal"),
    Setup("gc frozen", gc_freeze=True),
    Setup("log WARNING", log_level="WARNING"),
)
# baseline.md, "Trigger capacity" (FileTrigger in TriggerRunner; another run, medians of 3).
BASELINE = (
    "| 10,000 | gc normal | Airflow FileTrigger (baseline.md) | 24.7 | 24.2 | 9.6 | | 14.6 "
    "| 13 | 67 / 297 | | 3.8 / 6.4 (4.4 / 6.8 in its text) | ~1 | |",
    "| 10,000 | gc frozen | Airflow FileTrigger (baseline.md) | | | | | | | max 22 | | | | |",
    "| 1,000 | gc normal | Airflow FileTrigger (baseline.md) | 2.9 | | | | | 14 "
    "| 2.3 / 4.0 | | 0.53 / 1.0 | | |",
)


def run_runner_bench(
    n: int,
    interval: float,
    window: float,
    *,
    which: str,
    setup: Setup = SETUPS[0],
    detect: bool = True,
    profile: str | None = None,
    pyspy: str | None = None,
    timeout: float = 1200.0,
    waitwise_path: str | Path | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Measure N ``which`` triggers ("stock", "waitwise" or "floor") in a fresh runner process.

    :param interval: poke interval in seconds (above 5 s: hosting-only run, no detection).
    :param window: seconds of steady state measured once every trigger runs.
    :param setup: gc freeze and log level of the runner process (:data:`SETUPS`).
    :param detect: after the window, land all N files at once and time the events.
    :param profile: write a cProfile of the window (event-loop thread only) to this path,
        and one of detection to ``PATH.detect``.
    :param pyspy: write py-spy raw samples of the window (and ``.detect`` of detection) here;
        needs ``py-spy`` on PATH or in ``$PY_SPY``.
    :param waitwise_path: import waitwise from this ``pip install --target`` directory
        instead of the editable install (see the module docstring).
    :param extra: more keys for the child's config (``which="batch"``, ``per_trigger``,
        ``dirs``, ``trickle``...: :mod:`devtools.bench._hosted`'s docstring).
    """
    if which not in (*WHICH, FLOOR, BATCH):
        raise ValueError(f"which must be one of {(*WHICH, FLOOR, BATCH)}, got {which!r}")
    site = str(Path(waitwise_path).resolve()) if waitwise_path else None
    if site and not (Path(site) / "waitwise" / "triggers" / "__init__.py").is_file():
        raise ValueError(f"no waitwise installed in {site} (pip install --target {site} ...)")
    cfg = {
        "n": n,
        "interval": interval,
        "window": window,
        "which": which,
        "gc_freeze": setup.gc_freeze,
        "detect": detect,
        "profile": profile,
        "pyspy": pyspy,
        "waitwise_path": site,
        **(extra or {}),
    }
    with tempfile.TemporaryDirectory(prefix="waitwise-runner-bench-") as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.run(
            [sys.executable, "-m", "devtools.bench._hosted", json.dumps(cfg), str(out)],
            cwd=REPO,
            env=_child_env(Path(tmp), setup.log_level, site),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0 or not out.exists():
            err = out.with_suffix(".err")
            detail = err.read_text() if err.exists() else proc.stderr[-3000:]
            raise RuntimeError(f"bench child failed ({proc.returncode}) for {cfg}:\n{detail}")
        result: dict[str, Any] = json.loads(out.read_text())
    result["setup"] = setup.label
    return result


def _child_env(tmp: Path, log_level: str | None, site: str | None = None) -> dict[str, str]:
    from cryptography.fernet import Fernet

    path = [site, str(REPO), os.environ.get("PYTHONPATH")]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, path)),
        "AIRFLOW_HOME": str(tmp / "airflow_home"),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    env.pop("AIRFLOW__LOGGING__LOGGING_LEVEL", None)
    if log_level is not None:
        env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = log_level
    return env


def measure_set(
    n: int,
    window: float,
    setup: Setup,
    hosting: bool,
    repeat: int = 1,
    waitwise_path: str | Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Run each trigger ``repeat`` times, interleaved; return each one's median row.

    Each row also keeps ``rounds`` (every round's values), so the goal line can quote the
    spread of the per-round ratios.
    """
    runs: dict[str, list[dict[str, Any]]] = {which: [] for which in WHICH}
    for round_no in range(repeat):
        for which in WHICH:
            row = run_runner_bench(
                n, 1.0, window, which=which, setup=setup, waitwise_path=waitwise_path
            )
            if hosting:
                add_hosting(row, n, window, which, setup, waitwise_path=waitwise_path)
            runs[which].append(row)
            _log(
                f"  {which} round {round_no + 1}/{repeat}: {row['cpu_pct']:.1f}% CPU, "
                f"{row.get('cpu_us_per_poke_net', math.nan):.2f} us/poke net, "
                f"{row.get('detect_p99_s', math.nan):.2f}s p99"
            )
    return {which: _median_row(rows) for which, rows in runs.items()}


def add_hosting(
    row: dict[str, Any],
    n: int,
    window: float,
    which: str,
    setup: Setup,
    *,
    waitwise_path: str | Path | None = None,
) -> None:
    """Add the same trigger's hosting-only cost (1 h interval) and the net CPU per poke."""
    idle = run_runner_bench(
        n,
        HOSTING_INTERVAL,
        min(window, 10.0),
        which=which,
        setup=setup,
        detect=False,
        waitwise_path=waitwise_path,
    )
    row["hosting_us_per_trigger_s"] = idle["cpu_us_per_trigger_s"]
    row["cpu_us_per_poke_net"] = (row["cpu_us_per_trigger_s"] - idle["cpu_us_per_trigger_s"]) / row[
        "pokes_per_trigger_s"
    ]


def measure_floor(n: int, window: float, setup: Setup, repeat: int) -> dict[str, Any]:
    """Return the median runner-floor row (detection only: the floor trigger never polls)."""
    rows = [
        run_runner_bench(n, 1.0, min(window, 5.0), which=FLOOR, setup=setup) for _ in range(repeat)
    ]
    _log(f"  floor: {', '.join(_fmt(r.get('detect_p99_s')) for r in rows)} s p99")
    return _median_row(rows)


def _median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the first row with every number replaced by its median over ``rows``."""
    merged = dict(rows[0])
    for key, value in rows[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            merged[key] = statistics.median(r[key] for r in rows)
    merged["rounds"] = rows
    return merged


COLUMNS = (
    ("CPU % core", ("cpu_pct",)),
    ("CPU us / trigger-s", ("cpu_us_per_trigger_s",)),
    ("hosting us / trigger-s", ("hosting_us_per_trigger_s",)),
    ("CPU us / poke gross", ("cpu_us_per_poke",)),
    ("CPU us / poke net", ("cpu_us_per_poke_net",)),
    ("KiB / trigger", ("rss_kib_per_trigger",)),
    ("loop lag p99 / max ms", ("lag_p99_ms", "lag_max_ms")),
    ("gc pause max ms", ("gc_pause_max_ms",)),
    ("detect p50 / p99 s", ("detect_p50_s", "detect_p99_s")),
    ("detect CPU ms / event", ("detect_cpu_ms_per_event",)),
    ("lag max in detection ms", ("detect_lag_max_ms",)),
)
FLOOR_COLUMNS = {"detect p50 / p99 s", "detect CPU ms / event"}

Results = list[tuple[int, Setup, dict[str, dict[str, Any]]]]


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _cells(row: dict[str, Any], only: set[str] | None = None) -> list[str]:
    return [
        " / ".join(_fmt(row.get(k)) for k in keys) if only is None or name in only else ""
        for name, keys in COLUMNS
    ]


def _ratio_cells(ww: dict[str, Any], st: dict[str, Any]) -> list[str]:
    def ratio(key: str) -> str:
        a, b = ww.get(key), st.get(key)
        return f"{a / b:.2f}x" if a is not None and b and not math.isnan(a / b) else "-"

    return [" / ".join(ratio(k) for k in keys) for _, keys in COLUMNS]


def table(results: Results) -> str:
    """Return the markdown table: stock, waitwise, their ratio (and the floor) per setup."""
    head = ["N", "setup", "trigger", *(name for name, _ in COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, setup, rows in results:
        for which, row in rows.items():
            only = FLOOR_COLUMNS if which == FLOOR else None
            cells = [f"{n:,}", setup.label, LABEL[which], *_cells(row, only)]
            lines.append("| " + " | ".join(cells) + " |")
        cells = [f"{n:,}", setup.label, "**waitwise / stock**"]
        cells += _ratio_cells(rows["waitwise"], rows["stock"])
        lines.append("| " + " | ".join(cells) + " |")
    lines.extend(BASELINE)
    return "\n".join(lines)


def goals(results: Results) -> str:
    """Return one line per setup for the issue-3 goals, from the largest N measured."""
    big = max(n for n, _, _ in results)
    lines = [f"Goals (N={big:,}, medians of the same run):"]
    lines += [_goal_line(setup, rows) for n, setup, rows in results if n == big]
    return "\n".join(lines)


def _net_ratio(ww: dict[str, Any], st: dict[str, Any]) -> float:
    return float(ww.get("cpu_us_per_poke_net", math.nan) / st.get("cpu_us_per_poke_net", math.nan))


def _round_ratios(ww: dict[str, Any], st: dict[str, Any]) -> str:
    """Return the range of the per-round net CPU ratios (round i of one / round i of other)."""
    pairs = list(zip(ww.get("rounds", [ww]), st.get("rounds", [st]), strict=False))
    ratios = sorted(_net_ratio(a, b) for a, b in pairs)
    if len(ratios) < 2:
        return ""
    return f", rounds {ratios[0]:.2f}-{ratios[-1]:.2f}x"


def _spread(row: dict[str, Any], key: str) -> str:
    values = sorted(r.get(key, math.nan) for r in row.get("rounds", [row]))
    return f" (rounds {_fmt(values[0])}-{_fmt(values[-1])})" if len(values) > 1 else ""


def _goal_line(setup: Setup, rows: dict[str, dict[str, Any]]) -> str:
    ww, st = rows["waitwise"], rows["stock"]
    net = _net_ratio(ww, st)
    p99 = ww.get("detect_p99_s", math.nan)
    line = (
        f"- {setup.label}: CPU/poke net vs stock = {net:.2f}x{_round_ratios(ww, st)} "
        f"(goal <= 0.5x: {'met' if net <= 0.5 else 'NOT met'}); detection p99 {_fmt(p99)} s"
        f"{_spread(ww, 'detect_p99_s')} vs stock {_fmt(st.get('detect_p99_s'))} s "
        f"(goal <= 1.5 s: {'met' if p99 <= 1.5 else 'NOT met'}); loop lag max "
        f"{_fmt(ww['lag_max_ms'])} ms steady / {_fmt(ww.get('detect_lag_max_ms'))} ms "
        f"in detection vs stock {_fmt(st['lag_max_ms'])} / "
        f"{_fmt(st.get('detect_lag_max_ms'))} ms (gc pause max {_fmt(ww['gc_pause_max_ms'])}"
        f" / {_fmt(ww.get('detect_gc_pause_max_ms'))} ms)"
    )
    if FLOOR in rows:
        floor = rows[FLOOR]
        line += (
            f"; runner floor p99 {_fmt(floor.get('detect_p99_s'))} s, "
            f"{_fmt(floor.get('detect_cpu_ms_per_event'))} ms CPU per event"
        )
    return line


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_table(
    ns: list[int],
    window: float,
    hosting: bool,
    repeat: int,
    waitwise_path: str | Path | None = None,
) -> Results:
    """Measure every setup for every N (and the floor for the largest N)."""
    results: Results = []
    for n in ns:
        for setup in SETUPS:
            _log(f"N={n:,} {setup.label} ...")
            rows = measure_set(n, window, setup, hosting, repeat, waitwise_path)
            if n == max(ns):
                rows[FLOOR] = measure_floor(n, window, setup, repeat)
            results.append((n, setup, rows))
    return results


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--window", type=float, default=20.0)
    p.add_argument("--quick", action="store_true", help="N=1000 only, 10 s windows, 1 round")
    p.add_argument("--repeat", type=int, default=3, help="rounds per cell; medians shown")
    p.add_argument("--no-hosting", action="store_true", help="skip the 1 h-interval runs")
    p.add_argument("--json", help="also write every raw result to this file")
    p.add_argument("--which", choices=(*WHICH, FLOOR), help="one measurement, as JSON")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--setup", choices=[s.label for s in SETUPS], default=SETUPS[0].label)
    p.add_argument("--no-detect", action="store_true")
    p.add_argument("--profile", help="cProfile of the window (single measurement)")
    p.add_argument("--pyspy", help="py-spy samples of the window (single measurement)")
    p.add_argument(
        "--waitwise-path",
        metavar="DIR",
        help="measure the waitwise installed in DIR (pip install --no-deps --target DIR WHEEL) "
        "instead of the editable install",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    """Print the markdown table (or, with ``--which``, one measurement as JSON)."""
    args = _parser().parse_args(argv)
    if args.which:
        result = run_runner_bench(
            args.n[0],
            args.interval,
            args.window,
            which=args.which,
            setup=next(s for s in SETUPS if s.label == args.setup),
            detect=not args.no_detect,
            profile=args.profile,
            pyspy=args.pyspy,
            waitwise_path=args.waitwise_path,
        )
        print(json.dumps(result, indent=1))
        return
    ns, window, repeat = ([1000], 10.0, 1) if args.quick else (args.n, args.window, args.repeat)
    started = time.monotonic()
    results = run_table(ns, window, not args.no_hosting, repeat, args.waitwise_path)
    if args.json:
        raw = [(n, setup.label, rows) for n, setup, rows in results]
        Path(args.json).write_text(json.dumps(raw, indent=1))
    print(table(results))
    print()
    print(goals(results))
    print(
        f"\n({time.monotonic() - started:.0f} s; 1 s poke interval, {window:.0f} s windows; "
        f"median of {repeat} interleaved run(s) per cell on a shared 2-core machine: "
        "compare ratios, not absolutes)"
    )


if __name__ == "__main__":
    main()
