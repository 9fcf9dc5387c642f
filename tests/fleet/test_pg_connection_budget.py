"""End to end on PostgreSQL: a fleet larger than the connections the server gives it.

PostgreSQL serves `max_connections` at once (100 by default) and each bot is a process of its
own. Workers used to keep a connection for life, so the bots past the server's limit failed at
start and crash-looped (300 bots on a default server: 94 online). Here the limit is a role's
`CONNECTION LIMIT` (the same SQLSTATE 53300 as a full server): every bot comes online at its
first attempt, and an idle bot holds no connection (`core.pg_pool`)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from core.pg_pool import WORKER_APPLICATION
from fleet.control_protocol import mark_dirty
from fleet.states import InstanceState
from ops.fleet_harness import Fleet
from ops.migrations import apply
from tests.conftest import PG_AVAILABLE
from tests.helpers.db import PG_ADMIN_URL

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not PG_AVAILABLE, reason="PostgreSQL not reachable: the limit tested is a server's"
    ),
]
LIMIT = 8  # connections the role may hold at once: the orchestrator's pool (5) and 3
BOTS = 12


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def limited_db():
    """A database owned by a role (not a superuser: they pass any limit) that may hold only
    LIMIT connections at once; its URL."""
    from core.db import close_db

    tag = uuid.uuid4().hex[:8]
    role, name = f"vitrine_small_{tag}", f"vitrine_budget_{tag}"
    await _admin(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT {LIMIT}')
    await _admin(f'CREATE DATABASE "{name}" OWNER "{role}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].split("://", 1)[1].rsplit("@", 1)[-1]
    url = f"postgres://{role}@{base}/{name}"
    try:
        await apply(url)
        await close_db()
        yield url, role
    finally:
        await close_db()
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await _admin(f'DROP ROLE IF EXISTS "{role}"')


async def _connections(role: str) -> dict[str, int]:
    """{application_name: connections} of the role."""
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        rows = await conn.fetch(
            "SELECT application_name, count(*) AS n FROM pg_stat_activity WHERE usename = $1 "
            "GROUP BY application_name",
            role,
        )
    finally:
        await conn.close()
    return {r["application_name"]: r["n"] for r in rows}


async def _sessions(name: str) -> int:
    """Sessions ever opened on the database (PostgreSQL 14+ counts them at connect)."""
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        return int(
            await conn.fetchval("SELECT sessions FROM pg_stat_database WHERE datname = $1", name)
        )
    finally:
        await conn.close()


async def test_more_bots_than_connections_all_come_online_and_idle_bots_hold_none(
    tmp_path, limited_db, redis_url, sandbox, dc
):
    from core.db import close_db, init_db

    url, role = limited_db
    fleet = Fleet(tmp_path, url, redis_url, sandbox.discord_api_base)
    try:
        await init_db(url)
        bots = [await dc.create_bot(f"Loja {n}") for n in range(BOTS)]
        # bot_public as onboarding recorded it (the sandbox's applications are public)
        ids = [
            await fleet.add_instance(b.token, name=f"Loja {n}", bot_public=True)
            for n, b in enumerate(bots)
        ]
        await close_db()  # this test's own connection is not one the fleet can use
        name = url.rsplit("/", 1)[1]
        sessions = await _sessions(name)
        fleet.start()
        await mark_dirty(fleet.redis, *ids)
        recs = [await fleet.wait_state(i, InstanceState.ONLINE, timeout=40) for i in ids]
        # every bot at its first attempt: one login each, no crash on record
        assert [(await dc.bot_info(b))["identify_count"] for b in bots] == [1] * BOTS
        assert [r.crashes for r in recs] == [[]] * BOTS
        # the orchestrator sent each worker its start row (fleet.start_data): a start opens
        # no connection, and the sessions opened are the orchestrator's (6 here; 18 when
        # each worker read its row itself)
        await asyncio.sleep(1.5)  # a closed session's count reaches the statistics
        opened = await _sessions(name) - sessions
        assert opened < BOTS, f"{opened} sessions opened for {BOTS} bot starts"
        await asyncio.sleep(3)  # longer than a worker's idle connection lives (1 s)
        held = await _connections(role)
        assert held.get(WORKER_APPLICATION, 0) == 0, f"idle bots hold connections: {held}"
        for iid, rec in zip(ids, recs, strict=True):  # the same processes, still serving
            assert (await fleet.record(iid)).pid == rec.pid
    finally:
        await fleet.cleanup()
        await close_db()
