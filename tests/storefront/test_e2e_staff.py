"""End to end, real workers: the staff commands /estoque, /estoque-adicionar and /vendas-hoje."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ops.fleet_harness import Store, make_store
from sandbox.discord.client import upload
from shop.models import Order, Product, StockItem, Variation
from shop.states import OrderStatus, StockStatus
from shop.stock import MAX_LINES_PER_ADD, MAX_UPLOAD_BYTES, add_stock
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

BRT = timezone(timedelta(hours=-3))
STAFF_ONLY = "Só a equipe da loja (permissão Gerenciar Servidor) pode usar este comando."


async def ready(fleet: Any, dc: Any, *stores: Store) -> None:
    """Start the fleet; wait until each store's bot is online with its staff commands."""
    fleet.start()
    for store in stores:
        await wait_ready(fleet, dc, store)
        await dc.wait_commands(store.bot, STAFF_COMMANDS)


async def second_store(fleet: Any, dc: Any) -> Store:
    """Another tenant, bot and guild, selling "Spotify — Família"."""
    store = await make_store(
        fleet, dc, stock={"Família": ["SPOT-1", "SPOT-2"]}, prices={"Família": 9990}, name="Loja B"
    )
    await Product.filter(id=store.product.id).update(name="Spotify")
    return store


async def stock_of(fleet: Any, variation: Any) -> dict[str, str]:
    """{plain content: status} of a variation's items."""
    items = await StockItem.filter(variation_id=variation.id)
    return {fleet.vault.decrypt(i.content_enc).reveal(): str(i.status) for i in items}


async def seed_order(
    store: Store,
    variation: Any,
    status: OrderStatus,
    total: int,
    paid_at: datetime | None,
    created_at: datetime | None = None,
) -> Order:
    """An order written straight to the database, with the timestamps given."""
    order = await Order.create(
        tenant_id=store.tenant.id,
        instance_id=store.instance_id,
        product_id=variation.product_id,
        variation_id=variation.id,
        interaction_id=uuid.uuid4().hex,
        buyer_discord_id=store.buyer.id,
        quantity=1,
        unit_price_cents=total,
        total_cents=total,
        status=status,
        paid_at=paid_at,
    )
    if created_at is not None:
        await Order.filter(id=order.id).update(created_at=created_at)
    return order


def description(reply: Any) -> list[str]:
    assert reply.ephemeral and len(reply.message.embeds) == 1, reply
    return reply.message.embeds[0]["description"].split("\n")


def fields(reply: Any) -> dict[str, str]:
    return {f["name"]: f["value"] for f in reply.message.embeds[0].get("fields") or []}


async def test_estoque_lists_each_variation_and_only_staff_can_run_staff_commands(
    fleet, dc, mpc, svc
):
    store = await make_store(
        fleet,
        dc,
        stock={"1 mês": ["K1", "K2", "K3", "K4", "K5"], "3 meses": ["L1"]},
        prices={"1 mês": 1990, "3 meses": 4990},
    )
    await ready(fleet, dc, store)
    panel = await post_panel(store)
    month = store.variations[0]
    sold = order_id_of(await buy(store.buyer, panel, month.id))
    await approve_and_sync(mpc, svc, sold)
    await wait_status(sold, "delivered")
    pending = order_id_of(await buy(store.buyer, panel, month.id))  # reserves one, unpaid
    # a product with no stock yet, a deleted product and a deleted variation (with stock)
    disney = await Product.create(tenant=store.tenant, name="Disney+")
    await Variation.create(tenant=store.tenant, product=disney, name="Anual", price_cents=2990)
    old = await Product.create(tenant=store.tenant, name="Antigo")
    gone = await Variation.create(tenant=store.tenant, product=old, name="Velha", price_cents=100)
    trial = await Variation.create(
        tenant=store.tenant, product=store.product, name="Teste", price_cents=100
    )
    for variation in (gone, trial):
        await add_stock(
            fleet.vault,
            store.tenant.id,
            variation.id,
            "HIDDEN",
            "test",
            hash_key=fleet.stock_hash_key,
        )
    await Product.filter(id=old.id).update(deleted_at=datetime.now(UTC))
    await Variation.filter(id=trial.id).update(deleted_at=datetime.now(UTC))

    counts = await run_command(store.staff, store, "estoque")
    assert counts.message.embeds[0]["title"] == "Estoque"
    assert description(counts) == [
        "**Netflix** — 1 mês: 3 disponível(is), 1 reservado(s), 1 vendido(s)",
        "**Netflix** — 3 meses: 1 disponível(is), 0 reservado(s), 0 vendido(s)",
        "**Disney+** — Anual: 0 disponível(is), 0 reservado(s), 0 vendido(s)",
    ]
    today = await run_command(store.staff, store, "vendas-hoje")
    assert today.message.embeds[0]["title"] == "Vendas de hoje"
    assert description(today) == ["**Netflix**: 1 pedido(s), R$ 19,90"]  # not the pending one
    assert fields(today) == {"Pedidos": "1", "Total": "R$ 19,90"}
    assert (await Order.get(id=pending)).status == OrderStatus.PENDING

    before = await StockItem.all().count()
    for name, options in (
        ("estoque", None),
        ("vendas-hoje", None),
        ("estoque-adicionar", {"produto": "Netflix", "arquivo": upload("estoque.txt", "LEAK-1\n")}),
    ):
        refused = await run_command(store.buyer, store, name, options)
        assert refused.ephemeral and refused.content == STAFF_ONLY, (name, refused)
        assert not refused.message.embeds and "Netflix" not in refused.message.text()
    assert await StockItem.all().count() == before


