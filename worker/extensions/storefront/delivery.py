"""The delivery consumer: paid orders arrive on the instance's Redis stream; each is
allocated once (`shop.delivery`), sent by DM (or in a private thread when DMs are closed),
the buyer role granted, the sale logged, the order marked `delivered`, and only then the
stream entry acknowledged. Entries left pending by a dead worker are re-claimed
(XAUTOCLAIM). The stream only wakes the worker: what is owed lives in the database
(`shop.outbox`), and the reconciler's relay wakes it again when a wake was lost.
The delivery message is created once (`send_once`, Discord's `enforce_nonce`): the attempt is
recorded before the create and the message after it; a re-run within the nonce window sends
again under the same nonce (Discord returns the first message), beyond it looks first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from typing import Any

import disnake
from redis.exceptions import RedisError

from core.i18n import t
from fleet import keys
from fleet.errors import FencedOut
from shop import delivery, tickets
from shop.cart_summary import position as cart_position
from shop.models import DeliveryPath, Order
from shop.models.accounts import DeliveryMode
from worker.extensions.storefront import (
    cart_views,
    fulfil_ui,
    kind_messages,
    tickets_ui,
    views,
)
from worker.extensions.storefront.common import Storefront, knob
from worker.extensions.storefront.delivery_stream import StreamReader
from worker.extensions.storefront.send_once import (
    create_message,
    find_own_message,
    open_dm,
    send_dm,
)

log = logging.getLogger("worker.storefront.delivery")
ACTOR = "worker:delivery"


class DeliveryConsumer:
    def __init__(self, sf: Storefront) -> None:
        self.sf = sf
        self.bot = sf.bot
        self.redis = sf.ctx.redis
        self.stream = keys.delivery_stream(sf.ctx.instance_id)
        self.consumer = f"w{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.claim_idle_ms = int(knob("VITRINE_DELIVERY_CLAIM_IDLE_S") * 1000)
        # how long after a create we count on Discord's nonce check ("a few minutes")
        self.nonce_window_s = knob("VITRINE_DELIVERY_NONCE_WINDOW_S")
        self.slots = asyncio.Semaphore(8)
        self.tasks: set[asyncio.Task[None]] = set()
        self.fence = sf.ctx.fencing.fence  # every write below carries it (fleet.fencing)

    async def run(self) -> None:
        """Hand every entry of the stream to `handle` until the bot closes."""
        reader = StreamReader(
            self.redis,
            self.sf.ctx.settings.redis_url,
            self.stream,
            self.consumer,
            self.claim_idle_ms / 1000,
            self.spawn,
        )
        await reader.run(self.bot.is_closed)

    def spawn(self, entry_id: str, fields: dict[str, str]) -> None:
        task = asyncio.create_task(self.handle(entry_id, fields))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def handle(self, entry_id: str, fields: dict[str, str]) -> None:
        if "access" in fields:  # access grants due (shop.access_relay): the runner claims them
            self.sf.access_due.set()
        try:
            order_id = int(fields.get("order_id", "0"))
        except ValueError:
            order_id = 0
        async with self.slots, self.sf.lock(f"deliver:{order_id}"):
            try:
                done = await self.deliver(order_id) if order_id else True
            except FencedOut as exc:  # another node owns the bot: its worker re-claims it
                self.sf.ctx.fencing.refuse(exc)
                return
            except Exception:  # noqa: BLE001 - stays pending: re-claimed later
                log.exception("delivery of order %s failed; will retry", order_id)
                return
        if done:
            try:
                await self.redis.xack(self.stream, keys.DELIVERY_GROUP, entry_id)
            except (RedisError, OSError) as exc:  # re-claimed later: prepare says DONE
                log.warning(
                    "entry %s of order %s not acknowledged: %s",
                    entry_id,
                    order_id,
                    type(exc).__name__,
                )

    async def deliver(self, order_id: int) -> bool:
        """One delivery job; True when the entry can be acknowledged."""
        prepared = await delivery.prepare(order_id, self.sf.vault, ACTOR, self.fence)
        order = prepared.order
        if prepared.outcome in (delivery.Outcome.DONE, delivery.Outcome.GONE) or order is None:
            return True
        if order.tenant_id != self.sf.ctx.tenant_id:
            log.error("order %s of tenant %s on this instance's stream", order.id, order.tenant_id)
            return True
        if prepared.outcome == delivery.Outcome.WAITING:
            if prepared.newly_waiting:
                await self.tell_waiting(order, prepared)
            return True
        if prepared.outcome == delivery.Outcome.AWAITING:  # staff deliver it (fulfil_ui)
            if prepared.newly_waiting:
                await fulfil_ui.tell_awaiting(self, order, prepared)
            return True
        path = await self.send_items(order, prepared)
        if path == DeliveryPath.FAILED:
            await delivery.mark_failed(order.id, self.fence)
            await self.log_sale(order, prepared, path)
            return True  # the reconciler re-enqueues it; "my orders" can re-send
        await delivery.mark_delivered(order.id, path, ACTOR, self.fence)
        await self.grant_role(order)
        self.sf.access_due.set()  # the product's roles (its access grant) go out now
        await self.log_sale(order, prepared, path)
        self.sf.panel_dirty.set()
        return True

    async def send_items(self, order: Order, prepared: delivery.Prepared) -> DeliveryPath:
        """DM first (unless the store delivers in the channel), then a private thread; a job
        re-run after a crash goes back to the channel its first attempt used."""
        locale = order.locale
        embed, file = kind_messages.delivery_message(order, prepared, locale)  # by kind
        title = embed.title

        def is_delivery(msg: dict[str, Any]) -> bool:
            return any(
                a.get("filename") == f"pedido-{order.id}.txt" for a in msg.get("attachments") or []
            ) or any(e.get("title") == title for e in msg.get("embeds") or [])

        tenant = await self.sf.tenant()
        dm_id = None
        if tenant.delivery_mode != DeliveryMode.CHANNEL:
            dm_id = await open_dm(self.bot, order.buyer_discord_id)
        earlier = order.delivery_channel_id
        if earlier and earlier != dm_id and order.delivery_attempted_at is not None:
            # the first attempt went to a private thread: finish there, never open another
            if await self.send_in_thread(
                order, embed, file, prepared.nonce, is_delivery, thread_id=earlier
            ):
                return DeliveryPath.CHANNEL
        # tickets on (a support channel): the DM carries the "Preciso de ajuda" button
        helps = [tickets_ui.help_row(order.id, locale)] if await tickets.enabled(tenant) else None
        if dm_id is not None and await self.send_once(
            order, prepared.nonce, dm_id, is_delivery, embed=embed, file=file, components=helps
        ):
            return DeliveryPath.DM
        if await self.send_in_thread(order, embed, file, prepared.nonce, is_delivery):
            return DeliveryPath.CHANNEL
        return DeliveryPath.FAILED

    async def send_once(
        self, order: Order, nonce: str, channel_id: str, is_delivery: Any, **message: Any
    ) -> bool:
        """Create the delivery message in the channel once; False if Discord refuses it
        (DMs closed, no access)."""
        plan = delivery.resend_plan(order, nonce, channel_id, self.nonce_window_s)
        if plan == delivery.Resend.KNOWN:
            return True
        if plan == delivery.Resend.CHECK:
            found = await find_own_message(self.bot, channel_id, is_delivery)
            if found is not None:
                log.info(
                    "order %s: delivery message %s already in channel %s",
                    order.id,
                    found,
                    channel_id,
                )
                await delivery.record_sent(order.id, channel_id, found, self.fence)
                return True
        await delivery.record_send_attempt(order.id, nonce, channel_id, self.fence)
        try:
            msg = await create_message(self.bot, channel_id, nonce=nonce, **message)
        except (disnake.Forbidden, disnake.NotFound) as exc:
            log.info("order %s: channel %s refused the delivery: %s", order.id, channel_id, exc)
            return False
        await delivery.record_sent(order.id, channel_id, str(msg["id"]), self.fence)
        return True

    async def send_in_thread(
        self,
        order: Order,
        embed: disnake.Embed,
        file: tuple[str, bytes] | None,
        nonce: str,
        is_delivery: Any,
        thread_id: str | None = None,
    ) -> bool:
        """A private thread in the buying channel with only the buyer (and the staff); a
        new one unless `thread_id` (the thread an earlier attempt created) is given."""
        if not order.channel_id:
            return False
        buyer = int(order.buyer_discord_id)
        try:
            if thread_id is None:
                thread_id = await self.open_thread(order)
                # noted before the buyer is added: a re-run finishes in this thread
                await delivery.record_send_attempt(order.id, nonce, thread_id, self.fence)
            await self.bot.http.add_user_to_thread(int(thread_id), buyer)
            return await self.send_once(
                order,
                nonce,
                thread_id,
                is_delivery,
                embed=embed,
                file=file,
                content=t("storefront.delivery.thread", order.locale, user=f"<@{buyer}>"),
                allowed_mentions=disnake.AllowedMentions(users=[disnake.Object(buyer)]),
            )
        except disnake.HTTPException as exc:
            log.warning("order %s: channel fallback failed: %s", order.id, exc)
            return False

    async def open_thread(self, order: Order) -> str:
        thread = await self.bot.http.start_thread_without_message(
            int(order.channel_id or 0),
            name=f"pedido-{order.id}",
            auto_archive_duration=1440,
            type=disnake.ChannelType.private_thread.value,
            invitable=False,
        )
        return str(thread["id"])

    async def tell_waiting(self, order: Order, prepared: delivery.Prepared) -> None:
        text = t(
            "storefront.waiting.buyer", order.locale, order=order.id, product=prepared.product_name
        )
        nonce = f"v1-w{order.id}"[: delivery.NONCE_MAX_LEN]
        if not await send_dm(self.bot, order.buyer_discord_id, content=text, nonce=nonce):
            await self.tell_waiting_in_thread(order, text, nonce)
        await self.post_log(
            t(
                "storefront.waiting.seller",
                "pt-BR",
                order=order.id,
                product=prepared.product_name,
                quantity=order.quantity,
            )
        )

    async def tell_waiting_in_thread(self, order: Order, text: str, nonce: str) -> None:
        if not order.channel_id:
            return
        buyer = int(order.buyer_discord_id)
        try:
            thread_id = await self.open_thread(order)
            await self.bot.http.add_user_to_thread(int(thread_id), buyer)
            await create_message(
                self.bot,
                thread_id,
                nonce=nonce,
                content=f"<@{buyer}>",
                embed=disnake.Embed(description=text),
                allowed_mentions=disnake.AllowedMentions(users=[disnake.Object(buyer)]),
            )
        except disnake.HTTPException as exc:
            log.warning("order %s: channel fallback failed: %s", order.id, exc)

    async def grant_role(self, order: Order) -> None:
        tenant = await self.sf.tenant()
        # the store's guild, never the one the order names: the role exists only there
        guild_id = tenant.guild_id
        if not tenant.buyer_role_id or not guild_id:
            return
        try:
            await self.bot.http.add_role(
                int(guild_id),
                int(order.buyer_discord_id),
                int(tenant.buyer_role_id),
                reason=f"Vitrine: pedido #{order.id}",
            )
        except disnake.HTTPException as exc:
            log.warning("order %s: buyer role not granted: %s", order.id, exc)
            await self.post_log(
                t("storefront.log.role_failed", "pt-BR", order=order.id, role=tenant.buyer_role_id)
            )

    async def log_sale(self, order: Order, prepared: delivery.Prepared, path: str) -> None:
        embed = views.sale_log_embed(
            order, prepared.product_name, prepared.variation_name, str(path)
        )
        cart_views.add_cart_field(embed, await cart_position(order), "pt-BR")  # issue 17
        await self.post_log(None, embed)

    async def post_log(self, content: str | None, embed: disnake.Embed | None = None) -> None:
        tenant = await self.sf.tenant()
        if not tenant.sales_log_channel_id:
            return
        try:
            channel = self.bot.get_partial_messageable(int(tenant.sales_log_channel_id))
            if embed:
                await channel.send(content, embed=embed)
            else:
                await channel.send(content)
        except disnake.HTTPException as exc:
            log.warning("sales log not posted: %s", exc)


def setup(sf: Storefront) -> None:
    consumer = DeliveryConsumer(sf)
    sf.bot.add_background_task(consumer.run, "storefront-delivery")
    # No sweeper here: `python -m reconciler` re-enqueues paid-but-undelivered orders for
    # every instance in one query (500 workers polling the database cost each ~0.6 MB of
    # copy-on-write memory and 500 queries every 30 s).
