"""Pure modules stay pure: no asyncio, Airflow, clock or global random in policy code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PURE = [
    *sorted((ROOT / "triggers" / "policy").glob("*.py")),
    ROOT / "triggers" / "events.py",
    ROOT / "triggers" / "breaker_events.py",
    ROOT / "triggers" / "breaker_state.py",
]
BREAKER = ROOT / "triggers" / "breaker.py"
if BREAKER.exists():
    PURE.append(BREAKER)
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


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_imports_nothing_impure(path: Path) -> None:
    assert _violations(path) == []


def test_only_operators_import_the_task_sdk_at_module_level() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "triggers").rglob("*.py")
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airflow.sdk")
    ]
    assert offenders == []
