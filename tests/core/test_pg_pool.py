"""A new PostgreSQL connection waits while the server is full, and only then (core.pg_pool)."""

from __future__ import annotations

import asyncpg
import pytest

from core import pg_pool
from core.db import tortoise_config
from core.tuning import TuningError


class FakeConnect:
    """`asyncpg.connect` that raises the given errors first, then returns a connection."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "connection"


@pytest.fixture(autouse=True)
def _quick(monkeypatch):
    monkeypatch.setattr(pg_pool, "FIRST_DELAY_S", 0.001)
    monkeypatch.setattr(pg_pool, "MAX_DELAY_S", 0.01)
    for name in (
        "VITRINE_DB_CONNECT_WAIT_S",
        "VITRINE_WORKER_DB_CONNECTIONS",
        "VITRINE_WORKER_DB_IDLE_S",
    ):
        monkeypatch.delenv(name, raising=False)


async def test_a_full_server_costs_a_wait_not_a_failure(monkeypatch):
    fake = FakeConnect(
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.TooManyConnectionsError('too many connections for role "vitrine"'),
        asyncpg.CannotConnectNowError("the database system is starting up"),
    )
    monkeypatch.setattr(asyncpg, "connect", fake)
    assert await pg_pool.connect_waiting(host="db") == "connection"
    assert fake.calls == 4


async def test_the_wait_ends_with_the_server_s_error(monkeypatch):
    monkeypatch.setenv("VITRINE_DB_CONNECT_WAIT_S", "0.05")
    fake = FakeConnect(*[asyncpg.TooManyConnectionsError("full")] * 10_000)
    monkeypatch.setattr(asyncpg, "connect", fake)
    with pytest.raises(asyncpg.TooManyConnectionsError):
        await pg_pool.connect_waiting()
    assert 1 < fake.calls < 10_000


async def test_other_errors_are_not_waited_for(monkeypatch):
    fake = FakeConnect(asyncpg.InvalidPasswordError("password authentication failed"))
    monkeypatch.setattr(asyncpg, "connect", fake)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await pg_pool.connect_waiting()
    assert fake.calls == 1


def test_a_worker_s_pool_keeps_nothing_open_and_every_pool_waits_for_a_slot():
    url = "postgres://vitrine@db:5432/vitrine"
    worker = tortoise_config(url, lean=True)["connections"]["default"]["credentials"]
    assert worker["minsize"] == 0 and worker["maxsize"] == 2
    assert worker["max_inactive_connection_lifetime"] == 1.0
    assert worker["application_name"] == pg_pool.WORKER_APPLICATION
    assert worker["connect"] is pg_pool.connect_waiting
    service = tortoise_config(url)["connections"]["default"]["credentials"]
    assert service["connect"] is pg_pool.connect_waiting and "minsize" not in service
    sqlite = tortoise_config("sqlite://:memory:", lean=True)["connections"]["default"]
    assert sqlite == tortoise_config("sqlite://:memory:")["connections"]["default"]


def test_a_bad_knob_is_named(monkeypatch):
    monkeypatch.setenv("VITRINE_WORKER_DB_CONNECTIONS", "0")
    with pytest.raises(TuningError, match="VITRINE_WORKER_DB_CONNECTIONS"):
        pg_pool.check_tuning()
