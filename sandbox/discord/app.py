"""Assemble the Discord stand-in aiohttp application."""

from __future__ import annotations

from aiohttp import web

from sandbox.discord import commands, control, incoming_webhooks, interactions, oauth, rest
from sandbox.discord.gateway import GatewayHub, gateway_handler
from sandbox.discord.http_util import API_PREFIXES, STATE_KEY, api_middleware
from sandbox.discord.state import DiscordConfig, DiscordState


def build_app(
    state: DiscordState | None = None, config: DiscordConfig | None = None
) -> web.Application:
    """A new aiohttp app serving REST (/api/v10), the gateway (/gateway), OAuth and /_sandbox."""
    state = state or DiscordState(config=config or DiscordConfig())
    state.hub = GatewayHub(state)
    app = web.Application(middlewares=[api_middleware], client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = state
    api_routes = rest.ROUTES + commands.ROUTES + interactions.ROUTES + oauth.API_ROUTES
    for prefix in API_PREFIXES:
        for method, path, handler in api_routes:
            app.router.add_route(method, prefix + path, handler)
    for method, path, handler in (
        control.ROUTES + oauth.PAGE_ROUTES + incoming_webhooks.CONTROL_ROUTES
    ):
        app.router.add_route(method, path, handler)
    app.router.add_get("/gateway", gateway_handler)

    async def _shutdown(_app: web.Application) -> None:
        if state.hub is not None:
            await state.hub.close_all()

    app.on_shutdown.append(_shutdown)
    return app
