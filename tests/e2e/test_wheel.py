"""waitwise as users install it: the built wheel in a fresh venv, run by a real Airflow.

The venv is made offline in ~2 s, where ``pip install <wheel>`` from the index takes ~35 s here
(it resolves and unpacks Airflow's ~130 distributions):

- ``python -m venv --without-pip``: a fresh environment;
- its dependencies are exactly the closure of the wheel's ``Requires-Dist`` (extras and markers
  honoured), taken from this venv: their top-level entries are linked into one folder that a
  ``.pth`` file adds with ``site.addsitedir``.  Test-only packages (pytest, hypothesis,
  mypy, ...) and the editable waitwise are not in it, so an undeclared import fails;
- ``pip install --no-index <wheel>``: pip resolves the wheel's requirements against that
  closure and installs waitwise alone into the fresh site-packages.

Then, with the harness's environment for that interpreter, a probe imports every module the
wheel installed and reports where waitwise, its metadata and sys.path come from (never the
checkout), and a real Airflow whose components all run that interpreter runs one
FileArrivalSensor wait: success with zero worker runs.

This module starts its own Airflow rather than the session's: that one runs the checkout
(editable), which the other end-to-end tests iterate on, and a packaging fault must fail here
alone.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import json
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from devtools.airflow_harness import AirflowHarness
from tests.e2e.conftest import FIGURES
from tests.test_packaging import ROOT, build_wheel, expected_modules

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

DAG_FILE = Path(__file__).parent / "dags" / "e2e_wheel.py"
DAG_ID = "ww_wheel"

# Run by the fresh interpreter: import every module the wheel installed, then report where
# waitwise and its metadata were found, the search path, and whether Airflow sees the provider.
_PROBE = r"""
import importlib, importlib.metadata, json, sys
dist = importlib.metadata.distribution("airflow-waitwise")
modules = sorted(
    f.with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
    for f in dist.files or ()
    if f.suffix == ".py"
)
for name in modules:
    importlib.import_module(name)
