"""Ratings of delivered orders (issue 17): asked by DM after delivery, given with 1–5 stars
and an optional comment, editable for a week, answered once by the seller, deleted only by
an operator. Every write here is audited; the Discord side (the ask DM, the feedback-channel
post) is owed work the reconciler's `shop.rating_relay` does, so no caller waits for Discord.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.functions import Count, Sum
from tortoise.transactions import in_transaction

from core import audit
from shop.errors import ShopError
from shop.models import Order, Rating, RatingAsk, Tenant
from shop.models.ratings import COMMENT_MAX, REPLY_MAX
from shop.states import OrderStatus

EDIT_WINDOW = timedelta(days=7)
ASK_DELAY_MAX_H = 168  # a week: the seller's "ask N hours after delivery"
MIN_COUNT_MAX = 1000  # ratings a product needs before its panel shows the average


class RatingError(ShopError):
    code = "rating_error"
    message_key = "ratings.error.generic"


class NotYourOrder(RatingError):
    """The presser is not the order's buyer (or the order is not this store's)."""

    code = "rating_not_yours"
    message_key = "ratings.error.not_yours"


class NotRateable(RatingError):
    code = "rating_not_delivered"
    message_key = "ratings.error.not_delivered"


class EditWindowClosed(RatingError):
    code = "rating_window_closed"
    message_key = "ratings.error.window_closed"


class InvalidRating(RatingError):
    code = "rating_invalid"
    message_key = "ratings.error.invalid"


class AlreadyReplied(RatingError):
    code = "rating_already_replied"
    message_key = "ratings.error.already_replied"


class RatingNotFound(RatingError):
    code = "rating_not_found"
    message_key = "ratings.error.not_found"


class AlreadyDeleted(RatingError):
    code = "rating_already_deleted"
    message_key = "ratings.error.already_deleted"


@dataclass(frozen=True)
class Summary:
    """A product's ratings: the average of the stars (not deleted) and how many."""

    average: float
    count: int


def clean_stars(stars: int) -> int:
    if not 1 <= stars <= 5:
        raise InvalidRating(f"stars must be 1 to 5, got {stars}")
    return stars


def clean_text(text: str | None, limit: int) -> str:
    """Free text from a person: stripped, at most `limit` characters (refused beyond)."""
    value = (text or "").strip()
    if len(value) > limit:
        raise InvalidRating(f"at most {limit} characters")
    return value


def stars_text(stars: int) -> str:
    return "★" * stars + "☆" * (5 - stars)


def average_text(summary: Summary) -> str:
    """What the product panel shows: `★ 4.8 (12)`."""
    return f"★ {summary.average:.1f} ({summary.count})"


async def schedule_ask(order: Order, conn: Any) -> None:
    """The ask DM a delivered order owes its buyer, due after the store's delay; in the
    delivery's transaction (the order row is locked, so one ask per order)."""
    if await RatingAsk.filter(order_id=order.id).using_db(conn).exists():
        return
    tenant = (
        await Tenant.filter(id=order.tenant_id)
        .using_db(conn)
        .only("id", "rating_ask_delay_h")
        .first()
    )
    hours = min(max(tenant.rating_ask_delay_h if tenant else 0, 0), ASK_DELAY_MAX_H)
    base = order.delivered_at or datetime.now(UTC)
    await RatingAsk.create(
        tenant_id=order.tenant_id,
        order_id=order.id,
        ask_at=base + timedelta(hours=hours),
        using_db=conn,
    )


async def _rateable(
    tenant_id: int, order_id: int, presser: str, now: datetime, conn: Any = None
) -> tuple[Order, Rating | None]:
    query = Order.filter(id=order_id, tenant_id=tenant_id)
    if conn is not None:
        query = query.using_db(conn).select_for_update()
    order = await query.first()
    if order is None or order.buyer_discord_id != presser:
        raise NotYourOrder(f"order {order_id} is not {presser}'s in store {tenant_id}")
    if order.status != OrderStatus.DELIVERED:
        raise NotRateable(f"order {order_id} is {order.status}")
    rating = await Rating.filter(order_id=order.id).using_db(conn).first()
    if rating is not None and (rating.deleted_at or now > rating.given_at + EDIT_WINDOW):
        raise EditWindowClosed(f"rating of order {order_id} can no longer change")
    return order, rating


async def check_rateable(
    tenant_id: int, order_id: int, presser: str, now: datetime | None = None
) -> Rating | None:
    """Raise unless `presser` may rate (or re-rate) the order now; their rating so far."""
    return (await _rateable(tenant_id, order_id, presser, now or datetime.now(UTC)))[1]


async def submit(
    tenant_id: int,
    order_id: int,
    presser: str,
    stars: int,
    comment: str | None,
    now: datetime | None = None,
) -> tuple[Rating, bool]:
    """Give or edit the order's rating (audited); (rating, True when it is the first)."""
    now = now or datetime.now(UTC)
    stars = clean_stars(stars)
    text = clean_text(comment, COMMENT_MAX)
    async with in_transaction() as conn:
        order, rating = await _rateable(tenant_id, order_id, presser, now, conn)
        before = None if rating is None else {"stars": rating.stars, "comment": rating.comment}
        if rating is None:
            rating = await Rating.create(
                tenant_id=tenant_id,
                order_id=order.id,
                product_id=order.product_id,
                buyer_discord_id=presser,
                stars=stars,
                comment=text,
                given_at=now,
                post_at=now,
                using_db=conn,
            )
        else:
            rating.update_from_dict(
                {"stars": stars, "comment": text, "edited_at": now, "post_at": now}
            )
            rating.post_claim = None  # a relay holding the old text must not clear this post
            await rating.save(using_db=conn)
        await RatingAsk.filter(order_id=order.id).using_db(conn).update(ask_at=None)
        await audit.record(
            f"buyer:{presser}",
            "rating.given" if before is None else "rating.edited",
            "rating",
            rating.id,
            tenant_id=tenant_id,
            before=before,
            after={"order_id": order.id, "stars": stars, "comment": text},
            using_db=conn,
        )
    return rating, before is None


