"""End to end on the sandbox, real workers, SQLite and PostgreSQL (issue 16): each product kind
bought with PIX and delivered by the store's bot. Shared text arrives in the DM; a file arrives
as an attachment with the right bytes and `/meus-pedidos` sends it again; a role-only product
delivers a confirmation; a manual service waits as `awaiting_fulfilment` until staff deliver
it with a note (the sales log's button, or `/entregar`), and the buyer gets the note once."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from ops.fleet_harness import make_store
from shop import product_files
from shop.models import Order, ProductKind, Variation
from tests.storefront.helpers import (
    approve_and_sync,
    buy,
    order_id_of,
    post_panel,
    run_command,
    wait_ready,
    wait_status,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def fleet(db_fleet):
    """The harness's orchestrator on this test's database (SQLite or PostgreSQL)."""
    return db_fleet


async def _kinds_store(fleet, dc, kinds: dict[str, ProductKind]) -> Any:
    """A store whose variations (named as `kinds`) sell those kinds; nothing in stock."""
    store = await make_store(fleet, dc, stock={name: [] for name in kinds})
    for variation in store.variations:
        kind = kinds[variation.name]
        shared = (
            fleet.vault.encrypt("Aula 1: https://curso.example/a1") if kind == "shared" else None
        )
        await Variation.filter(id=variation.id).update(kind=kind, shared_content_enc=shared)
    return store


async def _bought(store, mpc, svc, panel, variation_id: int) -> int:
    order_id = order_id_of(await buy(store.buyer, panel, variation_id))
    await approve_and_sync(mpc, svc, order_id)
    return order_id


def _delivery_of(order_id: int):
    return lambda m: any(f"#{order_id}" in (e.get("title") or "") for e in m.embeds)


async def test_shared_text_and_role_only_are_delivered_by_dm(fleet, dc, mpc, svc):
    store = await _kinds_store(
        fleet, dc, {"Curso": ProductKind.SHARED, "VIP": ProductKind.ROLE_ONLY}
    )
    fleet.start()
    await wait_ready(fleet, dc, store)
    panel = await post_panel(store)
    shared_v, role_v = store.variations
    shared = await _bought(store, mpc, svc, panel, shared_v.id)
    await wait_status(shared, "delivered")
    dm = await store.buyer.wait_dm(_delivery_of(shared), timeout=10)
    assert "https://curso.example/a1" in dm.text() and not dm.attachments
    role = await _bought(store, mpc, svc, panel, role_v.id)
    assert (await wait_status(role, "delivered")).delivery_path == "dm"
    confirmation = await store.buyer.wait_dm(_delivery_of(role), timeout=10)
    assert "acesso foi liberado" in confirmation.text()
    cliente = store.guild.role("Cliente")
    assert cliente in await store.buyer.wait_role(store.guild, cliente)  # the buyer role
    assert [v.sold_count for v in await Variation.filter(id__in=[shared_v.id, role_v.id])] == [1, 1]
    figures = (await run_command(store.staff, store, "estoque")).message.text()
    assert "∞ disponível(is)" in figures and "1 vendido(s)" in figures  # no stock lines
    await asyncio.sleep(1.5)  # time for a duplicate to show up
    assert len([m for m in await store.buyer.dms() if _delivery_of(shared)(m)]) == 1


async def test_file_arrives_as_attachment_and_my_orders_sends_it_again(fleet, dc, mpc, svc):
    store = await _kinds_store(fleet, dc, {"PDF": ProductKind.FILE})
    data = b"%PDF-1.7\n" + os.urandom(300_000)
    await product_files.store_file(fleet.vault, store.variations[0], "guia.pdf", data, "test")
    fleet.start()
    await wait_ready(fleet, dc, store)
    panel = await post_panel(store)
    order_id = await _bought(store, mpc, svc, panel, store.variations[0].id)
    await wait_status(order_id, "delivered")
    dm = await store.buyer.wait_dm(_delivery_of(order_id), timeout=10)
    assert [a["filename"] for a in dm.attachments] == ["guia.pdf"]
    assert await dc.fetch_attachment(dm.attachments[0]) == data
    listing = await (
        await store.buyer.slash(store.bot, store.guild, "loja", "meus-pedidos")
    ).wait_reply(timeout=10)
    seen = {m.id for m in await store.buyer.dms()}
    resent = await (
        await store.buyer.select(listing.message, "vt:resend", [str(order_id)])
    ).wait_reply(timeout=10)
    assert f"#{order_id}" in resent.message.text()
    again = await store.buyer.wait_dm(lambda m: m.id not in seen and m.attachments, timeout=10)
    assert await dc.fetch_attachment(again.attachments[0]) == data


async def test_manual_service_waits_for_staff_and_the_buyer_gets_their_note(fleet, dc, mpc, svc):
    store = await _kinds_store(fleet, dc, {"Mentoria": ProductKind.MANUAL})
    fleet.start()
    await wait_ready(fleet, dc, store)
    await dc.wait_commands(store.bot, ["entregar"], timeout=20)
    panel = await post_panel(store)
    first = await _bought(store, mpc, svc, panel, store.variations[0].id)
    await wait_status(first, "awaiting_fulfilment")
    told = await store.buyer.wait_dm(lambda m: f"#{first}" in m.content, timeout=10)
    assert "entrega manual" in told.content
    log = await dc.wait_channel_message(
        store.log_channel, lambda m: f"vt:ful:{first}" in m.custom_ids(), timeout=10
    )
    # a buyer pressing the staff button gets nothing
    denied = await (await store.buyer.click(log, f"vt:ful:{first}")).wait_reply()
    assert denied.ephemeral and "equipe" in denied.message.content
    opened = await store.staff.click(log, f"vt:ful:{first}")
    await opened.wait_modal()
    note = "Sua mentoria: https://meet.example/abc às 19h"
    done = await (await store.staff.submit_modal(opened, {"note": note})).wait_reply()
    assert f"#{first}" in done.message.content
    await wait_status(first, "delivered")
    dm = await store.buyer.wait_dm(_delivery_of(first), timeout=10)
    assert note in dm.text()

    second = await _bought(store, mpc, svc, panel, store.variations[0].id)
    await wait_status(second, "awaiting_fulfilment")
    reply = await run_command(
        store.staff, store, "entregar", {"pedido": second, "nota": "Feito: acesso enviado"}
    )
    assert f"#{second}" in reply.content
    await wait_status(second, "delivered")
    assert (
        "Feito: acesso enviado"
        in (await store.buyer.wait_dm(_delivery_of(second), timeout=10)).text()
    )
    again = await run_command(store.staff, store, "entregar", {"pedido": second, "nota": "x"})
    assert "⚠️" in again.content  # already delivered: nothing sent
    await asyncio.sleep(1.5)
    assert len([m for m in await store.buyer.dms() if _delivery_of(first)(m)]) == 1
    assert await Order.filter(status="delivered").count() == 2
