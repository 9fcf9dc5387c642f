"""Test helpers: serve an aiohttp app on a free port; a webhook receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiohttp import web
from multidict import CIMultiDict

from .app import build_app
from .client import MercadoPagoSandboxClient
from .config import MercadoPagoConfig
from .keys import MP_DISPATCHER, MP_STATE
from .state import MPState
from .util import format_mp_date
from .webhooks import WebhookDispatcher


@asynccontextmanager
async def serve_app(app: web.Application, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Run ``app`` on ``host`` with an OS-chosen port; yields its base URL."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    raw: bytes
    answered: int

    @property
    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.raw)


class WebhookReceiver:
    """A tiny aiohttp endpoint that records requests and answers scripted statuses.

    ``statuses`` are answered in order, then ``default_status`` forever.
    """

    def __init__(self, statuses: Iterable[int] = (), default_status: int = 200) -> None:
        self.statuses = list(statuses)
        self.default_status = default_status
        self.received: list[Received] = []
        self._changed = asyncio.Condition()
        self.app = web.Application()
        self.app.router.add_post("/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        status = self.statuses.pop(0) if self.statuses else self.default_status
        raw = await request.read()
        self.received.append(
            Received(request.path, dict(request.query), CIMultiDict(request.headers), raw, status)
        )
        async with self._changed:
            self._changed.notify_all()
        return web.json_response({"received": True}, status=status)

    async def wait_for(self, count: int, within: float = 5.0) -> list[Received]:
        """Wait until at least ``count`` requests arrived; returns them all."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.received) >= count)
        return list(self.received)


@asynccontextmanager
async def webhook_receiver(
    statuses: Iterable[int] = (),
    default_status: int = 200,
) -> AsyncIterator[tuple[WebhookReceiver, str]]:
    """Serve a WebhookReceiver; yields (receiver, base URL)."""
    receiver = WebhookReceiver(statuses, default_status)
    async with serve_app(receiver.app) as url:
        yield receiver, url


def expiry_in(delta: timedelta, offset_hours: int = -3) -> str:
    """A ``date_of_expiration`` value ``delta`` from now, in MP's format."""
    return format_mp_date(datetime.now(UTC) + delta, offset_hours)


def pix_body(notification_url: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid POST /v1/payments body for PIX; ``overrides`` replace top-level fields."""
    body: dict[str, Any] = {
        "transaction_amount": 10.5,
        "payment_method_id": "pix",
        "description": "Sandbox order",
        "external_reference": "order-1",
        "date_of_expiration": expiry_in(timedelta(hours=1)),
        "payer": {
            "email": "buyer@example.com",
            "first_name": "Ana",
            "identification": {"type": "CPF", "number": "19119119100"},
        },
        "metadata": {"tenant": "t1"},
    }
    if notification_url is not None:
        body["notification_url"] = notification_url
    body.update(overrides)
    return body


@dataclass
class MPHarness:
    """A running fake plus a webhook receiver and clients, for tests."""

    url: str
    app: web.Application
    api: httpx.AsyncClient
    control: MercadoPagoSandboxClient
    receiver: WebhookReceiver
    receiver_url: str
    # Fixed so that repeated create() calls send byte-identical bodies.
    expiry: str = field(default_factory=lambda: expiry_in(timedelta(hours=1)))

    @property
    def state(self) -> MPState:
        """The in-process state (``app["mp_state"]``)."""
        return self.app[MP_STATE]

    @property
    def dispatcher(self) -> WebhookDispatcher:
        """The webhook dispatcher."""
        return self.app[MP_DISPATCHER]

    @property
    def notification_url(self) -> str:
        """A receiver URL with an existing query parameter, like production uses."""
        return f"{self.receiver_url}/wh/mp?source_news=webhooks"

    async def create(self, key: str = "key-1", **overrides: Any) -> httpx.Response:
        """POST /v1/payments with a valid PIX body pointing at the receiver."""
        overrides.setdefault("notification_url", self.notification_url)
        overrides.setdefault("date_of_expiration", self.expiry)
        body = pix_body(**overrides)
        return await self.api.post("/v1/payments", json=body, headers={"X-Idempotency-Key": key})


@asynccontextmanager
async def mp_harness(
    config: MercadoPagoConfig | None = None,
    token: str = "TEST-token",  # noqa: S107
    receiver_statuses: Iterable[int] = (),
) -> AsyncIterator[MPHarness]:
    """Start receiver and fake on free ports; yield a harness; shut all down."""
    app = build_app(config or MercadoPagoConfig(webhook_retry_delays=(0.05, 0.05, 0.05)))
    async with (
        webhook_receiver(receiver_statuses) as (receiver, receiver_url),
        serve_app(app) as url,
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=5.0
        ) as api,
        MercadoPagoSandboxClient(url) as control,
    ):
        yield MPHarness(url, app, api, control, receiver, receiver_url)
