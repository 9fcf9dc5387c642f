"""aiohttp application factory: ``build_app(config) -> web.Application``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from .config import MercadoPagoConfig
from .control import setup_control
from .errors import MPError
from .keys import MP_CONFIG, MP_DISPATCHER, MP_OAUTH, MP_STATE
from .oauth import setup_oauth
from .oauth_state import OAuthRegistry
from .order_routes import setup_order_routes
from .payouts import setup_payouts
from .routes import setup_routes
from .state import MPState
from .webhooks import WebhookDispatcher

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else request.path
    return f"{request.method} {path}"


async def _inject_api_faults(request: web.Request) -> MPError | None:
    """Count the call and apply ``slow_ms`` / injected errors (only for /v1/*)."""
    state = request.app[MP_STATE]
    state.request_counts[_route_name(request)] += 1
    faults = state.faults
    if faults.slow_ms:
        await asyncio.sleep(faults.slow_ms / 1000)
    injected = faults.take_api_error()
    if injected is None:
        return None
    status, error, message = injected
    headers = {"Retry-After": str(faults.retry_after)} if status == 429 else None
    return MPError(status, error, message, None, headers)


@web.middleware
async def mp_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render MPError as MP JSON, count API calls, inject API faults."""
    is_api = request.path.startswith("/v1/")
    try:
        if is_api:
            injected = await _inject_api_faults(request)
            if injected is not None:
                return injected.response()
        response = await handler(request)
        if is_api and request.app[MP_STATE].faults.take_lost_answer():
            # processed, then the answer is lost on the way (an edge's 504)
            return MPError(504, "gateway_timeout", "Gateway timeout").response()
        return response
    except MPError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if is_api and exc.status in (404, 405):
            error = "not_found" if exc.status == 404 else "method_not_allowed"
            return MPError(
                exc.status,
                error,
                "resource not found" if exc.status == 404 else "method not allowed",
            ).response()
        raise


async def _sweep(state: MPState) -> None:
    """Periodically expire overdue pending payments."""
    while True:
        await asyncio.sleep(state.config.sweep_interval)
        try:
            state.expire_due()
        except Exception:  # keep sweeping whatever happens
            log.exception("expiry sweep failed")


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    dispatcher = app[MP_DISPATCHER]
    await dispatcher.start()
    sweeper = asyncio.get_running_loop().create_task(_sweep(app[MP_STATE]))
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await dispatcher.close()


def build_app(config: MercadoPagoConfig | None = None) -> web.Application:
    """Build the Mercado Pago stand-in app (API at /v1, control at /_sandbox/mp)."""
    config = config or MercadoPagoConfig()
    state = MPState(config)
    dispatcher = WebhookDispatcher(state)
    state.notify = dispatcher.notify
    app = web.Application(middlewares=[mp_middleware])
    app[MP_CONFIG] = config
    app[MP_STATE] = state
    app[MP_DISPATCHER] = dispatcher
    app[MP_OAUTH] = OAuthRegistry()
    with warnings.catch_warnings():
        # Plain-string alias requested by the project; typed MP_STATE is preferred.
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app["mp_state"] = state
    setup_routes(app)
    setup_order_routes(app)  # the Orders API: /v1/orders
    setup_control(app)
    setup_payouts(app)  # money out: /v1/transaction-intents
    setup_oauth(app)  # sellers connecting their accounts (marketplace)
    app.cleanup_ctx.append(_lifecycle)
    return app