async def test_estoque_adicionar_adds_new_lines_and_delivers_the_order_waiting_for_stock(
    fleet, dc, mpc, svc
):
    store = await make_store(fleet, dc, stock={"1 mês": ["FIRST"]})
    await ready(fleet, dc, store)
    panel = await post_panel(store)
    waiting = order_id_of(await buy(store.buyer, panel, store.variations[0].id))
    # the reserved item is gone by the time the payment lands: the order waits for stock
    await StockItem.filter(order_id=waiting).update(status=StockStatus.SOLD, order_id=None)
    await approve_and_sync(mpc, svc, waiting)
    await wait_status(waiting, "waiting_stock")

    # saved by Windows Notepad: BOM, CRLF; a blank line, a repeat, an item already stored
    text = "\ufeffNEW-1\r\nNEW-2\r\n\r\nNEW-1\r\nFIRST\r\n  NEW-3  \r\n"
    added = await run_command(
        store.staff,
        store,
        "estoque-adicionar",
        {"produto": "netflix", "arquivo": upload("estoque.txt", text)},
    )
    assert added.ephemeral and added.content == (
        "3 item(ns) adicionado(s), 2 duplicado(s) ignorado(s), 1 linha(s) inválida(s).\n"
        "Linhas duplicadas: 4, 5"
    )
    items = await stock_of(fleet, store.variations[0])
    assert set(items) == {"FIRST", "NEW-1", "NEW-2", "NEW-3"}

    order = await wait_status(waiting, "delivered", timeout=15)
    dm = await store.buyer.wait_dm(lambda m: m.embeds, timeout=10)
    (item,) = await StockItem.filter(order_id=waiting)
    delivered = fleet.vault.decrypt(item.content_enc).reveal()
    assert delivered in {"NEW-1", "NEW-2", "NEW-3"} and delivered in dm.text()
    assert order.delivery_path == "dm"
    # the panel follows: 3 added, 1 went to the waiting order
    await dc.wait_channel_message(
        store.shop_channel, lambda m: m.id == panel.id and "2 disponível" in m.text()
    )


async def test_estoque_adicionar_refuses_bad_files_unknown_products_and_unnamed_variations(
    fleet, dc
):
    store = await make_store(fleet, dc, stock={"1 mês": ["A1"], "3 meses": []})
    await ready(fleet, dc, store)

    async def add(filename: str, data: bytes | str, **options: str) -> Any:
        return await run_command(
            store.staff,
            store,
            "estoque-adicionar",
            {"produto": "Netflix", **options, "arquivo": upload(filename, data)},
        )

    refusals = [
        (("estoque.csv", "B1\nB2\n"), "Envie um arquivo .txt, com um item por linha."),
        (("estoque.txt", b"B" * (MAX_UPLOAD_BYTES + 1)), "Arquivo grande demais (máximo 1 MB)."),
        (
            ("estoque.txt", "Conta: jo\u00e3o\n".encode("latin-1")),
            "O arquivo não está em UTF-8. Salve-o como UTF-8 e envie de novo.",
        ),
        (
            ("estoque.txt", "".join(f"K{n}\n" for n in range(MAX_LINES_PER_ADD + 1))),
            f"Mais de {MAX_LINES_PER_ADD} linhas de uma vez: divida o arquivo em partes.",
        ),
    ]
    for (filename, data), message in refusals:
        refused = await add(filename, data, variacao="1 mês")
        assert refused.ephemeral and refused.content == f"⚠️ {message}", refused
    unknown = await add("estoque.txt", "B1\n", produto="Spotify")
    assert unknown.ephemeral and "Produto não encontrado" in unknown.content
    for options in ({}, {"variacao": "6 meses"}):
        which = await add("estoque.txt", "B1\n", **options)
        assert which.ephemeral and which.content == (
            "⚠️ Netflix tem estas variações: 1 mês, 3 meses. Informe uma delas na opção variacao."
        ), which
    assert await StockItem.all().count() == 1

    await Product.filter(id=store.product.id).update(active=False)  # paused: staff restock
    added = await add("estoque.txt", "B1\nB2\n", variacao="3 MESES")
    assert added.content.startswith("2 item(ns) adicionado(s)"), added
    assert await stock_of(fleet, store.variations[1]) == {"B1": "available", "B2": "available"}
    assert await stock_of(fleet, store.variations[0]) == {"A1": "available"}


