"""`core.db.release_db`: a worker done with its start-up reads holds no database connection
(on SQLite: no connection thread and no lock on the `-shm` file), and its next query simply
opens one again."""

from __future__ import annotations

import threading

from core.db import release_db
from fleet.models import BotInstance


def _sqlite_threads() -> int:
    return sum("_connection_worker_thread" in t.name for t in threading.enumerate())


async def test_released_connection_is_gone_and_the_next_query_opens_one(db):
    assert await BotInstance.filter(id=1).count() == 0
    threads = _sqlite_threads()  # with this process's connection open
    await release_db()
    if db.startswith("sqlite"):
        assert _sqlite_threads() == threads - 1  # the connection's thread ended with it
    assert await BotInstance.filter(id=1).count() == 0  # opened again, on demand
    await release_db()
    await release_db()  # nothing open: nothing to do
