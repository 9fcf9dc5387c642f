"""Money in integer centavos; reais only at the Mercado Pago boundary, via Decimal."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")


def cents_to_reais(cents: int) -> Decimal:
    """1050 -> Decimal('10.50'), exactly."""
    return (Decimal(int(cents)) / 100).quantize(CENT)


def reais_to_cents(value: object) -> int:
    """A JSON number or string in reais -> centavos; ValueError if not a whole number of cents.

    A float from a JSON parser is read through its shortest repr (`str`), so 10.1 is 1010.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an amount: {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    cents = amount * 100
    if not cents.is_finite() or cents != cents.to_integral_value():
        raise ValueError(f"not a whole number of centavos: {value!r}")
    return int(cents)


def fee_cents(amount_cents: int, fee_bps: int) -> int:
    """Platform fee on a sale, rounded half up to the centavo, in integer arithmetic."""
    return int((Decimal(amount_cents) * fee_bps / 10000).quantize(Decimal(1), ROUND_HALF_UP))
