"""Ratings (issue 17) at the service and relay level, on SQLite and PostgreSQL: the ask is
owed at delivery and sent once (even with two relays racing), a closed DM is recorded and not
retried, a rate limit is retried later; one rating per order, editable for a week; the seller
replies once; an operator deletes (audited); the feedback post follows every change; the
panel's average shows only from the store's minimum; stores never see each other's ratings."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from core.models import AuditLog
from core.vault import TokenVault
from fleet.models import BotInstance
from shop import ratings
from shop.models import Account, AskStatus, Order, Product, Rating, RatingAsk, Tenant, Variation
from shop.notify.seller import SellerDM
from shop.orders import transition
from shop.rating_relay import RatingRelay
from shop.states import OrderStatus

VAULT = TokenVault([Fernet.generate_key().decode()])


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def rating_store(
    dc: Any = None, *, name: str = "Loja", delay_h: int = 0, min_count: int = 3
) -> dict[str, Any]:
    """A store with a product; with `dc`, a sandbox bot in a guild (#feedback) and a buyer."""
    owner = await Account.create(discord_id=uuid.uuid4().hex[:18], username="seller")
    tenant = await Tenant.create(
        owner=owner, name=name, rating_ask_delay_h=delay_h, rating_min_count=min_count
    )
    product = await Product.create(tenant=tenant, name="Netflix")
    variation = await Variation.create(
        tenant=tenant, product=product, name="1 mês", price_cents=1990
    )
    store: dict[str, Any] = {"tenant": tenant, "product": product, "variation": variation}
    if dc is not None:
        bot = await dc.create_bot(name)
        guild = await dc.create_guild("Servidor", channels=["loja", "feedback"], bots=[bot])
        buyer = await dc.buyer("ana", guilds=[guild])
        tenant.guild_id = guild.id
        tenant.feedback_channel_id = guild.channel("feedback")
        await tenant.save()
        inst = await BotInstance.create(tenant=tenant, token_enc=VAULT.encrypt(bot.token))
        store.update(bot=bot, guild=guild, buyer=buyer.id, instance=inst)
    else:
        store["buyer"] = uuid.uuid4().hex[:18]
    return store


async def delivered(store: dict[str, Any], buyer: str | None = None) -> Order:
    """A paid order of the store's product, delivered (as the worker's delivery does)."""
    inst = store.get("instance")
    order = await Order.create(
        tenant=store["tenant"],
        instance=inst,
        product=store["product"],
        variation=store["variation"],
        interaction_id=uuid.uuid4().hex[:20],
        buyer_discord_id=buyer or store["buyer"],
        quantity=1,
        unit_price_cents=1990,
        total_cents=1990,
    )
    await transition(order.id, OrderStatus.PAID, "test")
    await transition(order.id, OrderStatus.DELIVERED, "test")
    return await Order.get(id=order.id)


def relay(sandbox: Any, http: httpx.AsyncClient) -> RatingRelay:
    return RatingRelay(SellerDM(sandbox.discord_api_base, VAULT, http))


async def test_delivery_owes_one_ask_due_after_the_store_delay(db):
    store = await rating_store(delay_h=5)
    order = await delivered(store)
    [ask] = await RatingAsk.filter(order_id=order.id)
    assert ask.status == AskStatus.PENDING
    assert ask.ask_at == order.delivered_at + timedelta(hours=5)
    await transition(order.id, OrderStatus.DELIVERED, "test again")  # a replay: no second ask
    assert await RatingAsk.filter(order_id=order.id).count() == 1


async def test_ask_is_sent_once_even_with_two_relays_racing(db, sandbox, dc, http):
    store = await rating_store(dc)
    order = await delivered(store)
    first, second = relay(sandbox, http), relay(sandbox, http)
    sent = await asyncio.gather(
        first.asks_once(datetime.now(UTC)), second.asks_once(datetime.now(UTC))
    )
    assert sorted(sent) == [0, 1]
    assert await first.asks_once(datetime.now(UTC) + timedelta(days=1)) == 0
    [dm] = await dc.dms(store["buyer"], store["bot"])
    assert f"#{order.id}" in dm.content and "Netflix" in dm.content
    assert dm.custom_ids() == [f"vt:rate:{order.id}:{n}" for n in range(1, 6)]
    ask = await RatingAsk.get(order_id=order.id)
    assert ask.status == AskStatus.SENT and ask.ask_at is None


async def test_ask_not_due_before_the_delay_then_sent(db, sandbox, dc, http):
    store = await rating_store(dc, delay_h=2)
    await delivered(store)
    sender = relay(sandbox, http)
    assert await sender.asks_once(datetime.now(UTC)) == 0
    assert await sender.asks_once(datetime.now(UTC) + timedelta(hours=2, seconds=1)) == 1


async def test_closed_dms_are_recorded_failed_and_not_retried(db, sandbox, dc, http):
    store = await rating_store(dc)
    order = await delivered(store)
    await dc.set_faults(store["bot"], dms_closed=[store["buyer"]])
    sender = relay(sandbox, http)
    assert await sender.asks_once(datetime.now(UTC)) == 0
    ask = await RatingAsk.get(order_id=order.id)
    assert ask.status == AskStatus.FAILED and ask.ask_at is None
    assert "403" in (ask.last_error or "")
    await dc.clear_faults(store["bot"])
    assert await sender.asks_once(datetime.now(UTC) + timedelta(days=30)) == 0
    assert await dc.dms(store["buyer"], store["bot"]) == []


async def test_rate_limited_ask_waits_at_least_retry_after_then_goes(db, sandbox, dc, http):
    store = await rating_store(dc)
    order = await delivered(store)
    await dc.add_fault_rule(
        store["bot"], "ratelimit", method="POST", path="/users/@me/channels", retry_after=40
    )
    sender = relay(sandbox, http)
    now = datetime.now(UTC)
    assert await sender.asks_once(now) == 0
    ask = await RatingAsk.get(order_id=order.id)
    assert ask.status == AskStatus.PENDING and ask.attempts == 1
    assert ask.ask_at is not None and ask.ask_at >= now + timedelta(seconds=40)
    assert await sender.asks_once(ask.ask_at) == 1
    assert len(await dc.dms(store["buyer"], store["bot"])) == 1


async def test_refunded_order_is_not_asked(db, sandbox, dc, http):
    store = await rating_store(dc)
    order = await delivered(store)
    await transition(order.id, OrderStatus.REFUNDED, "test")
    assert await relay(sandbox, http).asks_once(datetime.now(UTC)) == 0
    assert (await RatingAsk.get(order_id=order.id)).status == AskStatus.SKIPPED
    assert await dc.dms(store["buyer"], store["bot"]) == []


async def test_only_the_buyer_of_a_delivered_order_of_this_store_rates(db):
    store = await rating_store()
    other = await rating_store(name="Outra")
    order = await delivered(store)
    with pytest.raises(ratings.NotYourOrder):
        await ratings.submit(store["tenant"].id, order.id, "intruder", 5, "")
    with pytest.raises(ratings.NotYourOrder):  # the right buyer, through another store's bot
        await ratings.submit(other["tenant"].id, order.id, store["buyer"], 5, "")
    with pytest.raises(ratings.InvalidRating):
        await ratings.submit(store["tenant"].id, order.id, store["buyer"], 6, "")
    with pytest.raises(ratings.InvalidRating):
        await ratings.submit(store["tenant"].id, order.id, store["buyer"], 4, "x" * 501)
    await transition(order.id, OrderStatus.REFUNDED, "test")
    with pytest.raises(ratings.NotRateable):
        await ratings.submit(store["tenant"].id, order.id, store["buyer"], 4, "")
    assert await Rating.all().count() == 0


async def test_one_rating_per_order_editable_for_a_week_then_refused(db):
    store = await rating_store()
    order = await delivered(store)
    tid, buyer = store["tenant"].id, store["buyer"]
    rating, first = await ratings.submit(tid, order.id, buyer, 3, "  ok  ")
    assert first and rating.stars == 3 and rating.comment == "ok"
    later = rating.given_at + timedelta(days=6, hours=23)
    edited, first = await ratings.submit(tid, order.id, buyer, 5, "great after all", now=later)
    assert not first and edited.id == rating.id and edited.stars == 5
    with pytest.raises(ratings.EditWindowClosed):
        await ratings.submit(tid, order.id, buyer, 1, "", now=rating.given_at + timedelta(days=8))
    stored = await Rating.get(order_id=order.id)
    assert (stored.stars, stored.comment) == (5, "great after all")
    assert await Rating.filter(order_id=order.id).count() == 1
    actions = (
        await AuditLog.filter(target_type="rating").order_by("id").values_list("action", flat=True)
    )
    assert actions == ["rating.given", "rating.edited"]


async def test_seller_replies_once_and_operator_delete_is_audited(db):
    store = await rating_store()
    order = await delivered(store)
    rating, _ = await ratings.submit(store["tenant"].id, order.id, store["buyer"], 2, "slow")
    answered = await ratings.reply(rating, "Sorry, fixed!", "account:1")
    assert answered.reply == "Sorry, fixed!" and answered.post_at is not None
    with pytest.raises(ratings.AlreadyReplied):
        await ratings.reply(rating, "second", "account:1")
    assert (await Rating.get(id=rating.id)).reply == "Sorry, fixed!"
    deleted = await ratings.delete(rating.id, "admin:token:ops", "abuse")
    assert deleted.deleted_by == "admin:token:ops"
    with pytest.raises(ratings.AlreadyDeleted):
        await ratings.delete(rating.id, "admin:token:ops", "again")
    entry = await AuditLog.get(action="rating.deleted")
    assert entry.actor == "admin:token:ops" and entry.after == {"reason": "abuse"}
    assert entry.tenant_id == store["tenant"].id
    assert await ratings.summaries(store["tenant"].id) == {}


async def test_panel_average_only_from_the_store_minimum_and_per_store(db):
    store = await rating_store(min_count=3)
    other = await rating_store(name="Outra", min_count=1)
    pid, tid = store["product"].id, store["tenant"].id
    for stars in (5, 4):
        order = await delivered(store, buyer=uuid.uuid4().hex[:18])
        await ratings.submit(tid, order.id, order.buyer_discord_id, stars, "")
    assert await ratings.panel_line(tid, pid) is None  # 2 < 3
    order = await delivered(store, buyer=uuid.uuid4().hex[:18])
    await ratings.submit(tid, order.id, order.buyer_discord_id, 5, "")
    assert await ratings.panel_line(tid, pid) == "★ 4.7 (3)"
    assert await ratings.summaries(other["tenant"].id) == {}
    assert await ratings.panel_line(other["tenant"].id, pid) is None  # not its product


async def test_feedback_post_created_edited_with_reply_and_deleted(db, sandbox, dc, http):
    store = await rating_store(dc)
    order = await delivered(store)
    sender = relay(sandbox, http)
    rating, _ = await ratings.submit(store["tenant"].id, order.id, store["buyer"], 4, "bom")
    channel = store["tenant"].feedback_channel_id
    assert await sender.posts_once(datetime.now(UTC)) == 1
    [msg] = await dc.channel_messages(channel)
    assert "★★★★☆" in msg.text() and "bom" in msg.text() and "Netflix" in msg.text()
    await ratings.submit(store["tenant"].id, order.id, store["buyer"], 5, "ótimo")
    await ratings.reply(await Rating.get(id=rating.id), "Valeu!", "account:1")
    assert await sender.posts_once(datetime.now(UTC)) == 1
    [msg] = await dc.channel_messages(channel)  # edited in place, not a second message
    assert "★★★★★" in msg.text() and "ótimo" in msg.text() and "Valeu!" in msg.text()
    await ratings.delete(rating.id, "admin:x", "spam")
    assert await sender.posts_once(datetime.now(UTC)) == 1
    assert await dc.channel_messages(channel) == []
    assert (await Rating.get(id=rating.id)).post_at is None
