"""What every storefront module shares: the per-process services, locale, error replies."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import disnake
from disnake.interactions import Interaction

from core.i18n import normalize_locale, t
from core.tuning import tuning_float
from core.vault import TokenVault
from fleet.errors import FencedOut
from shop.errors import ShopError
from shop.models import Tenant

if TYPE_CHECKING:
    from shop.payments.service import PaymentServices
    from worker.bot import WorkerBot

log = logging.getLogger("worker.storefront")
GUILD_ONLY = disnake.InteractionContextTypes(guild=True)  # slash commands: servers only


def localized(pt_br: str, english: str) -> disnake.Localized[str]:
    """A slash command's name or description: pt-BR by default, `english` for English clients
    (Discord picks it by the user's client locale; disnake sends it as `*_localizations`)."""
    return disnake.Localized(
        pt_br, data={disnake.Locale.en_US: english, disnake.Locale.en_GB: english}
    )


PREFIX = "vt:"  # every storefront custom_id starts with it
Handler = Callable[[Any, list[str]], Awaitable[None]]


# The storefront's tuning knobs (docs/storefront.md): name -> (default, lowest, highest).
TUNING: dict[str, tuple[float, float, float]] = {
    "VITRINE_PANEL_REFRESH_S": (15.0, 0.1, 86400.0),
    "VITRINE_DELIVERY_CLAIM_IDLE_S": (30.0, 0.1, 3600.0),
    "VITRINE_DELIVERY_NONCE_WINDOW_S": (60.0, 0.0, 3600.0),
    "VITRINE_ACCESS_RECHECK_S": (3600.0, 1.0, 86400.0),  # rejoin check of access grants
}


def knob(name: str, environ: Mapping[str, str] | None = None) -> float:
    """The value of one of the storefront's `TUNING` knobs; `TuningError` names a bad one."""
    default, lo, hi = TUNING[name]
    return tuning_float(name, default, lo, hi, environ)


def check_tuning(environ: Mapping[str, str]) -> None:
    """Parse every storefront knob (called by the worker at start: a bad one exits 78)."""
    for name in TUNING:
        knob(name, environ)


def locale_of(inter: Interaction) -> str:
    """pt-BR unless the buyer's Discord is in English."""
    return normalize_locale(inter.locale.value if inter.locale else None)


def storefront_of(inter: Any) -> Storefront:
    """The worker's storefront, for slash commands defined once per process image (at import,
    in the zygote) rather than per bot: they find their state through the interaction."""
    return inter.bot.storefront


class Storefront:
    """Per-worker state: vault, payment services (made lazily in the worker's loop),
    the tenant (cached a few seconds), component routes and in-process locks."""

    def __init__(self, bot: WorkerBot) -> None:
        self.bot = bot
        self.ctx = bot.ctx
        self.vault = TokenVault(bot.ctx.settings.token_encryption_keys)
        self.routes: dict[str, Handler] = {}
        self.panel_dirty = asyncio.Event()
        self.access_due = asyncio.Event()  # access grants due: the access runner claims them
        self._svc: PaymentServices | None = None
        self._tenant: tuple[float, Tenant] | None = None
        self._locks: dict[str, asyncio.Lock] = {}

    def route(self, action: str, handler: Handler) -> None:
        """`vt:<action>:<args...>` components and modals go to `handler(inter, args)`."""
        self.routes[action] = handler

    def lock(self, key: str) -> asyncio.Lock:
        if len(self._locks) > 10_000:
            self._locks = {k: v for k, v in self._locks.items() if v.locked()}
        return self._locks.setdefault(key, asyncio.Lock())

    def payments(self) -> PaymentServices:
        if self._svc is None:
            from shop.payments.gateways import gateway_from_settings
            from shop.payments.service import PaymentServices

            settings = self.ctx.settings
            self._svc = PaymentServices.from_settings(
                settings, gateway_from_settings(settings), self.ctx.redis
            )
        return self._svc

    async def tenant(self) -> Tenant:
        now = time.monotonic()
        if self._tenant is None or now - self._tenant[0] > 5.0:
            self._tenant = (now, await Tenant.get(id=self.ctx.tenant_id))
        return self._tenant[1]

    async def guarded(self, inter: Interaction, work: Awaitable[None]) -> None:
        """Run a handler; any error becomes a clear ephemeral message for the user."""
        try:
            await work
        except FencedOut as exc:  # another node owns the bot now: this process stops
            self.ctx.fencing.refuse(exc)
            await reply_error(inter, exc)
        except Exception as exc:  # noqa: BLE001 - translated once, here
            await reply_error(inter, exc)

    async def dispatch(self, inter: Any, custom_id: str) -> None:
        """Route a `vt:` component or modal to its handler."""
        parts = custom_id[len(PREFIX) :].split(":")
        handler = self.routes.get(parts[0])
        if handler is not None:
            await self.guarded(inter, handler(inter, parts[1:]))

    async def close(self) -> None:
        if self._svc is not None:
            await self._svc.gateway.aclose()
            self._svc = None


async def reply(inter: Interaction, content: str | None = None, **kw: Any) -> None:
    """An ephemeral answer, whether or not the interaction was answered already."""
    kw.setdefault("ephemeral", True)
    if inter.response.is_done():
        await inter.followup.send(content, **kw)
    else:
        await inter.response.send_message(content, **kw)


async def reply_error(inter: Interaction, exc: BaseException) -> None:
    """A clear ephemeral message for a ShopError; a generic one for anything else."""
    locale = locale_of(inter)
    if isinstance(exc, ShopError):
        text = exc.message(locale)
    elif isinstance(exc, FencedOut):  # the bot is moving to another machine: a moment
        text = t("storefront.error.busy", locale)
    else:
        log.exception("storefront interaction failed", exc_info=exc)
        text = t("storefront.error.unexpected", locale)
    try:
        await reply(inter, f"⚠️ {text}")
    except disnake.HTTPException:
        log.warning("could not tell the buyer about %s", type(exc).__name__)


def is_staff(inter: Interaction) -> bool:
    perms = getattr(inter, "permissions", None)
    return bool(perms and (perms.manage_guild or perms.administrator))
