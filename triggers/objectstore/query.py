"""What an object-store wait asks, and how one listing answers many waits (pure: no I/O).

A URL ``scheme://bucket/key`` names an object; the key may be a glob (``*`` and ``?`` stay
within one ``/``-separated level, ``**`` crosses levels, ``[...]`` as in :mod:`fnmatch`) or end
in ``/`` (any object under that prefix, as ``FileSensor`` takes a non-empty directory).

Pooling.  Every query has a *listing prefix*: the key up to the last ``/`` before its first
glob character (for a plain key: its "directory").  :func:`plan` groups the queries due in a
tick by ``(scheme, conn_id, bucket, prefix)``: ONE listing of each prefix (all its pages, at
most 1,000 keys a page) answers every query on it.  A listing reads one level (delimiter
``/``) unless a query needs deeper keys.  Where a prefix holds only a few plain keys
(fewer than :data:`LIST_FROM`) each key is asked alone instead (a one-key listing from the key
itself), which costs one request each whatever the prefix holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from waitwise.triggers.errors import ObjectStoreError, PolicyConfigError
from waitwise.triggers.events import FoundItem

__all__ = [
    "LIST_FROM",
    "PAGE_KEYS",
    "Listing",
    "ObjectEntry",
    "ObjectQuery",
    "ObjectStoreError",
    "ObjectUrl",
    "match",
    "parse_location",
    "plan",
]

PAGE_KEYS: Final = 1_000
"""Keys in one listing page (S3's ``ListObjectsV2`` maximum)."""

LIST_FROM: Final = 4
"""Distinct plain keys on one prefix from which one listing replaces a request per key."""

_SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)", re.S)
_MAGIC = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class ObjectUrl:
    """A parsed ``scheme://bucket/key`` (``key`` may be a glob, or end in ``/``)."""

    scheme: str
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.key}"


def parse_location(name: str, value: str) -> ObjectUrl | str:
    """Return ``value`` as an :class:`ObjectUrl`, or as a local path (no scheme, ``file://``).

    Only the form is checked (whether a provider handles the scheme is the caller's
    question).  A templated bucket (``{{ ... }}``) is accepted as it is.

    :raises PolicyConfigError: naming ``name``: a ``file://`` URL that is not absolute, a URL
        without a bucket or without a key.
    """
    found = _SCHEME.fullmatch(value)
    if found is None:
        return value
    scheme, rest = found["scheme"].lower(), found["rest"]
    if scheme == "file":
        path = rest.removeprefix("localhost")
        if not path.startswith("/"):
            raise PolicyConfigError(f"{name}: a file:// URL needs an absolute path, got {value!r}")
        return path
    bucket, _, key = rest.partition("/")
    if not bucket.strip() or bucket != bucket.strip():
        raise PolicyConfigError(f"{name}: no bucket in {value!r} (expected {scheme}://bucket/key)")
    if not key:
        raise PolicyConfigError(
            f"{name}: no key in {value!r}: name an object, a glob, or a prefix ending in '/'"
        )
    return ObjectUrl(scheme, bucket, key)


@dataclass(frozen=True, slots=True)
class ObjectQuery:
    """One check: an object key or glob in a bucket, through connection ``conn_id``.

    :param conn_id: the Airflow connection; ``None``: the scheme's default (``aws_default``).
    :param limit: at most this many objects are reported for a glob.

    Derived once: ``magic`` (a glob or a trailing ``/``), ``prefix`` (the listing prefix),
    ``deep`` (keys below one level under ``prefix`` can match) and the key's matcher.
    """

    scheme: str
    conn_id: str | None
    bucket: str
    key: str
    limit: int = 100
    magic: bool = field(init=False, repr=False, compare=False)
    prefix: str = field(init=False, repr=False, compare=False)
    deep: bool = field(init=False, repr=False, compare=False)
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        glob = _MAGIC.search(self.key)
        at = glob.start() if glob else len(self.key)
        prefix = self.key[: self.key.rfind("/", 0, at) + 1]
        rest = self.key[len(prefix) :]
        under = self.key.endswith("/")
        object.__setattr__(self, "magic", glob is not None or under)
        object.__setattr__(self, "prefix", self.key if under and not glob else prefix)
        object.__setattr__(self, "deep", under or "/" in rest or "**" in rest)
        regex = translate(self.key) + (".+" if under else "")
        object.__setattr__(self, "_regex", re.compile(regex + r"\Z", re.S))

    @property
    def pattern(self) -> str:
        """Return the URL waited for."""
        return f"{self.scheme}://{self.bucket}/{self.key}"

    def matches(self, key: str) -> bool:
        """Return whether object ``key`` answers this query."""
        return self._regex.match(key) is not None


@dataclass(frozen=True, slots=True)
class Listing:
    """One listing: every page of ``prefix`` (one level unless ``deep``), or one key.

    ``single``: a one-key listing (``prefix`` is the key itself, one request, one key back).
    """

    scheme: str
    conn_id: str | None
    bucket: str
    prefix: str
    deep: bool
    single: bool = False


@dataclass(frozen=True, slots=True)
class ObjectEntry:
    """One object a listing returned."""

    key: str
    size: int
    mtime: float
    etag: str | None = None


def plan(queries: Sequence[ObjectQuery]) -> dict[Listing, list[ObjectQuery]]:
    """Return the listings that answer ``queries``, each with the queries it answers.

    One listing per ``(scheme, conn_id, bucket, prefix)``; a prefix with no glob and fewer
    than :data:`LIST_FROM` distinct keys gets a one-key listing per key instead.
    """
    groups: dict[tuple[str, str | None, str, str], list[ObjectQuery]] = {}
    for query in queries:
        groups.setdefault((query.scheme, query.conn_id, query.bucket, query.prefix), []).append(
            query
        )
    listings: dict[Listing, list[ObjectQuery]] = {}
    for (scheme, conn_id, bucket, prefix), members in groups.items():
        keys = {query.key for query in members}
        if not any(query.magic for query in members) and len(keys) < LIST_FROM:
            for query in members:
                one = Listing(scheme, conn_id, bucket, query.key, deep=True, single=True)
                listings.setdefault(one, []).append(query)
            continue
        deep = any(query.deep for query in members)
        listings[Listing(scheme, conn_id, bucket, prefix, deep)] = members
    return listings


def match(query: ObjectQuery, entries: Mapping[str, ObjectEntry]) -> list[FoundItem]:
    """Return the objects of ``entries`` (by key, in key order) that answer ``query``.

    Directory markers (keys ending in ``/``) are never reported.  At most ``query.limit``.
    """
    if not query.magic:
        entry = entries.get(query.key)
        return [] if entry is None else [_item(query, entry)]
    found: list[FoundItem] = []
    for key, entry in entries.items():
        if not key.endswith("/") and query.matches(key):
            found.append(_item(query, entry))
            if len(found) >= query.limit:
                break
    return found


def _item(query: ObjectQuery, entry: ObjectEntry) -> FoundItem:
    item = FoundItem(
        path=f"{query.scheme}://{query.bucket}/{entry.key}", size=entry.size, mtime=entry.mtime
    )
    if entry.etag is not None:
        item["etag"] = entry.etag
    return item


def translate(glob: str) -> str:
    """Return a regex for ``glob``: ``*``/``?`` within one level, ``**`` across levels.

    ``**/`` also matches no level at all; ``[...]`` and ``[!...]`` are character classes.
    """
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := glob.find("]", i + 2)) != -1:
            body = glob[i + 1 : end].replace("\\", "\\\\")
            out.append(f"[{'^' + body[1:] if body.startswith('!') else body}]")
            i = end + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)
