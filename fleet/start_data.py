"""What a worker needs of the database to start: its instance's token (still encrypted), its
tenant, the recorded `bot_public` and its store's guild: one row.

The orchestrator reads it (a reconcile pass for all the bots it may start, in one query; a
start outside a pass for itself) and passes it along with the spawn request
(`fleet.zygote_protocol`), so that a starting worker opens no database
connection at all: on SQLite each one cost a connection, its thread, four PRAGMAs and a
query (~6 ms of a ~30 ms start, ~20 % of a 2,000-bot mass start's worker CPU); on
PostgreSQL a connection per start, i.e. 2,000 in a mass start. The token stays Fernet
ciphertext on the way (it is decrypted by the worker, as before); the worker reads the row
itself when the orchestrator could not (database briefly unreachable) or sent nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any, cast

from fleet.models import BotInstance

log = logging.getLogger("fleet")

START_FIELDS = ("token_enc", "tenant_id", "bot_public", "tenant__guild_id")
# how long a spawn waits for the row: the orchestrator's SQLite connection runs one query at a
# time, and one waiting on a write lock (busy_timeout: 10 s) must not hold a crashed bot's
# replacement back; the worker then reads the row itself (WAL: readers do not wait)
READ_WAIT_S = 0.5
# a row read for a pass serves that pass's starts; a later start (a crash restart) reads again
PREFETCH_FRESH_S = 60.0


async def start_row(instance_id: int) -> dict[str, Any] | None:
    """The instance's row (None: it no longer exists), one `values()` query, no model object."""
    # tortoise types values() after first() as a list of dicts; it is one dict or None
    return cast(
        dict[str, Any] | None,
        await BotInstance.filter(id=instance_id).first().values(*START_FIELDS),
    )


async def for_spawn(instance_id: int) -> dict[str, Any] | None:
    """The row to send with a spawn request; None (the worker reads it itself) when the
    database does not answer or the instance is gone (the worker then exits cleanly)."""
    try:
        return await asyncio.wait_for(start_row(instance_id), READ_WAIT_S)
    except Exception as exc:  # noqa: BLE001 - the worker reads it itself, as before
        log.warning(
            "instance %s: start row not read (%s); the worker reads it",
            instance_id,
            type(exc).__name__,
        )
        return None


class PassRows:
    """The start rows of a reconcile pass's bots, read in one query when the pass begins:
    its starts take theirs from here instead of queueing one query each behind the fencing
    claims on the orchestrator's connection (SQLite runs them one at a time: in a 2,000-bot
    mass start ~1,000 single reads timed out there). A row serves only a start of the
    `config_version` it was read with, within PREFETCH_FRESH_S; any other start reads its own
    (`for_spawn`)."""

    def __init__(self) -> None:
        # instance -> (read at, its config_version then, the row)
        self.rows: dict[int, tuple[float, int, dict[str, Any]]] = {}

    async def read(self, ids: Iterable[int]) -> None:
        wanted = list(ids)
        if not wanted:
            return
        try:
            rows = await asyncio.wait_for(
                BotInstance.filter(id__in=wanted).values("id", "config_version", *START_FIELDS),
                READ_WAIT_S * 4,
            )
        except Exception as exc:  # noqa: BLE001 - each start then reads its own row
            log.warning("start rows of a pass not read (%s)", type(exc).__name__)
            return
        now = time.monotonic()
        for row in rows:
            self.rows[int(row.pop("id"))] = (now, int(row.pop("config_version")), row)

    def forget(self, instance_id: int) -> None:
        """The instance changed (a control command re-read it): its next start reads."""
        self.rows.pop(instance_id, None)

    async def take(self, instance_id: int, config_version: int | None) -> dict[str, Any] | None:
        """The row read for this start's configuration (the token is part of it: an edit
        raises `config_version`), else one read now."""
        read_at, version, row = self.rows.pop(instance_id, (0.0, None, None))
        if (
            row is not None
            and version == config_version
            and time.monotonic() - read_at < PREFETCH_FRESH_S
        ):
            return row
        return await for_spawn(instance_id)


def checked(raw: object) -> dict[str, Any] | None:
    """A row that came through the zygote, if it has the shape `start_row` gives (else None:
    the worker reads the database instead of trusting a malformed message)."""
    if not isinstance(raw, dict) or set(raw) != set(START_FIELDS):
        return None
    guild = raw["tenant__guild_id"]
    if (
        not isinstance(raw["token_enc"], str)
        or not raw["token_enc"]
        or type(raw["tenant_id"]) is not int
        or raw["bot_public"] not in (True, False, None)
        or not (guild is None or isinstance(guild, str | int))
    ):
        return None
    return raw
