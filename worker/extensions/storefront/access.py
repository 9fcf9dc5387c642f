"""Timed access in Discord (issue 16): the store's worker runs its due access grants.

Why here: the bot's own worker holds the token and the gateway, and Discord's role routes
are per bot. Due work lives in the database (`access_grants.next_due_at`); the reconciler's
access relay (`shop.access_relay`) puts `{"access": <tenant>}` on the instance's delivery
stream, the delivery consumer sets `Storefront.access_due`, and this runner claims the
store's due grants (`shop.access_run.run_due`: a conditional UPDATE, so two workers of one
bot during a handover never act on one grant) and adds or removes roles through REST:
PUT/DELETE /guilds/{g}/members/{u}/roles/{r}
(https://discord.com/developers/docs/resources/guild#add-guild-member-role). A delivery sets
the event too, so a buyer's roles arrive with their DM, not at the next relay pass.

The reminder DM carries "Renovar" (`vt:renew:<grant id>`), which opens the normal checkout
card for the same variation (same price, coupons, buyer limits and blocklist). A DM Discord
refuses (50007) falls back as deliveries do: a private thread in the channel the order was
bought in, else a line in the sales log; it is never retried (the reminder is stamped first).
Rejoins: with the Server Members intent (asked for only when the seller enabled it,
`worker.optional_intents`) GUILD_MEMBER_ADD makes the buyer's grants due now (`rejoin.py`);
besides, every ACTIVE grant is looked at every `VITRINE_ACCESS_RECHECK_S` (an hour) and roles
its holder lost are added back, which is all a store without the intent gets.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import disnake

from core.i18n import t
from shop import inputs
from shop.access import AccessNotRenewable
from shop.access_plan import Reminder
from shop.access_run import BATCH, AccessDiscord, RoleResult, run_due
from shop.models import AccessGrant, AccessOrder, Order, Variation
from worker.extensions.storefront import checkout_ui
from worker.extensions.storefront.common import Storefront, knob
from worker.extensions.storefront.send_once import create_message, send_dm

log = logging.getLogger("worker.storefront.access")
MAX_GRANT_ID = 2**53  # custom ids are bounded before they are parsed
UNKNOWN_MEMBER, UNKNOWN_ROLE = 10007, 10011


class RestAccess(AccessDiscord):
    """`AccessDiscord` through the bot's REST client (disnake retries 429s itself)."""

    def __init__(self, sf: Storefront) -> None:
        self.sf = sf
        self.bot = sf.bot

    async def _role(self, grant: AccessGrant, role_id: str, add: bool) -> RoleResult:
        call = self.bot.http.add_role if add else self.bot.http.remove_role
        try:
            await call(
                int(grant.guild_id),
                int(grant.buyer_discord_id),
                int(role_id),
                reason=f"Vitrine: acesso #{grant.id}",
            )
        except disnake.NotFound as exc:
            if exc.code == UNKNOWN_MEMBER:
                return RoleResult.NOT_MEMBER
            return RoleResult.UNKNOWN_ROLE if exc.code == UNKNOWN_ROLE else RoleResult.FAILED
        except disnake.Forbidden:
            if grant.attempts == 0:  # the first refusal of a streak: tell the seller once
                await self.post_log(
                    t(
                        "storefront.access.log.role_failed",
                        "pt-BR",
                        grant=grant.id,
                        user=grant.buyer_discord_id,
                        role=role_id,
                    )
                )
            return RoleResult.REFUSED
        except (disnake.HTTPException, OSError) as exc:
            log.warning("access grant %s: role %s: %s", grant.id, role_id, exc)
            return RoleResult.FAILED
        return RoleResult.OK

    async def add_role(self, grant: AccessGrant, role_id: str) -> RoleResult:
        if not grant.guild_id:
            return RoleResult.NOT_MEMBER  # the store has no server yet: looked at later
        return await self._role(grant, role_id, add=True)

    async def remove_role(self, grant: AccessGrant, role_id: str) -> RoleResult:
        if not grant.guild_id:
            return RoleResult.OK
        return await self._role(grant, role_id, add=False)

    async def member_roles(self, grant: AccessGrant) -> set[str] | None:
        if not grant.guild_id:
            return None
        try:
            data = await self.bot.http.get_member(int(grant.guild_id), int(grant.buyer_discord_id))
        except disnake.NotFound:
            return None
        return {str(r) for r in data.get("roles") or []}

    async def remind(self, grant: AccessGrant, which: Reminder) -> str:
        order = await _latest_order(grant)
        locale = order.locale if order is not None else "pt-BR"
        embed = await reminder_embed(grant, which, locale)
        row = disnake.ui.ActionRow(
            disnake.ui.Button(
                label=t("storefront.access.renew", locale),
                emoji="🔁",
                custom_id=f"vt:renew:{grant.id}",
                style=disnake.ButtonStyle.success,
            )
        )
        ends = int(grant.ends_at.timestamp()) if grant.ends_at else 0
        nonce = f"v1-a{grant.id}-{which}-{ends % 10**7}"[:25]
        message: dict[str, Any] = {"embed": embed, "components": [row], "nonce": nonce}
        if await send_dm(self.bot, grant.buyer_discord_id, **message):
            return "dm"
        if order is not None and await self.remind_in_thread(grant, order, message, locale):
            return "channel"
        await self.post_log(
            t(
                "storefront.access.log.remind_failed",
                "pt-BR",
                grant=grant.id,
                user=grant.buyer_discord_id,
            )
        )
        return "failed"

    async def remind_in_thread(
        self, grant: AccessGrant, order: Order, message: dict[str, Any], locale: str
    ) -> bool:
        """DMs closed: a private thread in the channel the order was bought in."""
        if not order.channel_id or order.guild_id is None:
            return False
        buyer = int(grant.buyer_discord_id)
        try:
            thread = await self.bot.http.start_thread_without_message(
                int(order.channel_id),
                name=f"acesso-{grant.id}",
                auto_archive_duration=1440,
                type=disnake.ChannelType.private_thread.value,
                invitable=False,
            )
            await self.bot.http.add_user_to_thread(int(thread["id"]), buyer)
            await create_message(
                self.bot,
                str(thread["id"]),
                content=t("storefront.access.thread", locale, user=f"<@{buyer}>"),
                allowed_mentions=disnake.AllowedMentions(users=[disnake.Object(buyer)]),
                **message,
            )
        except disnake.HTTPException as exc:
            log.warning("access grant %s: reminder thread failed: %s", grant.id, exc)
            return False
        return True

    async def post_log(self, text: str) -> None:
        tenant = await self.sf.tenant()
        if not tenant.sales_log_channel_id:
            return
        try:
            await self.bot.get_partial_messageable(int(tenant.sales_log_channel_id)).send(text)
        except disnake.HTTPException as exc:
            log.warning("sales log not posted: %s", exc)


