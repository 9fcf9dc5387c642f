"""Incoming webhooks (a server's "Integrations → Webhooks"), as the operators' alerts use them.

Discord's Execute Webhook (https://discord.com/developers/docs/resources/webhook#execute-webhook):
`POST /webhooks/{webhook.id}/{webhook.token}` with `content` and/or `embeds` (at least one),
no Authorization header; `?wait=true` answers 200 with the created message, otherwise 204.
Over the rate limit Discord answers 429 with the JSON body `{"message", "retry_after",
"global"}`, `retry_after` in seconds, and the same figure in the `Retry-After` header
(https://discord.com/developers/docs/topics/rate-limits#exceeding-a-rate-limit). An unknown
webhook is 404 code 10015 "Unknown Webhook"; a wrong token 401 code 50027.

The interaction follow-ups share the URL shape (`/webhooks/{application.id}/{token}`): the
follow-up handler hands a request to `execute` when the id names a webhook made here.

Control (tests): `POST /_sandbox/webhooks` makes one (answers `id`, `token`, `url` under the
API prefix); `GET /_sandbox/webhooks/{id}/messages` lists what it received;
`POST /_sandbox/webhooks/{id}/rate_limit` `{"count": n, "retry_after": s}` answers the next
`n` executions with 429.
"""

from __future__ import annotations

import secrets
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox.discord.control_common import _json
from sandbox.discord.http_util import json_response, no_content, read_body, state_of
from sandbox.discord.state import DiscordState, SandboxError

CONTENT_MAX = 2000  # Discord's limit on `content`
EMBEDS_MAX = 10


@dataclass
class IncomingWebhook:
    id: str
    token: str
    name: str
    channel_id: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    limited: int = 0  # the next executions answered 429
    retry_after: float = 1.0


# Per stand-in state (keyed by id: the state is an unhashable dataclass); dropped with it.
_HOOKS: dict[int, dict[str, IncomingWebhook]] = {}


def hooks(state: DiscordState) -> dict[str, IncomingWebhook]:
    key = id(state)
    if key not in _HOOKS:
        _HOOKS[key] = {}
        weakref.finalize(state, _HOOKS.pop, key, None)
    return _HOOKS[key]


def find(request: web.Request) -> IncomingWebhook | None:
    """The webhook a `/webhooks/{id}/{token}` request names, if it is one made here."""
    return hooks(state_of(request)).get(request.match_info.get("app_id", ""))


async def execute(request: web.Request, hook: IncomingWebhook) -> web.Response:
    state = state_of(request)
    if not secrets.compare_digest(request.match_info.get("token", ""), hook.token):
        raise SandboxError(401, 50027, "Invalid Webhook Token")
    if hook.limited > 0:
        hook.limited -= 1
        body = {
            "message": "You are being rate limited.",
            "retry_after": hook.retry_after,
            "global": False,
        }
        return json_response(body, 429, {"Retry-After": f"{hook.retry_after:g}"})
    body, _files = await read_body(request)
    content = body.get("content") or ""
    embeds = body.get("embeds") or []
    if not content and not embeds:
        raise SandboxError(400, 50006, "Cannot send an empty message")
    if len(content) > CONTENT_MAX or len(embeds) > EMBEDS_MAX:
        raise SandboxError(400, 50035, "Invalid Form Body")
    message = {
        "id": state.snowflake(),
        "type": 0,
        "channel_id": hook.channel_id,
        "webhook_id": hook.id,
        "author": {"id": hook.id, "username": body.get("username") or hook.name, "bot": True},
        "content": content,
        "embeds": embeds,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
    }
    hook.messages.append(message)
    if request.query.get("wait") in ("true", "True", "1"):
        return json_response(message)
    return no_content()


async def create(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await _json(request)
    hook = IncomingWebhook(
        id=state.snowflake(),
        token=secrets.token_urlsafe(48),
        name=str(body.get("name") or "Vitrine alerts"),
        channel_id=state.snowflake(),
    )
    hooks(state)[hook.id] = hook
    base = f"{request.scheme}://{request.host}/api/v10"
    return json_response(
        {"id": hook.id, "token": hook.token, "url": f"{base}/webhooks/{hook.id}/{hook.token}"}
    )


def _hook(request: web.Request) -> IncomingWebhook:
    hook = hooks(state_of(request)).get(request.match_info["webhook_id"])
    if hook is None:
        raise SandboxError(404, 10015, "Unknown Webhook")
    return hook


async def received(request: web.Request) -> web.Response:
    return json_response(_hook(request).messages)


async def rate_limit(request: web.Request) -> web.Response:
    hook = _hook(request)
    body = await _json(request)
    hook.limited = int(body.get("count", 1))
    hook.retry_after = float(body.get("retry_after", 1.0))
    return json_response({"limited": hook.limited, "retry_after": hook.retry_after})


CONTROL_ROUTES = [
    ("POST", "/_sandbox/webhooks", create),
    ("GET", "/_sandbox/webhooks/{webhook_id}/messages", received),
    ("POST", "/_sandbox/webhooks/{webhook_id}/rate_limit", rate_limit),
]
