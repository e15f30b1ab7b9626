"""A/B of two waitwise builds in Airflow's TriggerRunner: CPU per poke net of hosting, interleaved.

``python -m devtools.bench.ab --old 0bff4ae --n 10000 --repeat 3``

1. Builds a wheel of each side (``pip wheel --no-deps``): ``--old REF`` from ``git archive
   REF``; the new side from a snapshot of the working tree (tracked and untracked, not ignored
   files; ``--new-ref REF`` takes a git ref instead), so later edits cannot reach the run.
   Each wheel is installed with ``pip install --no-deps --target`` into its own directory and
   imported once from there (the same isolation as the measurement) to check that it loads.
2. Runs :mod:`devtools.bench.runner`'s measurement with ``waitwise_path`` set to that
   directory, ``--repeat`` rounds of old, new (and stock ``FileTrigger``, unless
   ``--no-stock``), interleaved so a noisy neighbour hits both sides alike.  Each measurement
   is the runner's "CPU per poke, net of hosting": N triggers at a 1 s interval for
   ``--window`` seconds, then the same trigger hosted at a 1 h interval (no poke in the
   window), ``(CPU per trigger-second - hosting) / pokes per trigger-second``.  No
   detection phase (the runner's ``--no-detect``).
3. Prints per-round values, medians and ``new / old`` = median(new) / median(old), against
   the goal (default <= 1.1x).

Every hosted process reports ``waitwise.triggers.__file__`` and fails if any ``waitwise``
module came from outside its side's directory (see :mod:`devtools.bench._hosted`); the table
header shows each side's import path and source hash.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.bench.runner import REPO, SETUPS, Setup, add_hosting, run_runner_bench

DEFAULT_OLD = "0bff4ae"  # waitwise 0.1.0
GOAL = 1.1
STOCK = "stock"

# Imports the installed copy the way the hosted process does and prints where it came from.
SMOKE = """
import json, sys
from devtools.bench._hosted import code_under_test, isolate_waitwise, waitwise_origin
isolate_waitwise(sys.argv[1])
from waitwise.triggers.file import FileArrivalTrigger
trigger = FileArrivalTrigger(
    filepath="/nonexistent/f.csv", poll={"kind": "constant", "interval": 1.0},
    timeout=60.0, started_at=0.0,
)
classpath, kwargs = trigger.serialize()
origin = waitwise_origin({"waitwise_path": sys.argv[1]})
print(json.dumps({**origin, "tree": code_under_test()["tree"], "classpath": classpath,
                  "kwargs": sorted(kwargs)}))
"""


@dataclass(frozen=True)
class Build:
    """One side of the A/B: where its waitwise is installed and what it was built from."""

    label: str
    source: str
    site: Path
    waitwise_file: str
    tree: str
    kwargs: tuple[str, ...]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _git(*args: str) -> str:
    """Run a read-only git command in the repo; return its stdout."""
    out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def export_ref(ref: str, dest: Path) -> str:
    """Extract ``git archive REF`` into ``dest``; return a description of the source."""
    sha = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    tar = subprocess.run(["git", "archive", sha], cwd=REPO, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
        archive.extractall(dest, filter="data")
    return f"git {ref} ({sha[:10]})"


def export_working_tree(dest: Path) -> str:
    """Copy the working tree's files (tracked or untracked, not ignored) into ``dest``."""
    listed = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard")
    copied = 0
    for name in sorted(set(filter(None, listed.split("\0")))):
        src = REPO / name
        if src.is_file():  # a tracked file deleted in the working tree is skipped
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
            copied += 1
    changed = _git("status", "--porcelain", "--untracked-files=all").splitlines()
    head = _git("rev-parse", "--short=10", "HEAD")
    return f"working tree (HEAD {head} + {len(changed)} changed paths, {copied} files)"


def build_wheel(src: Path, out: Path) -> Path:
    """``pip wheel --no-deps`` of ``src`` into ``out``; without build isolation when possible.

    The venv's own setuptools builds without isolation (fast, offline); if it cannot build
    this ``pyproject.toml`` (the venv's setuptools 65 rejects the PEP 639 ``license`` string
    of 0.1.0), pip builds in an isolated environment from its configured index instead.
    """
    base = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)]
    proc = subprocess.run([*base, "--no-build-isolation"], capture_output=True, text=True)
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["?"])[-1]
        _log(f"  --no-build-isolation failed ({why}); building with isolation")
        proc = subprocess.run(base, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"pip wheel {src} failed:\n{proc.stderr[-3000:]}")
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel in {out}, found {wheels}")
    return wheels[0]


def install_target(wheel: Path, site: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site)]
    subprocess.run([*cmd, str(wheel)], capture_output=True, text=True, check=True)