async def _latest_order(grant: AccessGrant) -> Order | None:
    """The order that last started or extended the grant (its buyer's language)."""
    link = await AccessOrder.filter(access_id=grant.id).order_by("-id").first()
    order_id = link.order_id if link is not None else grant.order_id
    return await Order.get_or_none(id=order_id) if order_id else None


async def reminder_embed(grant: AccessGrant, which: Reminder, locale: str) -> disnake.Embed:
    variation = None
    if grant.variation_id is not None:
        variation = await Variation.get_or_none(id=grant.variation_id).prefetch_related("product")
    name = f"{variation.product.name} — {variation.name}" if variation else f"#{grant.id}"
    ends = int(grant.ends_at.timestamp()) if grant.ends_at else 0
    return disnake.Embed(
        title=t(f"storefront.access.remind.{which}", locale),
        description=t("storefront.access.remind.body", locale, product=name, when=f"<t:{ends}:F>"),
    )


async def on_renew(sf: Storefront, inter: Any, args: list[str]) -> None:
    """ "Renovar" in a reminder: the checkout card of the same variation (a normal order,
    whose delivery extends the access from its current end)."""
    grant_id = inputs.parse_id(args[0] if args else "", max_id=MAX_GRANT_ID)
    grant = await AccessGrant.get_or_none(
        id=grant_id, tenant_id=sf.ctx.tenant_id, buyer_discord_id=str(inter.author.id)
    )
    if grant is None or grant.variation_id is None:
        raise AccessNotRenewable(f"grant {grant_id}")
    await checkout_ui.show_card(sf, inter, grant.variation_id)


class AccessRunner:
    """Waits for `Storefront.access_due` and runs the store's due grants until none is left."""

    def __init__(self, sf: Storefront) -> None:
        self.sf = sf
        self.discord = RestAccess(sf)
        self.recheck = timedelta(seconds=knob("VITRINE_ACCESS_RECHECK_S"))

    async def run(self) -> None:
        while not self.sf.bot.is_closed():
            await self.sf.access_due.wait()
            self.sf.access_due.clear()
            try:
                while True:
                    report = await run_due(
                        self.sf.ctx.tenant_id, self.discord, recheck=self.recheck
                    )
                    if report.claimed:
                        log.info("access: %s", report)
                    if report.claimed < BATCH:
                        break
            except Exception:  # noqa: BLE001 - the grants stay due; the relay wakes us again
                log.exception("access run failed")
                await asyncio.sleep(1.0)


def setup(sf: Storefront) -> None:
    sf.route("renew", lambda inter, args: on_renew(sf, inter, args))
    sf.bot.add_background_task(AccessRunner(sf).run, "storefront-access")