async def test_vendas_hoje_sums_orders_paid_today_in_brasilia_time_for_this_store_only(fleet, dc):
    store = await make_store(
        fleet, dc, stock={"1 mês": [], "3 meses": []}, prices={"1 mês": 1990, "3 meses": 4990}
    )
    other = await second_store(fleet, dc)
    month, quarter = store.variations
    disney = await Product.create(tenant=store.tenant, name="Disney+")
    yearly = await Variation.create(
        tenant=store.tenant, product=disney, name="Anual", price_cents=123456
    )
    now = datetime.now(UTC)
    midnight = datetime.now(BRT).replace(hour=0, minute=0, second=0, microsecond=0)
    # counted: paid (delivered, waiting for stock or just paid) since 00:00 in Brasília
    await seed_order(store, month, OrderStatus.DELIVERED, 1990, midnight + timedelta(minutes=1))
    await seed_order(store, quarter, OrderStatus.WAITING_STOCK, 4990, now)
    await seed_order(store, month, OrderStatus.PAID, 1990, now)
    await seed_order(
        store,
        month,
        OrderStatus.DELIVERED,
        1990,
        midnight + timedelta(minutes=2),
        created_at=midnight - timedelta(hours=5),
    )  # ordered yesterday
    await seed_order(store, yearly, OrderStatus.DELIVERED, 123456, now)
    # not counted: paid at 23:59 yesterday in Brasília (already "today" in UTC), unpaid,
    # refunded, and another store's sale
    await seed_order(store, month, OrderStatus.DELIVERED, 1990, midnight - timedelta(minutes=1))
    await seed_order(store, month, OrderStatus.DELIVERED, 1990, midnight - timedelta(days=1))
    await seed_order(store, month, OrderStatus.PENDING, 1990, None)
    await seed_order(store, month, OrderStatus.CANCELLED, 1990, None)
    await seed_order(store, month, OrderStatus.REFUNDED, 1990, now)
    await seed_order(other, other.variations[0], OrderStatus.DELIVERED, 9990, now)
    await ready(fleet, dc, store, other)

    today = await run_command(store.staff, store, "vendas-hoje")
    assert sorted(description(today)) == [
        "**Disney+**: 1 pedido(s), R$ 1.234,56",
        "**Netflix**: 4 pedido(s), R$ 109,60",
    ]
    assert fields(today) == {"Pedidos": "5", "Total": "R$ 1.344,16"}
    theirs = await run_command(other.staff, other, "vendas-hoje")
    assert description(theirs) == ["**Spotify**: 1 pedido(s), R$ 99,90"]
    assert fields(theirs) == {"Pedidos": "1", "Total": "R$ 99,90"}
    english = await (
        await store.staff.slash(store.bot, store.guild, "loja", "vendas-hoje", locale="en-US")
    ).wait_reply(timeout=10)
    assert english.message.embeds[0]["title"] == "Today's sales"
    assert fields(english) == {"Orders": "5", "Total": "R$ 1.344,16"}


async def test_staff_of_one_store_never_sees_or_changes_another_stores_catalog(fleet, dc):
    store = await make_store(fleet, dc, stock={"1 mês": ["A1"]})
    other = await second_store(fleet, dc)
    # the same person is staff in both servers: what they see depends on the bot they talk to
    await dc.add_member(other.guild, store.staff.id, roles=["Equipe"])
    await ready(fleet, dc, store, other)

    mine = await run_command(store.staff, store, "estoque")
    assert description(mine) == [
        "**Netflix** — 1 mês: 1 disponível(is), 0 reservado(s), 0 vendido(s)"
    ]
    theirs = await run_command(store.staff, other, "estoque")
    assert description(theirs) == [
        "**Spotify** — Família: 2 disponível(is), 0 reservado(s), 0 vendido(s)"
    ]
    for produto in ("Spotify", str(other.product.id)):
        refused = await run_command(
            store.staff,
            store,
            "estoque-adicionar",
            {"produto": produto, "arquivo": upload("estoque.txt", "INTRUDER\n")},
        )
        assert "Produto não encontrado" in refused.content, refused
    assert set(await stock_of(fleet, other.variations[0])) == {"SPOT-1", "SPOT-2"}
    none = await run_command(store.staff, store, "vendas-hoje")
    assert description(none) == ["Nenhuma venda hoje ainda."]
    assert "Spotify" not in none.message.text() and "Família" not in mine.message.text()
