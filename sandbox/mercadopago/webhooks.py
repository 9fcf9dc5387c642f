"""Webhook signing and background delivery, shaped like Mercado Pago's."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from .orders import notification as order_notification
from .state import MPState, Payment
from .util import format_mp_date

log = logging.getLogger(__name__)

USER_AGENT = "restclient-node/4.15.3"


def signature_manifest(
    data_id: str | int | None, request_id: str | None, ts: str | int | None
) -> str:
    """``id:{data.id};request-id:{x-request-id};ts:{ts};`` without absent parts."""
    parts = []
    if data_id is not None and str(data_id) != "":
        parts.append(f"id:{str(data_id).lower()};")
    if request_id:
        parts.append(f"request-id:{request_id};")
    if ts is not None and str(ts) != "":
        parts.append(f"ts:{ts};")
    return "".join(parts)


def sign_webhook(
    secret: str, data_id: str | int | None, request_id: str | None, ts: str | int | None
) -> str:
    """The ``v1`` value of ``x-signature``: hex HMAC-SHA256(secret, manifest)."""
    manifest = signature_manifest(data_id, request_id, ts)
    return hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()


@dataclass
class Notification:
    """One webhook event (its ``id`` is stable across retries and duplicates)."""

    id: int
    payment_id: int
    url: str
    body: dict[str, Any]
    # An `order` notification: data.id is the order id, and its x-request-id is fixed when it
    # is made, so retries and duplicates carry the same one and a new event (a refund of the
    # same order) a new one (developers/en/docs/checkout-api-orders/notifications).
    data_id: str = ""
    request_id: str = ""


class WebhookDispatcher:
    """Sends notifications in background tasks with retries and injected faults."""

    def __init__(self, state: MPState) -> None:
        self.state = state
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: list[Notification] = []
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the HTTP session (called from the app's cleanup context)."""
        timeout = aiohttp.ClientTimeout(total=self.state.config.webhook_timeout)
        self._session = aiohttp.ClientSession(timeout=timeout)

    async def close(self) -> None:
        """Cancel in-flight deliveries and close the session."""
        await self.cancel_all()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def cancel_all(self) -> None:
        """Cancel every pending delivery and forget held notifications."""
        self._held.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self, within: float = 5.0) -> None:
        """Wait until no delivery task is running (test helper)."""
        async with asyncio.timeout(within):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def notify(self, payment: Payment, action: str) -> None:
        """Queue a notification for ``payment`` (state callback; never blocks)."""
        state = self.state
        target = payment.notification_url or state.config.default_notification_url
        if not target:
            return
        order_id = state.order_by_payment.get(payment.id)
        if order_id is not None:
            self._queue(self._order_note(payment, order_id, target))
            return
        body = {
            "action": action,
            "api_version": "v1",
            "data": {"id": str(payment.id)},
            "date_created": format_mp_date(state.now(), state.config.utc_offset_hours),
            "id": state.next_notification_id(),
            "live_mode": False,
            "type": "payment",
            "user_id": payment.collector_id,
        }
        url = URL(target).update_query({"data.id": str(payment.id), "type": "payment"})
        self._queue(Notification(body["id"], payment.id, str(url), body))

    def _order_note(self, payment: Payment, order_id: str, target: str) -> Notification:
        _, body = order_notification(self.state, order_id)
        url = URL(target).update_query({"data.id": order_id, "type": "order"})
        return Notification(body["id"], payment.id, str(url), body, order_id, str(uuid.uuid4()))

    def _queue(self, note: Notification) -> None:
        state = self.state
        faults = state.faults
        if faults.drop:
            state.webhook_log.append(self._entry(note, None, {}, dropped=True))
            return
        if faults.out_of_order > 1:
            self._held.append(note)
            if len(self._held) >= faults.out_of_order:
                self.flush()
            return
        self._spawn(self._deliver_all([note]))

    def flush(self) -> int:
        """Release held notifications, newest first; returns how many."""
        held, self._held = self._held, []
        if held:
            self._spawn(self._deliver_all(list(reversed(held))))
        return len(held)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._session is None:
            coro.close()
            log.warning("webhook not sent: the app is not running")
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_all(self, notes: list[Notification]) -> None:
        for note in notes:
            delay_ms = self.state.faults.delay_ms
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            for _ in range(max(1, self.state.faults.duplicate)):
                await self._deliver(note)

    async def _deliver(self, note: Notification) -> None:
        """One notification with retries: attempt n carries ``x-retry: n``."""
        delays = (0.0, *self.state.config.webhook_retry_delays)
        for attempt, delay in enumerate(delays):
            if delay:
                await asyncio.sleep(delay)
            if await self._attempt(note, attempt):
                return

    async def _attempt(self, note: Notification, attempt: int) -> bool:
        state = self.state
        request_id = note.request_id or str(uuid.uuid4())
        signed_id = note.data_id or note.payment_id
        ts = str(int(time.time() * 1000))
        secret = state.config.webhook_secret
        if state.faults.bad_signature:
            secret += "-wrong"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "x-request-id": request_id,
            "x-signature": f"ts={ts},v1={sign_webhook(secret, signed_id, request_id, ts)}",
            "x-retry": str(attempt),
            "x-socket-timeout": str(int(state.config.webhook_timeout * 1000)),
        }
        entry = self._entry(note, attempt, headers)
        state.webhook_log.append(entry)
        payload = json.dumps(note.body, separators=(",", ":")).encode()
        assert self._session is not None
        try:
            async with self._session.post(
                URL(note.url, encoded=True), data=payload, headers=headers
            ) as resp:
                entry["status"] = resp.status
                await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            return False
        return 200 <= resp.status < 300

    def _entry(
        self,
        note: Notification,
        attempt: int | None,
        headers: dict[str, str],
        dropped: bool = False,
    ) -> dict[str, Any]:
        return {
            "notification_id": note.id,
            "payment_id": note.payment_id,
            "action": note.body["action"],
            "url": note.url,
            "attempt": attempt,
            "status": None,
            "error": None,
            "dropped": dropped,
            "headers": headers,
            "body": note.body,
            "at": format_mp_date(self.state.now(), self.state.config.utc_offset_hours),
        }
