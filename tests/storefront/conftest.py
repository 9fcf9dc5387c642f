"""Storefront fixtures: the workers' storefront settings (`fleet_env`) and payment services
against the sandbox (`svc`). The `Fleet` harness and `make_store` live in `ops.fleet_harness`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ops.fleet_harness import STOREFRONT_ENV, payment_services


@pytest.fixture
def fleet_env(mp_api: str) -> dict[str, str]:
    return {**STOREFRONT_ENV, "MERCADOPAGO_API": mp_api}


@pytest.fixture
async def svc(sandbox, redis_url, mp_api) -> AsyncIterator[Any]:
    services = payment_services(sandbox, redis_url, mp_api)
    try:
        yield services
    finally:
        await services.gateway.aclose()
        await services.redis.aclose()


@pytest.fixture
async def db_fleet(tmp_path, db, redis_url, sandbox, fleet_env) -> AsyncIterator[Any]:
    """`fleet` on this test's database, SQLite or PostgreSQL (the `db` parameter), for the
    end-to-end tests that run on both."""
    from ops.fleet_harness import Fleet

    env = {**fleet_env, "MERCADOPAGO_API_BASE": str(sandbox.mp_api_base)}
    f = Fleet(tmp_path, db, redis_url, sandbox.discord_api_base, extra_env=env)
    try:
        yield f
    finally:
        await f.cleanup()