async def reply(rating: Rating, text: str, actor: str, now: datetime | None = None) -> Rating:
    """The seller's public answer, once (a second is refused); audited."""
    now = now or datetime.now(UTC)
    answer = clean_text(text, REPLY_MAX)
    if not answer:
        raise InvalidRating("an empty reply")
    async with in_transaction() as conn:
        changed = (
            await Rating.filter(id=rating.id, reply__isnull=True, deleted_at__isnull=True)
            .using_db(conn)
            .update(reply=answer, replied_at=now, replied_by=actor, post_at=now, post_claim=None)
        )
        if not changed:
            raise AlreadyReplied(f"rating {rating.id} was answered already")
        await audit.record(
            actor,
            "rating.replied",
            "rating",
            rating.id,
            tenant_id=rating.tenant_id,
            after={"reply": answer},
            using_db=conn,
        )
    return await Rating.get(id=rating.id)


async def delete(rating_id: int, actor: str, reason: str, now: datetime | None = None) -> Rating:
    """An operator removes a rating (kept, marked deleted; its feedback post is removed)."""
    now = now or datetime.now(UTC)
    why = clean_text(reason, 1000)
    if not why:
        raise InvalidRating("a reason is required")
    async with in_transaction() as conn:
        rating = await Rating.filter(id=rating_id).using_db(conn).select_for_update().first()
        if rating is None:
            raise RatingNotFound(f"no rating {rating_id}")
        if rating.deleted_at is not None:
            raise AlreadyDeleted(f"rating {rating_id} was deleted already")
        rating.update_from_dict(
            {"deleted_at": now, "deleted_by": actor, "post_at": now, "post_claim": None}
        )
        await rating.save(using_db=conn)
        await audit.record(
            actor,
            "rating.deleted",
            "rating",
            rating.id,
            tenant_id=rating.tenant_id,
            before={"stars": rating.stars, "comment": rating.comment},
            after={"reason": why},
            using_db=conn,
        )
    return rating


async def summaries(tenant_id: int, product_ids: list[int] | None = None) -> dict[int, Summary]:
    """Average and count of the store's ratings per product (deleted ones left out)."""
    query = Rating.filter(tenant_id=tenant_id, deleted_at__isnull=True)
    if product_ids is not None:
        query = query.filter(product_id__in=product_ids)
    rows = (
        await query.annotate(total=Sum("stars"), n=Count("id"))
        .group_by("product_id")
        .values("product_id", "total", "n")
    )
    # the sum, not AVG(): tortoise casts an average back to the column's integer type
    return {
        int(r["product_id"]): Summary(round(int(r["total"]) / int(r["n"]), 1), int(r["n"]))
        for r in rows
        if r["n"]
    }


async def panel_line(tenant_id: int, product_id: int) -> str | None:
    """`★ 4.8 (12)` for the product's panel, once it has the store's minimum of ratings."""
    found = (await summaries(tenant_id, [product_id])).get(product_id)
    if found is None:
        return None
    tenant = await Tenant.filter(id=tenant_id).only("id", "rating_min_count").first()
    if tenant is None or found.count < max(1, tenant.rating_min_count):
        return None
    return average_text(found)


async def rating_of_order(tenant_id: int, order_id: int) -> Rating | None:
    """The order's rating in this store (None: not rated, or deleted by an operator)."""
    return await Rating.get_or_none(tenant_id=tenant_id, order_id=order_id, deleted_at__isnull=True)


async def product_ratings(tenant_id: int, product_id: int, limit: int = 200) -> list[Rating]:
    """The product's ratings, newest first (deleted ones left out)."""
    return (
        await Rating.filter(tenant_id=tenant_id, product_id=product_id, deleted_at__isnull=True)
        .order_by("-given_at", "-id")
        .limit(limit)
    )


async def save_settings(tenant: Tenant, delay_h: int, min_count: int, actor: str) -> None:
    """The store's rating settings (bounded by the caller's parser); audited."""
    before = {"rating_ask_delay_h": tenant.rating_ask_delay_h, "min": tenant.rating_min_count}
    tenant.rating_ask_delay_h = min(max(delay_h, 0), ASK_DELAY_MAX_H)
    tenant.rating_min_count = min(max(min_count, 1), MIN_COUNT_MAX)
    await tenant.save(update_fields=["rating_ask_delay_h", "rating_min_count", "updated_at"])
    await audit.record(
        actor,
        "tenant.ratings_updated",
        "tenant",
        tenant.id,
        tenant_id=tenant.id,
        before=before,
        after={"rating_ask_delay_h": tenant.rating_ask_delay_h, "min": tenant.rating_min_count},
    )
