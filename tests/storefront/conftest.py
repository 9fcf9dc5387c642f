"""Storefront fixtures: the workers' storefront settings (`fleet_env`) and payment services
against the sandbox (`svc`). The `Fleet` harness and `make_store` live in `ops.fleet_harness`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ops.fleet_harness import STOREFRONT_ENV, payment_services


@pytest.fixture
def fleet_env() -> dict[str, str]:
    return dict(STOREFRONT_ENV)


@pytest.fixture
async def svc(sandbox, redis_url) -> AsyncIterator[Any]:
    services = payment_services(sandbox, redis_url)
    try:
        yield services
    finally:
        await services.gateway.aclose()
        await services.redis.aclose()
