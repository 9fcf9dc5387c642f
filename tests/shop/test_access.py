"""The access engine (issue 16) on SQLite and PostgreSQL, against the Discord sandbox through
the worker's own REST adapter: roles added on delivery, reminders 3 d and 1 d before the end
(once each), expiry removes the roles, a renewal extends from the current end (once per
order, however often the delivery is replayed), a refund removes only what no other active
grant holds, a rejoin gets the roles back at the periodic check, two claimers act once, a
role above the bot's is refused and retried later with the seller told."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import disnake
import pytest

from core.models import AuditLog
from shop.access import grant_for_order
from shop.access_revoke import revoke_for_order
from shop.access_run import RoleResult, RunReport, process, run_due
from shop.models import (
    AccessGrant,
    AccessOrder,
    AccessStatus,
    Account,
    Order,
    Product,
    Tenant,
    Variation,
)
from shop.orders import transition
from shop.states import OrderStatus
from worker.extensions.storefront.access import RestAccess

DAY = timedelta(days=1)


class _Storefront:
    """What `RestAccess` reads from the worker's storefront: the bot and the store."""

    def __init__(self, bot: disnake.Client, tenant: Tenant) -> None:
        self.bot = bot
        self._tenant = tenant

    async def tenant(self) -> Tenant:
        return self._tenant


class Counting(RestAccess):
    """The worker's adapter, counting the role calls that reach Discord."""

    def __init__(self, sf: Any) -> None:
        super().__init__(sf)
        self.calls: list[tuple[str, str]] = []

    async def add_role(self, grant: AccessGrant, role_id: str) -> RoleResult:
        self.calls.append(("add", role_id))
        return await super().add_role(grant, role_id)

    async def remove_role(self, grant: AccessGrant, role_id: str) -> RoleResult:
        self.calls.append(("remove", role_id))
        return await super().remove_role(grant, role_id)


@pytest.fixture
async def world(db, sandbox, dc) -> AsyncIterator[dict[str, Any]]:
    """A store whose bot is in a guild with VIP, Extra and Curso roles, a buyer who is a
    member, a 30-day VIP variation and a permanent VIP+Curso one; the worker's adapter."""
    bot = await dc.create_bot("Loja")
    guild = await dc.create_guild(
        "Servidor", channels=["loja", "vendas"], roles=["VIP", "Extra", "Curso"], bots=[bot]
    )
    buyer = await dc.buyer("ana", guilds=[guild])
    owner = await Account.create(discord_id=uuid.uuid4().hex[:18], username="seller")
    tenant = await Tenant.create(
        owner=owner, name="Loja", guild_id=guild.id, sales_log_channel_id=guild.channel("vendas")
    )
    product = await Product.create(tenant=tenant, name="Clube")
    vip, curso = guild.role("VIP"), guild.role("Curso")
    monthly = await Variation.create(
        tenant=tenant,
        product=product,
        name="30 dias",
        price_cents=2990,
        kind="role_only",
        role_ids=[vip],
        duration_days=30,
    )
    forever = await Variation.create(
        tenant=tenant,
        product=product,
        name="Vitalício",
        price_cents=9990,
        kind="role_only",
        role_ids=[vip, curso],
    )
    base = disnake.http.Route.BASE
    disnake.http.Route.BASE = sandbox.discord_api_base
    client = disnake.Client()
    await client.http.static_login(bot.token)
    try:
        yield {
            "dc": dc,
            "bot": bot,
            "sandbox": sandbox,
            "guild": guild,
            "buyer": buyer,
            "tenant": tenant,
            "monthly": monthly,
            "forever": forever,
            "vip": vip,
            "curso": curso,
            "discord": Counting(_Storefront(client, tenant)),
        }
    finally:
        await client.close()
        disnake.http.Route.BASE = base


async def deliver(w: dict[str, Any], variation: Variation, **fields: Any) -> Order:
    order = await Order.create(
        tenant=w["tenant"],
        product_id=variation.product_id,
        variation=variation,
        interaction_id=uuid.uuid4().hex[:20],
        buyer_discord_id=w["buyer"].id,
        quantity=1,
        unit_price_cents=variation.price_cents,
        total_cents=variation.price_cents,
        **fields,
    )
    await transition(order.id, OrderStatus.PAID, "test")
    await transition(order.id, OrderStatus.DELIVERED, "test")
    return await Order.get(id=order.id)


async def roles_of(w: dict[str, Any]) -> set[str]:
    path = f"/_sandbox/guilds/{w['guild'].id}/members/{w['buyer'].id}"
    return set((await w["dc"].call("GET", path))["roles"])


async def run(w: dict[str, Any], now: datetime, **kw: Any) -> Any:
    return await run_due(w["tenant"].id, w["discord"], now=now, **kw)


