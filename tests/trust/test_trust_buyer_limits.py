"""Issue 13 item 7: one buyer cannot hold a store's stock hostage (open-order cap, quantity cap,
per-store blocklist fed by chargebacks/MED); item 8: stock duplicates hashed with a keyed HMAC.

Shop level, against the Mercado Pago stand-in (`svc`, `mp`), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid

import pytest

from core.models import AuditLog
from core.vault import TokenVault, generate_key
from shop import checkout
from shop.blocklist import block_buyer, is_blocked, unblock_buyer
from shop.buyer_limits import BuyerBlocked, TooManyOpenOrders
from shop.models import BlockedBuyer, Order, Payment, Product, StockItem
from shop.orders import cancel_order
from shop.payments.sync import apply_provider_payment, sync_payment
from shop.states import OrderStatus, StockStatus
from shop.stock import add_stock
from tests.shop.conftest import mp, svc  # noqa: F401
from tests.shop.helpers import make_store

BUYER = "111111111111111111"
OTHER_BUYER = "222222222222222222"
KEY = b"k" * 32


def req(store, buyer: str = BUYER, quantity: int = 1) -> checkout.CheckoutRequest:
    return checkout.CheckoutRequest(
        tenant_id=store["tenant"].id,
        instance_id=store["instance"].id,
        variation_id=store["variation"].id,
        quantity=quantity,
        buyer_id=buyer,
        key=uuid.uuid4().hex,
    )


def pix_count(mp) -> int:  # noqa: F811 - the fixture, passed in
    return len(mp.state.payments)


async def reserved(store) -> int:
    return await StockItem.filter(
        variation_id=store["variation"].id, status=StockStatus.RESERVED
    ).count()


async def test_third_open_order_is_refused_nothing_reserved_no_pix(svc, mp):  # noqa: F811
    store = await make_store(stock=20)
    for _ in range(2):
        await checkout.checkout(svc, req(store))
    assert pix_count(mp) == 2 and await reserved(store) == 2
    with pytest.raises(TooManyOpenOrders) as refused:
        await checkout.checkout(svc, req(store))
    assert "2" in refused.value.message("pt-BR")
    assert "pague ou cancele" in refused.value.message("pt-BR").lower()
    assert pix_count(mp) == 2, "a refused checkout reached Mercado Pago"
    assert await reserved(store) == 2
    assert await Order.filter(tenant_id=store["tenant"].id).count() == 2


async def test_quantity_above_the_product_maximum_is_refused(svc, mp):  # noqa: F811
    store = await make_store(stock=20)
    await Product.filter(id=store["product"].id).update(max_per_order=3)
    with pytest.raises(checkout.InvalidQuantity) as refused:
        await checkout.checkout(svc, req(store, quantity=4))
    assert "3" in refused.value.message("pt-BR")
    assert pix_count(mp) == 0 and await reserved(store) == 0
    order, _ = await checkout.checkout(svc, req(store, quantity=3))
    assert order.quantity == 3 and await reserved(store) == 3


async def test_cap_is_per_store_and_per_buyer(svc, mp):  # noqa: F811
    store = await make_store(stock=20)
    second_store = await make_store(name="Outra", stock=20)
    for _ in range(2):
        await checkout.place_order(req(store))
    with pytest.raises(TooManyOpenOrders):
        await checkout.place_order(req(store))
    await checkout.place_order(req(second_store))  # another store: its own cap
    await checkout.place_order(req(store, buyer=OTHER_BUYER))  # another buyer: their own cap


async def test_store_setting_changes_the_cap(db):
    store = await make_store(stock=20)
    store["tenant"].max_open_orders_per_buyer = 1
    await store["tenant"].save()
    await checkout.place_order(req(store))
    with pytest.raises(TooManyOpenOrders):
        await checkout.place_order(req(store))


async def test_paying_or_cancelling_frees_a_slot(svc, mp):  # noqa: F811
    store = await make_store(stock=20)
    first, payment = await checkout.checkout(svc, req(store))
    second, _ = await checkout.checkout(svc, req(store))
    with pytest.raises(TooManyOpenOrders):
        await checkout.place_order(req(store))
    await cancel_order(second.id, f"buyer:{BUYER}")
    third, _ = await checkout.place_order(req(store))
    await mp.control.approve(int(payment.provider_payment_id))
    await sync_payment(svc, str(payment.id), "system:test")
    assert (await Order.get(id=first.id)).status == OrderStatus.PAID
    await checkout.place_order(req(store))  # first is paid: a slot again
    with pytest.raises(TooManyOpenOrders):
        await checkout.place_order(req(store))
    assert third.status == OrderStatus.PENDING


async def test_a_replayed_confirmation_is_not_counted_as_a_new_order(db):
    store = await make_store(stock=20)
    request = req(store)
    await checkout.place_order(req(store))
    first, created = await checkout.place_order(request)
    again, created_again = await checkout.place_order(request)  # double click: same order
    assert created and not created_again and again.id == first.id


async def test_concurrent_checkouts_of_one_buyer_cannot_both_pass_the_cap(db):
    store = await make_store(stock=20)
    await checkout.place_order(req(store))  # one open: one slot left
    results = await asyncio.gather(
        *(checkout.place_order(req(store)) for _ in range(6)), return_exceptions=True
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1, results
    assert all(isinstance(r, TooManyOpenOrders) for r in lost), lost
    assert await Order.filter(buyer_discord_id=BUYER, status=OrderStatus.PENDING).count() == 2
    assert await reserved(store) == 2


async def test_blocked_buyer_gets_a_neutral_refusal_no_order_no_charge(svc, mp):  # noqa: F811
    store = await make_store(stock=20)
    await block_buyer(store["tenant"].id, BUYER, "account:1", reason="golpe")
    with pytest.raises(BuyerBlocked) as refused:
        await checkout.checkout(svc, req(store))
    text = refused.value.message("pt-BR")
    assert text == "Não foi possível concluir a compra nesta loja."
    assert "bloque" not in text.lower()
    assert "block" not in refused.value.message("en").lower()
    assert pix_count(mp) == 0 and await reserved(store) == 0
    assert await Order.all().count() == 0
    other = await make_store(name="Outra", stock=5)  # the block is this store's only
    await checkout.checkout(svc, req(other))


async def test_lifting_a_block_lets_the_buyer_buy_again(db):
    store = await make_store(stock=5)
    tid = store["tenant"].id
    entry, created = await block_buyer(tid, BUYER, "account:1")
    again, created_again = await block_buyer(tid, BUYER, "account:1")
    assert created and not created_again and again.id == entry.id
    assert await unblock_buyer(tid, entry.id, "account:1")
    assert not await unblock_buyer(tid, entry.id, "account:1")
    await checkout.place_order(req(store))
    actions = (
        await AuditLog.filter(tenant_id=tid, action__startswith="buyer.")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["buyer.blocked", "buyer.unblocked"]


async def _paid_order(svc, mp, store):  # noqa: F811
    order, payment = await checkout.checkout(svc, req(store))
    await mp.control.approve(int(payment.provider_payment_id))
    await sync_payment(svc, str(payment.id), "system:test")
    return order, await Payment.get(id=payment.id)


async def test_chargeback_blocks_the_buyer_once_and_the_seller_can_lift_it(svc, mp):  # noqa: F811
    store = await make_store(stock=5)
    tid = store["tenant"].id
    order, payment = await _paid_order(svc, mp, store)
    assert not await is_blocked(tid, BUYER)
    await mp.control.chargeback(int(payment.provider_payment_id))
    result = await sync_payment(svc, str(payment.id), "system:webhook")
    assert any("blocked" in change for change in result.changes), result.changes
    entry = await BlockedBuyer.get(tenant_id=tid, discord_id=BUYER)
    assert entry.source == "chargeback" and entry.order_id == order.id
    with pytest.raises(BuyerBlocked):
        await checkout.place_order(req(store))
    assert await unblock_buyer(tid, entry.id, "account:1")
    assert not (await sync_payment(svc, str(payment.id), "system:webhook")).changed
    assert not await is_blocked(tid, BUYER), "a replayed chargeback put the lifted block back"
    await checkout.place_order(req(store))


async def test_med_reversal_after_a_dispute_blocks_the_buyer(svc, mp):  # noqa: F811
    store = await make_store(stock=5)
    _, payment = await _paid_order(svc, mp, store)
    remote = await svc.gateway.get_payment(payment.provider_payment_id)
    disputed = dataclasses.replace(
        remote, status="in_mediation", raw={**remote.raw, "status": "in_mediation"}
    )
    await apply_provider_payment(svc, disputed, "system:webhook")
    assert not await is_blocked(store["tenant"].id, BUYER)  # a dispute alone blocks no one
    returned = dataclasses.replace(
        remote,
        status="refunded",
        status_detail="refunded",
        refunded_cents=remote.amount_cents,
        raw={**remote.raw, "status": "refunded"},
    )
    await apply_provider_payment(svc, returned, "system:webhook")
    entry = await BlockedBuyer.get(tenant_id=store["tenant"].id, discord_id=BUYER)
    assert entry.source == "med"


async def test_a_refund_the_seller_asked_for_blocks_no_one(svc, mp):  # noqa: F811
    from shop.payments.refunds import refund_order

    store = await make_store(stock=5)
    order, _ = await _paid_order(svc, mp, store)
    await refund_order(svc, order.id, "account:1")
    assert (await Order.get(id=order.id)).status == OrderStatus.REFUNDED
    assert not await is_blocked(store["tenant"].id, BUYER)


async def test_stock_duplicate_hash_is_a_keyed_hmac_and_still_finds_duplicates(db):
    vault = TokenVault([generate_key()])
    store = await make_store(stock=0)
    other = await make_store(name="Outra", stock=0)
    tid, vid = store["tenant"].id, store["variation"].id
    result = await add_stock(
        vault, tid, vid, "NETFLIX-KEY-1\nNETFLIX-KEY-1\nKEY-2\n", "t", hash_key=KEY
    )
    assert result.added == 2 and result.duplicates == [2]
    stored = await StockItem.filter(variation_id=vid).order_by("id").first()
    bare = hashlib.sha256(b"NETFLIX-KEY-1").hexdigest()
    assert stored.content_hash != bare, "the stored digest reveals which known key is held"
    again = await add_stock(vault, tid, vid, "KEY-2\nNEW-3", "t", hash_key=KEY)
    assert again.added == 1 and again.duplicates == [1]
    await add_stock(
        vault,
        other["tenant"].id,
        other["variation"].id,
        "NETFLIX-KEY-1",
        "t",
        hash_key=b"another key " * 3,
    )
    elsewhere = await StockItem.get(variation_id=other["variation"].id)
    assert elsewhere.content_hash not in (stored.content_hash, bare)
