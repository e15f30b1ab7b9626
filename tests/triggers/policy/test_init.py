from __future__ import annotations

import types

import waitwise.triggers.policy as policy


def _isort_key(name: str) -> tuple[int, str]:
    """Order ruff's RUF022 enforces: CONSTANTS, then Classes, then functions."""
    group = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return group, name


def test_all_lists_every_public_name_sorted():
    public = {
        name
        for name, value in vars(policy).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert policy.__all__ == sorted(public, key=_isort_key)
