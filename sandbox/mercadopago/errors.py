"""Mercado Pago error shape: {"message", "error", "status", "cause": [...]}."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web


class MPError(Exception):
    """An API error rendered in Mercado Pago's JSON error shape."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        code: int | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body MP would send."""
        cause: list[dict[str, Any]] = []
        if self.code is not None:
            stamp = datetime.now(UTC).strftime("%d-%m-%YT%H:%M:%SUTC")
            cause.append(
                {
                    "code": self.code,
                    "description": self.message,
                    "data": f"{stamp};{uuid.uuid4()}",
                }
            )
        return {"message": self.message, "error": self.error, "status": self.status, "cause": cause}

    def response(self) -> web.Response:
        """The aiohttp response for this error."""
        return web.json_response(self.body(), status=self.status, headers=self.headers)


def bad_request(message: str, code: int | str) -> MPError:
    """A 400 bad_request with one cause."""
    return MPError(400, "bad_request", message, code)


def not_found(message: str = "Payment not found", code: int = 2000) -> MPError:
    """A 404 not_found."""
    return MPError(404, "not_found", message, code)


def unauthorized(message: str = "unauthorized") -> MPError:
    """A 401 for a missing or unknown access token."""
    return MPError(401, "unauthorized", message, 2002)


def conflict(message: str, code: int | str = "idempotency_key_conflict") -> MPError:
    """A 409 conflict (idempotency key reused with another body, illegal transition)."""
    return MPError(409, "conflict", message, code)
