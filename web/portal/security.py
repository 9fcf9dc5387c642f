"""CSRF synchronizer token, Origin check and Redis rate limits for the portal.

The CSRF token is a random value kept in the signed Quart session (one per browser session)
and echoed by every state-changing form (`csrf_token` field) or htmx request (`X-CSRF-Token`
header). Every POST/PUT/PATCH/DELETE must also come from our own origin when the browser says
where it comes from (`Origin`, else `Referer`). The Mercado Pago webhook is exempt from both.
"""

from __future__ import annotations

import hmac
import secrets
import time
from urllib.parse import urlsplit

from quart import abort, current_app, request, session

from fleet import keys

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Blueprints whose callers are machines, not browsers (signed by other means).
CSRF_EXEMPT_BLUEPRINTS = frozenset({"mercadopago_webhooks"})
_SESSION_KEY = "csrf"


def csrf_token() -> str:
    """This browser session's token (created on first use)."""
    token = session.get(_SESSION_KEY)
    if not token:
        token = session[_SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def rotate_csrf_token() -> None:
    """Forget this session's token (at login): the next page gets a fresh one."""
    session.pop(_SESSION_KEY, None)


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins() -> set[str]:
    settings = current_app.config["VITRINE_SETTINGS"]
    own = {_origin_of(settings.public_base_url), _origin_of(request.host_url)}
    return {o for o in own if o}


def check_origin() -> None:
    """403 unless Origin (or, without it, Referer) names this site; absent both, allow."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        referer = request.headers.get("Referer")
        if referer is None and origin is None:
            return  # old clients and some privacy setups send neither; the CSRF token decides
        origin = _origin_of(referer or "") or "null"
    if origin.lower() not in allowed_origins():
        abort(403, description="cross-origin request refused")


async def check_csrf() -> None:
    """403 unless the request carries this session's token (form field or header)."""
    expected = session.get(_SESSION_KEY)
    sent = request.headers.get("X-CSRF-Token")
    if sent is None:
        form = await request.form
        sent = form.get("csrf_token")
    if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
        abort(403, description="missing or invalid CSRF token; reload the page and try again")


async def protect_request() -> None:
    """before_request hook: Origin + CSRF on every unsafe method outside the exempt routes."""
    if request.method not in UNSAFE_METHODS or request.blueprint in CSRF_EXEMPT_BLUEPRINTS:
        return
    check_origin()
    await check_csrf()


def client_ip() -> str:
    return request.remote_addr or "unknown"


async def rate_limited(scope: str, who: str, limit: int, window_s: int) -> bool:
    """Count one hit of `who` in `scope`; True when it is over `limit` in the last `window_s`.

    A sliding window, estimated from two fixed ones: this window's hits plus the previous
    window's, weighted by how much of it still lies in the last `window_s`. A fixed window
    alone let 2 × `limit` through around its edge (and the tests that count hits failed when
    they ran across one)."""
    redis = current_app.config.get("REDIS")
    if redis is None:
        return False
    now = time.time()
    window = int(now // window_s)
    key = keys.rate_limit(scope, who, window)
    pipe = redis.pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, 2 * window_s)  # read again as the previous window
    pipe.get(keys.rate_limit(scope, who, window - 1))
    count, _, previous = await pipe.execute()
    still_in = 1.0 - (now / window_s - window)  # the share of the previous window still counted
    return int(count) + int(previous or 0) * still_in > limit
