"""`python -m reconciler [--interval 30] [--once]`: reconcile payments with Mercado Pago (run
by supervisord). The passes, the delivery relay and the PIX poller are
`shop.payments.payment_reconciler`, the alert notifications `shop.notify.service`; this
module only starts and stops them."""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import timedelta

from core import redis as core_redis
from core.bootstrap import start_service
from core.db import close_db, init_db
from core.settings import Settings
from shop.notify.service import run_notifications
from shop.payments.mercadopago import MercadoPagoGateway
from shop.payments.payment_reconciler import (
    Policy,
    prune_events,
    reconcile_once,
    run_forever,
    with_poller,
)
from shop.payments.service import PaymentServices


async def _run(settings: Settings, interval: float, once: bool) -> None:
    await init_db(settings.database_url)
    redis = core_redis.connect(settings.redis_url)
    gateway = MercadoPagoGateway.from_settings(settings)
    svc = PaymentServices.from_settings(settings, gateway, redis)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    policy = Policy(webhook_retention=timedelta(days=settings.webhook_retention_days))
    try:
        if once:
            print(await reconcile_once(svc, policy))
            print(f"pruned {await prune_events(policy)} old webhook events")
        else:
            relay_s = settings.delivery_relay_interval_ms / 1000
            # Alerts to operators and notices to sellers (shop.notify): its own task, so a
            # dead SMTP server or webhook never holds up a pass.
            notify = asyncio.create_task(run_notifications(settings, redis, stop))
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
    finally:
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
