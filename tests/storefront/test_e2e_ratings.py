"""End to end on the sandbox, real workers, SQLite and PostgreSQL (issue 17): a delivery →
the ask DM (sent once) → stars and a comment in a modal → the rating stored, posted to the
feedback channel and shown on the product panel; edited within the week (the post edited in
place), politely refused after it (clock moved); a forged star button for someone else's
order is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ops.fleet_harness import make_store
from shop.models import Rating, Tenant
from shop.notify.seller import SellerDM
from shop.rating_relay import RatingRelay
from tests.storefront.helpers import bought, post_panel, wait_ready

pytestmark = pytest.mark.e2e


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def _is_ask(order_id: int):
    return lambda m: f"vt:rate:{order_id}:5" in m.custom_ids()


async def _delivered_store(fleet, dc, mpc, svc):
    store = await make_store(fleet, dc, stock={"1 mês": ["KEY-1"]})
    await Tenant.filter(id=store.tenant.id).update(
        feedback_channel_id=store.log_channel, rating_min_count=1
    )
    fleet.start()
    await wait_ready(fleet, dc, store)
    panel = await post_panel(store)
    return store, panel, await bought(store, mpc, svc, panel, store.variations[0].id)


async def test_rating_given_posted_on_panel_edited_then_refused_after_a_week(
    db_fleet, dc, mpc, svc, sandbox, http
):
    store, panel, order_id = await _delivered_store(db_fleet, dc, mpc, svc)
    relay = RatingRelay(SellerDM(sandbox.discord_api_base, db_fleet.vault, http))
    assert await relay.asks_once(datetime.now(UTC)) == 1
    assert await relay.asks_once(datetime.now(UTC) + timedelta(days=2)) == 0
    ask = await store.buyer.wait_dm(_is_ask(order_id))
    assert f"#{order_id}" in ask.content and "Netflix" in ask.content
    assert len([m for m in await store.buyer.dms() if _is_ask(order_id)(m)]) == 1

    opened = await store.buyer.click(ask, f"vt:rate:{order_id}:4")
    modal = await opened.wait_modal()
    assert modal["custom_id"] == f"vt:rtm:{order_id}:4"
    thanks = await (
        await store.buyer.submit_modal(opened, {"comment": "Chegou na hora"})
    ).wait_reply()
    assert thanks.ephemeral and "Obrigado pela avaliação (★★★★☆)" in thanks.content
    rating = await Rating.get(order_id=order_id)
    assert (rating.stars, rating.comment, rating.buyer_discord_id) == (
        4,
        "Chegou na hora",
        store.buyer.id,
    )

    assert await relay.posts_once(datetime.now(UTC)) == 1
    post = await dc.wait_channel_message(store.log_channel, lambda m: "★★★★☆" in m.text())
    assert "Chegou na hora" in post.text() and "Netflix" in post.text()
    await dc.wait_channel_message(
        store.shop_channel, lambda m: m["id"] == panel["id"] and "★ 4.0 (1)" in m.text()
    )

    # edited within the week: the modal comes pre-filled, the post is edited in place
    opened = await store.buyer.click(ask, f"vt:rate:{order_id}:5")
    [row] = (await opened.wait_modal())["components"]
    assert row["components"][0]["value"] == "Chegou na hora"
    updated = await (await store.buyer.submit_modal(opened, {"comment": "Perfeito"})).wait_reply()
    assert "Avaliação atualizada (★★★★★)" in updated.content
    assert await relay.posts_once(datetime.now(UTC)) == 1
    posts = [m for m in await dc.channel_messages(store.log_channel) if "★" in m.text()]
    assert len(posts) == 1 and posts[0]["id"] == post["id"]
    assert "★★★★★" in posts[0].text() and "Perfeito" in posts[0].text()

    # a week later (the clock moved): refused politely, nothing changes
    await Rating.filter(id=rating.id).update(given_at=datetime.now(UTC) - timedelta(days=8))
    late = await (await store.buyer.click(ask, f"vt:rate:{order_id}:1")).wait_reply()
    assert late.kind != "modal" and late.ephemeral
    assert "só podem ser alteradas até 7 dias" in late.content
    assert (await Rating.get(id=rating.id)).stars == 5


async def test_forged_star_button_for_another_buyers_order_is_refused(
    db_fleet, dc, mpc, svc, sandbox, http
):
    store, _panel, order_id = await _delivered_store(db_fleet, dc, mpc, svc)
    intruder = await dc.buyer("bia", guilds=[store.guild])
    # a star button naming Ana's order, in Bia's DM with the store's bot (as a tampered
    # client would send it)
    rest = SellerDM(sandbox.discord_api_base, db_fleet.vault, http)
    dm = await rest.request(
        "POST", store.bot.token, "/users/@me/channels", {"recipient_id": intruder.id}
    )
    forged = {"type": 2, "style": 2, "label": "1", "custom_id": f"vt:rate:{order_id}:1"}
    await rest.request(
        "POST",
        store.bot.token,
        f"/channels/{dm['id']}/messages",
        {"content": "?", "components": [{"type": 1, "components": [forged]}]},
    )
    message = await intruder.wait_dm(_is_ask_any)
    refused = await (await intruder.click(message, forged["custom_id"])).wait_reply()
    assert refused.kind != "modal" and refused.ephemeral
    assert "Só quem comprou este pedido pode avaliá-lo" in refused.content
    assert await Rating.filter(order_id=order_id).count() == 0


def _is_ask_any(m: Any) -> bool:
    return any(i.startswith("vt:rate:") for i in m.custom_ids())
