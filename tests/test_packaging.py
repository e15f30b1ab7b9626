"""The built wheel ships every module, both ``py.typed`` markers and the provider entry point.

The expected contents are derived from the source tree: a new module or subpackage under
``triggers/`` or ``operators/`` that the wheel misses fails here, long before a user's
triggerer fails to import it.  The wheel is built offline from a clean copy of the checkout
(no ``build/`` left over from an earlier build can hide a missing or a deleted module), with the
setuptools of this venv (the ``test`` extra pins one that reads this pyproject.toml).
"""

from __future__ import annotations

import configparser
import email.parser
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Source folder -> where it lives in the wheel (pyproject.toml maps them; this is the contract).
PACKAGE_DIRS = {"triggers": "waitwise/triggers", "operators": "waitwise/operators"}
PROVIDER_ENTRY_POINT = "waitwise.triggers.provider:get_provider_info"
# Checkout entries that are never part of a build: caches, venvs, VCS, earlier build output.
_NOT_SOURCE = ("build", "dist")
# Offline: no index, and this venv's setuptools builds it (no isolated build environment).
_PIP_WHEEL = ["-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index", "--no-build-isolation"]


def _ignore(folder: str, names: list[str]) -> set[str]:
    at_root = Path(folder) == ROOT
    return {
        name
        for name in names
        if name == "__pycache__"
        or (at_root and (name.startswith(".") or name in _NOT_SOURCE or name.endswith(".egg-info")))
    }


def build_wheel(dest: Path) -> Path:
    """Build waitwise's wheel from a clean copy of the checkout into ``dest``; return its path.

    Offline and without build isolation: the build uses this interpreter's setuptools.
    """
    source = dest / "source"
    shutil.copytree(ROOT, source, ignore=_ignore, symlinks=True)
    done = subprocess.run(
        [sys.executable, *_PIP_WHEEL, "--wheel-dir", str(dest), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"pip wheel failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    (wheel,) = dest.glob("airflow_waitwise-*.whl")
    return wheel


def expected_modules() -> set[str]:
    """Return the wheel path of every ``.py`` file under the mapped source folders."""
    return {
        f"{target}/{path.relative_to(ROOT / folder).as_posix()}"
        for folder, target in PACKAGE_DIRS.items()
        for path in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    with zipfile.ZipFile(build_wheel(tmp_path_factory.mktemp("wheel"))) as built:
        yield built


def _dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    (path,) = [n for n in wheel.namelist() if n.endswith(f".dist-info/{name}")]
    return wheel.read(path).decode()


def test_wheel_holds_exactly_the_modules_of_the_source_tree(wheel: zipfile.ZipFile) -> None:
    shipped = {n for n in wheel.namelist() if n.endswith(".py")}
    expected = expected_modules()
    assert {"waitwise/triggers/__init__.py", "waitwise/operators/__init__.py"} <= expected
    assert sorted(expected - shipped) == [], "modules missing from the wheel"
    assert sorted(shipped - expected) == [], "modules in the wheel with no source"


def test_wheel_installs_only_the_waitwise_namespace(wheel: zipfile.ZipFile) -> None:
    tops = {n.split("/")[0] for n in wheel.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"waitwise"}
    # Namespace package: no waitwise/__init__.py that could shadow another distribution's.
    assert "waitwise/__init__.py" not in wheel.namelist()


def test_both_packages_ship_py_typed(wheel: zipfile.ZipFile) -> None:
    markers = {n for n in wheel.namelist() if n.endswith("/py.typed")}
    assert markers == {f"{target}/py.typed" for target in PACKAGE_DIRS.values()}


def test_provider_entry_point_names_a_shipped_module(wheel: zipfile.ZipFile) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(_dist_info(wheel, "entry_points.txt"))
    assert dict(entry_points["apache_airflow_provider"]) == {"provider_info": PROVIDER_ENTRY_POINT}
    module = PROVIDER_ENTRY_POINT.split(":")[0]
    assert f"{module.replace('.', '/')}.py" in wheel.namelist()


def test_metadata_names_the_distribution_and_airflow(wheel: zipfile.ZipFile) -> None:
    metadata = email.parser.Parser().parsestr(_dist_info(wheel, "METADATA"))
    assert metadata["Name"] == "airflow-waitwise"
    requires = [r.split(";")[0].replace(" ", "") for r in metadata.get_all("Requires-Dist", [])]
    assert "apache-airflow<4,>=3.3.2" in requires
