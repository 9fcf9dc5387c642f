"""Session-wide fixtures: a real redis-server on a free port, fresh databases per test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ops.process_tools import free_port, wait_port
from tests.helpers.db import PG_ADMIN_URL


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A private redis-server for this test session (per xdist worker); yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make deps` (apt-get install redis-server)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="vitrine-redis-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--databases",
            "64",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, timeout=10.0)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """A flushed Redis database for one test."""
    import redis as redis_sync

    client = redis_sync.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    yield redis_server


@pytest.fixture
async def redis_client(redis_url):
    """An asyncio Redis client (str responses) on the flushed test database."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch, mp_api):
    """Each test gets its own DATA_DIR/LOG_DIR so nothing leaks into the work tree, and the
    Mercado Pago API the `mp_api` fixture names: a fresh DATA_DIR is a new install, which
    would otherwise get `orders` (core.secrets_store.NEW_INSTALL_DEFAULTS)."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("MERCADOPAGO_API", mp_api)
    for var in ("DATABASE_URL", "REDIS_URL"):
        if var in os.environ and not os.environ.get("VITRINE_KEEP_" + var):
            monkeypatch.delenv(var)
    yield


# --- databases -------------------------------------------------------------------------------
def _pg_reachable() -> bool:
    from urllib.parse import urlparse

    parsed = urlparse(PG_ADMIN_URL)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or 5432), timeout=0.5
        ):
            pass
    except OSError:
        return False
    import asyncio

    import asyncpg

    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(PG_ADMIN_URL, timeout=2)
        except Exception:
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


PG_AVAILABLE = _pg_reachable()
BACKENDS = ["sqlite"] + (["postgres"] if PG_AVAILABLE else [])


def pytest_report_header(config):
    from ops.netns_harness import unavailable

    where = PG_ADMIN_URL.split("@")[-1]
    return [
        f"database backends: {', '.join(BACKENDS)}"
        + ("" if PG_AVAILABLE else f" (PostgreSQL not reachable at {where})"),
        # the partition tests (tests/multihost) run only where namespaces can be made
        f"multihost: {unavailable() or 'network namespaces available'}",
    ]


def _run_async(coro):
    import asyncio

    return asyncio.run(coro)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite file with every migration applied, copied for each test."""
    from core.db import close_db
    from ops.migrations import apply

    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"

    async def build():
        await apply(f"sqlite://{path}")
        await close_db()

    _run_async(build())
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this session (per xdist worker), migrated."""
    import uuid

    import asyncpg

    from core.db import close_db
    from ops.migrations import apply

    name = f"vitrine_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"
    base = PG_ADMIN_URL.rsplit("/", 1)[0]

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _run_async(admin(f'CREATE DATABASE "{name}"'))
    url = f"{base}/{name}"

    async def migrate():
        await apply(url)
        await close_db()

    try:
        _run_async(migrate())
        yield url
    finally:
        _run_async(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate_postgres(url: str) -> None:
    """Empty every table but aerich's, so each test starts from a migrated, empty database."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'aerich'"
            )
        ]
        if tables:
            quoted = ", ".join(f'"{t}"' for t in tables)
            await conn.execute(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=BACKENDS)
def _backend_url(request, tmp_path) -> str:
    # Synchronous on purpose: the session fixtures it pulls in run their own event loop.
    if request.param == "sqlite":
        path = tmp_path / "vitrine.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite://{path}"
    return request.getfixturevalue("pg_database")


@pytest.fixture
async def database_url(_backend_url) -> str:
    """A migrated, empty database: a fresh SQLite file, or the session's PostgreSQL database
    with every table emptied."""
    if _backend_url.startswith("postgres"):
        await _truncate_postgres(_backend_url)
    return _backend_url


@pytest.fixture
async def db(database_url) -> AsyncIterator[str]:
    """tortoise connected to an empty migrated database for one test; yields its URL."""
    from core.db import close_db, init_db

    await init_db(database_url)
    try:
        yield database_url
    finally:
        await close_db()


# --- end to end: stand-ins and a real fleet ---------------------------------------------------
@pytest.fixture
async def sqlite_db(tmp_path, sqlite_template) -> AsyncIterator[str]:
    """A migrated SQLite file shared with subprocesses (orchestrator, workers, services)."""
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
async def sandbox():
    """Discord and Mercado Pago stand-ins in this test's event loop, on free loopback ports."""
    from sandbox.server import run_sandbox

    async with run_sandbox("127.0.0.1", 0, mp_port=0) as sb:
        yield sb


@pytest.fixture
async def dc(sandbox):
    """Control client (and buyer simulator) of the Discord stand-in."""
    from sandbox.discord.client import DiscordSandbox

    async with DiscordSandbox(sandbox.discord_base) as client:
        yield client


@pytest.fixture
async def mpc(sandbox):
    """Control client of the Mercado Pago stand-in."""
    from sandbox.mercadopago.client import MercadoPagoSandboxClient

    async with MercadoPagoSandboxClient(sandbox.mp_api_base) as client:
        yield client


@pytest.fixture
def mp_api() -> str:
    """The Mercado Pago API new charges use (MERCADOPAGO_API) where a fixture asks; a module
    parametrizes it (`pytest.mark.parametrize("mp_api", ["payments", "orders"])`) to run its
    tests once per API (tests/storefront/test_e2e_purchase.py)."""
    return "payments"


@pytest.fixture
def fleet_env() -> dict[str, str]:
    """Extra environment for the orchestrator and its workers; a directory may override it."""
    return {}


@pytest.fixture
async def fleet(tmp_path, sqlite_db, redis_url, sandbox, fleet_env):
    """A real orchestrator (with its zygote and workers) against the stand-ins; every process
    it started is gone after the test."""
    from ops.fleet_harness import Fleet

    env = dict(fleet_env)
    if sandbox.mp_api_base:
        env.setdefault("MERCADOPAGO_API_BASE", sandbox.mp_api_base)
    f = Fleet(tmp_path, sqlite_db, redis_url, sandbox.discord_api_base, extra_env=env)
    try:
        yield f
    finally:
        await f.cleanup()
