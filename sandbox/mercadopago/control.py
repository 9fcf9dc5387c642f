"""Control API under /_sandbox/mp/ (tests and demos; no auth)."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

from aiohttp import web

from .errors import bad_request
from .faults import Faults
from .keys import MP_DISPATCHER, MP_OAUTH, MP_STATE
from .orders import payment_of
from .routes import read_json
from .serialize import payment_json
from .state import TRANSITIONS, MPState, Payment
from .util import cents_to_number, format_mp_date

PREFIX = "/_sandbox/mp"


def _state(request: web.Request) -> MPState:
    return request.app[MP_STATE]


def _payment(request: web.Request) -> Payment:
    """By payment id, or by order id (the order's PIX payment: orders.py)."""
    return payment_of(_state(request), request.match_info["id"])


def summary(payment: Payment, state: MPState) -> dict[str, Any]:
    """A compact view of a payment for listings."""
    offset = state.config.utc_offset_hours
    return {
        "id": payment.id,
        "status": payment.status,
        "status_detail": payment.status_detail,
        "transaction_amount": cents_to_number(payment.amount_cents),
        "transaction_amount_refunded": cents_to_number(payment.refunded_cents),
        "external_reference": payment.external_reference,
        "collector_id": payment.collector_id,
        "notification_url": payment.notification_url,
        "date_created": format_mp_date(payment.created, offset),
        "date_of_expiration": format_mp_date(payment.expires, offset),
        "qr_code": payment.qr_code,
    }


async def change_status(request: web.Request) -> web.Response:
    """POST /_sandbox/mp/payments/{id}/{action}: approve, reject, expire, cancel, ...

    `?notify=false` changes the payment without any webhook: the notification that never
    arrives. Mercado Pago delivers notifications at least once but late or not at all is real
    (a failed delivery is retried every 15 min, test credentials send none: developers/en/docs/
    your-integrations/notifications/webhooks), so integrations must also ask GET /v1/payments.
    The global `drop` fault does the same for every notification."""
    state = _state(request)
    payment = _payment(request)
    silent = request.query.get("notify", "true").lower() in ("false", "0", "no")
    state.transition(payment, request.match_info["action"], notify=not silent)
    if request.query.get("redirect") == "ticket":
        raise web.HTTPSeeOther(f"{PREFIX}/payments/{payment.id}/ticket")
    return web.json_response(payment_json(payment, state.config))


async def list_payments(request: web.Request) -> web.Response:
    """GET /_sandbox/mp/payments: every payment with its status."""
    state = _state(request)
    state.expire_due()
    return web.json_response([summary(p, state) for p in state.payments.values()])


async def show_payment(request: web.Request) -> web.Response:
    """GET /_sandbox/mp/payments/{id}: the full payment object, no auth."""
    return web.json_response(payment_json(_payment(request), _state(request).config))


async def ticket(request: web.Request) -> web.Response:
    """GET /_sandbox/mp/payments/{id}/ticket: the ticket_url page, with a Pay button."""
    payment = _payment(request)
    amount = f"R$ {cents_to_number(payment.amount_cents):.2f}"
    button = ""
    if payment.status == "pending":
        button = (
            f'<form method="post" action="{PREFIX}/payments/{payment.id}/approve'
            '?redirect=ticket"><button type="submit">Pay (sandbox)</button></form>'
        )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>PIX sandbox</title></head>"
        f"<body><h1>PIX {html.escape(amount)}</h1>"
        f"<p>Payment {payment.id}: <b>{html.escape(payment.status)}</b> "
        f"({html.escape(payment.status_detail)})</p>"
        f"<img alt='QR' src='data:image/png;base64,{payment.qr_code_base64}'>"
        f"<p><textarea rows='4' cols='60' readonly>{html.escape(payment.qr_code)}</textarea>"
        f"</p>{button}</body></html>"
    )
    return web.Response(text=page, content_type="text/html")


