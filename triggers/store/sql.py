"""The api-server's read path: Airflow's ``variable`` table through Airflow's own ORM.

For code running inside an Airflow process that has the metadata database (the
api-server, so the monitoring plugin; also the scheduler or the ``airflow`` CLI), not
inside a trigger or a task (those have no database: use :class:`.VariableBackend`).
Values are read as columns and decrypted with Airflow's Fernet key when the row says it
is encrypted, as ``Variable.val`` does; loading ``Variable`` objects instead would run
Airflow's secrets masker over every value (it lowercases, URL-quotes and regex-escapes
it: seconds for a large source). Writes go through ``Variable.set`` /
``Variable.delete`` (encrypting, checking secrets backends for a shadowing key).

Cost: :meth:`MetadataBackend.items` is one ``SELECT`` on the table's unique ``key``
index for a whole source (range scan), however many records it holds; each other call
is one short transaction. Every call runs in a worker thread (the ORM is sync).
Keys are matched case-sensitively (SQLite's ``LIKE`` is not: rows are re-checked).
Secrets backends are not consulted on reads: waitwise's keys live in the table.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .variables import DESCRIPTION

logger = logging.getLogger(__name__)


class MetadataBackend:
    """Key-value backend and bulk reader over Airflow's metadata database.

    :param create_session: a context-manager factory yielding an SQLAlchemy session;
        ``None`` uses ``airflow.utils.session.create_session`` (commits on exit).
    """

    def __init__(self, create_session: Any | None = None) -> None:
        from airflow.models.variable import Variable

        if create_session is None:
            from airflow.utils.session import create_session
        self._session: Any = create_session
        self._model: Any = Variable

    async def get(self, key: str) -> str | None:
        """Return the decrypted value of ``key``, or ``None``."""
        found = await asyncio.to_thread(self._select, key, exact=True)
        return found.get(key)

    async def items(self, prefix: str) -> dict[str, str]:
        """Return every key starting with ``prefix`` and its decrypted value (one query)."""
        return await asyncio.to_thread(self._select, prefix, exact=False)

    async def keys(self, prefix: str) -> list[str]:
        """Return every key starting with ``prefix`` (one query, values not read)."""
        return await asyncio.to_thread(self._keys, prefix)

    async def set(self, key: str, value: str) -> None:
        """Create or overwrite ``key`` as Airflow does (encrypted if a Fernet key is set)."""
        await asyncio.to_thread(self._write, key, value)

    async def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error."""
        await asyncio.to_thread(self._write, key, None)

    def _select(self, text: str, *, exact: bool) -> dict[str, str]:
        from sqlalchemy import select

        model = self._model
        where = model.key == text if exact else model.key.startswith(text, autoescape=True)
        query = select(model.key, model._val, model.is_encrypted).where(where)
        with self._session() as session:
            rows = session.execute(query).all()
        found = {}
        for key, value, encrypted in rows:
            plain = _decrypt(key, value) if encrypted else value
            if key.startswith(text) and isinstance(plain, str):
                found[key] = plain
        return found

    def _keys(self, prefix: str) -> list[str]:
        from sqlalchemy import select

        column = self._model.key
        with self._session() as session:
            keys = session.scalars(select(column).where(column.startswith(prefix, autoescape=True)))
            return [key for key in keys if key.startswith(prefix)]

    def _write(self, key: str, value: str | None) -> None:
        with self._session() as session:
            if value is None:
                self._model.delete(key, session=session)
            else:
                self._model.set(key, value, description=DESCRIPTION, session=session)


def _decrypt(key: str, value: object) -> str | None:
    """Return the decrypted value, or ``None`` (warned) as ``Variable.val`` does."""
    from airflow.models.crypto import get_fernet

    try:
        decrypted: bytes = get_fernet().decrypt(str(value).encode())
        return decrypted.decode()
    except Exception as exc:  # InvalidToken, a missing key: Airflow logs and reads None
        logger.warning("Cannot decrypt variable %s: %s", key, type(exc).__name__)
        return None
