"""What keeps the Mercado Pago webhook endpoint from being flooded (issue 13).

Anything not signed by Mercado Pago is untrusted and cheap to send, so it must stay cheap to
answer: no row in `webhook_events`, no request to Mercado Pago. Such deliveries are only
counted (a Redis hash the admin's `/metrics` exposes as a Prometheus counter, shared by every
portal process) and, above a rate of bad signatures, alerted on once per window. Legacy IPNs
are unsigned by design (Mercado Pago: "they do not allow validation through the secret key",
https://www.mercadopago.com.br/developers/en/docs/your-integrations/notifications/ipn), so an
IPN is only acted on for a payment we created, and at most once per `IPN_DEDUPE_S` per payment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from fleet import keys
from fleet.alerting import raise_alert
from fleet.models import AlertKind
from shop.models import Payment

log = logging.getLogger(__name__)

# A real IPN is followed by our fetch of the payment, which sees every change up to then; a
# second IPN for the same payment within this window adds nothing the reconciler (which asks
# about pending payments every minute) would not catch, so it is acknowledged and dropped.
IPN_DEDUPE_S = 60
FORGERY_ALERT_WINDOW_S = 3600  # at most one webhook_forgery alert per hour

# Reasons counted in keys.WEBHOOK_REJECTED (the `reason` label of the Prometheus counter).
RATE_LIMITED = "rate_limited"
IPN_UNKNOWN = "ipn_unknown_payment"
IPN_REPEATED = "ipn_repeated"
IPN_IGNORED = "ipn_ignored"

Throttle = Callable[[], Awaitable[bool]]


async def _never() -> bool:
    return False


@dataclass
class WebhookGuard:
    """Per-request helpers for `shop.payments.webhook_intake.receive_mercadopago`.

    `throttle` counts one unsigned (or badly signed) request of the caller and says whether it
    is over its limit; validly signed deliveries never call it, so Mercado Pago is not refused.
    """

    redis: Redis | None = None
    forgery_alert_per_minute: int = 120
    throttle: Throttle = field(default=_never)

    async def count(self, reason: str) -> None:
        """One delivery answered without being stored."""
        if self.redis is None:
            return
        try:
            await self.redis.hincrby(keys.WEBHOOK_REJECTED, reason, 1)
        except Exception:  # noqa: BLE001 - a metric must never fail the request
            _redis_trouble("counter")

    async def bad_signature(self, reason: str, now: float | None = None) -> None:
        """Count a delivery whose signature is missing, malformed, stale or wrong; raise one
        alert per window when more than the threshold arrive within a minute."""
        if self.redis is None:
            return
        minute = int((time.time() if now is None else now) // 60)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hincrby(keys.WEBHOOK_REJECTED, reason, 1)
            pipe.incr(keys.webhook_forgery(minute))
            pipe.expire(keys.webhook_forgery(minute), 120)
            _, in_minute, _ = await pipe.execute()
            if int(in_minute) <= self.forgery_alert_per_minute:
                return
            if not await self.redis.set(
                keys.WEBHOOK_FORGERY_ALERTED, minute, nx=True, ex=FORGERY_ALERT_WINDOW_S
            ):
                return
        except Exception:  # noqa: BLE001 - counting must never fail the request
            _redis_trouble("forgery counter")
            return
        await raise_forgery_alert(int(in_minute), self.forgery_alert_per_minute)

    async def throttled(self) -> bool:
        """True when this untrusted request is over the caller's limit (and is counted).
        Without Redis the limit is not applied (nothing here is stored or fetched anyway)."""
        try:
            limited = await self.throttle()
        except Exception:  # noqa: BLE001 - Redis down: answer, do not fail the request
            _redis_trouble("rate limit")
            return False
        if limited:
            await self.count(RATE_LIMITED)
        return limited

    async def claim_ipn(self, provider_payment_id: str) -> bool:
        """True for the first IPN about this payment in IPN_DEDUPE_S (Redis SET NX EX).
        Without Redis every IPN about one of our payments is fetched (the processor still
        shares one fetch among those arriving together)."""
        if self.redis is None:
            return True
        try:
            claimed = await self.redis.set(
                keys.webhook_ipn(provider_payment_id), 1, nx=True, ex=IPN_DEDUPE_S
            )
        except Exception:  # noqa: BLE001 - Redis down
            _redis_trouble("IPN de-duplication")
            return True
        return bool(claimed)

    async def release_ipn(self, provider_payment_id: str) -> None:
        """Forget a claim whose event could not be stored, so Mercado Pago's retry counts."""
        if self.redis is None:
            return
        try:
            await self.redis.delete(keys.webhook_ipn(provider_payment_id))
        except Exception:  # noqa: BLE001 - the claim then lapses after IPN_DEDUPE_S
            _redis_trouble("IPN de-duplication")


_last_trouble = 0.0


def _redis_trouble(what: str) -> None:
    """Log Redis trouble at most once a minute: under a flood every request would log it."""
    global _last_trouble
    if time.monotonic() - _last_trouble >= 60:
        _last_trouble = time.monotonic()
        log.warning("webhook %s skipped: Redis unavailable", what, exc_info=True)


async def is_our_payment(provider_payment_id: str) -> bool:
    """Whether we created the Mercado Pago payment with this id (one indexed lookup)."""
    return await Payment.filter(provider_payment_id=provider_payment_id).exists()


async def raise_forgery_alert(in_minute: int, threshold: int) -> None:
    message = (
        f"{in_minute} Mercado Pago webhooks with a bad or missing signature in one "
        f"minute (threshold {threshold}): someone is forging notifications, or "
        "MERCADOPAGO_WEBHOOK_SECRET does not match the Mercado Pago panel"
    )
    log.error(message, extra={"event": "webhook_forgery"})
    try:
        await raise_alert(  # one open alert; later floods count on it (fleet.alerting)
            AlertKind.WEBHOOK_FORGERY,
            message,
            details={
                "in_minute": in_minute,
                "threshold_per_minute": threshold,
                "counter": "vitrine_webhook_rejected_total",
            },
        )
    except Exception:  # noqa: BLE001 - the log line above is the fallback
        log.exception("could not store the webhook_forgery alert")


async def rejected_counts(redis: Redis) -> dict[str, int]:
    """Deliveries answered without being stored, by reason, since Redis was last flushed."""
    raw = await redis.hgetall(keys.WEBHOOK_REJECTED)
    return {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in raw.items()}
