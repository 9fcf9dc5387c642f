"""Product kinds at the shop level (issue 16), SQLite and PostgreSQL: sales caps under a race,
units released like stock, what each kind's delivery carries, manual fulfilment, files."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid

import pytest

from core.models import AuditLog
from core.vault import TokenVault, generate_key
from fleet.models import BotInstance
from shop import checkout, delivery, fulfilment, kinds, product_files
from shop.allocation import OutOfStock
from shop.errors import InvalidStateChange, OrderNotFound
from shop.models import (
    Account,
    FulfilmentNote,
    Order,
    Product,
    ProductFile,
    ProductKind,
    Tenant,
    Variation,
)
from shop.orders import cancel_order, transition
from shop.payments.sync import order_plan
from shop.states import OrderStatus, PaymentStatus

VAULT = TokenVault([generate_key()])
O = OrderStatus  # noqa: E741 - as in shop.states


async def _store(kind: ProductKind, cap: int | None = None, shared: str | None = None):
    owner = await Account.create(discord_id=uuid.uuid4().hex[:18], username="s")
    tenant = await Tenant.create(owner=owner, name="Loja")
    inst = await BotInstance.create(tenant=tenant, token_enc="x")
    product = await Product.create(tenant=tenant, name="Curso", max_per_order=5)
    variation = await Variation.create(
        tenant=tenant,
        product=product,
        name="v",
        price_cents=1000,
        kind=kind,
        sales_cap=cap,
        shared_content_enc=VAULT.encrypt(shared) if shared else None,
    )
    return tenant, inst, variation


def _req(tenant, inst, variation, buyer: int | str, quantity: int = 1):
    return checkout.CheckoutRequest(
        tenant.id, inst.id, variation.id, quantity, str(buyer), key=uuid.uuid4().hex
    )


async def _paid(tenant, inst, variation, buyer="7") -> Order:
    order, _ = await checkout.place_order(_req(tenant, inst, variation, buyer))
    await transition(order.id, O.PAID, "test")
    return order


async def test_50_buyers_race_for_a_shared_product_capped_at_10_and_never_oversell(db):
    tenant, inst, variation = await _store(ProductKind.SHARED, cap=10, shared="https://x/aula")

    async def buyer(n: int) -> Order | None:
        await asyncio.sleep((n % 4) / 1000)
        try:
            order, _ = await checkout.place_order(_req(tenant, inst, variation, n))
        except OutOfStock:
            return None
        return order

    won = [o for o in await asyncio.gather(*(buyer(n) for n in range(50))) if o]
    assert len(won) == 10
    assert (await Variation.get(id=variation.id)).sold_count == 10
    assert await Order.filter(variation_id=variation.id).count() == 10
    # a cancelled order gives its unit back: exactly one more buyer gets in
    await cancel_order(won[0].id, "test")
    assert (await Variation.get(id=variation.id)).sold_count == 9
    await checkout.place_order(_req(tenant, inst, variation, 100))
    with pytest.raises(OutOfStock):
        await checkout.place_order(_req(tenant, inst, variation, 101))
    assert (await Variation.get(id=variation.id)).sold_count == 10


async def test_units_come_back_on_expiry_and_early_refund_but_not_after_delivery(db):
    tenant, inst, variation = await _store(ProductKind.SHARED, cap=3, shared="LINK")
    expired, _ = await checkout.place_order(_req(tenant, inst, variation, 1))
    await transition(expired.id, O.EXPIRED, "test")
    refunded_early = await _paid(tenant, inst, variation, 2)
    await transition(refunded_early.id, O.REFUNDED, "test")
    assert (await Variation.get(id=variation.id)).sold_count == 0
    delivered = await _paid(tenant, inst, variation, 3)
    assert (await delivery.prepare(delivered.id, VAULT, "t")).outcome == delivery.Outcome.DELIVER
    await delivery.mark_delivered(delivered.id, "dm", "t")
    await transition(delivered.id, O.REFUNDED, "test")
    assert (await Variation.get(id=variation.id)).sold_count == 1  # the buyer has the content


async def test_an_uncapped_kind_sells_past_any_stock_count_and_shows_as_available(db):
    tenant, inst, variation = await _store(ProductKind.ROLE_ONLY)
    offer = await checkout.sellable(tenant.id, variation.id)
    assert offer.available == kinds.UNLIMITED and offer.max_quantity == 5
    for n in range(12):
        await checkout.place_order(_req(tenant, inst, variation, n, quantity=5))
    assert (await Variation.get(id=variation.id)).sold_count == 60


async def test_a_shared_variation_without_its_text_or_a_file_variation_without_file_is_not_sold(db):
    for kind in (ProductKind.SHARED, ProductKind.FILE):
        tenant, inst, variation = await _store(kind)
        with pytest.raises(kinds.NotDeliverable):
            await checkout.place_order(_req(tenant, inst, variation, 1))
    assert await Order.all().count() == 0


async def test_shared_delivery_carries_the_decrypted_text_once_per_job(db):
    tenant, inst, variation = await _store(ProductKind.SHARED, shared="https://curso/aula-1")
    order = await _paid(tenant, inst, variation)
    first = await delivery.prepare(order.id, VAULT, "t")
    again = await delivery.prepare(order.id, VAULT, "t")
    assert first.outcome == again.outcome == delivery.Outcome.DELIVER
    assert first.items == ["https://curso/aula-1"] and first.nonce == again.nonce
    assert first.kind == ProductKind.SHARED and first.attachment is None


async def test_file_is_stored_encrypted_and_delivered_with_the_same_bytes(db):
    tenant, inst, variation = await _store(ProductKind.FILE)
    data = b"%PDF-1.7 guia secreto " + bytes(range(256)) * 40
    stored = await product_files.store_file(VAULT, variation, "../Guia Ação.pdf", data, "seller")
    assert stored.name == "Guia Acao.pdf" and stored.size == len(data)
    row = await ProductFile.get(variation_id=variation.id)
    assert row.sha256 == hashlib.sha256(data).hexdigest()
    assert base64.b64encode(data).decode() not in row.content_enc and b"secreto" not in (
        row.content_enc.encode()
    )
    order = await _paid(tenant, inst, variation)
    prepared = await delivery.prepare(order.id, VAULT, "t")
    assert prepared.outcome == delivery.Outcome.DELIVER and prepared.items == []
    assert prepared.attachment == ("Guia Acao.pdf", data)
    log = await AuditLog.get(action="variation.file_uploaded")
    assert log.after["size"] == len(data) and "content" not in log.after


@pytest.mark.parametrize("size", [0, product_files.MAX_FILE_BYTES + 1])
async def test_a_file_empty_or_over_discords_10_mib_is_refused_and_nothing_stored(db, size):
    _, _, variation = await _store(ProductKind.FILE)
    with pytest.raises(product_files.FileRefused) as refused:
        await product_files.store_file(VAULT, variation, "a.bin", b"x" * size, "seller")
    if size:
        assert "10 MiB" in refused.value.message()
    assert not await ProductFile.exists()


async def test_role_only_delivers_nothing_but_the_confirmation(db):
    tenant, inst, variation = await _store(ProductKind.ROLE_ONLY)
    order = await _paid(tenant, inst, variation)
    prepared = await delivery.prepare(order.id, VAULT, "t")
    assert prepared.outcome == delivery.Outcome.DELIVER
    assert prepared.items == [] and prepared.attachment is None


async def test_manual_order_waits_for_staff_then_delivers_the_note_once(db):
    tenant, inst, variation = await _store(ProductKind.MANUAL)
    order = await _paid(tenant, inst, variation)
    first = await delivery.prepare(order.id, VAULT, "worker")
    assert first.outcome == delivery.Outcome.AWAITING and first.newly_waiting
    again = await delivery.prepare(order.id, VAULT, "worker")
    assert again.outcome == delivery.Outcome.AWAITING and not again.newly_waiting
    stored = await Order.get(id=order.id)
    assert stored.status == O.AWAITING_FULFILMENT and stored.wake_at is None
    assert await AuditLog.filter(action="order.awaiting_fulfilment").count() == 1

    with pytest.raises(fulfilment.NoteInvalid):
        await fulfilment.fulfil(VAULT, tenant.id, order.id, "   ", "staff")
    other, _, _ = await _store(ProductKind.MANUAL)
    with pytest.raises(OrderNotFound):  # another store's staff
        await fulfilment.fulfil(VAULT, other.id, order.id, "nope", "staff")
    note = "Login: aluno@x / senha: s3nh4"
    assert await fulfilment.fulfil(VAULT, tenant.id, order.id, note, "account:1")
    assert not await fulfilment.fulfil(VAULT, tenant.id, order.id, "second", "account:1")
    owed = await Order.get(id=order.id)
    assert owed.wake_at is not None  # the delivery is owed again: the relay wakes the worker
    assert note not in (await FulfilmentNote.get(order_id=order.id)).note_enc
    audit = await AuditLog.get(action="order.fulfilment_noted")
    assert note not in str(audit.after)

    ready = await delivery.prepare(order.id, VAULT, "worker")
    assert ready.outcome == delivery.Outcome.DELIVER and ready.items == [note]
    assert await delivery.mark_delivered(order.id, "dm", "worker")
    done = await Order.get(id=order.id)
    assert done.status == O.DELIVERED and done.wake_at is None
    with pytest.raises(InvalidStateChange):
        await fulfilment.fulfil(VAULT, tenant.id, order.id, "late", "staff")


async def test_a_refund_of_an_awaiting_order_is_planned_and_releases_its_unit(db):
    assert order_plan(O.AWAITING_FULFILMENT, PaymentStatus.REFUNDED) == [O.REFUNDED]
    tenant, inst, variation = await _store(ProductKind.MANUAL, cap=1)
    order = await _paid(tenant, inst, variation)
    await delivery.prepare(order.id, VAULT, "worker")
    await transition(order.id, O.REFUNDED, "test")
    assert (await Variation.get(id=variation.id)).sold_count == 0
    assert (await delivery.prepare(order.id, VAULT, "worker")).outcome == delivery.Outcome.GONE


async def test_kind_cannot_change_while_orders_are_open(db):
    tenant, inst, variation = await _store(ProductKind.SHARED, shared="A")
    order, _ = await checkout.place_order(_req(tenant, inst, variation, 1))
    errors = await kinds.save_settings(VAULT, variation, {"kind": "stock"}, "seller")
    assert errors["kind"][0] == "kinds.error.kind_locked"
    await cancel_order(order.id, "test")
    assert await kinds.save_settings(VAULT, variation, {"kind": "stock"}, "seller") == {}
    assert (await Variation.get(id=variation.id)).kind == ProductKind.STOCK


async def test_settings_are_bounded_and_the_shared_text_encrypted(db):
    _, _, variation = await _store(ProductKind.STOCK)
    bad = await kinds.save_settings(
        VAULT,
        variation,
        {"kind": "shared", "sales_cap": "1e9", "shared_content": "x" * 5000},
        "seller",
    )
    assert set(bad) == {"sales_cap", "shared_content"}
    assert await kinds.save_settings(VAULT, variation, {"kind": "bogus"}, "s") != {}
    ok = await kinds.save_settings(
        VAULT, variation, {"kind": "shared", "sales_cap": "25", "shared_content": " LINK "}, "s"
    )
    saved = await Variation.get(id=variation.id)
    assert ok == {} and saved.sales_cap == 25 and "LINK" not in (saved.shared_content_enc or "")
    assert VAULT.decrypt(saved.shared_content_enc or "").reveal() == "LINK"
