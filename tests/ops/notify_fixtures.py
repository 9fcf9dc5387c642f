"""Fixtures of the notification tests: a real SMTP server (aiosmtpd) and the sandbox's
incoming webhook, with the operators' channels pointed at them."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from core.notify_settings import NotifySettings
from ops.process_tools import free_port
from shop.notify.channels import DiscordWebhookChannel, SmtpChannel
from shop.notify.dispatch import OperatorDispatcher


@dataclass
class Inbox:
    """An aiosmtpd handler keeping what it received."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]


class SmtpServer:
    """A real SMTP server on a loopback port (started and stopped by the test)."""

    def __init__(self, port: int | None = None) -> None:
        self.inbox = Inbox()
        self.port = port or free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Hook:
    id: str
    url: str
    dc: Any

    async def messages(self) -> list[dict[str, Any]]:
        return await self.dc.call("GET", f"/_sandbox/webhooks/{self.id}/messages")

    async def rate_limit(self, count: int, retry_after: float) -> None:
        await self.dc.call(
            "POST",
            f"/_sandbox/webhooks/{self.id}/rate_limit",
            json={"count": count, "retry_after": retry_after},
        )


@pytest.fixture
async def webhook(dc: Any) -> Hook:
    data = await dc.call("POST", "/_sandbox/webhooks", json={"name": "ops"})
    return Hook(data["id"], data["url"], dc)


def notify_settings(hook: Hook | None, smtp_port: int | None, **over: Any) -> NotifySettings:
    base = NotifySettings(
        discord_webhook_url=hook.url if hook else "",
        smtp_host="127.0.0.1" if smtp_port else "",
        smtp_port=smtp_port or 587,
        smtp_security="none",
        email_from="vitrine@example.com",
        email_to=("ops@example.com",) if smtp_port else (),
        admin_public_url="https://admin.example.com",
        min_interval_s=0,
    )
    return replace(base, **over)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def dispatcher(
    notify: NotifySettings, http: httpx.AsyncClient, locale: str = "pt-BR"
) -> OperatorDispatcher:
    channels: list[Any] = []
    if notify.discord_webhook_url:
        channels.append(DiscordWebhookChannel(notify.discord_webhook_url, http))
    if notify.email_enabled:
        channels.append(SmtpChannel(notify))
    return OperatorDispatcher(channels, notify, locale)


def later(seconds: float = 11.0) -> datetime:
    """A moment past the aggregation window (10 s by default)."""
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def wait_for_mail(server: SmtpServer, count: int, timeout: float = 5.0) -> list[str]:
    """aiosmtpd handles DATA in its own thread: wait until `count` messages arrived."""
    for _ in range(int(timeout / 0.02)):
        if len(server.inbox.messages) >= count:
            break
        await asyncio.sleep(0.02)
    return server.inbox.subjects()
