"""Believe `X-Forwarded-*` only when the TCP peer is one of `TRUSTED_PROXIES`.

hypercorn's `ProxyFixMiddleware` reads the headers (the last `X-Forwarded-For` entry: the one
the proxy appended) but trusts whoever sends them. We hand it only the requests whose direct
peer is a trusted proxy; everyone else keeps the address hypercorn saw, so nobody can choose
their own address to dodge a rate limit or to lock somebody else out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from hypercorn.middleware import ProxyFixMiddleware
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from core.settings import ProxyNetwork

ASGIApp = Callable[..., Any]


class TrustedProxyMiddleware:
    """ASGI middleware: `ProxyFixMiddleware` for requests from `trusted` peers only."""

    def __init__(self, app: ASGIApp, trusted: Iterable[ProxyNetwork]) -> None:
        self.app = app
        self.trusted = tuple(trusted)
        # One hop: the TLS proxy in front of us (docs/portal.md).
        self.proxy_fix = ProxyFixMiddleware(app, mode="legacy", trusted_hops=1)

    def is_trusted(self, client: Any) -> bool:
        if not self.trusted or not client:
            return False
        try:
            peer = ipaddress.ip_address(client[0])
        except (ValueError, TypeError, IndexError):
            return False  # a unix socket or no peer at all: nothing to trust
        if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
            peer = peer.ipv4_mapped  # an IPv4 proxy seen through a dual-stack socket
        return any(peer in network for network in self.trusted)

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] in ("http", "websocket") and self.is_trusted(scope.get("client")):
            await self.proxy_fix(scope, receive, send)
        else:
            await self.app(scope, receive, send)
