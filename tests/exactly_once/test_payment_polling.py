"""A lost webhook costs seconds: open PIX charges are polled (backing off, under one budget per
minute), the buyer can press "Verificar pagamento", and operators see how each payment was
confirmed. Mercado Pago approvals here send no webhook (`approve(..., notify=False)`)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shop.models import Order, Payment
from shop.payments.payment_polling import FRESH_GAP, MAX_GAP, PollBudget, next_poll, poll_once
from shop.payments.payment_reconciler import run_forever, with_poller
from shop.payments.service import create_pix_payment
from shop.payments.sync import sync_payment
from shop.states import OrderStatus, PaymentStatus
from tests.shop.conftest import mp, svc  # noqa: F401 - fixtures
from tests.shop.helpers import make_order, make_store
from tests.storefront.conftest import fleet_env  # noqa: F401 - fixture: the storefront's env

GET_PAYMENT = "GET /v1/payments/{id}"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


# --- the schedule (pure) ---------------------------------------------------------------------
def test_first_poll_5s_after_creation_then_backs_off_to_15s_then_60s():
    gaps, now = [], T0
    for attempts in range(40):
        due = next_poll(T0, attempts, now)
        gaps.append((due - now).total_seconds())
        now = due
    assert gaps[:6] == [5.0, 5.0, 7.5, 11.25, 15.0, 15.0] and gaps[-1] == 60.0
    assert max(gaps[:20]) == 15.0  # young charges: a paid PIX is seen within 15 s
    assert next_poll(T0, 3, T0 + timedelta(minutes=36)) is None  # the PIX cannot be paid


@given(attempts=st.integers(0, 10_000), age_ms=st.integers(0, 40 * 60_000))
def test_next_poll_is_soon_never_early_and_never_past_the_cap(attempts, age_ms):
    now = T0 + timedelta(milliseconds=age_ms)
    due = next_poll(T0, attempts, now)
    if due is None:
        assert age_ms >= 35 * 60_000
        return
    if attempts == 0:
        assert due == T0 + timedelta(seconds=5)
    else:
        cap = FRESH_GAP if age_ms < 5 * 60_000 else MAX_GAP
        assert now + timedelta(seconds=5) <= due <= now + cap
        later = next_poll(T0, attempts + 1, now)
        assert later is None or later - now >= due - now  # gaps never shrink


# --- the budget -------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_budget_is_a_sliding_minute_shared_by_processes(redis_client):
    clock = Clock()
    reconciler, other = PollBudget(redis_client, 5, clock), PollBudget(redis_client, 5, clock)
    taken = [await reconciler.take() for _ in range(3)] + [await other.take() for _ in range(3)]
    assert taken == [True] * 5 + [False]
    clock.now += 59.0
    assert not await reconciler.take()  # still the same 60 s: no window-edge burst
    assert await other.take(force=True)  # a buyer's press goes through, and is counted
    clock.now += 1.5
    assert [await reconciler.take() for _ in range(5)] == [True] * 4 + [False]


async def test_budget_falls_back_to_a_quarter_locally_when_redis_is_down():
    import redis.asyncio as aioredis

    from ops.process_tools import free_port

    dead = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    budget = PollBudget(dead, 120, Clock())
    try:
        assert [await budget.take() for _ in range(31)].count(True) == 30
    finally:
        await dead.aclose()


async def _open_pix(svc, count: int, age: timedelta = timedelta(seconds=10)):  # noqa: F811
    store = await make_store(stock=count)
    payments = []
    for _ in range(count):
        order = await make_order(store)
        payments.append(await create_pix_payment(svc, order.id, "buyer:555"))
    for i, payment in enumerate(payments):  # created `age` ago, oldest first
        await Payment.filter(id=payment.id).update(
            created_at=datetime.now(UTC) - age - timedelta(milliseconds=len(payments) - i)
        )
    return payments


async def test_a_burst_of_open_pix_never_exceeds_the_budget_and_newest_go_first(
    svc, mp, redis_client
):  # noqa: F811
    payments = await _open_pix(svc, 30)
    budget = PollBudget(redis_client, 10)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:  # the poller's 1 s passes, faster
        await poll_once(svc, budget)
        await asyncio.sleep(0.1)
    counts = await mp.control.requests()
    assert counts.get(GET_PAYMENT, 0) == 10
    polled = {str(p.id) for p in await Payment.filter(poll_attempts__gt=0)}
    assert polled == {str(p.id) for p in payments[-10:]}


# --- lost webhook: polling finds the approval --------------------------------------------------
async def test_silent_approval_is_found_by_polling_within_seconds(svc, mp):  # noqa: F811
    (payment,) = await _open_pix(svc, 1, age=timedelta(0))
    await mp.control.approve(int(payment.provider_payment_id), notify=False)
    approved_at = time.monotonic()
    stop = asyncio.Event()
    # the reconciler process as it runs: its 30 s pass and, beside it, the poller
    task = asyncio.create_task(with_poller(run_forever(svc, 30.0, stop), svc, 120, stop))
    try:
        while (await Order.get(id=payment.order_id)).status != OrderStatus.PAID:
            assert time.monotonic() - approved_at < 8.0, "not found by polling"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    found = await Payment.get(id=payment.id)
    assert found.status == PaymentStatus.APPROVED and found.confirmed_via == "poll"
    assert found.next_poll_at is None  # final: no longer polled
    assert not [w for w in await mp.control.webhooks() if w["action"] == "payment.updated"]


async def test_polling_stops_for_final_payments_and_expired_orders(svc, mp):  # noqa: F811
    approved, expired_order, expired_pix, open_ = await _open_pix(svc, 4)
    await mp.control.approve(int(approved.provider_payment_id))
    await sync_payment(svc, str(approved.id), "system:webhook")
    await Order.filter(id=expired_order.order_id).update(status=OrderStatus.EXPIRED)
    await Payment.filter(id=expired_pix.id).update(expires_at=datetime.now(UTC))
    before = (await mp.control.requests()).get(GET_PAYMENT, 0)
    assert await poll_once(svc, PollBudget(None, 100)) == 1  # only the open one
    assert (await mp.control.requests()).get(GET_PAYMENT, 0) == before + 1
    assert (await Payment.get(id=open_.id)).poll_attempts == 1
    assert (await Payment.get(id=approved.id)).confirmed_via == "webhook"
    mp.state.transition(mp.state.get(int(open_.provider_payment_id)), "reject", notify=False)
    await Payment.filter(id=open_.id).update(next_poll_at=datetime.now(UTC))
    assert await poll_once(svc, PollBudget(None, 100)) == 1  # sees the rejection…
    assert (await Payment.get(id=open_.id)).next_poll_at is None
    assert await poll_once(svc, PollBudget(None, 100)) == 0  # …and never asks again


# --- the button's rules, without Discord ----------------------------------------------------------
async def test_check_refuses_another_buyer_and_limits_presses_without_asking_mp(svc, mp):  # noqa: F811
    from fleet import keys
    from shop.payments.payment_check import CHECK_MAX_PER_ORDER, NotYourOrder, check_payment

    (payment,) = await _open_pix(svc, 1)
    order = await Order.get(id=payment.order_id)
    with pytest.raises(NotYourOrder):
        await check_payment(svc, order.tenant_id, order.id, "someone-else")
    assert (await check_payment(svc, order.tenant_id, order.id, "555")).kind == "pending"
    wait = await check_payment(svc, order.tenant_id, order.id, "555")
    assert wait.kind == "wait" and 1 <= wait.wait_s <= 5
    await svc.redis.delete(keys.payment_check_cooldown(order.id))
    await svc.redis.set(keys.payment_check_count(order.id), CHECK_MAX_PER_ORDER)
    assert (await check_payment(svc, order.tenant_id, order.id, "555")).kind == "exhausted"
    assert (await mp.control.requests()).get(GET_PAYMENT, 0) == 1  # the one answered press
    await mp.control.approve(int(payment.provider_payment_id), notify=False)
    await svc.redis.delete(
        keys.payment_check_count(order.id), keys.payment_check_cooldown(order.id)
    )
    assert (await check_payment(svc, order.tenant_id, order.id, "555")).kind == "paid"
    assert (await Payment.get(id=payment.id)).confirmed_via == "button"


# --- operators see how payments were confirmed ------------------------------------------------
async def test_confirmation_counts_reach_the_admin_status(
    tmp_path,
    svc,
    mp,
    db,  # noqa: F811
    redis_url,
):
    from tests.helpers.admin import AUTH, admin_settings
    from web.admin import create_app

    by_webhook, by_poll, open_ = await _open_pix(svc, 3)
    for payment in (by_webhook, by_poll):
        await mp.control.approve(int(payment.provider_payment_id), notify=False)
    await sync_payment(svc, str(by_webhook.id), "system:webhook")
    await poll_once(svc, PollBudget(None, 100))
    app = create_app(admin_settings(tmp_path, db, redis_url))
    async with app.test_app():
        body = await (await app.test_client().get("/api/status", headers=AUTH)).get_json()
    assert body["confirmations"]["webhook"] == {"last_24h": 1, "total": 1}
    assert body["confirmations"]["poll"] == {"last_24h": 1, "total": 1}
    assert body["confirmations"]["button"] == {"last_24h": 0, "total": 0}


# --- end to end with a real worker: the DM arrives without any webhook -----------------------
async def _discord_purchase(fleet, dc, key: str):
    from ops.fleet_harness import make_store as make_discord_store
    from tests.storefront.helpers import buy, post_panel, wait_ready

    store = await make_discord_store(fleet, dc, stock={"1 mês": [key]})
    fleet.start()
    await wait_ready(fleet, dc, store)
    panel = await post_panel(store)
    return store, await buy(store.buyer, panel, store.variations[0].id)


@pytest.mark.e2e
async def test_lost_webhook_poll_delivers_the_dm_once_within_seconds(
    fleet, dc, mpc, sandbox, redis_url
):
    from ops.fleet_harness import payment_services
    from tests.storefront.helpers import order_id_of

    store, pix = await _discord_purchase(fleet, dc, "KEY-POLL")
    payment = await Payment.get(order_id=order_id_of(pix))
    await mpc.approve(int(payment.provider_payment_id), notify=False)
    approved = time.monotonic()
    reconciler = payment_services(sandbox, redis_url)
    stop = asyncio.Event()
    task = asyncio.create_task(
        with_poller(run_forever(reconciler, 30.0, stop), reconciler, 120, stop)
    )
    try:
        dm = await store.buyer.wait_dm(lambda m: m.embeds, timeout=10)
        took = time.monotonic() - approved
    finally:
        stop.set()
        await task
        await reconciler.gateway.aclose()
        await reconciler.redis.aclose()
    assert "KEY-POLL" in dm.text() and took <= 8.0, took
    assert (await Payment.get(id=payment.id)).confirmed_via == "poll"
    await asyncio.sleep(1)
    assert len([m for m in await store.buyer.dms() if m.embeds]) == 1


@pytest.mark.e2e
async def test_button_confirms_a_silent_approval_within_3s_and_is_rate_limited(
    fleet, dc, mpc, sandbox, redis_url
):
    from sandbox.discord.client import SandboxAPIError
    from tests.storefront.helpers import order_id_of

    store, pix = await _discord_purchase(fleet, dc, "KEY-BUTTON")
    order_id = order_id_of(pix)
    check = f"vt:chk:{order_id}"
    assert check in pix.message.custom_ids()

    async def press(user) -> str:
        return (await (await user.click(pix.message, check)).wait_reply(timeout=10)).content

    def gets() -> int:
        return sandbox.mp_state.request_counts.get(GET_PAYMENT, 0)

    assert "Ainda não recebemos" in await press(store.buyer)
    asked = gets()
    assert "Aguarde" in await press(store.buyer) and gets() == asked  # no request to MP
    intruder = await dc.buyer("bia", guilds=[store.guild])
    with pytest.raises(SandboxAPIError) as hidden:  # Discord shows the card to its buyer only
        await press(intruder)
    assert hidden.value.status == 404 and gets() == asked
    payment = await Payment.get(order_id=order_id)
    await mpc.approve(int(payment.provider_payment_id), notify=False)
    await asyncio.sleep(5.1)  # the cooldown of the first press
    pressed = time.monotonic()
    assert "Pagamento confirmado" in await press(store.buyer)
    dm = await store.buyer.wait_dm(lambda m: m.embeds, timeout=3)
    assert time.monotonic() - pressed <= 3.0 and "KEY-BUTTON" in dm.text()
    assert (await Payment.get(id=payment.id)).confirmed_via == "button"
    assert not [w for w in await mpc.webhooks() if w["action"] == "payment.updated"]
