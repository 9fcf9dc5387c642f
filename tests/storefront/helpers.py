"""Buyer journeys through the sandbox, shared by the end-to-end tests and the bench."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ops.demo_buyer import buy, confirm, open_card, order_id_of, post_panel

__all__ = [
    "STAFF_COMMANDS",
    "approve_and_sync",
    "buy",
    "confirm",
    "open_card",
    "order_id_of",
    "post_panel",
    "run_command",
    "wait_ready",
    "wait_status",
]


async def wait_ready(fleet: Any, dc: Any, store: Any) -> None:
    from fleet.states import InstanceState

    await fleet.wait_state(store.instance_id, InstanceState.ONLINE, timeout=30)
    await dc.wait_commands(store.bot, ["painel", "comprar", "meus-pedidos"], timeout=20)


async def approve_and_sync(mpc: Any, svc: Any, order_id: int) -> float:
    """Approve the order's PIX in the MP sandbox and apply it as the webhook would;
    returns the monotonic time of the approval."""
    from shop.models import Payment
    from shop.payments.sync import sync_payment

    payment = await Payment.get(order_id=order_id)
    await mpc.approve(payment.provider_payment_id)  # a payment's id or an order's
    approved_at = time.monotonic()
    await sync_payment(svc, str(payment.id), "test:webhook")
    return approved_at


async def wait_status(order_id: int, status: str, timeout: float = 15.0) -> Any:  # noqa: ASYNC109
    from shop.models import Order

    deadline = time.monotonic() + timeout
    while True:
        order = await Order.get(id=order_id)
        if order.status == status:
            return order
        if time.monotonic() > deadline:
            raise AssertionError(f"order {order_id} is {order.status}, wanted {status}")
        await asyncio.sleep(0.05)


STAFF_COMMANDS = ["estoque", "estoque-adicionar", "vendas-hoje"]


async def run_command(
    user: Any, store: Any, name: str, options: dict[str, Any] | None = None, timeout: float = 10.0
) -> Any:  # noqa: ASYNC109
    """`user` runs /name in the store's #loja; returns the reply they saw."""
    result = await user.slash(store.bot, store.guild, "loja", name, options)
    return await result.wait_reply(timeout=timeout)


async def bought(store: Any, mpc: Any, svc: Any, panel: Any, variation_id: int) -> int:
    """The store's buyer buys one unit of `variation_id` from `panel` and pays it; returns the
    order's id once it is delivered."""
    order_id = order_id_of(await buy(store.buyer, panel, variation_id))
    await approve_and_sync(mpc, svc, order_id)
    await wait_status(order_id, "delivered")
    return order_id