def smoke(site: Path) -> dict[str, Any]:
    """Import the installed copy as the hosted process will; return its origin report."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), str(REPO)])),
        "AIRFLOW_HOME": str(site.parent / "airflow_home"),
    }
    proc = subprocess.run(
        [sys.executable, "-c", SMOKE, str(site)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the build in {site} does not import:\n{proc.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


def build(label: str, ref: str | None, work: Path) -> Build:
    """Build, install and check one side (``ref`` None: the working tree)."""
    src, wheels, site = work / f"src-{label}", work / f"wheel-{label}", work / f"site-{label}"
    src.mkdir()
    source = export_ref(ref, src) if ref else export_working_tree(src)
    _log(f"{label}: {source}: building ...")
    wheel = build_wheel(src, wheels)
    install_target(wheel, site)
    try:
        report = smoke(site)
    except RuntimeError as exc:
        hint = "" if ref else "\n(working tree mid-change? try --new-ref HEAD)"
        raise SystemExit(f"{label}: {exc}{hint}") from None
    _log(f"{label}: {wheel.name} -> {report['waitwise_file']} (sources {report['tree']})")
    return Build(
        label, source, site, report["waitwise_file"], report["tree"], tuple(report["kwargs"])
    )


def measure(
    side: Build | None, n: int, window: float, setup: Setup, stock_site: Path
) -> dict[str, Any]:
    """One round of one side: the runner's steady run and its hosting run (``None``: stock).

    Stock imports no waitwise, but the runner process imports ``waitwise.triggers`` to report
    it: give it the old build's copy, so a half-edited working tree cannot affect it.
    """
    which, site = ("waitwise", side.site) if side else (STOCK, stock_site)
    row = run_runner_bench(
        n, 1.0, window, which=which, setup=setup, detect=False, waitwise_path=site
    )
    add_hosting(row, n, window, which, setup, waitwise_path=site)
    expected = str(site.resolve()) + os.sep
    if side and not str(row["waitwise_file"]).startswith(expected):
        raise RuntimeError(f"{side.label} imported waitwise from {row['waitwise_file']}")
    return row


def run_ab(
    builds: list[Build], n: int, window: float, repeat: int, setup: Setup, stock: bool
) -> dict[str, list[dict[str, Any]]]:
    """``repeat`` rounds of every side in order (old, new[, stock]); rows per side."""
    sides: list[Build | None] = [*builds, *([None] if stock else [])]
    runs: dict[str, list[dict[str, Any]]] = {(s.label if s else STOCK): [] for s in sides}
    for round_no in range(1, repeat + 1):
        for side in sides:
            label = side.label if side else STOCK
            started, load = time.monotonic(), os.getloadavg()[0]
            row = measure(side, n, window, setup, builds[0].site)
            row["elapsed_s"] = time.monotonic() - started
            row["load1_at_start"] = load
            runs[label].append(row)
            _log(
                f"  round {round_no}/{repeat} {label}: "
                f"{row['cpu_us_per_poke_net']:.2f} us/poke net "
                f"({row['cpu_us_per_poke']:.2f} gross, hosting "
                f"{row['hosting_us_per_trigger_s']:.2f} us/trigger-s, "
                f"{row['pokes_per_trigger_s']:.3f} pokes/trigger-s), {row['elapsed_s']:.0f} s, "
                f"load {load:.1f}"
            )
    return runs


def _f(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def table(runs: dict[str, list[dict[str, Any]]], old: str, new: str) -> str:
    """Return the markdown table: per round and medians, net CPU per poke and ratios."""
    stock = STOCK in runs
    head = [
        "round",
        f"{old} us/poke net",
        f"{new} us/poke net",
        f"**{new} / {old}**",
        *([f"{STOCK} us/poke net", f"{old} / {STOCK}", f"{new} / {STOCK}"] if stock else []),
        "hosting us/trigger-s " + " / ".join(runs),
        "pokes/trigger-s " + " / ".join(runs),
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(name: str, value: dict[str, float], hosting: str, pokes: str) -> str:
        cells = [name, _f(value[old]), _f(value[new]), f"{_ratio(value[new], value[old]):.3f}x"]
        if stock:
            cells += [_f(value[STOCK])]
            cells += [f"{_ratio(value[s], value[STOCK]):.2f}x" for s in (old, new)]
        return "| " + " | ".join([*cells, hosting, pokes]) + " |"

    rounds = len(runs[old])
    for i in range(rounds):
        net = {label: rows[i]["cpu_us_per_poke_net"] for label, rows in runs.items()}
        hosting = " / ".join(_f(rows[i]["hosting_us_per_trigger_s"]) for rows in runs.values())
        pokes = " / ".join(f"{rows[i]['pokes_per_trigger_s']:.3f}" for rows in runs.values())
        lines.append(row(str(i + 1), net, hosting, pokes))
    med = {label: _median(rows, "cpu_us_per_poke_net") for label, rows in runs.items()}
    hosting = " / ".join(_f(_median(rows, "hosting_us_per_trigger_s")) for rows in runs.values())
    pokes = " / ".join(f"{_median(rows, 'pokes_per_trigger_s'):.3f}" for rows in runs.values())
    lines.append(row(f"**median of {rounds}**", med, hosting, pokes))
    return "\n".join(lines)


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


def verdict(runs: dict[str, list[dict[str, Any]]], old: str, new: str, goal: float) -> str:
    """Return the goal line: median(new) / median(old), with the per-round ratios' range."""
    ratio = _ratio(
        _median(runs[new], "cpu_us_per_poke_net"), _median(runs[old], "cpu_us_per_poke_net")
    )
    per_round = sorted(
        _ratio(b["cpu_us_per_poke_net"], a["cpu_us_per_poke_net"])
        for a, b in zip(runs[old], runs[new], strict=True)
    )
    spread = f"; rounds {per_round[0]:.3f}-{per_round[-1]:.3f}x" if len(per_round) > 1 else ""
    met = "met" if ratio <= goal else "NOT met"
    line = (
        f"CPU per poke net of hosting, {new} / {old} = {ratio:.3f}x "
        f"(median of {len(per_round)} / median of {len(per_round)}{spread}): "
        f"goal <= {goal}x {met}"
    )
    pokes = [_median(runs[s], "pokes_per_trigger_s") for s in (old, new)]
    if abs(_ratio(pokes[1], pokes[0]) - 1) > 0.05:
        line += f"\nWARNING: pokes per trigger-second differ ({pokes[0]:.3f} vs {pokes[1]:.3f})"
    loads = [r["load1_at_start"] for rows in runs.values() for r in rows]
    cores = os.cpu_count() or 1
    if max(loads) > cores:
        line += (
            f"\nWARNING: 1-min load average {min(loads):.1f}-{max(loads):.1f} on {cores} cores "
            "during the runs: other work competes for the CPU, expect wide rounds"
        )
    return line


