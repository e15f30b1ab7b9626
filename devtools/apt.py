"""Install Debian packages the test tooling needs (PostgreSQL, Chromium), as root or with sudo -n.

One implementation for :mod:`devtools.postgres` and :mod:`devtools.chromium`: ``apt-get
update`` then ``install --no-install-recommends``, non-interactive, waiting for a held dpkg
lock; a failure raises the caller's error with the command and the tail of its output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

__all__ = ["apt_install"]


def _privileged(cmd: Sequence[str], refused: Exception) -> list[str]:
    if os.geteuid() == 0:
        return list(cmd)
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], check=False).returncode == 0:
        return ["sudo", "-n", "--preserve-env=DEBIAN_FRONTEND", *cmd]
    raise refused


def apt_install(
    packages: Sequence[str], *, error: type[Exception], refused: str, tag: str, log: bool = True
) -> None:
    """Install ``packages``; raise ``error(refused)`` when this user may not, ``error`` on failure.

    :param tag: the prefix of the progress lines on stderr (``devtools.postgres``, say).
    """
    if not shutil.which("apt-get"):
        raise error(f"no apt-get to install {', '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    opts = ["-o", "DPkg::Lock::Timeout=300", "-o", "Dpkg::Use-Pty=0", "-q"]
    steps = [
        ["apt-get", *opts, "update"],
        ["apt-get", *opts, "install", "-y", "--no-install-recommends", *packages],
    ]
    for step in steps:
        cmd = _privileged(step, error(refused))
        if log:
            print(f"{tag}: {' '.join(cmd)}", file=sys.stderr, flush=True)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise error(
                f"{' '.join(cmd)} failed ({done.returncode}):\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
