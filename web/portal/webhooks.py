"""`POST /webhooks/mercadopago`: Mercado Pago notifications (and legacy IPN).

Answers as soon as the delivery is verified and durably recorded (inserts of concurrent
deliveries are group-committed); the payment is then fetched and reconciled by a few
background workers that outlive each response. Anything left unprocessed (crash, full queue)
stays `accepted` in `webhook_events`, and the reconciler (`python -m reconciler`)
finishes it.

Only what Mercado Pago signed is stored and fetched (see `shop.payments.webhook_guard`). Unsigned or
badly signed requests count against a per-client limit (the portal's Redis rate limiter, keyed
on the client address); validly signed deliveries never do, so Mercado Pago is not refused.
"""

from __future__ import annotations

from quart import Blueprint, Quart, current_app, jsonify, request

from core.settings import Settings
from shop.payments.mercadopago import WEBHOOK_PATH
from shop.payments.webhook_guard import WebhookGuard
from shop.payments.webhook_intake import receive_mercadopago
from shop.payments.webhook_workers import EventWriter, WebhookProcessor
from web.common import payment_services
from web.portal.security import client_ip, rate_limited

bp = Blueprint("mercadopago_webhooks", __name__)


def _workers(app: Quart) -> tuple[EventWriter, WebhookProcessor]:
    """The app's writer and processor; the processor runs as a background task of the app."""
    if "WEBHOOK_PROCESSOR" not in app.config:
        proc = WebhookProcessor(payment_services(app))
        app.config["WEBHOOK_WRITER"] = EventWriter()
        app.config["WEBHOOK_PROCESSOR"] = proc
        app.add_background_task(proc.run, app.shutdown_event)
    return app.config["WEBHOOK_WRITER"], app.config["WEBHOOK_PROCESSOR"]


@bp.after_app_serving
async def _forget_workers() -> None:
    current_app.config.pop("WEBHOOK_PROCESSOR", None)
    current_app.config.pop("WEBHOOK_WRITER", None)


@bp.post(WEBHOOK_PATH)
async def mercadopago_webhook():
    settings: Settings = current_app.config["VITRINE_SETTINGS"]
    writer, processor = _workers(current_app._get_current_object())
    raw = await request.get_data()
    guard = WebhookGuard(
        current_app.config.get("REDIS"),
        settings.webhook_forgery_alert_per_minute,
        lambda: rate_limited("webhook", client_ip(), settings.webhook_rate_limit_per_minute, 60),
    )
    receipt = await receive_mercadopago(
        settings.mercadopago_webhook_secret,
        request.args,
        request.headers,
        raw,
        recorder=writer,
        guard=guard,
    )
    if receipt.to_process:
        assert receipt.dedupe_key and receipt.provider_payment_id
        processor.submit(receipt.dedupe_key, receipt.provider_payment_id)
    headers = {"Retry-After": "60"} if receipt.status == 429 else {}
    return jsonify({"status": receipt.outcome}), receipt.status, headers
