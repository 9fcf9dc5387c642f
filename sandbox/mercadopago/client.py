"""Async httpx client for the sandbox control API (/_sandbox/mp/)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx

PREFIX = "/_sandbox/mp"


class ControlError(RuntimeError):
    """The control API answered an error status."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"control API answered {status}: {body}")
        self.status = status
        self.body = body


class MercadoPagoSandboxClient:
    """Drive the fake: change payment statuses, inject faults, read logs."""

    def __init__(
        self, base_url: str, *, client: httpx.AsyncClient | None = None, timeout: float = 10.0
    ) -> None:
        self._own = client is None
        self._http = client or httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def __aenter__(self) -> MercadoPagoSandboxClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying httpx client if this object created it."""
        if self._own:
            await self._http.aclose()

    async def _call(self, method: str, path: str, json: Any = None) -> Any:
        resp = await self._http.request(method, PREFIX + path, json=json)
        body = resp.json() if resp.content else None
        if resp.status_code >= 400:
            raise ControlError(resp.status_code, body)
        return body

    # --- payment status changes (each sends a webhook) -------------------
    async def approve(self, payment_id: int | str, *, notify: bool = True) -> dict[str, Any]:
        """pending -> approved/accredited; `notify=False`: silently (no webhook is sent)."""
        query = "" if notify else "?notify=false"
        return await self._call("POST", f"/payments/{payment_id}/approve{query}")

    async def reject(self, payment_id: int | str) -> dict[str, Any]:
        """pending -> rejected."""
        return await self._call("POST", f"/payments/{payment_id}/reject")

    async def expire(self, payment_id: int | str) -> dict[str, Any]:
        """pending -> cancelled/expired."""
        return await self._call("POST", f"/payments/{payment_id}/expire")

    async def cancel(self, payment_id: int | str) -> dict[str, Any]:
        """pending -> cancelled/by_collector."""
        return await self._call("POST", f"/payments/{payment_id}/cancel")

    async def refund(self, payment_id: int | str) -> dict[str, Any]:
        """approved -> refunded (refunds the remaining balance)."""
        return await self._call("POST", f"/payments/{payment_id}/refund")

    async def chargeback(self, payment_id: int | str) -> dict[str, Any]:
        """approved -> charged_back/settled."""
        return await self._call("POST", f"/payments/{payment_id}/chargeback")

    # --- inspection ------------------------------------------------------
    async def payments(self) -> list[dict[str, Any]]:
        """Every payment (compact view with status)."""
        return await self._call("GET", "/payments")

    async def payment(self, payment_id: int | str) -> dict[str, Any]:
        """The full payment object, without auth."""
        return await self._call("GET", f"/payments/{payment_id}")

    async def webhooks(self) -> list[dict[str, Any]]:
        """Every webhook delivery attempt, oldest first."""
        return await self._call("GET", "/webhooks")

    async def requests(self) -> dict[str, int]:
        """API calls per "METHOD /route"."""
        return await self._call("GET", "/requests")

    async def wait_webhooks(
        self, predicate: Callable[[list[dict[str, Any]]], bool], within: float = 5.0
    ) -> list[dict[str, Any]]:
        """Poll the webhook log until ``predicate(log)`` is true; TimeoutError otherwise."""
        deadline = time.monotonic() + within
        while True:
            log = await self.webhooks()
            if predicate(log):
                return log
            if time.monotonic() > deadline:
                raise TimeoutError(f"webhook log never matched; last: {log}")
            await asyncio.sleep(0.05)

    # --- faults, clock, reset ------------------------------------------
    async def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Merge faults, e.g. ``set_faults(duplicate=3)``; returns the full set."""
        return await self._call("POST", "/faults", json=faults)

    async def clear_faults(self) -> dict[str, Any]:
        """Remove every fault (releases held webhooks)."""
        return await self._call("DELETE", "/faults")

    async def flush_webhooks(self) -> int:
        """Deliver held (out_of_order) notifications now; returns how many."""
        return (await self._call("POST", "/webhooks/flush"))["released"]

    async def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move sandbox time forward (expires overdue payments at once)."""
        return await self._call("POST", "/clock", json={"advance_seconds": seconds})

    async def reset(self) -> None:
        """Forget all payments, logs, counters and faults."""
        await self._call("POST", "/reset")
