"""Mercado Pago stand-in: PIX Payments API, signed webhooks and a control API.

Entry point for the sandbox runner: ``sandbox.mercadopago.app.build_app(config)``.
"""

from __future__ import annotations

from .app import build_app
from .config import MercadoPagoConfig
from .keys import MP_STATE

__all__ = ["MP_STATE", "MercadoPagoConfig", "build_app"]
