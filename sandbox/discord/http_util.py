"""HTTP helpers shared by the REST routes: JSON replies, auth, body parsing, faults."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import MultipartReader, web
from aiohttp.streams import StreamReader

from sandbox.discord.models import Attachment, BotApp, FaultRule, OAuthToken
from sandbox.discord.state import DiscordState, SandboxError

log = logging.getLogger("sandbox.discord")

STATE_KEY: web.AppKey[DiscordState] = web.AppKey("discord_state", DiscordState)
BOT_AUTH: web.RequestKey[BotApp | None] = web.RequestKey("bot_auth")
BEARER: web.RequestKey[OAuthToken | None] = web.RequestKey("bearer")
HOLD: web.RequestKey[FaultRule] = web.RequestKey("hold", FaultRule)
API_PREFIXES = ("/api/v10", "/api/v9", "/api")
_API_RE = re.compile(r"^/api(?:/v\d+)?(?=/)")
_INTERACTION_RE = re.compile(r"^/interactions/(\d+)/")
_WEBHOOK_RE = re.compile(r"^/webhooks/(\d+)/")
MAX_REQUEST_LOG = 5000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON reply with `Content-Type: application/json` exactly (no charset)."""
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    return web.Response(body=json.dumps(data).encode(), status=status, headers=hdrs)


def error_response(
    status: int, code: int, message: str, errors: dict[str, Any] | None = None
) -> web.Response:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return json_response(body, status)


def no_content() -> web.Response:
    return web.Response(status=204)


def state_of(request: web.Request) -> DiscordState:
    return request.app[STATE_KEY]


def api_path(path: str) -> str | None:
    """Path after the /api[/vN] prefix, or None for non-API paths."""
    m = _API_RE.match(path)
    return path[m.end() :] if m else None


def unauthorized() -> SandboxError:
    return SandboxError(401, 0, "401: Unauthorized")


def require_bot(request: web.Request) -> BotApp:
    app = request.get(BOT_AUTH)
    if app is None:
        raise unauthorized()
    return app


def require_bearer(request: web.Request) -> OAuthToken:
    tok = request.get(BEARER)
    if tok is None:
        raise unauthorized()
    return tok


def _replay(request: web.Request, raw: bytes) -> StreamReader:
    """The body read in full by `api_middleware`, as a stream again (for multipart)."""
    # a limit above the body: fed at once, it must not ask the connection to pause reading
    # (a 10 MiB attachment, Discord's limit, is well above the default 64 KiB)
    limit = max(2**16, len(raw) + 1)
    stream = StreamReader(request.protocol, limit, loop=asyncio.get_running_loop())
    stream.feed_data(raw)
    stream.feed_eof()
    return stream


async def read_body(request: web.Request) -> tuple[dict[str, Any], dict[int, Attachment]]:
    """Parse a JSON or multipart (payload_json + files[n]) body."""
    state = state_of(request)
    payload: dict[str, Any] = {}
    files: dict[int, Attachment] = {}
    if request.content_type.startswith("multipart/"):
        reader = MultipartReader(request.headers, _replay(request, await request.read()))
        async for part in reader:
            name = getattr(part, "name", None) or ""
            if name == "payload_json":
                payload = json.loads(await part.text())  # type: ignore[union-attr]
            elif m := re.fullmatch(r"files\[(\d+)\]|file(\d*)", name):
                idx = int(m.group(1) or m.group(2) or 0)
                data = bytes(await part.read())  # type: ignore[union-attr]
                ctype = part.headers.get("Content-Type", "application/octet-stream")
                files[idx] = Attachment(
                    state.snowflake(), part.filename or f"file{idx}", data, ctype
                )
    elif request.body_exists:  # read in full already (api_middleware)
        raw = await request.read()
        if raw:
            try:
                payload = json.loads(raw)
            except ValueError:
                raise SandboxError(400, 50109, "The request body contains invalid JSON.") from None
    for meta in payload.get("attachments") or []:
        try:
            att = files.get(int(meta.get("id")))
        except (TypeError, ValueError):
            continue
        if att is not None:
            att.filename = meta.get("filename") or att.filename
            att.description = meta.get("description")
    return payload, files


