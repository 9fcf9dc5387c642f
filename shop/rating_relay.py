"""The Discord side of ratings (issue 17), run by the reconciler beside the seller notices.

* The ask: a delivered order's `RatingAsk` is due at `ask_at`; the store's bot DMs the buyer
  five star buttons (`vt:rate:<order>:<stars>`, handled by the worker's `ratings_ui`). Create
  DM (https://discord.com/developers/docs/resources/user#create-dm) then Create Message with
  `nonce` + `enforce_nonce`
  (https://discord.com/developers/docs/resources/message#create-message), so a retry after a
  lost answer does not send a second ask. A 403 (50007: the buyer does not take DMs from the
  bot) is recorded as `failed` and never retried; 429 and 5xx are retried with backoff.
* The feedback post: a rating with `post_at` set owes its message in the store's feedback
  channel: created, edited in place (Edit Message, PATCH) after an edit or the seller's
  reply, or deleted (Delete Message) after an operator's deletion.

Rows are claimed with `claim_due`, so two reconcilers never send the same ask or post.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from core.i18n import t
from fleet.models import BotInstance
from shop.models import AskStatus, Order, Product, Rating, RatingAsk, Tenant
from shop.notify.claims import claim_due
from shop.notify.dispatch import backoff
from shop.notify.seller import DMFailed, SellerDM
from shop.ratings import stars_text
from shop.states import OrderStatus

log = logging.getLogger("shop.ratings")

BATCH = 200
CLAIM_S = 120.0
MAX_ATTEMPTS = 8
GOLD = 0xF2B705


def ask_components(order_id: int) -> list[dict[str, Any]]:
    """One row of five buttons; each custom_id names the order and the stars (≤ 40 chars)."""
    return [
        {
            "type": 1,
            "components": [
                {"type": 2, "style": 2, "label": f"{n} ★", "custom_id": f"vt:rate:{order_id}:{n}"}
                for n in range(1, 6)
            ],
        }
    ]


def feedback_embed(rating: Rating, product: str, locale: str) -> dict[str, Any]:
    """The feedback channel's message: stars, product, buyer, comment, the seller's reply."""
    fields = [
        {"name": t("ratings.post.product", locale), "value": product[:1024], "inline": True},
        {
            "name": t("ratings.post.buyer", locale),
            "value": f"<@{rating.buyer_discord_id}>",
            "inline": True,
        },
    ]
    if rating.reply:
        fields.append({"name": t("ratings.post.reply", locale), "value": rating.reply[:1024]})
    embed: dict[str, Any] = {
        "title": stars_text(rating.stars),
        "color": GOLD,
        "fields": fields,
        "footer": {"text": t("ratings.post.footer", locale, order=rating.order_id)},
    }
    if rating.comment:
        embed["description"] = rating.comment[:4000]
    return embed


class RatingRelay:
    """Sends the owed asks and feedback posts through `SellerDM`'s REST client."""

    def __init__(self, rest: SellerDM) -> None:
        self.rest = rest

    async def run_once(self, now: datetime | None = None) -> tuple[int, int]:
        """One round; (asks sent, posts made)."""
        now = now or datetime.now(UTC)
        return await self.asks_once(now), await self.posts_once(now)

    async def _token(self, tenant_id: int, instance_id: int | None) -> str | None:
        query = BotInstance.filter(tenant_id=tenant_id, suspended=False)
        bot = None
        if instance_id is not None:
            bot = await query.filter(id=instance_id).first()
        bot = bot or await query.order_by("id").first()
        return None if bot is None else self.rest.vault.decrypt(bot.token_enc).reveal()

    # --- the ask DM -----------------------------------------------------------------
    async def asks_once(self, now: datetime) -> int:
        sent = 0
        for ask in await claim_due(RatingAsk, "ask_at", "claim", now, batch=BATCH, hold_s=CLAIM_S):
            values: dict[str, Any] = {"claim": None}
            status: AskStatus | None
            try:
                status = await self._ask(ask)
                values["last_error"] = None
            except DMFailed as exc:
                values["last_error"] = str(exc)[:500]
                status = AskStatus.FAILED if exc.status is not None else None
                attempts = ask.attempts + 1
                values["attempts"] = attempts
                if status is None and attempts >= MAX_ATTEMPTS:
                    status = AskStatus.FAILED
                if status is None:
                    values["ask_at"] = now + timedelta(seconds=backoff(attempts, exc.retry_after))
            if status is not None:
                values.update(status=status, ask_at=None)
                if status == AskStatus.SENT:
                    values["sent_at"] = now
                    sent += 1
            await RatingAsk.filter(id=ask.id, claim=ask.claim).update(**values)
        return sent

    async def _ask(self, ask: RatingAsk) -> AskStatus:
        order = await Order.get_or_none(id=ask.order_id)
        if order is None or order.status != OrderStatus.DELIVERED:
            return AskStatus.SKIPPED  # refunded meanwhile: nothing to rate
        if await Rating.filter(order_id=order.id).exists():
            return AskStatus.SKIPPED
        token = await self._token(order.tenant_id, order.instance_id)
        if token is None:
            raise DMFailed(None, "the store has no bot that can send it")
        product = await Product.get(id=order.product_id)
        tenant = await Tenant.get(id=order.tenant_id)
        text = t(
            "ratings.ask.text",
            order.locale,
            store=tenant.name,
            product=product.name,
            order=order.id,
        )
        channel = await self.rest.request(
            "POST", token, "/users/@me/channels", {"recipient_id": order.buyer_discord_id}
        )
        await self.rest.request(
            "POST",
            token,
            f"/channels/{channel.get('id')}/messages",
            {
                "content": text[:2000],
                "components": ask_components(order.id),
                "allowed_mentions": {"parse": []},
                "nonce": f"vtask{ask.id}"[:25],
                "enforce_nonce": True,
            },
        )
        return AskStatus.SENT

    # --- the feedback channel's post ------------------------------------------------
    async def posts_once(self, now: datetime) -> int:
        done = 0
        for rating in await claim_due(
            Rating, "post_at", "post_claim", now, batch=BATCH, hold_s=CLAIM_S
        ):
            values: dict[str, Any] = {"post_claim": None}
            try:
                await self._post(rating)
                values.update(post_at=None, post_attempts=0)
                done += 1
            except DMFailed as exc:
                attempts = rating.post_attempts + 1
                give_up = exc.status is not None or attempts >= MAX_ATTEMPTS
                log.warning("rating %s not posted (%s)%s", rating.id, exc, ": given up" * give_up)
                wait = backoff(attempts, exc.retry_after)
                values.update(
                    post_attempts=0 if give_up else attempts,
                    post_at=None if give_up else now + timedelta(seconds=wait),
                )
            # an edit, reply or deletion meanwhile cleared the claim: its post stays owed
            await Rating.filter(id=rating.id, post_claim=rating.post_claim).update(**values)
        return done

    async def _post(self, rating: Rating) -> None:
        tenant = await Tenant.get(id=rating.tenant_id)
        channel = rating.feedback_channel_id or tenant.feedback_channel_id
        token = await self._token(tenant.id, None)
        if channel is None or (rating.deleted_at is not None and not rating.feedback_message_id):
            return  # no feedback channel, or nothing posted to take back
        if token is None:
            raise DMFailed(None, "the store has no bot that can post it")
        base = f"/channels/{channel}/messages"
        if rating.deleted_at is not None:
            try:
                await self.rest.request("DELETE", token, f"{base}/{rating.feedback_message_id}")
            except DMFailed as exc:
                if exc.http_status != 404:  # already gone is what we wanted
                    raise
            return
        product = await Product.get(id=rating.product_id)
        body = {
            "embeds": [feedback_embed(rating, product.name, tenant.locale)],
            "allowed_mentions": {"parse": []},
        }
        if rating.feedback_message_id:
            try:
                await self.rest.request(
                    "PATCH", token, f"{base}/{rating.feedback_message_id}", body
                )
                return
            except DMFailed as exc:
                if exc.http_status != 404:
                    raise  # 404: the staff deleted it; post it again below
        made = await self.rest.request(
            "POST", token, base, {**body, "nonce": f"vtrate{rating.id}"[:25], "enforce_nonce": True}
        )
        # kept whatever happens to the claim, so the next edit finds the message
        await Rating.filter(id=rating.id).update(
            feedback_channel_id=channel, feedback_message_id=str(made.get("id") or "") or None
        )
