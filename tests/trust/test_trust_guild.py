"""A tenant bot serves only its store's guild (issue 13): end to end, real workers.

Attack: Discord applications are public by default, so anyone can add a seller's bot to their
own server by its id and run the staff commands there (they hold Manage Server *there*).
"""

from __future__ import annotations

import os
import signal
from typing import Any

import httpx
import pytest

from fleet import keys
from fleet.models import Alert, AlertKind, BotInstance
from fleet.states import InstanceState
from ops.fleet_harness import Store, make_store
from sandbox.discord.client import Buyer, GuildInfo, SandboxAPIError, upload
from shop.models import Order, Product, StockItem
from shop.states import StockStatus
from tests.storefront.conftest import fleet_env, svc  # noqa: F401
from tests.storefront.helpers import (
    STAFF_COMMANDS,
    approve_and_sync,
    buy,
    order_id_of,
    post_panel,
    run_command,
    wait_ready,
    wait_status,
)

pytestmark = pytest.mark.e2e

REFUSAL = "Esta loja atende apenas no servidor"
STORE_COMMANDS = [*STAFF_COMMANDS, "painel"]


async def foreign_guild(
    dc: Any, store: Store, name: str = "Servidor do atacante", *, with_bot: bool = True
) -> tuple[GuildInfo, Buyer]:
    """A server owned (so administered) by an attacker, with the store's bot added by them."""
    attacker = await dc.create_user("atacante")
    raw = await dc.call(
        "POST",
        "/_sandbox/guilds",
        json={
            "name": name,
            "owner_id": attacker["id"],
            "channels": [{"name": "geral"}],
            "bots": [store.bot.application_id] if with_bot else [],
        },
    )
    return await dc.guild(raw["id"]), Buyer(dc, attacker, "pt-BR")


async def keep_bot_in(dc: Any, store: Store) -> None:
    """Leaving a guild fails (Discord 5xx): the bot stays where it was added."""
    await dc.add_fault_rule(
        store.bot, "error", method="DELETE", path="/users/@me/guilds/*", count=10_000, status=500
    )


async def register_globally(sandbox: Any, dc: Any, store: Store, names: list[str]) -> None:
    """What an older version (or any leftover registration) left: the commands as global
    commands, offered in every server the bot is in."""
    cmds = {c["name"]: c for c in await dc.commands(store.bot)}
    async with httpx.AsyncClient(headers={"Authorization": f"Bot {store.bot.token}"}) as http:
        for name in names:
            cmd = cmds[name]
            body = {
                k: cmd[k]
                for k in (
                    "name",
                    "description",
                    "options",
                    "type",
                    "default_member_permissions",
                    "contexts",
                )
            }
            resp = await http.post(
                f"{sandbox.discord_api_base}/applications/{store.bot.application_id}/commands",
                json=body,
            )
            assert resp.status_code in (200, 201), resp.text


async def guilds_of(dc: Any, store: Store) -> set[str]:
    return set((await dc.bot_info(store.bot))["guilds"])


async def test_foreign_admin_running_staff_commands_gets_a_refusal_and_nothing_changes(
    fleet, dc, sandbox
):
    store = await make_store(fleet, dc, stock={"1 mês": ["K1", "K2"]})
    guild, attacker = await foreign_guild(dc, store)
    await keep_bot_in(dc, store)
    fleet.start()
    await wait_ready(fleet, dc, store)
    await dc.wait_commands(store.bot, STAFF_COMMANDS)
    await register_globally(sandbox, dc, store, STORE_COMMANDS)
    before = await StockItem.all().count()

    for name, options in (
        ("vendas-hoje", None),
        ("estoque", None),
        (
            "estoque-adicionar",
            {"produto": "Netflix", "arquivo": upload("estoque.txt", "PHISH-1\n")},
        ),
        ("painel", None),
    ):
        result = await attacker.slash(store.bot, guild, "geral", name, options)
        reply = await result.wait_reply(timeout=10)
        assert reply.ephemeral and REFUSAL in reply.content, (name, reply)
        assert not reply.message.embeds and "Netflix" not in reply.message.text()
    assert await StockItem.all().count() == before  # no line injected
    assert await dc.channel_messages(guild.channel("geral")) == []  # no panel posted there
    assert await fleet.redis.hgetall(keys.panels(store.instance_id)) == {}
    # the store's own staff, in the store's guild, is still served
    counts = await run_command(store.staff, store, "estoque")
    assert counts.message.embeds[0]["title"] == "Estoque"


