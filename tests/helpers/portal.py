"""Portal tests: settings for a portal app, a logged-in seller (test client of one store)."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet
from quart_auth import generate_auth_token
from werkzeug.datastructures import MultiDict

from core.settings import Settings, load_settings
from shop.models import Account, Tenant, WebSession

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def portal_settings(tmp_path: Any, database_url: str, redis_url: str, **env: str) -> Settings:
    values = {
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_DIR": str(tmp_path / "logs"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "ADMIN_API_TOKEN": "admin-token-0123456789abcdef",
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PORTAL_SESSION_SECRET": "portal-secret-0123456789abcdef",
        "MERCADOPAGO_WEBHOOK_SECRET": "test-webhook-secret-0123456789",
        "PUBLIC_BASE_URL": "http://127.0.0.1:3100",
        "DISCORD_CLIENT_ID": "client-id",
        "DISCORD_CLIENT_SECRET": "client-secret",
        "MERCADOPAGO_API": "payments",  # pinned: a fresh DATA_DIR would get orders
    }
    values.update(env)
    return load_settings(values, env_file=None)


@dataclass
class Seller:
    """A logged-in test client of one store."""

    client: Any
    account: Account
    tenant: Tenant
    session_id: str
    token: str = ""

    async def csrf(self) -> str:
        if not self.token:
            page = await self.client.get("/settings")
            match = CSRF_RE.search(await page.get_data(as_text=True))
            assert match, "no CSRF token on the settings page"
            self.token = match.group(1)
        return self.token

    async def post(self, path: str, data: dict | None = None, **kw: Any) -> Any:
        form = MultiDict([("csrf_token", await self.csrf())])
        for key, value in (data or {}).items():
            for item in value if isinstance(value, list) else [value]:
                form.add(key, item)
        return await self.client.post(path, form=form, **kw)

    async def text(self, path: str) -> tuple[int, str]:
        resp = await self.client.get(path)
        return resp.status_code, await resp.get_data(as_text=True)


async def make_seller(
    app: Any, name: str = "Loja", *, locale: str = "pt-BR", with_store: bool = True
) -> Seller:
    account = await Account.create(
        discord_id=str(uuid.uuid4().int)[:18], username=name, locale=locale
    )
    tenant = await Tenant.create(owner=account, name=name) if with_store else None
    sid = secrets.token_urlsafe(32)
    await WebSession.create(id=sid, account=account)
    client = app.test_client()
    client.set_cookie("127.0.0.1", "vitrine_portal", generate_auth_token(client, sid))
    return Seller(client, account, tenant, sid)  # type: ignore[arg-type]


@asynccontextmanager
async def _discord_portal(
    tmp_path: Any, database_url: str, redis_url: str, **env: str
) -> AsyncIterator[tuple[Any, Any]]:
    """A portal app (not started) talking to a Discord stand-in, and that stand-in's client."""
    from sandbox.discord.client import DiscordSandbox
    from sandbox.server import run_sandbox
    from web.portal import create_app

    async with (
        run_sandbox("127.0.0.1", 0, mp_port=None) as sb,
        DiscordSandbox(sb.discord_base) as dc,
    ):
        settings = portal_settings(
            tmp_path,
            database_url,
            redis_url,
            DISCORD_API_BASE=sb.discord_api_base,
            DISCORD_OAUTH_BASE=sb.oauth_base,
            **env,
        )
        yield create_app(settings), dc


@asynccontextmanager
async def portal_with_discord(
    tmp_path: Any, database_url: str, redis_url: str
) -> AsyncIterator[tuple[Any, Any]]:
    """(the portal app under test, a client of the Discord stand-in it talks to), real sockets."""
    async with _discord_portal(tmp_path, database_url, redis_url) as (app, dc):
        async with app.test_app():
            yield app, dc


@asynccontextmanager
async def served_portal_with_discord(
    tmp_path: Any, database_url: str, redis_url: str
) -> AsyncIterator[tuple[Any, Any, str]]:
    """`portal_with_discord` served by hypercorn on a free loopback port, for a real browser:
    (app, Discord stand-in client, the portal's base URL)."""
    from ops.process_tools import free_port
    from tests.shop.helpers import serve_quart

    port = free_port()
    public = {"PORTAL_PORT": str(port), "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    async with _discord_portal(tmp_path, database_url, redis_url, **public) as (app, dc):
        async with serve_quart(app, port) as base:
            yield app, dc, base
