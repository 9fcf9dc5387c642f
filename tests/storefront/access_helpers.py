"""Shared steps of the end-to-end access tests: roles in the sandbox guild, the buyer's roles,
and waiting for them (ticking the reconciler's access relay or not)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from shop.access_relay import AccessRelay


async def add_role(dc: Any, store: Any, name: str) -> str:
    path = f"/_sandbox/guilds/{store.guild.id}/roles"
    return str((await dc.call("POST", path, json={"name": name, "position": 1}))["id"])


async def roles_of(dc: Any, store: Any) -> set[str]:
    path = f"/_sandbox/guilds/{store.guild.id}/members/{store.buyer.id}"
    return set((await dc.call("GET", path))["roles"])


async def until_roles(
    dc: Any,
    store: Any,
    relay: AccessRelay | None,
    *,
    has: set[str],
    lacks: set[str] = frozenset(),
    timeout: float = 10.0,  # noqa: ASYNC109
) -> None:
    """Wait until the buyer holds `has` and none of `lacks`, ticking the access relay as the
    reconciler would (`relay` None: no tick, only the worker's own wake-ups count)."""
    deadline = time.monotonic() + timeout
    while True:
        held = await roles_of(dc, store)
        if has <= held and not lacks & held:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"buyer holds {held}; wanted {has}, not {lacks}")
        if relay is not None:
            await relay.tick()
        await asyncio.sleep(0.2)
