"""Money in integer centavos; reais only at the Mercado Pago boundary, via Decimal."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
MAX_AMOUNT_TEXT = 32  # '123456789012.34' is 15; a provider's JSON number is never longer
MAX_REAIS_DIGITS = 12  # below R$ 1 trilhão (10**12): above any payment, inside a BIGINT


def cents_to_reais(cents: int) -> Decimal:
    """1050 -> Decimal('10.50'), exactly."""
    return (Decimal(int(cents)) / 100).quantize(CENT)


def reais_to_cents(value: object) -> int:
    """A JSON number or string in reais -> centavos; ValueError if not a whole number of cents.

    A float from a JSON parser is read through its shortest repr (`str`), so 10.1 is 1010.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, int) and abs(value) >= 10**MAX_REAIS_DIGITS:
        raise ValueError("amount out of range")
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_AMOUNT_TEXT:  # before Decimal: its work grows with the text
        raise ValueError(f"not an amount: {text[:MAX_AMOUNT_TEXT]!r}...")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    # '1e999999999' is 11 characters: refuse the magnitude before int() expands it (and a
    # tiny '1e-999999999' before it underflows to 0)
    if not amount.is_finite() or (amount and not -3 < amount.adjusted() < MAX_REAIS_DIGITS):
        raise ValueError(f"amount out of range: {value!r}")
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"not a whole number of centavos: {value!r}")
    return int(cents)


def fee_cents(amount_cents: int, fee_bps: int) -> int:
    """Platform fee on a sale, rounded half up to the centavo, in integer arithmetic."""
    return int((Decimal(amount_cents) * fee_bps / 10000).quantize(Decimal(1), ROUND_HALF_UP))