async def test_vip_bought_role_added_reminded_3d_and_1d_once_then_expired(world):
    w = world
    order = await deliver(w, w["monthly"])
    grant = await AccessGrant.get(order_id=order.id)
    assert grant.status == AccessStatus.ACTIVE and grant.role_ids == [w["vip"]]
    assert grant.ends_at is not None
    assert abs(grant.ends_at - (order.delivered_at + 30 * DAY)) < timedelta(seconds=1)
    now = datetime.now(UTC)
    assert (await run(w, now)).added == 1
    assert w["vip"] in await roles_of(w)
    assert await w["buyer"].dms() == []

    three_left = grant.ends_at - 3 * DAY + timedelta(minutes=1)
    for _ in range(2):  # the second pass finds nothing due: one DM
        await run(w, three_left)
    [dm] = await w["buyer"].dms()
    assert "3 dias" in dm.text() and dm.custom_ids() == [f"vt:renew:{grant.id}"]

    one_left = grant.ends_at - DAY + timedelta(minutes=1)
    await run(w, one_left)
    await run(w, one_left + timedelta(minutes=5))
    dms = await w["buyer"].dms()
    assert len(dms) == 2 and "amanhã" in dms[-1].text()

    report = await run(w, grant.ends_at + timedelta(seconds=1))
    assert report.expired == 1 and report.removed == 1
    assert w["vip"] not in await roles_of(w)
    ended = await AccessGrant.get(id=grant.id)
    assert ended.status == AccessStatus.ENDED and ended.ended_reason == "expired"
    assert ended.roles_removed_at is not None and ended.next_due_at is None
    assert await AuditLog.filter(action="access.expired", target_id=str(grant.id)).exists()


async def test_renewal_extends_from_current_end_once_however_often_replayed(world):
    w = world
    first = await deliver(w, w["monthly"])
    grant = await AccessGrant.get(order_id=first.id)
    end = grant.ends_at
    await run(w, end - DAY + timedelta(minutes=1))  # reminded: both stamps set
    renewal = await deliver(w, w["monthly"], locale="en")
    for _ in range(3):  # a delivery replayed: the grant is extended once
        await transition(renewal.id, OrderStatus.DELIVERED, "replay")
        await grant_for_order(renewal)
    grant = await AccessGrant.get(id=grant.id)
    assert grant.ends_at == end + 30 * DAY  # from the current end, not from today
    assert grant.renewals == 1 and grant.reminded_3d_at is None and grant.reminded_1d_at is None
    assert await AccessGrant.all().count() == 1
    links = await AccessOrder.filter(access_id=grant.id).order_by("id")
    assert [(x.order_id, x.renewal) for x in links] == [(first.id, False), (renewal.id, True)]
    assert links[1].period_start == end and links[1].period_end == end + 30 * DAY
    # the next reminder is in the renewing order's language
    await run(w, grant.ends_at - 3 * DAY + timedelta(minutes=1))
    assert "ends in 3 days" in (await w["buyer"].dms())[-1].text()


async def test_refund_removes_roles_except_one_another_active_grant_holds(world):
    w = world
    monthly = await deliver(w, w["monthly"])
    forever = await deliver(w, w["forever"])
    await run(w, datetime.now(UTC))
    assert {w["vip"], w["curso"]} <= await roles_of(w)
    await revoke_for_order(forever, "refund")
    report = await run(w, datetime.now(UTC))
    assert report.removed == 1 and report.kept == 1
    held = await roles_of(w)
    assert w["curso"] not in held and w["vip"] in held  # VIP is still paid for monthly
    revoked = await AccessGrant.get(order_id=forever.id)
    assert revoked.status == AccessStatus.REVOKED and revoked.ended_reason == "refund"
    assert revoked.roles_removed_at is not None
    await revoke_for_order(monthly, "chargeback")
    await run(w, datetime.now(UTC))
    assert not {w["vip"], w["curso"]} & await roles_of(w)


async def test_member_who_left_and_rejoined_gets_roles_back_at_the_periodic_check(world):
    w = world
    order = await deliver(w, w["monthly"])
    now = datetime.now(UTC)
    await run(w, now)
    await w["dc"].remove_member(w["guild"], w["buyer"].id)
    await w["dc"].add_member(w["guild"], w["buyer"].id)
    assert w["vip"] not in await roles_of(w)
    grant = await AccessGrant.get(order_id=order.id)
    assert grant.next_due_at is not None and grant.next_due_at <= now + timedelta(hours=1)
    assert (await run(w, now + timedelta(minutes=59))).claimed == 0
    await run(w, now + timedelta(hours=1, seconds=1))
    assert w["vip"] in await roles_of(w)


async def test_two_claimers_racing_on_a_due_grant_act_once(world):
    w = world
    await deliver(w, w["forever"])
    other = Counting(w["discord"].sf)
    now = datetime.now(UTC)
    first, second = await asyncio.gather(
        run_due(w["tenant"].id, w["discord"], now=now), run_due(w["tenant"].id, other, now=now)
    )
    assert sorted([first.claimed, second.claimed]) == [0, 1]
    acted = sorted(w["discord"].calls + other.calls)
    assert acted == sorted([("add", w["curso"]), ("add", w["vip"])])