async def test_commands_are_registered_only_in_the_store_guild(fleet, dc):
    store = await make_store(fleet, dc, stock={"1 mês": ["K1"]})
    guild, attacker = await foreign_guild(dc, store)
    await keep_bot_in(dc, store)
    fleet.start()
    await wait_ready(fleet, dc, store)
    by_name = {c["name"]: c for c in await dc.commands(store.bot)}
    for name in [*STORE_COMMANDS, "comprar"]:
        assert by_name[name].get("guild_id") == store.guild.id, by_name[name]
    # the attacker's server (the bot is still in it) does not even offer them
    for name in STORE_COMMANDS:
        with pytest.raises(SandboxAPIError, match="Unknown application command"):
            await attacker.slash(store.bot, guild, "geral", name)


async def test_bot_leaves_a_foreign_guild_at_start_and_one_it_joins_later(fleet, dc):
    store = await make_store(fleet, dc, stock={"1 mês": ["K1"]})
    first, attacker = await foreign_guild(dc, store, "Servidor A")
    fleet.start()
    await wait_ready(fleet, dc, store)
    await dc.wait_bot(
        store.bot,
        lambda b: set(b["guilds"]) == {store.guild.id},
        timeout=15,
        what="the bot out of Servidor A",
    )
    second, _ = await foreign_guild(dc, store, "Servidor B", with_bot=False)
    await dc.add_bot_to_guild(second, store.bot, added_by=attacker.id)
    await dc.wait_bot(
        store.bot,
        lambda b: set(b["guilds"]) == {store.guild.id},
        timeout=15,
        what="the bot out of Servidor B",
    )

    async def alerts() -> list[Alert] | None:
        rows = await Alert.filter(kind=AlertKind.FOREIGN_GUILD).order_by("id")
        return rows if len(rows) == 2 else None

    rows = await fleet.wait_for("two foreign_guild alerts", alerts)
    assert [(a.details["guild_id"], a.details["guild_name"]) for a in rows] == [
        (first.id, "Servidor A"),
        (second.id, "Servidor B"),
    ]
    assert {(a.tenant_id, a.instance_id) for a in rows} == {(store.tenant.id, store.instance_id)}
    left = {r["path"] for r in await dc.requests(store.bot, method="DELETE")}
    assert left == {f"/users/@me/guilds/{first.id}", f"/users/@me/guilds/{second.id}"}
    # still serving its own guild
    counts = await run_command(store.staff, store, "estoque")
    assert counts.message.embeds


async def test_bot_public_is_read_at_every_start(fleet, dc):
    store = await make_store(fleet, dc, stock={"1 mês": ["K1"]})
    fleet.start()
    await wait_ready(fleet, dc, store)

    async def public_flag(expected: bool) -> bool:
        inst = await BotInstance.get(id=store.instance_id)
        return inst.bot_public is expected

    await fleet.wait_for("bot_public read as true", lambda: public_flag(True))
    await dc.set_bot_public(store.bot, False)
    rec = await fleet.record(store.instance_id)
    os.kill(rec.pid, signal.SIGKILL)
    await fleet.wait_state(
        store.instance_id, InstanceState.ONLINE, timeout=30, new_pid_than=rec.pid
    )
    await fleet.wait_for("bot_public read as false", lambda: public_flag(False))


