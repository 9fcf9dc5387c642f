"""Mercado Pago webhook signatures (`x-signature: ts=…,v1=…`), exactly as MP documents them.

Manifest `id:{data.id};request-id:{x-request-id};ts:{ts};` — `data.id` from the query string,
lower-cased; a part whose value is absent is dropped whole. v1 = hex HMAC-SHA256(secret,
manifest), compared in constant time. `ts` may be in milliseconds (13 digits) or seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from enum import StrEnum

TOLERANCE_S = 300


class SignatureCheck(StrEnum):
    VALID = "valid"
    MISSING = "missing"  # no x-signature header
    MALFORMED = "malformed"  # no ts or v1 in it
    STALE = "stale"  # ts more than TOLERANCE_S away from now
    MISMATCH = "mismatch"  # HMAC differs


def manifest(data_id: str | None, request_id: str | None, ts: str | None) -> str:
    """The signed string; absent parts are dropped, `data.id` is lower-cased."""
    parts = []
    if data_id:
        parts.append(f"id:{data_id.lower()};")
    if request_id:
        parts.append(f"request-id:{request_id};")
    if ts:
        parts.append(f"ts:{ts};")
    return "".join(parts)


def sign(secret: str, data_id: str | None, request_id: str | None, ts: str | None) -> str:
    """The v1 value MP would send (used by tests and the bench)."""
    text = manifest(data_id, request_id, ts)
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def parse_header(header: str) -> tuple[str | None, list[str]]:
    """(ts, [v1, …]) from `ts=…,v1=…`; unknown keys are ignored."""
    ts: str | None = None
    v1: list[str] = []
    for part in header.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "ts":
            ts = value
        elif key == "v1":
            v1.append(value)
    return ts, v1


def _ts_seconds(ts: str) -> float | None:
    if not ts.isascii() or not ts.isdigit():
        return None
    value = int(ts)
    return value / 1000 if len(ts) >= 13 else float(value)


def verify(
    secret: str,
    header: str | None,
    request_id: str | None,
    data_id: str | None,
    now: float | None = None,
    tolerance: float = TOLERANCE_S,
) -> SignatureCheck:
    """Check one delivery's `x-signature`; VALID only if fresh and the HMAC matches."""
    if not header:
        return SignatureCheck.MISSING
    ts, candidates = parse_header(header)
    if not ts or not candidates:
        return SignatureCheck.MALFORMED
    moment = _ts_seconds(ts)
    if moment is None:
        return SignatureCheck.MALFORMED
    expected = sign(secret, data_id, request_id, ts).encode()
    # Compare against every v1 (constant time each) before looking at freshness, so the
    # time taken does not depend on which check fails.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate.encode(errors="surrogateescape"))
    if abs((time.time() if now is None else now) - moment) > tolerance:
        return SignatureCheck.STALE
    return SignatureCheck.VALID if matched else SignatureCheck.MISMATCH
