"""Which filesystem holds a directory, and whether inotify sees every change made there.

inotify reports only the changes this kernel makes: on a network, cluster or FUSE filesystem
(NFS, SMB, sshfs, s3fs...) files changed by other machines raise no event.  :func:`can_notify`
tells the two apart by the filesystem type named in this process's mount table
(``/proc/self/mountinfo``); :class:`~waitwise.triggers.notify.DirectoryEvents` asks it before
watching a directory in mode ``"auto"``.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Final

__all__ = [
    "MOUNTINFO",
    "REMOTE_FSTYPES",
    "can_notify",
    "fstype_of",
    "is_remote_fstype",
    "read_mountinfo",
]

log = logging.getLogger(__name__)

MOUNTINFO: Final = "/proc/self/mountinfo"

# Filesystem types on which another machine (or a FUSE daemon) changes files behind the
# kernel's back; "fuse*" (fuse, fuseblk, fuse.sshfs, fuse.s3fs...) is matched by prefix.
REMOTE_FSTYPES: Final = frozenset(
    {"9p", "afs", "autofs", "beegfs", "ceph", "cifs", "coda", "gfs2", "glusterfs", "gpfs"}
    | {"lustre", "ncpfs", "nfs", "nfs4", "ocfs2", "orangefs", "smb3", "smbfs", "vboxsf"}
    | {"virtiofs"}
)

_LOGGED: set[str] = set()


def log_once(logger: logging.Logger, key: str, level: int, msg: str, *args: object) -> None:
    """Log ``msg`` the first time ``key`` is seen in this process, at DEBUG afterwards."""
    first = key not in _LOGGED
    _LOGGED.add(key)
    logger.log(level if first else logging.DEBUG, msg, *args)


def read_mountinfo() -> str:
    """Return this process's mount table, ``/proc/self/mountinfo`` (blocking)."""
    with open(MOUNTINFO, "rb") as table:  # blocking-ok: via asubscribe's worker thread
        return os.fsdecode(table.read())


def fstype_of(path: str, mountinfo: str) -> str | None:
    """Return the filesystem type of the mount holding ``path`` (absolute, symlink-free).

    The mount whose mount point is the longest prefix of ``path`` wins; of mounts stacked on
    one point, the last listed (the one on top).  ``None`` if no line applies.
    """
    best, found = -1, None
    for line in mountinfo.split("\n"):
        fields = line.split(" ")
        try:
            point, kind = _unescape(fields[4]), fields[fields.index("-", 6) + 1]
        except (IndexError, ValueError):
            continue
        if len(point) >= best and _within(path, point):
            best, found = len(point), kind
    return found


def is_remote_fstype(fstype: str) -> bool:
    """Return whether changes on ``fstype`` may bypass this kernel (network, cluster, FUSE)."""
    return fstype in REMOTE_FSTYPES or fstype.startswith("fuse")


def can_notify(directory: str) -> bool:
    """Return whether inotify sees every change in ``directory``'s filesystem (blocking).

    False on network, cluster and FUSE filesystems (:data:`REMOTE_FSTYPES`), where changes
    made by other machines never raise an event, and when the mount table cannot be read.
    The type is read by name from ``/proc/self/mountinfo`` (:func:`read_mountinfo`, longest
    mount point above the real path), not from ``statfs``'s ``f_type``: names give FUSE's
    subtype, need no per-architecture struct layout, and are testable as text.
    """
    try:
        table = read_mountinfo()
    except OSError as exc:
        log_once(
            log, "mountinfo", logging.INFO, "cannot read %s (%s): all waits poll", MOUNTINFO, exc
        )
        return False
    fstype = fstype_of(os.path.realpath(directory), table)
    return fstype is not None and not is_remote_fstype(fstype)


def _unescape(field: str) -> str:
    """Undo mountinfo's octal escapes (space, tab, newline, backslash in mount points)."""
    if "\\" not in field:
        return field
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def _within(path: str, point: str) -> bool:
    return point == "/" or path == point or path.startswith(point + "/")