def describe(builds: list[Build]) -> str:
    lines = [
        f"- {b.label}: {b.source}; imported from {b.waitwise_file} (sources {b.tree})"
        for b in builds
    ]
    if builds[0].tree == builds[1].tree:
        lines.append("  (identical waitwise sources on both sides: the ratio is the A/B's noise)")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--old", default=DEFAULT_OLD, help=f"git ref of A (default {DEFAULT_OLD})")
    p.add_argument("--new-ref", help="git ref of B (default: the working tree as it is now)")
    p.add_argument("--n", type=int, default=10000, help="waiting triggers per run")
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds; medians shown")
    p.add_argument("--window", type=float, default=20.0, help="seconds of steady state per run")
    p.add_argument("--setup", choices=[s.label for s in SETUPS], default=SETUPS[0].label)
    p.add_argument("--no-stock", action="store_true", help="skip Airflow's FileTrigger")
    p.add_argument("--goal", type=float, default=GOAL, help="max new / old (default 1.1)")
    p.add_argument("--workdir", help="build here and keep it (default: a temp dir, removed)")
    p.add_argument("--json", help="also write every raw result to this file")
    return p


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    setup = next(s for s in SETUPS if s.label == args.setup)
    keep = Path(args.workdir).resolve() if args.workdir else None
    work = keep or Path(tempfile.mkdtemp(prefix="waitwise-ab-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        builds = [build("old", args.old, work), build("new", args.new_ref, work)]
        built = time.monotonic() - started
        _log(f"N={args.n:,}, {setup.label}, {args.window:.0f} s windows, {args.repeat} rounds")
        runs = run_ab(builds, args.n, args.window, args.repeat, setup, not args.no_stock)
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        sources = {b.label: b.source for b in builds}
        Path(args.json).write_text(json.dumps({"sources": sources, "runs": runs}, indent=1))
    print(describe(builds))
    print()
    print(table(runs, "old", "new"))
    print()
    print(verdict(runs, "old", "new", args.goal))
    print(
        f"\n({time.monotonic() - started:.0f} s, builds {built:.0f} s; N={args.n:,}, "
        f"1 s poke interval, {args.window:.0f} s windows ({min(args.window, 10.0):.0f} s "
        f"for hosting), {setup.label}; rounds interleave old, new"
        f"{'' if args.no_stock else ', stock'} on a shared 2-core machine)"
    )


if __name__ == "__main__":
    main()
