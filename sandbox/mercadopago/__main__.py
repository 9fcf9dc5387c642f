"""Standalone runner: ``python -m sandbox.mercadopago --port 8901 --webhook-secret S``."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from .app import build_app
from .config import MercadoPagoConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.mercadopago", description="Mercado Pago PIX stand-in"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8901)
    parser.add_argument("--webhook-secret", default=MercadoPagoConfig.webhook_secret)
    parser.add_argument(
        "--access-token",
        action="append",
        dest="access_tokens",
        help="accepted Bearer token (repeatable); default: any token",
    )
    parser.add_argument(
        "--retry-delays",
        default="0.5,1,2,5",
        help="comma-separated webhook retry delays in seconds",
    )
    parser.add_argument("--public-url", default=None, help="base URL used in ticket_url")
    parser.add_argument("--pix-key", default=MercadoPagoConfig.pix_key)
    parser.add_argument("--merchant-name", default=MercadoPagoConfig.merchant_name)
    parser.add_argument("--merchant-city", default=MercadoPagoConfig.merchant_city)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the app until interrupted."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    delays = tuple(float(d) for d in args.retry_delays.split(",") if d.strip())
    config = MercadoPagoConfig(
        webhook_secret=args.webhook_secret,
        access_tokens=set(args.access_tokens) if args.access_tokens else None,
        webhook_retry_delays=delays,
        public_url=args.public_url,
        pix_key=args.pix_key,
        merchant_name=args.merchant_name,
        merchant_city=args.merchant_city,
    )
    # No access log: a line per request written to stderr from the event loop stalls the
    # whole stand-in once stderr is a pipe nobody drains (bench/webhooks.py froze at ~550
    # requests). Request counts are at GET /_sandbox/mp/requests; `python -m sandbox` has
    # never logged requests either.
    web.run_app(build_app(config), host=args.host, port=args.port, access_log=None)


if __name__ == "__main__":
    main()
