"""Opt-in experiments: measure a proposed waitwise change without editing triggers/.

Never active in the default table.  Each installs, in the benchmark child only, the code a
proposal would put in ``triggers/``, so its effect is measured in the same runner.
"""

from __future__ import annotations

import logging
from typing import Any


def install_quiet_success() -> None:
    """Drop waitwise's own INFO line per finished wait (the runner logs the event anyway)."""
    logging.getLogger("waitwise.triggers.base").setLevel(logging.WARNING)


def install(cfg: dict[str, Any]) -> list[str]:
    """Install the experiments ``cfg`` names; return their labels."""
    labels = []
    if cfg.get("quiet_success"):
        install_quiet_success()
        labels.append("quiet_success")
    return labels
