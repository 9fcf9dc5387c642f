"""`python -m reconciler [--interval 30] [--once]`: reconcile payments with Mercado Pago (run
by supervisord). The passes, the delivery relay and the PIX poller are
`shop.payments.payment_reconciler`, the alert notifications `shop.notify.service`, the
automatic payouts `shop.payouts`; this module only starts and stops them."""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import timedelta

from core import redis as core_redis
from core.bootstrap import start_service
from core.db import close_db, init_db
from core.settings import Settings
from shop import payouts
from shop.notify.service import run_notifications
from shop.payments.gateways import gateway_from_settings
from shop.payments.mercadopago_payouts import MercadoPagoPayouts
from shop.payments.payment_reconciler import (
    Policy,
    prune_events,
    reconcile_once,
    run_forever,
    with_poller,
)
from shop.payments.service import PaymentServices

PAYOUT_INTERVAL_S = 5.0  # due payouts are sent (or looked up) within this


async def _run(settings: Settings, interval: float, once: bool) -> None:
    await init_db(settings.database_url)
    redis = core_redis.connect(settings.redis_url)
    gateway = gateway_from_settings(settings)
    svc = PaymentServices.from_settings(settings, gateway, redis)
    # Automatic payouts (shop.payouts) always run: a payout sent before PAYOUT_MODE went back
    # to manual must still be looked up to the end.
    payout_gateway = MercadoPagoPayouts.from_settings(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    policy = Policy(webhook_retention=timedelta(days=settings.webhook_retention_days))
    try:
        if once:
            print(await reconcile_once(svc, policy))
            print(f"pruned {await prune_events(policy)} old webhook events")
            print(await payouts.run_once(payout_gateway))
        else:
            relay_s = settings.delivery_relay_interval_ms / 1000
            # Alerts to operators and notices to sellers (shop.notify): its own task, so a
            # dead SMTP server or webhook never holds up a pass.
            notify = asyncio.create_task(run_notifications(settings, redis, stop))
            paying = asyncio.create_task(
                payouts.run_forever(payout_gateway, min(interval, PAYOUT_INTERVAL_S), stop)
            )
            try:
                await with_poller(
                    run_forever(svc, interval, stop, policy, relay_interval=relay_s),
                    svc,
                    settings.mp_poll_budget_per_min,
                    stop,
                )
            finally:
                stop.set()
                await notify
                await paying
    finally:
        await payout_gateway.aclose()
        await gateway.aclose()
        await redis.aclose()
        await close_db()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m reconciler", description="Reconcile payments with Mercado Pago."
    )
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between passes")
    parser.add_argument("--once", action="store_true", help="run one pass and exit")
    args = parser.parse_args(argv)
    settings = start_service("reconcile")  # logs/reconcile.log, as the runbooks say
    asyncio.run(_run(settings, args.interval, args.once))


if __name__ == "__main__":
    main()
