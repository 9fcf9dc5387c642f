"""Fault injection settings for webhooks and the public API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

_API_ERRORS = {
    429: ("too_many_requests", "Too many requests"),
    500: ("internal_server_error", "Internal server error"),
    502: ("bad_gateway", "Bad gateway"),
    503: ("service_unavailable", "Service unavailable"),
    504: ("gateway_timeout", "Gateway timeout"),
}


@dataclass
class Faults:
    """Current faults; every field off by default.

    Webhooks: ``duplicate`` copies of each notification, ``out_of_order`` = hold
    notifications until that many are queued then deliver them newest first,
    ``bad_signature`` signs with a wrong secret, ``delay_ms`` before the first
    attempt, ``drop`` never sends. API (``/v1/*`` only): the next
    ``api_error_count`` requests answer ``api_error_status`` (429 carries
    ``Retry-After: retry_after``); ``slow_ms`` delays every API response;
    ``lose_answers``: the next that many API requests are processed but answered 504 (the
    answer is lost on the way: the client must not create the charge again).
    """

    duplicate: int = 1
    out_of_order: int = 0
    bad_signature: bool = False
    delay_ms: int = 0
    drop: bool = False
    api_error_status: int = 0
    api_error_count: int = 0
    retry_after: int = 1
    slow_ms: int = 0
    lose_answers: int = 0

    def update(self, data: dict[str, Any]) -> None:
        """Merge a partial JSON update; ValueError on unknown keys or bad values."""
        known = {f.name: f.type for f in fields(self)}
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}; known: {sorted(known)}")
            if known[key] == "bool":
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be a boolean")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{key} must be a non-negative integer")
        if data.get("api_error_status", 0) not in (0, *_API_ERRORS):
            raise ValueError(f"api_error_status must be 0 or one of {sorted(_API_ERRORS)}")
        for key, value in data.items():
            setattr(self, key, value)

    def take_api_error(self) -> tuple[int, str, str] | None:
        """Consume one injected API error: (status, error, message), or None."""
        if not self.api_error_status or self.api_error_count <= 0:
            return None
        self.api_error_count -= 1
        error, message = _API_ERRORS[self.api_error_status]
        return self.api_error_status, error, message

    def take_lost_answer(self) -> bool:
        """Consume one lost answer: True when this processed request's answer is lost."""
        if self.lose_answers <= 0:
            return False
        self.lose_answers -= 1
        return True

    def to_json(self) -> dict[str, Any]:
        """Plain dict view."""
        return asdict(self)
