"""People-facing side of accesses (issue 16) with real worker processes in the Discord
sandbox: `/meus-pedidos` lists the buyer's active accesses and their end dates; an access
staff grant, extend and revoke (`shop.access_staff`, what the portal's forms call) changes
the member's roles once the access engine runs it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ops.fleet_harness import make_store
from shop import access_staff
from shop.access_relay import AccessRelay
from shop.models import AccessGrant, AccessStatus, Tenant
from tests.storefront.helpers import wait_ready
from tests.storefront.test_e2e_access import add_role, roles_of, until_roles

pytestmark = pytest.mark.e2e


async def test_my_orders_shows_active_accesses_with_their_end_dates(fleet, dc):
    store = await make_store(fleet, dc, stock={"Mensal": ["KEY-1"]})
    other = await make_store(fleet, dc, stock={"Anual": []}, name="Outra")
    now = datetime.now(UTC)
    ends = (now + timedelta(days=10)).replace(microsecond=0)
    buyer = str(store.buyer.id)
    common = {"buyer_discord_id": buyer, "role_ids": ["1"], "starts_at": now}
    await AccessGrant.create(
        tenant=store.tenant,
        variation=store.variations[0],
        guild_id=store.guild.id,
        ends_at=ends,
        **common,
    )
    await AccessGrant.create(tenant=store.tenant, guild_id=store.guild.id, **common)  # for good
    await AccessGrant.create(
        tenant=store.tenant,
        variation=store.variations[0],
        guild_id=store.guild.id,
        status=AccessStatus.ENDED,
        ends_at=now - timedelta(days=1),
        **common,
    )
    await AccessGrant.create(  # the same buyer in another store: not this store's business
        tenant=other.tenant,
        variation=other.variations[0],
        guild_id=other.guild.id,
        ends_at=now + timedelta(days=99),
        **common,
    )
    fleet.start()
    await wait_ready(fleet, dc, store)
    reply = await (
        await store.buyer.slash(store.bot, store.guild, "loja", "meus-pedidos")
    ).wait_reply(timeout=15)
    text = reply.message.text()
    # No order yet, but the accesses are listed (not "no orders").
    assert "Seus acessos" in text, text
    assert f"Netflix — Mensal: até <t:{int(ends.timestamp())}:f>" in text
    assert "Cargos concedidos pela loja: para sempre" in text
    assert "Anual" not in text and text.count("até <t:") == 1  # ended and foreign: not shown


async def test_staff_grant_extend_and_revoke_move_the_role_on_discord(fleet, dc, svc):
    store = await make_store(fleet, dc, stock={"Mensal": []})
    vip = await add_role(dc, store, "VIP")
    fleet.start()
    await wait_ready(fleet, dc, store)
    relay = AccessRelay(svc.redis)
    tenant = await Tenant.get(id=store.tenant.id)
    grant = await access_staff.grant(tenant, str(store.buyer.id), [vip], 30, "account:1")
    await until_roles(dc, store, relay, has={vip})
    applied = await AccessGrant.get(id=grant.id)
    assert applied.roles_applied_at is not None
    ends = applied.ends_at
    await access_staff.extend(applied, 10, "account:1")
    assert (await AccessGrant.get(id=grant.id)).ends_at == ends + timedelta(days=10)
    await relay.tick()
    assert vip in await roles_of(dc, store)  # extending changes no role
    await access_staff.revoke(await AccessGrant.get(id=grant.id), "account:1")
    await until_roles(dc, store, relay, has=set(), lacks={vip})
    done = await AccessGrant.get(id=grant.id)
    assert done.status == AccessStatus.REVOKED and done.roles_removed_at is not None