def _resolve_bot(state: DiscordState, request: web.Request, rel: str) -> BotApp | None:
    """Attach auth info to the request; return the bot it is attributed to."""
    auth = request.headers.get("Authorization", "")
    request[BEARER] = None
    request[BOT_AUTH] = None
    if auth.startswith("Bot "):
        app = state.bot_by_token(auth[4:])
        if app is None:
            raise unauthorized()
        request[BOT_AUTH] = app
        return app
    if auth.startswith("Bearer "):
        tok = state.bearer(auth[7:])
        if tok is None:
            raise unauthorized()
        request[BEARER] = tok
        return None
    if m := _INTERACTION_RE.match(rel):
        inter = state.interactions.get(m.group(1))
        return state.bots.get(inter.application_id) if inter else None
    if m := _WEBHOOK_RE.match(rel):
        return state.bots.get(m.group(1))
    return None


def _take_rule(app: BotApp, method: str, rel: str) -> FaultRule | None:
    for rule in list(app.faults.rules):
        if rule.method not in ("*", method) or not fnmatch.fnmatchcase(rel, rule.path):
            continue
        rule.count -= 1
        if rule.count <= 0:
            app.faults.rules.remove(rule)
        return rule
    return None


def _rate_limited(rule: FaultRule) -> web.Response:
    body = {
        "message": "You are being rate limited.",
        "retry_after": rule.retry_after,
        "global": rule.is_global,
    }
    headers = {
        "Retry-After": str(math.ceil(rule.retry_after)),
        "Via": "1.1 google",
        "X-RateLimit-Scope": "global" if rule.is_global else "user",
    }
    if rule.is_global:
        headers["X-RateLimit-Global"] = "true"
    return json_response(body, 429, headers)


async def _apply_faults(app: BotApp, request: web.Request, rel: str) -> web.Response | None:
    if app.faults.invalid_token and request.get(BOT_AUTH) is app:
        raise unauthorized()
    if app.faults.delay_ms:
        await asyncio.sleep(app.faults.delay_ms / 1000)
    rule = _take_rule(app, request.method, rel)
    if rule is None:
        return None
    if rule.kind == "delay":
        await asyncio.sleep(rule.delay_ms / 1000)
        return None
    if rule.kind == "ratelimit":
        return _rate_limited(rule)
    if rule.kind == "hold":  # applied by the handler; its answer is held (`_hold`)
        request[HOLD] = rule
        return None
    return error_response(rule.status, 0, f"{rule.status}: Sandbox injected error")


async def _hold(request: web.Request, rule: FaultRule) -> None:
    """The request took effect; keep its answer until the client hangs up (or the rule's
    `delay_ms`, 60 s when 0), as when a client dies right after Discord received the call."""
    deadline = time.monotonic() + (rule.delay_ms / 1000 if rule.delay_ms else 60.0)
    while time.monotonic() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.02)


def _record(app: BotApp | None, request: web.Request, rel: str, status: int) -> None:
    if app is None:
        return
    log_ = app.stats.requests
    # `peer`: the client's address, so a test running bots on several hosts (network
    # namespaces, ops/netns_harness.py) can tell which host made a call
    peer = request.remote
    row = {"method": request.method, "path": rel, "status": status, "t": time.time(), "peer": peer}
    log_.append(row)
    if len(log_) > MAX_REQUEST_LOG:
        del log_[: len(log_) - MAX_REQUEST_LOG]


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Auth, fault injection, request log and Discord-shaped errors for /api routes."""
    rel = api_path(request.path)
    if rel is None:
        return await _control_errors(request, handler)
    state = state_of(request)
    app: BotApp | None = None
    try:
        app = _resolve_bot(state, request, rel)
        if request.body_exists:
            # the whole request first: once Discord has it, a client hanging up (which makes
            # aiohttp fail later reads of the body) cannot undo it
            await request.read()
        resp = await _apply_faults(app, request, rel) if app else None
        if resp is None:
            resp = await handler(request)
        if HOLD in request:
            await _hold(request, request[HOLD])
    except SandboxError as exc:
        resp = error_response(exc.status, exc.code, exc.message, exc.errors)
    except web.HTTPException as exc:
        if exc.status in (404, 405):
            log.warning("sandbox: unhandled Discord route %s %s", request.method, request.path)
            state.unknown_routes.append(f"{request.method} {request.path}")
            resp = error_response(404, 0, "404: Not Found")
        else:
            raise
    _record(app, request, rel, resp.status)
    return resp


async def _control_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except SandboxError as exc:
        return error_response(exc.status, exc.code, exc.message)
    except (KeyError, ValueError, TypeError) as exc:
        if not request.path.startswith("/_sandbox"):
            raise
        return json_response({"message": f"bad request: {exc!r}", "code": 0}, 400)
