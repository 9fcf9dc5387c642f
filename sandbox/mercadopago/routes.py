"""Public API: /v1/payments (PIX), search, refunds, cancel."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .errors import bad_request, unauthorized
from .keys import MP_OAUTH, MP_STATE
from .serialize import payment_json, refund_json
from .state import MPState, Payment, Refund
from .util import parse_cents
from .validation import validate_create

MAX_SEARCH_LIMIT = 1000


def _state(request: web.Request) -> MPState:
    return request.app[MP_STATE]


def authenticate(request: web.Request) -> int:
    """Check ``Authorization: Bearer <token>``; returns the collector (user) id."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("unauthorized")
    state = _state(request)
    allowed = state.config.access_tokens
    if allowed is not None and token not in allowed:
        raise unauthorized("invalid access token")
    problem = request.app[MP_OAUTH].problem(token, state.now())  # a seller's OAuth token
    if problem:
        raise unauthorized(problem)
    return state.collector_for(token)


async def read_json(request: web.Request, *, allow_empty: bool = False) -> Any:
    """Parse the JSON body; 400 in MP shape if it is not valid JSON."""
    text = await request.text()
    if not text.strip():
        if allow_empty:
            return {}
        raise bad_request("Invalid request body: a JSON object is required", 4)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise bad_request(f"Invalid JSON body: {exc}", 4) from exc


def _idempotency_key(request: web.Request, required: bool) -> str | None:
    key = request.headers.get("X-Idempotency-Key")
    if key is None or key == "":
        if required:
            raise bad_request("Header X-Idempotency-Key can't be null", 4292)
        return None
    if len(key) > 64:
        raise bad_request("Header X-Idempotency-Key must have at most 64 characters", 4292)
    return key


def ticket_base(request: web.Request) -> str:
    """Base URL for ticket_url links."""
    configured = _state(request).config.public_url
    return configured.rstrip("/") if configured else f"{request.scheme}://{request.host}"


def _payment_id(request: web.Request) -> int:
    return int(request.match_info["id"])


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def create_payment(request: web.Request) -> web.Response:
    """POST /v1/payments."""
    state = _state(request)
    collector = authenticate(request)
    body = await read_json(request)
    key = _idempotency_key(request, state.config.require_idempotency_key)
    scope = f"payments:{collector}"
    existing = state.idempotent(scope, key, body)
    if existing is not None:
        return _json(payment_json(state.get(existing), state.config), 201)
    fields = validate_create(body, state.now(), collector)
    payment = state.create_payment(fields, ticket_base(request))
    state.remember(scope, key, body, payment.id)
    return _json(payment_json(payment, state.config), 201)


async def get_payment(request: web.Request) -> web.Response:
    """GET /v1/payments/{id}."""
    state = _state(request)
    payment = state.get(_payment_id(request), authenticate(request))
    return _json(payment_json(payment, state.config))


async def update_payment(request: web.Request) -> web.Response:
    """PUT /v1/payments/{id}: only ``{"status": "cancelled"}`` of a pending PIX."""
    state = _state(request)
    payment = state.get(_payment_id(request), authenticate(request))
    body = await read_json(request)
    if not isinstance(body, dict) or body.get("status") != "cancelled":
        raise bad_request('Only {"status": "cancelled"} is supported for PIX', 4000)
    if payment.status != "pending":
        raise bad_request(f"Payment in status {payment.status} cannot be cancelled", 2063)
    state.transition(payment, "cancel")
    return _json(payment_json(payment, state.config))


def _int_param(query: Any, name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"Invalid value for {name}", 1000) from None
    if value < 0:
        raise bad_request(f"Invalid value for {name}", 1000)
    return value


async def search_payments(request: web.Request) -> web.Response:
    """GET /v1/payments/search."""
    state = _state(request)
    collector = authenticate(request)
    limit = _int_param(request.query, "limit", 30)
    offset = _int_param(request.query, "offset", 0)
    if limit > MAX_SEARCH_LIMIT or offset + limit > 10_000:
        raise bad_request("Number of rows exceeded the limits", 1000)
    query = {
        k: v
        for k, v in request.query.items()
        if k in ("external_reference", "status", "sort", "criteria")
    }
    found = state.search(collector, query)
    page = found[offset : offset + limit]
    return _json(
        {
            "paging": {"total": len(found), "limit": limit, "offset": offset},
            "results": [payment_json(p, state.config) for p in page],
        }
    )


def _find_refund(payment: Payment, refund_id: int | None) -> Refund | None:
    return next((r for r in payment.refunds if r.id == refund_id), None)


async def create_refund(request: web.Request) -> web.Response:
    """POST /v1/payments/{id}/refunds: ``{}`` = full, ``{"amount": x}`` = partial."""
    state = _state(request)
    payment = state.get(_payment_id(request), authenticate(request))
    body = await read_json(request, allow_empty=True)
    if not isinstance(body, dict):
        raise bad_request("Invalid request body: a JSON object is required", 4)
    key = _idempotency_key(request, False)
    scope = f"refunds:{payment.id}"
    existing = state.idempotent(scope, key, body)
    found = _find_refund(payment, existing)
    if found is not None:
        return _json(refund_json(found, state.config), 201)
    amount: int | None = None
    if body.get("amount") is not None:
        amount = parse_cents(body["amount"])
        if amount is None or amount <= 0:
            raise bad_request("Invalid refund amount", 2085)
    state.refund(payment, amount)
    refund = payment.refunds[-1]
    state.remember(scope, key, body, refund.id)
    return _json(refund_json(refund, state.config), 201)


async def list_refunds(request: web.Request) -> web.Response:
    """GET /v1/payments/{id}/refunds."""
    state = _state(request)
    payment = state.get(_payment_id(request), authenticate(request))
    return _json([refund_json(r, state.config) for r in payment.refunds])


def setup_routes(app: web.Application) -> None:
    """Register the /v1 routes."""
    app.router.add_post("/v1/payments", create_payment)
    app.router.add_get("/v1/payments/search", search_payments)
    app.router.add_get(r"/v1/payments/{id:\d+}", get_payment)
    app.router.add_put(r"/v1/payments/{id:\d+}", update_payment)
    app.router.add_post(r"/v1/payments/{id:\d+}/refunds", create_refund)
    app.router.add_get(r"/v1/payments/{id:\d+}/refunds", list_refunds)