import waitwise.operators, waitwise.triggers
from airflow.providers_manager import ProvidersManager
print(json.dumps({
    "modules": modules,
    "files": [waitwise.triggers.__file__, waitwise.operators.__file__],
    "metadata": [
        str(d.locate_file(""))
        for d in importlib.metadata.distributions()
        if d.metadata["Name"] == "airflow-waitwise"
    ],
    "sys_path": sys.path,
    "provider": "airflow-waitwise" in ProvidersManager().providers,
}))
"""


@dataclass(frozen=True)
class WheelAirflow:
    """A fresh venv with waitwise from its wheel, and an Airflow run by that venv."""

    harness: AirflowHarness
    site_packages: Path
    probe: dict[str, Any]


def _run(args: Iterable[str | Path], **kwargs: Any) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=180, check=False, **kwargs
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return str(done.stdout)


def _requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as built:
        (name,) = [n for n in built.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(built.read(name).decode())
    return metadata.get_all("Requires-Dist", [])


def _closure(requirements: list[str], site: Path) -> list[importlib.metadata.Distribution]:
    """Return the distributions in ``site`` that ``requirements`` need, transitively."""
    installed = {
        canonicalize_name(d.metadata["Name"]): d
        for d in importlib.metadata.distributions(path=[str(site)])
    }
    todo = [(Requirement(r), "") for r in requirements]
    seen: set[tuple[str, str]] = set()
    needed: dict[str, importlib.metadata.Distribution] = {}
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        for wanted in sorted(req.extras) or [""]:  # an extra's deps include the base ones
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            assert name in installed, f"{req} (needed by the wheel) is not installed in {site}"
            needed[name] = installed[name]
            todo += [(Requirement(r), wanted) for r in installed[name].requires or []]
    return list(needed.values())


def _link_closure(dists: list[importlib.metadata.Distribution], site: Path, into: Path) -> None:
    """Link the top-level entries (packages, modules, dist-info) of ``dists`` into ``into``."""
    into.mkdir()
    tops: set[str] = set()
    for dist in dists:
        assert dist.files is not None, f"{dist.metadata['Name']} has no RECORD"
        tops.update(f.parts[0] for f in dist.files if f.parts[0] not in ("..", "__pycache__"))
    for top in sorted(tops):
        (into / top).symlink_to(site / top)


def _install_wheel(root: Path) -> tuple[Path, Path]:
    """Build the wheel, install it into a fresh venv under ``root``; return python, site."""
    wheel = build_wheel(root / "dist")
    _run([sys.executable, "-m", "venv", "--without-pip", root / "venv"])
    python = root / "venv" / "bin" / "python"  # not resolved: that would leave the venv
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    fresh_site = Path(_run([python, "-c", purelib]).strip())
    ours = Path(sysconfig.get_path("purelib"))
    _link_closure(_closure(_requirements(wheel), ours), ours, root / "deps")
    addsite = f"import site; site.addsitedir({str(root / 'deps')!r})\n"
    (fresh_site / "_waitwise_test_deps.pth").write_text(addsite)
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", python, "install", wheel]
    _run([*pip, "--no-index", "--quiet"], cwd=root)
    return python, fresh_site


@pytest.fixture(scope="module")
def wheel_airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WheelAirflow]:
    started = time.monotonic()
    root = tmp_path_factory.mktemp("wheel-e2e")
    python, site = _install_wheel(root)
    (root / "dags").mkdir()
    shutil.copy2(DAG_FILE, root / "dags")
    harness = AirflowHarness(
        dags_folder=root / "dags", data_dir=root / "data", home=root / "airflow", python=python
    )
    # With the components' own environment, from the checkout as working directory: a
    # broken wheel fails here, before an Airflow start that could only time out parsing.
    # The probe's answer is its last line: importing the UI plugin's app logs a warning from
    # the api-server's dependencies (starlette) to stdout before it.
    output = _run([harness.interpreter, "-c", _PROBE], env=harness.env(), cwd=ROOT)
    probe = json.loads(output.strip().splitlines()[-1])
    FIGURES["wheel: build + fresh venv + install + import probe"] = (
        f"{time.monotonic() - started:.1f} s"
    )
    harness.start([DAG_ID])
    FIGURES["wheel: its own Airflow ready"] = f"{harness.ready_s:.1f} s"
    try:
        yield WheelAirflow(harness, site, probe)
    finally:
        harness.stop()
        left = harness.pids()
        assert left == [], f"the wheel harness left Airflow processes behind: {left}"


def _inside(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def test_waitwise_comes_from_the_wheel_only(wheel_airflow: WheelAirflow) -> None:
    probe, site = wheel_airflow.probe, wheel_airflow.site_packages
    assert [_inside(f, site / "waitwise") for f in probe["files"]] == [True, True]
    assert [_inside(f, ROOT) for f in probe["files"]] == [False, False]
    assert probe["metadata"] == [str(site)]  # one airflow-waitwise: the wheel's dist-info
    assert [p for p in probe["sys_path"] if p in ("", ".") or _inside(p, ROOT)] == []
    wheel_modules = {m.removesuffix(".py").replace("/", ".") for m in expected_modules()}
    assert set(probe["modules"]) == {m.removesuffix(".__init__") for m in wheel_modules}
    assert probe["provider"] is True


def test_file_arrival_from_the_wheel_costs_no_worker_run(wheel_airflow: WheelAirflow) -> None:
    airflow = wheel_airflow.harness
    assert airflow.import_errors() == []
    run_id = airflow.trigger(DAG_ID, conf={"file": "wheel/arrived.csv"})
    airflow.wait_for(DAG_ID, run_id, {"sense": "deferred"}, timeout=60)
    assert airflow.data_dir is not None
    (airflow.data_dir / "wheel").mkdir()
    (airflow.data_dir / "wheel" / "arrived.csv").write_text("1,2,3\n")

    airflow.wait_for(DAG_ID, run_id, {"sense": "success"}, timeout=60)
    sense = airflow.task_instances(DAG_ID, run_id)["sense"]
    assert sense["try_number"] == 1
    assert airflow.worker_runs(sense["id"]) == []
    FIGURES["wheel: sensor worker runs"] = "0"
