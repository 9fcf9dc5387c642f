"""What both web apps share: lifecycle (DB + Redis), JSON errors, security headers, serving."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any
from urllib.parse import urlsplit

from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from quart import Quart, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from core import redis as core_redis
from core.db import close_db, init_db, ping_db
from core.settings import Settings
from fleet import keys
from shop.inputs import MAX_ID
from shop.payments.service import PaymentServices
from web.proxy import TrustedProxyMiddleware

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
}


NEXT_PATH_MAX = 2000
# A spreadsheet runs a cell starting with one of these as a formula (tab and CR included:
# some strip them first). OWASP "CSV Injection".
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_next_path(raw: str | None, default: str) -> str:
    """`raw` if it is a path of this site (`/x`, query allowed), else `default`.

    Browsers read `\\` as `/` and drop tabs and newlines, so `/\\evil.com` or `/<TAB>/evil.com`
    is `//evil.com`: another site. Control characters are refused outright.
    """
    if not raw or len(raw) > NEXT_PATH_MAX or any(c < " " or c == "\x7f" for c in raw):
        return default
    path = raw.replace("\\", "/")
    if not path.startswith("/") or path.startswith("//"):
        return default
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return default
    return path


def csv_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, prefixed with `'` (shown as text)."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_STARTS):
        return "'" + value
    return value


class BoundedIntConverter(IntegerConverter):
    """`<int:x>` limited to 0..2**31-1, so a huge number is a 404 rather than a DB overflow."""

    def __init__(self, map, *args: Any, **kwargs: Any) -> None:  # noqa: A002
        kwargs.setdefault("min", 0)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def create_base_app(name: str, settings: Settings) -> Quart:
    """A Quart app connected to the DB and Redis while serving, with JSON errors."""
    app = Quart(name)
    app.url_map.converters["int"] = BoundedIntConverter  # before any route is added
    app.config["VITRINE_SETTINGS"] = settings
    app.config["SERVICE_NAME"] = name
    app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024
    if settings.trusted_proxies:  # the real client's address behind the TLS proxy
        # wrapping the ASGI callable is how Quart takes middleware
        app.asgi_app = TrustedProxyMiddleware(  # type: ignore[method-assign]
            app.asgi_app, settings.trusted_proxies
        )

    @app.before_serving
    async def _connect() -> None:
        await init_db(settings.database_url)
        app.config["REDIS"] = core_redis.connect(settings.redis_url)
        _build_payment_services(app, settings)
        app.config["STARTED_AT"] = time.time()
        app.add_background_task(_service_heartbeat, app, name)

    @app.after_serving
    async def _disconnect() -> None:
        built = app.extensions.pop(PAYMENTS, None)
        if built is not None and built[1]:  # the gateway this app made (not an injected one)
            await built[0].gateway.aclose()
        redis = app.config.pop("REDIS", None)
        if redis is not None:
            await redis.aclose()
        await close_db()

    @app.after_request
    async def _headers(response):
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        return response

    @app.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException):
        if request.accept_mimetypes.best == "text/html" and not request.path.startswith("/api"):
            return exc
        return jsonify({"error": exc.name, "message": exc.description}), exc.code

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify(
            {"error": "internal_error", "message": "unexpected error; it was logged"}
        ), 500

    return app


PAYMENTS = "vitrine.payment_services"


def _build_payment_services(app: Quart, settings: Settings) -> None:
    """The app's PaymentServices, made once when it starts serving: the Mercado Pago gateway
    from the settings (or the one a test put in `config["PAYMENT_GATEWAY"]`) and its Redis."""
    from shop.payments.gateways import gateway_from_settings

    gateway = app.config.get("PAYMENT_GATEWAY")
    owned = gateway is None
    if gateway is None:
        gateway = gateway_from_settings(settings)
    services = PaymentServices.from_settings(settings, gateway, app.config["REDIS"])
    app.extensions[PAYMENTS] = (services, owned)


def payment_services(app: Quart) -> PaymentServices:
    """The PaymentServices `app` built when it started serving (views pass `current_app`)."""
    built = app.extensions.get(PAYMENTS)
    if built is None:
        raise RuntimeError("payment services exist only while the app serves")
    services: PaymentServices = built[0]
    return services


async def _service_heartbeat(app: Quart, name: str) -> None:
    """Let the admin API see this service is alive even when HTTP probing is not possible."""
    while not app.shutdown_event.is_set():
        redis = app.config.get("REDIS")
        if redis is None:
            return
        try:
            await redis.set(keys.service_heartbeat(name), f"{time.time():.3f}", ex=30)
        except Exception:  # noqa: BLE001 - Redis down: health reports it; keep trying
            log.debug("service heartbeat failed", exc_info=True)
        try:  # Quart sets shutdown_event first on shutdown, then waits for background tasks
            # Quart annotates shutdown_event as a threading/multiprocessing Event; it is asyncio's
            await asyncio.wait_for(app.shutdown_event.wait(), 10)  # type: ignore[attr-defined]
        except TimeoutError:
            pass


async def dependency_health(app: Quart) -> dict[str, Any]:
    """Reachability of the database and Redis, each with a short timeout."""
    try:
        db_ok, db_detail = await asyncio.wait_for(ping_db(), 3)
    except TimeoutError:
        db_ok, db_detail = False, "timeout"
    redis = app.config.get("REDIS")
    if redis is None:
        redis_ok, redis_detail = False, "not connected"
    else:
        try:
            redis_ok, redis_detail = await asyncio.wait_for(core_redis.ping(redis), 3)
        except TimeoutError:
            redis_ok, redis_detail = False, "timeout"
    return {
        "db": {"ok": db_ok, "detail": db_detail},
        "redis": {"ok": redis_ok, "detail": redis_detail},
    }


def run(app: Quart, bind: str, port: int, access_log: str | None = None) -> None:
    """Serve with hypercorn until SIGTERM/SIGINT."""
    config = HypercornConfig()
    config.bind = [f"[{bind}]:{port}" if ":" in bind else f"{bind}:{port}"]
    config.accesslog = access_log
    config.graceful_timeout = 5
    shutdown = asyncio.Event()

    async def _main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, shutdown.set)
        await serve(app, config, shutdown_trigger=shutdown.wait)

    asyncio.run(_main())
