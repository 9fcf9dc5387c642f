"""Buyers' ratings for operators (issue 17): list them, and delete one that breaks the rules
(`POST /api/ratings/{id}/delete`, audited as `rating.deleted`; its feedback post is removed).
Sellers cannot delete ratings; the portal only lets them reply once."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import tag, validate_querystring, validate_response

from shop import ratings
from shop.models import Rating
from web.admin.api import (
    MAX_ID,
    ActionReason,
    BlankIsAbsent,
    ErrorBody,
    PageInfo,
    PageQuery,
    actor,
    error,
    iso,
    json_body,
    page_of,
)

bp = Blueprint("ratings", __name__)


class RatingsQuery(PageQuery, BlankIsAbsent):
    tenant_id: int | None = Field(None, ge=0, le=MAX_ID)
    product_id: int | None = Field(None, ge=0, le=MAX_ID)
    deleted: bool | None = Field(None, description="true: deleted only; false: live only")


class RatingOut(BaseModel):
    id: int
    tenant_id: int
    order_id: int
    product_id: int
    buyer_discord_id: str
    stars: int
    comment: str
    given_at: str | None
    edited_at: str | None
    reply: str | None
    replied_at: str | None
    deleted_at: str | None
    deleted_by: str | None
    feedback_message_id: str | None


class RatingsOut(BaseModel):
    items: list[RatingOut]
    page: PageInfo


def rating_json(r: Rating) -> dict[str, Any]:
    return {
        "id": r.id,
        "tenant_id": r.tenant_id,
        "order_id": r.order_id,
        "product_id": r.product_id,
        "buyer_discord_id": r.buyer_discord_id,
        "stars": r.stars,
        "comment": r.comment,
        "given_at": iso(r.given_at),
        "edited_at": iso(r.edited_at),
        "reply": r.reply,
        "replied_at": iso(r.replied_at),
        "deleted_at": iso(r.deleted_at),
        "deleted_by": r.deleted_by,
        "feedback_message_id": r.feedback_message_id,
    }


@bp.get("/api/ratings")
@tag(["ratings"])
@validate_querystring(RatingsQuery)
@validate_response(RatingsOut)
async def list_ratings(query_args: RatingsQuery):
    """Ratings, newest first; filters: tenant, product, deleted."""
    query = Rating.all()
    if query_args.deleted is not None:
        query = query.filter(deleted_at__isnull=not query_args.deleted)
    return await page_of(
        query, query_args, ("-id",), rating_json, equal=("tenant_id", "product_id")
    )


@bp.post("/api/ratings/<int:rating_id>/delete")
@tag(["ratings"])
@json_body(ActionReason)
@validate_response(RatingOut)
@validate_response(ErrorBody, 404)
@validate_response(ErrorBody, 409)
async def delete_rating(rating_id: int, data: ActionReason):
    """Delete a rating that breaks the rules (`reason` kept in the audit log); it leaves the
    portal, the product's average and the store's feedback channel."""
    try:
        rating = await ratings.delete(rating_id, actor(), data.reason)
    except ratings.RatingNotFound:
        return error(404, "not_found", f"no rating {rating_id}")
    except ratings.AlreadyDeleted:
        return error(409, "invalid_state", f"rating {rating_id} was deleted already")
    return rating_json(rating)
