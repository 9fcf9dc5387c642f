"""Money and date helpers (amounts are integer centavos internally)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

# MP's documented format: yyyy-MM-dd'T'HH:mm:ss.SSSz, e.g. 2026-05-30T23:59:59.000-03:00
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}$")
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])([A-Z])")


def parse_cents(value: object) -> int | None:
    """A JSON number with at most 2 decimals -> centavos; None if not such a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    cents = amount * 100
    if cents != cents.to_integral_value():
        return None
    return int(cents)


def cents_to_number(cents: int) -> float:
    """Centavos -> the JSON number MP shows (e.g. 1050 -> 10.5); exact decimal conversion."""
    return float(Decimal(cents).scaleb(-2))


def fee_cents(cents: int, basis_points: int) -> int:
    """Fee in centavos, rounded half up, in integer arithmetic."""
    return (cents * basis_points + 5000) // 10000


def parse_mp_date(text: object) -> datetime | None:
    """Parse ``yyyy-MM-ddTHH:mm:ss.SSS±hh:mm``; None if malformed."""
    if not isinstance(text, str) or not _DATE_RE.match(text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def format_mp_date(moment: datetime, offset_hours: int) -> str:
    """Render a datetime the way MP does, e.g. 2026-05-30T23:59:59.000-03:00."""
    tz = timezone(timedelta(hours=offset_hours))
    return moment.astimezone(tz).isoformat(timespec="milliseconds")


def snake_keys(value: object) -> object:
    """Recursively turn camelCase dict keys to snake_case (MP does this to metadata)."""
    if isinstance(value, dict):
        return {_CAMEL_RE.sub(r"_\1", str(k)).lower(): snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value