async def get_faults(request: web.Request) -> web.Response:
    """GET /_sandbox/mp/faults."""
    return web.json_response(_state(request).faults.to_json())


async def set_faults(request: web.Request) -> web.Response:
    """POST /_sandbox/mp/faults: merge a partial fault config."""
    body = await read_json(request, allow_empty=True)
    if not isinstance(body, dict):
        raise bad_request("a JSON object is required", "invalid_faults")
    faults = _state(request).faults
    try:
        faults.update(body)
    except ValueError as exc:
        raise bad_request(str(exc), "invalid_faults") from None
    if faults.out_of_order <= 1:
        request.app[MP_DISPATCHER].flush()
    return web.json_response(faults.to_json())


async def clear_faults(request: web.Request) -> web.Response:
    """DELETE /_sandbox/mp/faults: back to no faults (held webhooks are released)."""
    state = _state(request)
    state.faults = Faults()
    request.app[MP_DISPATCHER].flush()
    return web.json_response(state.faults.to_json())


async def webhooks(request: web.Request) -> web.Response:
    """GET /_sandbox/mp/webhooks: every delivery attempt, oldest first."""
    return web.json_response(_state(request).webhook_log)


async def flush_webhooks(request: web.Request) -> web.Response:
    """POST /_sandbox/mp/webhooks/flush: deliver held (out_of_order) notifications now."""
    return web.json_response({"released": request.app[MP_DISPATCHER].flush()})


async def requests_count(request: web.Request) -> web.Response:
    """GET /_sandbox/mp/requests: API calls per "METHOD /route"."""
    return web.json_response(dict(_state(request).request_counts))


async def reset(request: web.Request) -> web.Response:
    """POST /_sandbox/mp/reset: cancel deliveries, forget everything."""
    await request.app[MP_DISPATCHER].cancel_all()
    _state(request).reset()
    request.app[MP_OAUTH].reset()
    return web.json_response({"ok": True})


async def advance_clock(request: web.Request) -> web.Response:
    """POST /_sandbox/mp/clock {"advance_seconds": n}: move sandbox time forward."""
    body = await read_json(request)
    seconds = body.get("advance_seconds") if isinstance(body, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise bad_request("advance_seconds must be a non-negative number", "invalid_clock")
    state = _state(request)
    state.clock_offset += timedelta(seconds=seconds)
    expired = state.expire_due()
    return web.json_response(
        {
            "now": format_mp_date(state.now(), state.config.utc_offset_hours),
            "expired": [p.id for p in expired],
        }
    )


async def health(request: web.Request) -> web.Response:
    """GET /_sandbox/mp/health."""
    return web.json_response({"ok": True, "payments": len(_state(request).payments)})


def setup_control(app: web.Application) -> None:
    """Register the control routes."""
    actions = "|".join(TRANSITIONS)
    r = app.router
    r.add_get(f"{PREFIX}/health", health)
    r.add_get(f"{PREFIX}/payments", list_payments)
    ident = r"{id:\d{1,20}|ORD[A-Z0-9]{1,61}}"  # a payment, or an order (its PIX payment)
    r.add_get(PREFIX + "/payments/" + ident, show_payment)
    r.add_get(PREFIX + "/payments/" + ident + "/ticket", ticket)
    r.add_post(PREFIX + "/payments/" + ident + "/{action:(?:" + actions + ")}", change_status)
    r.add_get(f"{PREFIX}/faults", get_faults)
    r.add_post(f"{PREFIX}/faults", set_faults)
    r.add_delete(f"{PREFIX}/faults", clear_faults)
    r.add_get(f"{PREFIX}/webhooks", webhooks)
    r.add_post(f"{PREFIX}/webhooks/flush", flush_webhooks)
    r.add_get(f"{PREFIX}/requests", requests_count)
    r.add_post(f"{PREFIX}/reset", reset)
    r.add_post(f"{PREFIX}/clock", advance_clock)
