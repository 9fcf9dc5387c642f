"""The notification loop the reconciler runs beside its passes: operators' messages and
sellers' DMs every `ALERT_SEND_INTERVAL_SECONDS` (2), the checks every
`ALERT_CHECK_INTERVAL_SECONDS` (60).

It runs in its own task and only reads and writes the database and the channels, so a slow
or dead SMTP server or Discord delays messages, never a payment pass or a delivery. Several
copies (two reconcilers during a rolling update) are safe: rows are claimed before sending.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import redis.asyncio as aioredis

from core.settings import Settings
from core.tuning import tuning_float
from core.vault import TokenVault
from shop.notify.channels import OperatorChannel, channels_from_settings
from shop.notify.checks import AlertChecks
from shop.notify.dispatch import OperatorDispatcher
from shop.notify.seller import SellerDM
from shop.rating_relay import RatingRelay

log = logging.getLogger("shop.notify")


class NotifyService:
    """Dispatcher + seller DMs + checks, built from the settings."""

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis | None,
        client: httpx.AsyncClient,
        channels: list[OperatorChannel] | None = None,
    ) -> None:
        chans = (
            channels if channels is not None else channels_from_settings(settings.notify, client)
        )
        self.dispatcher = OperatorDispatcher(chans, settings.notify, settings.default_locale)
        self.seller = SellerDM(
            settings.discord_api_base, TokenVault(settings.token_encryption_keys), client
        )
        self.ratings = RatingRelay(self.seller)  # rating asks and feedback posts (issue 17)
        self.checks = AlertChecks(
            settings.notify, settings.data_dir, redis, settings.default_locale
        )
        self.send_every = tuning_float("ALERT_SEND_INTERVAL_SECONDS", 2.0, 0.05, 600.0)
        self.check_every = tuning_float("ALERT_CHECK_INTERVAL_SECONDS", 60.0, 1.0, 86_400.0)

    async def send_once(self) -> None:
        """One round of sending; a failure is logged and retried next round."""
        try:
            await self.dispatcher.run_once()
        except Exception:  # noqa: BLE001 - the loop must outlive a bad round
            log.exception("alert dispatch round failed")
        try:
            await self.seller.run_once()
        except Exception:  # noqa: BLE001
            log.exception("seller notice round failed")
        try:
            await self.ratings.run_once()
        except Exception:  # noqa: BLE001
            log.exception("rating round failed")

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: send every `send_every` s, check every `check_every` s."""
        last_check: float | None = None
        while not stop.is_set():
            if last_check is None or time.monotonic() - last_check >= self.check_every:
                last_check = time.monotonic()
                await self.checks.run_once()
            await self.send_once()
            try:
                await asyncio.wait_for(stop.wait(), self.send_every)
            except TimeoutError:
                pass


async def run_notifications(
    settings: Settings, redis: aioredis.Redis | None, stop: asyncio.Event
) -> None:
    """The reconciler's notification task (own HTTP client, closed on stop)."""
    async with httpx.AsyncClient() as client:
        await NotifyService(settings, redis, client).run(stop)
