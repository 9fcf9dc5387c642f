"""End to end, real workers (issue 16): a buyer who leaves the store's server and rejoins
while their access is active gets the roles back. With the Server Members intent enabled in
the Developer Portal the worker asks for it (read from its application's flags) and restores
them on GUILD_MEMBER_ADD within seconds, with no periodic check and no relay tick; without
it the worker connects without the intent (no 4014) and the periodic check restores them."""

from __future__ import annotations

import asyncio

import pytest

from ops.fleet_harness import make_store
from shop.access_relay import AccessRelay
from shop.models import AccessGrant, Variation
from tests.storefront.access_helpers import add_role, roles_of, until_roles
from tests.storefront.helpers import bought, post_panel, wait_ready

pytestmark = pytest.mark.e2e

MEMBERS = 1 << 1  # GUILD_MEMBERS gateway intent


async def vip_store(fleet, dc, mpc, svc, *, members_enabled: bool):
    store = await make_store(fleet, dc, stock={"30 dias": ["KEY-1"]})
    if members_enabled:  # the seller switched "Server Members Intent" on
        await dc.set_faults(store.bot, privileged_intents=["members"])
    vip = await add_role(dc, store, "VIP")
    variation = store.variations[0]
    await Variation.filter(id=variation.id).update(role_ids=[vip], duration_days=30)
    fleet.start()
    await wait_ready(fleet, dc, store)
    await bought(store, mpc, svc, await post_panel(store), variation.id)
    await until_roles(dc, store, None, has={vip})  # delivered with the order
    return store, vip


async def leave_and_rejoin(dc, store, vip: str) -> None:
    await dc.remove_member(store.guild, store.buyer.id)
    await dc.add_member(store.guild, store.buyer.id)
    assert vip not in await roles_of(dc, store)  # Discord: a rejoin starts with no roles


async def test_members_intent_enabled_rejoin_restores_role_within_seconds(db_fleet, dc, mpc, svc):
    db_fleet.env["VITRINE_ACCESS_RECHECK_S"] = "3600"  # the periodic check cannot be the one
    store, vip = await vip_store(db_fleet, dc, mpc, svc, members_enabled=True)
    info = await dc.bot_info(store.bot)
    assert info["session_intents"] and all(i & MEMBERS for i in info["session_intents"])

    await leave_and_rejoin(dc, store, vip)
    await until_roles(dc, store, None, has={vip}, timeout=5)  # no relay tick: the event did it

    async def recorded() -> AccessGrant | None:  # written just after Discord's answer
        grant = await AccessGrant.get(tenant_id=store.tenant.id)
        return grant if grant.roles_applied_at is not None else None

    grant = await db_fleet.wait_for("the grant's roles recorded", recorded, timeout=5)
    assert grant.attempts == 0


async def test_members_intent_disabled_connects_without_it_and_periodic_check_restores(
    db_fleet, dc, mpc, svc
):
    db_fleet.env["VITRINE_ACCESS_RECHECK_S"] = "1"  # the hourly check, every second
    store, vip = await vip_store(db_fleet, dc, mpc, svc, members_enabled=False)
    info = await dc.bot_info(store.bot)
    assert info["last_close_code"] != 4014
    assert info["session_intents"] and not any(i & MEMBERS for i in info["session_intents"])

    await leave_and_rejoin(dc, store, vip)
    await asyncio.sleep(1.5)
    assert vip not in await roles_of(dc, store)  # no GUILD_MEMBER_ADD without the intent
    await until_roles(dc, store, AccessRelay(svc.redis), has={vip})  # the periodic check
