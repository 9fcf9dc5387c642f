"""The delivery consumer: paid orders arrive on the instance's Redis stream; each is
allocated once (`shop.delivery`), sent by DM (or in a private thread when DMs are closed),
the buyer role granted, the sale logged, the order marked `delivered`, and only then the
stream entry acknowledged. Entries left pending by a dead worker are re-claimed
(XAUTOCLAIM); a sweeper re-enqueues this instance's paid orders that stayed undelivered.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import uuid

import disnake
from redis.exceptions import ResponseError

from core.i18n import t
from fleet import keys
from shop import delivery
from shop.models import DeliveryPath, Order
from shop.models.accounts import DeliveryMode
from worker.extensions.storefront import views
from worker.extensions.storefront.common import Storefront, env_float

log = logging.getLogger("worker.storefront.delivery")
ACTOR = "worker:delivery"


class DeliveryConsumer:
    def __init__(self, sf: Storefront) -> None:
        self.sf = sf
        self.bot = sf.bot
        self.redis = sf.ctx.redis
        self.stream = keys.delivery_stream(sf.ctx.instance_id)
        self.consumer = f"w{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.claim_idle_ms = int(env_float("VITRINE_DELIVERY_CLAIM_IDLE_S", 30.0) * 1000)
        self.slots = asyncio.Semaphore(8)
        self.tasks: set[asyncio.Task[None]] = set()

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, keys.DELIVERY_GROUP, id="0",
                                           mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self) -> None:
        """Read, re-claim and handle entries until the bot closes."""
        await self.ensure_group()
        last_claim = 0.0
        loop = asyncio.get_running_loop()
        while not self.bot.is_closed():
            if loop.time() - last_claim > min(5.0, self.claim_idle_ms / 2000):
                last_claim = loop.time()
                await self.claim_stale()
            batches = await self.redis.xreadgroup(keys.DELIVERY_GROUP, self.consumer,
                                                  {self.stream: ">"}, count=16, block=1000)
            for _, entries in batches or []:
                for entry_id, fields in entries:
                    self.spawn(entry_id, fields)

    async def claim_stale(self) -> None:
        """Take over entries another (dead) consumer read but never acknowledged."""
        start = "0-0"
        while True:
            start, claimed, *_ = await self.redis.xautoclaim(
                self.stream, keys.DELIVERY_GROUP, self.consumer, self.claim_idle_ms,
                start_id=start, count=50)
            for entry_id, fields in claimed:
                if fields:
                    log.info("re-claimed delivery entry %s", entry_id)
                    self.spawn(entry_id, fields)
                else:  # trimmed away: nothing to deliver
                    await self.redis.xack(self.stream, keys.DELIVERY_GROUP, entry_id)
            if start in ("0-0", b"0-0"):
                return

    def spawn(self, entry_id: str, fields: dict[str, str]) -> None:
        task = asyncio.create_task(self.handle(entry_id, fields))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def handle(self, entry_id: str, fields: dict[str, str]) -> None:
        try:
            order_id = int(fields.get("order_id", "0"))
        except ValueError:
            order_id = 0
        async with self.slots, self.sf.lock(f"deliver:{order_id}"):
            try:
                done = await self.deliver(order_id) if order_id else True
            except Exception:  # noqa: BLE001 - stays pending: re-claimed later
                log.exception("delivery of order %s failed; will retry", order_id)
                return
        if done:
            await self.redis.xack(self.stream, keys.DELIVERY_GROUP, entry_id)

    async def deliver(self, order_id: int) -> bool:
        """One delivery job; True when the entry can be acknowledged."""
        prepared = await delivery.prepare(order_id, self.sf.vault, ACTOR)
        order = prepared.order
        if prepared.outcome in (delivery.Outcome.DONE, delivery.Outcome.GONE) or order is None:
            return True
        if order.tenant_id != self.sf.ctx.tenant_id:
            log.error("order %s of tenant %s on this instance's stream", order.id,
                      order.tenant_id)
            return True
        if prepared.outcome == delivery.Outcome.WAITING:
            if prepared.newly_waiting:
                await self.tell_waiting(order, prepared)
            return True
        path = await self.send_items(order, prepared)
        if path == DeliveryPath.FAILED:
            await delivery.mark_failed(order.id)
            await self.log_sale(order, prepared, path)
            return True  # the reconciler re-enqueues it; "my orders" can re-send
        await delivery.mark_delivered(order.id, path, ACTOR)
        await self.grant_role(order)
        await self.log_sale(order, prepared, path)
        self.sf.panel_dirty.set()
        return True

    async def send_items(self, order: Order, prepared: delivery.Prepared) -> DeliveryPath:
        """DM first (unless the store delivers in the channel), then a private thread."""
        locale = order.locale
        inline, blob = delivery.render_items(prepared.items)
        embed = views.delivery_embed(order, prepared.product_name, prepared.variation_name,
                                     inline, locale)

        def file() -> disnake.File | None:
            return disnake.File(io.BytesIO(blob), f"pedido-{order.id}.txt") if blob else None

        tenant = await self.sf.tenant()
        if tenant.delivery_mode != DeliveryMode.CHANNEL:
            if await send_dm(self.bot, order.buyer_discord_id, embed=embed, file=file()):
                return DeliveryPath.DM
        if await self.send_in_thread(order, embed, file()):
            return DeliveryPath.CHANNEL
        return DeliveryPath.FAILED

    async def send_in_thread(self, order: Order, embed: disnake.Embed,
                             file: disnake.File | None) -> bool:
        """A private thread in the buying channel with only the buyer (and the staff)."""
        if not order.channel_id:
            return False
        try:
            thread = await self.bot.http.start_thread_without_message(
                int(order.channel_id), name=f"pedido-{order.id}", auto_archive_duration=1440,
                type=disnake.ChannelType.private_thread.value, invitable=False)
            await self.bot.http.add_user_to_thread(int(thread["id"]), int(order.buyer_discord_id))
            channel = self.bot.get_partial_messageable(int(thread["id"]))
            kwargs = {"file": file} if file else {}
            await channel.send(t("storefront.delivery.thread", order.locale,
                                 user=f"<@{order.buyer_discord_id}>"), embed=embed,
                               allowed_mentions=disnake.AllowedMentions(
                                   users=[disnake.Object(int(order.buyer_discord_id))]),
                               **kwargs)
        except disnake.HTTPException as exc:
            log.warning("order %s: channel fallback failed: %s", order.id, exc)
            return False
        return True

    async def tell_waiting(self, order: Order, prepared: delivery.Prepared) -> None:
        text = t("storefront.waiting.buyer", order.locale, order=order.id,
                 product=prepared.product_name)
        if not await send_dm(self.bot, order.buyer_discord_id, content=text):
            await self.send_in_thread(order, disnake.Embed(description=text), None)
        await self.post_log(t("storefront.waiting.seller", "pt-BR", order=order.id,
                              product=prepared.product_name, quantity=order.quantity))

    async def grant_role(self, order: Order) -> None:
        tenant = await self.sf.tenant()
        # the store's guild, never the one the order names: the role exists only there
        guild_id = tenant.guild_id
        if not tenant.buyer_role_id or not guild_id:
            return
        try:
            await self.bot.http.add_role(int(guild_id), int(order.buyer_discord_id),
                                         int(tenant.buyer_role_id),
                                         reason=f"Vitrine: pedido #{order.id}")
        except disnake.HTTPException as exc:
            log.warning("order %s: buyer role not granted: %s", order.id, exc)
            await self.post_log(t("storefront.log.role_failed", "pt-BR", order=order.id,
                                  role=tenant.buyer_role_id))

    async def log_sale(self, order: Order, prepared: delivery.Prepared, path: str) -> None:
        await self.post_log(None, views.sale_log_embed(order, prepared.product_name,
                                                       prepared.variation_name, str(path)))

    async def post_log(self, content: str | None, embed: disnake.Embed | None = None) -> None:
        tenant = await self.sf.tenant()
        if not tenant.sales_log_channel_id:
            return
        try:
            channel = self.bot.get_partial_messageable(int(tenant.sales_log_channel_id))
            await channel.send(content, **({"embed": embed} if embed else {}))
        except disnake.HTTPException as exc:
            log.warning("sales log not posted: %s", exc)


async def send_dm(bot: disnake.Client, user_id: str, **kwargs: object) -> bool:
    """DM a user; False when they do not accept DMs from the bot (50007) or are unknown."""
    try:
        data = await bot.http.start_private_message(int(user_id))
        channel = bot.get_partial_messageable(int(data["id"]), type=disnake.ChannelType.private)
        await channel.send(**{k: v for k, v in kwargs.items() if v is not None})
    except (disnake.Forbidden, disnake.NotFound) as exc:
        log.info("DM to %s refused: %s", user_id, exc)
        return False
    return True


def setup(sf: Storefront) -> None:
    consumer = DeliveryConsumer(sf)
    sf.bot.add_background_task(consumer.run, "storefront-delivery")
    # No sweeper here: `python -m shop.reconcile` re-enqueues paid-but-undelivered orders for
    # every instance in one query (500 workers polling the database cost each ~0.6 MB of
    # copy-on-write memory and 500 queries every 30 s).
