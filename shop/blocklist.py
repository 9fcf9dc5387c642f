"""A store's buyer blocklist: the seller blocks a Discord user (from an order or by id), a
chargeback or a MED reversal adds the buyer on its own, and the seller can lift any block.

Checkout refuses a blocked buyer with a neutral message (`shop.buyer_limits.BuyerBlocked`);
every block and lift is audited here, so the portal, the admin API and the sync share it.
"""

from __future__ import annotations

import re
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core import audit
from shop.errors import OrderNotFound, ShopError
from shop.models import BlockedBuyer, BlockSource, Order, Payment
from shop.states import PaymentStatus

_SNOWFLAKE = re.compile(r"[0-9]{17,20}")
MAX_REASON = 200
LIST_LIMIT = 500  # one store's page; a list longer than this is shown newest first


class InvalidDiscordId(ShopError):
    code = "invalid_discord_id"
    message_key = "blocklist.error.discord_id"


class BlockNotFound(ShopError):
    code = "block_not_found"
    message_key = "blocklist.error.not_found"


def parse_discord_id(raw: str | None) -> str:
    """A Discord user id as typed by a person: 17–20 digits; `InvalidDiscordId` otherwise."""
    value = (raw or "")[:64].strip()  # bounded before anything looks at it
    if not _SNOWFLAKE.fullmatch(value):
        raise InvalidDiscordId(f"{value[:24]!r} is not a Discord user id")
    return value


async def is_blocked(tenant_id: int, discord_id: str, using_db: Any = None) -> bool:
    query = BlockedBuyer.filter(tenant_id=tenant_id, discord_id=discord_id)
    if using_db is not None:
        query = query.using_db(using_db)
    return await query.exists()


async def _create(
    tenant_id: int,
    discord_id: str,
    actor: str,
    reason: str,
    source: BlockSource,
    order_id: int | None,
    conn: Any,
) -> tuple[BlockedBuyer, bool]:
    existing = (
        await BlockedBuyer.filter(tenant_id=tenant_id, discord_id=discord_id).using_db(conn).first()
    )
    if existing is not None:
        return existing, False
    entry = await BlockedBuyer.create(
        using_db=conn,
        tenant_id=tenant_id,
        discord_id=discord_id,
        source=source,
        reason=reason.strip()[:MAX_REASON],
        order_id=order_id,
        created_by=actor[:100],
    )
    await audit.record(
        actor,
        "buyer.blocked",
        "buyer",
        discord_id,
        tenant_id=tenant_id,
        after={"source": str(source), "reason": entry.reason, "order_id": order_id},
        using_db=conn,
    )
    return entry, True


async def block_buyer(
    tenant_id: int,
    discord_id: str,
    actor: str,
    *,
    reason: str = "",
    source: BlockSource = BlockSource.MANUAL,
    order_id: int | None = None,
    using_db: Any = None,
) -> tuple[BlockedBuyer, bool]:
    """Block a Discord user in this store; (entry, created). Already blocked: no change."""
    if using_db is not None:
        return await _create(tenant_id, discord_id, actor, reason, source, order_id, using_db)
    try:
        async with in_transaction() as conn:
            return await _create(tenant_id, discord_id, actor, reason, source, order_id, conn)
    except IntegrityError:  # blocked at the same moment by someone else
        return await BlockedBuyer.get(tenant_id=tenant_id, discord_id=discord_id), False


async def block_from_order(
    tenant_id: int, order_id: int, actor: str, reason: str = ""
) -> tuple[BlockedBuyer, bool]:
    """Block the buyer of one of this store's orders; `OrderNotFound` for another store's."""
    order = await Order.get_or_none(id=order_id, tenant_id=tenant_id)
    if order is None:
        raise OrderNotFound(f"order {order_id} is not in store {tenant_id}")
    return await block_buyer(
        tenant_id, order.buyer_discord_id, actor, reason=reason, order_id=order.id
    )


async def unblock_buyer(tenant_id: int, block_id: int, actor: str) -> bool:
    """Lift one of this store's blocks; False when there is no such block (or not this
    store's)."""
    async with in_transaction() as conn:
        entry = (
            await BlockedBuyer.filter(id=block_id, tenant_id=tenant_id)
            .using_db(conn)
            .select_for_update()
            .first()
        )
        if entry is None:
            return False
        await entry.delete(using_db=conn)
        await audit.record(
            actor,
            "buyer.unblocked",
            "buyer",
            entry.discord_id,
            tenant_id=tenant_id,
            before={
                "source": str(entry.source),
                "reason": entry.reason,
                "order_id": entry.order_id,
            },
            using_db=conn,
        )
    return True


async def blocked_buyers(tenant_id: int) -> list[BlockedBuyer]:
    """This store's blocks, newest first."""
    return await BlockedBuyer.filter(tenant_id=tenant_id).order_by("-id").limit(LIST_LIMIT)


def dispute_source(previous_status: str | None, target: PaymentStatus) -> BlockSource | None:
    """Whether a payment reaching `target` means the buyer took the money back by dispute.

    A chargeback always does. A PIX has no chargeback: the payer disputes through the Central
    Bank's MED, which Mercado Pago shows as `in_mediation`, ending `refunded` when the money
    goes back — so a refund that follows a mediation is a MED. A refund the seller or an
    operator asked for never follows one, and blocks no one.
    """
    if target == PaymentStatus.CHARGED_BACK:
        return BlockSource.CHARGEBACK
    if target == PaymentStatus.REFUNDED and previous_status == "in_mediation":
        return BlockSource.MED
    return None


async def block_disputing_buyer(
    payment: Payment, source: BlockSource, actor: str, conn: Any
) -> bool:
    """Add the buyer of a charged-back / MED-returned payment to the store's blocklist, in
    the sync's transaction; True when a block was added (already blocked: False)."""
    order = await Order.filter(id=payment.order_id).using_db(conn).first()
    if order is None:
        return False
    _, created = await _create(
        order.tenant_id,
        order.buyer_discord_id,
        actor,
        f"{source} of payment {payment.provider_payment_id}",
        source,
        order.id,
        conn,
    )
    return created
