"""Orders API routes: POST/GET /v1/orders, GET /v1/orders/{id}, POST .../cancel and
.../refund (shapes and rules in orders.py, with the documentation they follow). The app's
middleware applies the API faults (5xx, 429 with Retry-After, `slow_ms`: an answer the client
gives up on after the order exists, i.e. a lost answer) to these routes like to /v1/payments.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from .errors import MPError
from .keys import MP_STATE
from .orders import (
    Order,
    new_id,
    order_error,
    order_json,
    order_of,
    parse_money,
    validate_order,
)
from .routes import authenticate, read_json, ticket_base
from .state import MPState

SEARCH_SPAN = timedelta(days=30)  # begin_date..end_date: 720 hours at most
MAX_KEY = 128  # "X-Idempotency-Key length exceeds 128 characters"


def _state(request: web.Request) -> MPState:
    return request.app[MP_STATE]


def _key(request: web.Request) -> str:
    """X-Idempotency-Key is required on the Orders API's POSTs."""
    key = request.headers.get("X-Idempotency-Key", "")
    if not key:
        raise order_error(400, "empty_required_header", "Missing HTTP header: X-Idempotency-Key")
    if len(key) > MAX_KEY:
        raise order_error(
            400, "invalid_idempotency_key_length", "X-Idempotency-Key length exceeds 128 characters"
        )
    return key


def _replay(state: MPState, scope: str, key: str, body: Any) -> Any:
    """What a repeated key stored, or None; 409 when the same key carries another body."""
    try:
        return state.idempotent(scope, key, body)
    except MPError:
        raise order_error(
            409, "idempotency_key_already_used", "the idempotency key was used with another body"
        ) from None


async def _body(request: web.Request) -> Any:
    try:
        return await read_json(request, allow_empty=True)
    except MPError:
        raise order_error(400, "json_syntax_error", "the body is not valid JSON") from None


async def create_order(request: web.Request) -> web.Response:
    """POST /v1/orders (201); the same key and body again return the same order."""
    state = _state(request)
    collector = authenticate(request)
    key = _key(request)
    body = await _body(request)
    scope = f"orders:{collector}"
    existing = _replay(state, scope, key, body)
    if existing is not None:
        return web.json_response(order_json(state.orders[existing], state), status=201)
    fields = validate_order(body, state.now(), collector)
    expiration_time = fields.pop("expiration_time")
    fee = fields.pop("marketplace_fee_cents")
    order = Order(
        id=new_id("ORD"),
        transaction_id=new_id("PAY"),
        payment_id=state._next_payment_id,  # noqa: SLF001 - the id create_payment takes next
        collector_id=collector,
        external_reference=fields["external_reference"],
        total_cents=fields["amount_cents"],
        created=state.now(),
        expiration_time=str(expiration_time),
        marketplace_fee_cents=fee,
    )
    # registered before the payment exists, so its first notification is already an order's
    state.orders[order.id] = order
    state.order_by_payment[order.payment_id] = order.id
    payment = state.create_payment(
        {**fields, "application_fee_cents": fee or 0}, ticket_base(request)
    )
    order.created = payment.created
    state.remember(scope, key, body, order.id)  # type: ignore[arg-type]
    return web.json_response(order_json(order, state), status=201)


async def get_order(request: web.Request) -> web.Response:
    """GET /v1/orders/{id}."""
    state = _state(request)
    order = order_of(state, request.match_info["id"], authenticate(request))
    return web.json_response(order_json(order, state))


def _rfc3339(query: Any, name: str) -> datetime:
    raw = query.get(name)
    if not raw:
        raise order_error(400, "missing_required_params", f"{name} is required")
    try:
        moment = datetime.fromisoformat(raw) if len(raw) <= 40 else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise order_error(400, "invalid_parameter", f"{name} must be an RFC 3339 date")
    return moment


async def search_orders(request: web.Request) -> web.Response:
    """GET /v1/orders?begin_date&end_date[&external_reference]: newest first."""
    state = _state(request)
    collector = authenticate(request)
    begin, end = _rfc3339(request.query, "begin_date"), _rfc3339(request.query, "end_date")
    if end < begin or end - begin > SEARCH_SPAN:
        raise order_error(400, "invalid_parameter", "begin_date..end_date: at most 30 days")
    ref = request.query.get("external_reference")
    state.expire_due()
    found = sorted(
        (
            o
            for o in state.orders.values()
            if o.collector_id == collector
            and begin <= o.created <= end
            and (ref is None or o.external_reference == ref)
        ),
        key=lambda o: o.created,
        reverse=True,
    )
    data = [order_json(o, state) for o in found[:50]]
    paging = {"total": len(found), "offset": 0, "limit": 50}
    return web.json_response({"data": data, "paging": paging})


async def cancel_order(request: web.Request) -> web.Response:
    """POST /v1/orders/{id}/cancel: only an order still waiting for the PIX."""
    state = _state(request)
    order = order_of(state, request.match_info["id"], authenticate(request))
    payment = state.payments[order.payment_id]
    if payment.status != "pending":
        raise order_error(409, "order_cannot_be_canceled", f"order is {payment.status}")
    state.transition(payment, "cancel")
    return web.json_response(order_json(order, state))


def _refund_amount(body: Any, order: Order, remaining: int) -> int:
    """No body (or no transactions): the whole rest. Else the one transaction's amount."""
    if not isinstance(body, dict) or not body.get("transactions"):
        return remaining
    txs = body["transactions"]
    if not isinstance(txs, list) or len(txs) != 1 or not isinstance(txs[0], dict):
        raise order_error(400, "property_value", "transactions: one PIX transaction")
    if txs[0].get("id") != order.transaction_id:
        raise order_error(400, "property_value", "transactions[0].id is not this order's")
    amount = parse_money(txs[0].get("amount"), "transactions[0].amount")
    if not 0 < amount <= remaining:
        raise order_error(400, "property_value", "refund amount exceeds the available balance")
    return amount


async def refund_order(request: web.Request) -> web.Response:
    """POST /v1/orders/{id}/refund (201): total without a body, partial per transaction."""
    state = _state(request)
    order = order_of(state, request.match_info["id"], authenticate(request))
    key = _key(request)
    body = await _body(request)
    scope = f"order-refunds:{order.id}"
    if _replay(state, scope, key, body) is not None:
        return web.json_response(order_json(order, state), status=201)
    payment = state.payments[order.payment_id]
    if payment.status != "approved":
        raise order_error(409, "order_cannot_be_refunded", f"order is {payment.status}")
    amount = _refund_amount(body, order, payment.amount_cents - payment.refunded_cents)
    state.refund(payment, amount)
    state.remember(scope, key, body, payment.refunds[-1].id)
    return web.json_response(order_json(order, state), status=201)


def setup_order_routes(app: web.Application) -> None:
    """Register the /v1/orders routes."""
    order = r"/v1/orders/{id:[A-Z0-9]{1,64}}"
    app.router.add_post("/v1/orders", create_order)
    app.router.add_get("/v1/orders", search_orders)
    app.router.add_get(order, get_order)
    app.router.add_post(order + "/cancel", cancel_order)
    app.router.add_post(order + "/refund", refund_order)
