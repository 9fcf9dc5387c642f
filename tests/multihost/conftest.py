"""Fixtures of the multi-host tests: two orchestrator nodes in network namespaces on one
shared PostgreSQL database (SQLite cannot be shared between machines)."""

from __future__ import annotations

import pytest

from ops.netns_harness import unavailable
from tests.conftest import PG_AVAILABLE
from tests.helpers.db import PG_ADMIN_URL
from tests.multihost.world import TTL, two_hosts


@pytest.fixture
def _backend_url(request) -> str:
    """PostgreSQL only (overrides the SQLite/PostgreSQL parametrization of `db`)."""
    if not PG_AVAILABLE:
        where = PG_ADMIN_URL.split("@")[-1]
        pytest.skip(f"PostgreSQL not reachable at {where}: the hosts need one shared database")
    return request.getfixturevalue("pg_database")


@pytest.fixture
def netns() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
async def world(netns, db, sandbox, dc, mpc, tmp_path):
    """Two hosts, each running half of the bots, orders waiting for payment."""
    async with two_hosts(tmp_path, db, sandbox, dc, mpc, ttl=TTL) as w:
        yield w