async def test_meus_pedidos_works_in_dm_and_shows_only_this_buyers_orders(fleet, dc, mpc, svc):  # noqa: F811
    store = await make_store(fleet, dc, stock={"1 mês": ["K1", "K2"]})
    fleet.start()
    await wait_ready(fleet, dc, store)
    panel = await post_panel(store)
    mine = order_id_of(await buy(store.buyer, panel, store.variations[0].id))
    await approve_and_sync(mpc, svc, mine)
    await wait_status(mine, "delivered")
    other = await dc.buyer("bia", guilds=[store.guild])
    theirs = order_id_of(await buy(other, panel, store.variations[0].id))

    reply = await (await store.buyer.slash_dm(store.bot, "meus-pedidos")).wait_reply(timeout=10)
    text = reply.message.text()
    assert f"#{mine}" in text and f"#{theirs}" not in text
    # the re-send select works in the DM too
    sent = len(await store.buyer.dms(store.bot))
    await (await store.buyer.select(reply.message, "vt:resend", [str(mine)])).wait_reply()
    await dc.poll(
        lambda: store.buyer.dms(store.bot),
        lambda m: len(m) > sent,
        10,
        "the order sent again by DM",
    )


async def test_buyer_role_is_granted_only_in_the_store_guild(fleet, dc, mpc, svc):  # noqa: F811
    store = await make_store(fleet, dc, stock={"1 mês": ["K1"]})
    guild, _ = await foreign_guild(dc, store)
    await dc.add_member(guild, store.buyer.id)
    await keep_bot_in(dc, store)
    fleet.start()
    await wait_ready(fleet, dc, store)
    panel = await post_panel(store)
    order_id = order_id_of(await buy(store.buyer, panel, store.variations[0].id))
    # an order recorded as placed from the other server (e.g. before this fix)
    await Order.filter(id=order_id).update(guild_id=guild.id)
    await approve_and_sync(mpc, svc, order_id)
    await wait_status(order_id, "delivered")
    assert store.guild.role("Cliente") in await store.buyer.wait_role(store.guild, "Cliente")
    role_calls = [
        r["path"] for r in await dc.requests(store.bot, method="PUT") if "/roles/" in r["path"]
    ]
    assert role_calls and all(p.startswith(f"/guilds/{store.guild.id}/") for p in role_calls)


async def test_a_product_named_everyone_pings_nobody(fleet, dc, mpc, svc):  # noqa: F811
    store = await make_store(fleet, dc, stock={"1 mês": ["ONLY"]})
    # the seller gave the bot "Mention @everyone" (or Administrator)
    await dc.call(
        "POST",
        f"/_sandbox/guilds/{store.guild.id}/roles",
        json={"name": "Bots", "permissions": 1 << 17},
    )
    await dc.add_member(store.guild, store.bot.user_id, roles=["Bots"])
    await Product.filter(id=store.product.id).update(name="@everyone @here")
    fleet.start()
    await wait_ready(fleet, dc, store)
    panel = await post_panel(store, "@everyone @here")
    order_id = order_id_of(await buy(store.buyer, panel, store.variations[0].id))
    # the reserved item went elsewhere: the order waits, and the seller's log names the product
    await StockItem.filter(order_id=order_id).update(status=StockStatus.SOLD, order_id=None)
    await approve_and_sync(mpc, svc, order_id)
    await wait_status(order_id, "waiting_stock")
    log = await dc.wait_channel_message(
        store.log_channel, lambda m: "@everyone" in m.content, timeout=10
    )
    assert log["mention_everyone"] is False and log["mentions"] == []
    assert log["allowed_mentions"]["parse"] == []
    dm = await store.buyer.wait_dm(lambda m: "@everyone" in m.content, timeout=10)
    assert dm["allowed_mentions"]["parse"] == []
    for msg in await dc.channel_messages(store.shop_channel):
        assert msg["mention_everyone"] is False and msg["allowed_mentions"]["parse"] == []
