"""One refund of a payment at a time (issue 17: a cart's lines share one payment).

Each refund computes what is left of the payment, reserves the seller's balance for it and asks
Mercado Pago with its own idempotency key. Two refunds of one payment at the same moment (two
lines of a cart, a line and the whole cart) would each compute from the same `refunded_cents`
and each reserve against a stale picture, so `refund_lease` serialises them: a conditional
INSERT (or UPDATE of an expired row) of the payment's `RefundLease` is won by exactly one
caller on SQLite and PostgreSQL alike; the others get `RefundInProgress` at once, before
anything is computed or sent. The winner re-reads the payment under the lease and deletes the
row once the refund is booked. A process that dies holding it leaves a row that expires
after `LEASE_TTL` (longer than the gateway's retries and the sync that follows them).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError

from shop.errors import RefundInProgress
from shop.models import RefundLease

LEASE_TTL = timedelta(minutes=3)


async def claim(payment_id: str, order_id: int, now: datetime | None = None) -> str:
    """Take the payment's refund lease; its token. Raises `RefundInProgress` while another
    caller holds an unexpired one."""
    now = now or datetime.now(UTC)
    token = uuid.uuid4().hex
    until = now + LEASE_TTL
    # An expired lease (its holder died) is taken over by one conditional UPDATE.
    if await RefundLease.filter(payment_id=payment_id, expires_at__lte=now).update(
        token=token, expires_at=until
    ):
        return token
    try:
        await RefundLease.create(payment_id=payment_id, token=token, expires_at=until)
    except IntegrityError:  # the unique payment_id: someone else's refund is in flight
        raise RefundInProgress(
            f"a refund of payment {payment_id} is in flight", order=order_id
        ) from None
    return token


async def release(payment_id: str, token: str) -> None:
    """Give the lease back (only our own: an expired one taken over stays its new holder's)."""
    await RefundLease.filter(payment_id=payment_id, token=token).delete()


@asynccontextmanager
async def refund_lease(payment_id: str, order_id: int) -> AsyncIterator[None]:
    """Hold the payment's refund lease for the block (`RefundInProgress` if taken)."""
    token = await claim(payment_id, order_id)
    try:
        yield
    finally:
        await release(payment_id, token)
