"""The operators' channels: a Discord incoming webhook and e-mail over SMTP.

Each is optional (`channels_from_settings` builds the configured ones). A failed send raises
`SendFailed`; the dispatcher keeps the message owed and retries it with backoff.
"""

from __future__ import annotations

import asyncio
import email.utils
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib
import httpx

from core.notify_settings import NotifySettings
from shop.notify.compose import Outgoing

CONTENT_MAX = 2000  # Discord: message `content`
EMBED_TITLE_MAX = 256
EMBED_DESCRIPTION_MAX = 4096
INLINE_WAIT_MAX_S = 5.0  # a 429 asking for longer goes back to the dispatcher's backoff
SEND_TIMEOUT_S = 15.0


class SendFailed(Exception):
    """The channel did not take the message; `retry_after` (s) when it said when to retry."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OperatorChannel(Protocol):
    name: str

    async def send(self, out: Outgoing) -> None: ...


def _retry_after(response: httpx.Response) -> float:
    """Seconds to wait after a 429: the JSON body's `retry_after`, else `Retry-After`."""
    try:
        value = float(response.json().get("retry_after"))
    except (ValueError, TypeError, AttributeError):
        try:
            value = float(response.headers.get("Retry-After", "1"))
        except ValueError:
            value = 1.0
    return max(0.0, min(value, 3600.0))


class DiscordWebhookChannel:
    """Execute Webhook (https://discord.com/developers/docs/resources/webhook#execute-webhook):
    `POST {url}?wait=true` with `content` and one embed, no Authorization header; 200 with
    the message when Discord saved it. A 429 carries `retry_after` in seconds
    (https://discord.com/developers/docs/topics/rate-limits#exceeding-a-rate-limit): a short
    one is waited out here once, a longer one is handed back to the dispatcher."""

    name = "discord"

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url = url
        self.client = client

    def _payload(self, out: Outgoing) -> dict[str, object]:
        return {
            "content": out.subject[:CONTENT_MAX],
            "embeds": [
                {
                    "title": out.subject[:EMBED_TITLE_MAX],
                    "description": out.body[:EMBED_DESCRIPTION_MAX],
                    "url": out.link,
                    "color": out.color,
                }
            ],
            "allowed_mentions": {"parse": []},  # an alert text never pings anyone
        }

    async def send(self, out: Outgoing) -> None:
        for attempt in range(2):
            try:
                response = await self.client.post(
                    self.url,
                    params={"wait": "true"},
                    json=self._payload(out),
                    timeout=SEND_TIMEOUT_S,
                )
            except httpx.HTTPError as exc:
                raise SendFailed(f"discord webhook: {type(exc).__name__}: {exc}") from exc
            if response.status_code == 429:
                wait = _retry_after(response)
                if attempt == 0 and wait <= INLINE_WAIT_MAX_S:
                    await asyncio.sleep(wait)
                    continue
                raise SendFailed("discord webhook: rate limited", retry_after=wait)
            if response.is_success:
                return
            raise SendFailed(f"discord webhook: HTTP {response.status_code} {response.text[:200]}")
        raise SendFailed("discord webhook: rate limited twice")


class SmtpChannel:
    """E-mail through the operators' SMTP server (aiosmtplib: STARTTLS, implicit TLS or
    plain, with optional login)."""

    name = "email"

    def __init__(self, notify: NotifySettings) -> None:
        self.notify = notify

    def _message(self, out: Outgoing) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.notify.email_from
        msg["To"] = ", ".join(self.notify.email_to)
        msg["Subject"] = out.subject
        msg["Date"] = email.utils.formatdate(usegmt=True)
        msg["Message-ID"] = email.utils.make_msgid(domain="vitrine.local")
        msg.set_content(out.body)
        return msg

    async def send(self, out: Outgoing) -> None:
        n = self.notify
        try:
            await aiosmtplib.send(
                self._message(out),
                hostname=n.smtp_host,
                port=n.smtp_port,
                username=n.smtp_user or None,
                password=n.smtp_password or None,
                use_tls=n.smtp_security == "tls",
                start_tls=True if n.smtp_security == "starttls" else False,
                timeout=SEND_TIMEOUT_S,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendFailed(f"smtp {n.smtp_host}:{n.smtp_port}: {exc}") from exc


def channels_from_settings(
    notify: NotifySettings, client: httpx.AsyncClient
) -> list[OperatorChannel]:
    """The configured channels (none configured: alerts stay in the console and the API)."""
    channels: list[OperatorChannel] = []
    if notify.discord_webhook_url:
        channels.append(DiscordWebhookChannel(notify.discord_webhook_url, client))
    if notify.email_enabled:
        channels.append(SmtpChannel(notify))
    return channels