async def test_stale_worker_cannot_overwrite_a_revocation_made_while_it_worked(world):
    w = world
    order = await deliver(w, w["monthly"])
    grant = await AccessGrant.get(order_id=order.id)
    now = datetime.now(UTC)
    await AccessGrant.filter(id=grant.id).update(claim="stale", next_due_at=now + DAY)
    stale = await AccessGrant.get(id=grant.id)
    await revoke_for_order(order, "med")  # clears the claim: the stale holder's writes miss
    report = RunReport()
    await process(stale, w["discord"], now, timedelta(hours=1), report)
    assert report.lost_claims == 1
    revoked = await AccessGrant.get(id=grant.id)
    assert revoked.status == AccessStatus.REVOKED and revoked.claim is None
    assert revoked.next_due_at is not None and revoked.next_due_at <= datetime.now(UTC)
    await run(w, datetime.now(UTC))
    assert w["vip"] not in await roles_of(w)


async def test_role_above_the_bots_is_refused_retried_later_and_the_seller_told(world):
    w = world
    await w["dc"].edit_role(w["guild"], w["vip"], position=100)  # above the bot's own role
    order = await deliver(w, w["monthly"])
    now = datetime.now(UTC)
    await run(w, now)
    grant = await AccessGrant.get(order_id=order.id)
    assert grant.roles_applied_at is None and grant.attempts == 1
    assert "refused" in (grant.last_error or "")
    assert grant.next_due_at is not None and grant.next_due_at >= now + timedelta(minutes=1)
    told = await w["dc"].wait_channel_message(
        w["guild"].channel("vendas"), lambda m: f"Acesso #{grant.id}" in m.content
    )
    assert f"<@&{w['vip']}>" in told.content
    await w["dc"].edit_role(w["guild"], w["vip"], position=1)
    await run(w, grant.next_due_at)
    assert w["vip"] in await roles_of(w)
    assert (await AccessGrant.get(id=grant.id)).attempts == 0


async def test_stores_never_touch_each_others_grants(world):
    w = world
    await deliver(w, w["monthly"])
    owner = await Account.create(discord_id=uuid.uuid4().hex[:18], username="other")
    other = await Tenant.create(owner=owner, name="Outra")
    report = await run_due(other.id, w["discord"], now=datetime.now(UTC))
    assert report.claimed == 0 and w["discord"].calls == []


async def test_reminder_with_dms_closed_goes_to_a_private_thread_once_else_the_sales_log(world):
    w = world
    await w["dc"].set_faults(w["bot"], dms_closed=[w["buyer"].id])
    in_guild = await deliver(
        w, w["monthly"], guild_id=w["guild"].id, channel_id=w["guild"].channel("loja")
    )
    grant = await AccessGrant.get(order_id=in_guild.id)
    when = grant.ends_at - 3 * DAY + timedelta(minutes=1)
    await run(w, when)
    await run(w, when + timedelta(minutes=1))  # stamped: never sent again
    threads = [
        c for c in w["sandbox"].discord_state.channels.values() if c.name == f"acesso-{grant.id}"
    ]
    assert len(threads) == 1 and w["buyer"].id in threads[0].recipients
    msg = await w["dc"].wait_channel_message(threads[0].id, lambda m: m.embeds)
    assert "3 dias" in msg.text() and msg.custom_ids() == [f"vt:renew:{grant.id}"]
    assert f"<@{w['buyer'].id}>" in msg.content
    assert await w["buyer"].dms() == []

    bought_in_dm = await deliver(w, w["forever"])  # no channel to open a thread in
    timed = await AccessGrant.get(order_id=bought_in_dm.id)
    await AccessGrant.filter(id=timed.id).update(ends_at=datetime.now(UTC) + DAY / 2)
    await run(w, datetime.now(UTC))
    told = await w["dc"].wait_channel_message(
        w["guild"].channel("vendas"), lambda m: f"Acesso #{timed.id}" in m.content
    )
    assert f"<@{w['buyer'].id}>" in told.content
    stamped = await AccessGrant.get(id=timed.id)
    assert stamped.reminded_1d_at is not None and stamped.reminded_3d_at is not None


async def test_rate_limited_role_change_waits_retry_after_then_lands(world):
    w = world
    path = f"/guilds/{w['guild'].id}/members/{w['buyer'].id}/roles/{w['vip']}"
    await w["dc"].add_fault_rule(w["bot"], "ratelimit", method="PUT", path=path, retry_after=0.3)
    order = await deliver(w, w["monthly"])
    started = time.monotonic()
    report = await run(w, datetime.now(UTC))
    assert time.monotonic() - started >= 0.3  # disnake waited as Discord asked
    assert report.added == 1 and w["vip"] in await roles_of(w)
    assert (await AccessGrant.get(order_id=order.id)).attempts == 0
