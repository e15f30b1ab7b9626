"""Pure modules stay pure: no asyncio, Airflow, clock or global random in policy code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Everything under these paths is pure: time arithmetic and value objects, no I/O.
PURE_PATHS = [
    "triggers/adaptive",
    "triggers/policy",
    "triggers/breaker/model.py",
    "triggers/breaker/events.py",
    "triggers/breaker/machine.py",
    "triggers/conditions.py",
    "triggers/errors.py",
    "triggers/events.py",
    "triggers/profiles.py",
    "triggers/report/summary.py",
    "triggers/report/render.py",
    "triggers/simulate/scenarios.py",
    "triggers/simulate/demo.py",
    "triggers/simulate/history.py",
    "triggers/spec.py",
]


def _expand(listed: str) -> list[Path]:
    path = ROOT / listed
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


PURE = [path for listed in PURE_PATHS for path in _expand(listed)]
BANNED_MODULES = {"asyncio", "airflow", "time", "aiofiles"}
BANNED_RANDOM = {"random", "uniform", "randint", "randrange", "choice", "gauss", "seed"}


def _violations(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in BANNED_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in BANNED_MODULES:
                found.append(node.module)
            if node.module == "random":
                found += [f"random.{a.name}" for a in node.names if a.name in BANNED_RANDOM]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "random"
            and node.attr in BANNED_RANDOM
        ):
            found.append(f"random.{node.attr}")
    return found


@pytest.mark.parametrize("listed", PURE_PATHS)
def test_every_listed_pure_path_exists(listed: str) -> None:
    assert (ROOT / listed).exists(), f"{listed} is listed as pure but is missing: update the list"


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_imports_nothing_impure(path: Path) -> None:
    assert _violations(path) == []


def test_operators_import_no_private_trigger_module() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {node.module}"
        for path in (ROOT / "operators").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("waitwise.triggers")
        and any(part.startswith("_") for part in (node.module or "").split("."))
    ]
    assert offenders == []


def test_only_operators_import_the_task_sdk_at_module_level() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "triggers").rglob("*.py")
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airflow.sdk")
    ]
    assert offenders == []
