"""Fixtures for the orchestrator tests: the sandbox in-process, a SQLite database shared with
the orchestrator subprocess, and a `Fleet` that cleans up every process it started."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest

from sandbox.discord.client import DiscordSandbox
from sandbox.server import RunningSandbox, run_sandbox
from tests.orchestrator.harness import Fleet


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_sandbox("127.0.0.1", 0, mp_port=None) as sb:
        yield sb


@pytest.fixture
async def dc(sandbox: RunningSandbox) -> AsyncIterator[DiscordSandbox]:
    async with DiscordSandbox(sandbox.discord_base) as client:
        yield client


@pytest.fixture
async def sqlite_db(tmp_path, sqlite_template) -> AsyncIterator[str]:
    """A migrated SQLite file (e2e runs on SQLite only: the subprocesses share the file)."""
    from core.db import close_db, init_db

    path = tmp_path / "vitrine.sqlite3"
    shutil.copy(sqlite_template, path)
    url = f"sqlite://{path}"
    await init_db(url)
    try:
        yield url
    finally:
        await close_db()


@pytest.fixture
async def fleet(tmp_path, sqlite_db, redis_url, sandbox) -> AsyncIterator[Fleet]:
    f = Fleet(tmp_path, sqlite_db, redis_url, sandbox.discord_api_base)
    try:
        yield f
    finally:
        await f.cleanup()
