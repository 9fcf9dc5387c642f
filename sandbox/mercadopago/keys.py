"""Typed aiohttp application keys of the Mercado Pago stand-in."""

from __future__ import annotations

from aiohttp import web

from .config import MercadoPagoConfig
from .oauth_state import OAuthRegistry
from .state import MPState
from .webhooks import WebhookDispatcher

MP_STATE = web.AppKey("mp_state", MPState)
MP_CONFIG = web.AppKey("mp_config", MercadoPagoConfig)
MP_DISPATCHER = web.AppKey("mp_dispatcher", WebhookDispatcher)
MP_OAUTH = web.AppKey("mp_oauth", OAuthRegistry)  # sellers' OAuth codes and tokens
