"""Numbers that people type: amounts, percentages, quantities, ids. Bounded and strict.

Every parser looks at the length first and converts nothing longer than a few dozen characters;
the syntax is a plain ASCII regex (no exponent, no sign, no `_`, no other scripts' digits), so
no input costs more than microseconds. A refused value raises `InvalidInput`, a `ShopError`
whose message names the problem (pt-BR/en) for the field it came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from shop.errors import ShopError

MAX_TEXT = 40  # longest amount text looked at: 'R$ 1.000.000.000,00' is 19
MAX_CENTS = 1_000_000_000_00  # R$ 1 bilhão: above any real amount, far inside a BIGINT
MAX_ID = 2**31 - 1  # every id column is a 32-bit signed integer
MAX_WHOLE_DIGITS = 12  # a quantity / count / id never needs more digits
NAME_OPTION_MAX = 100  # a slash-command text option naming a product or a variation

_SPACES = re.compile(r"[ \u00a0\u202f]+")  # browsers' Intl formatting uses (narrow) NBSP
_BR = re.compile(r"(?P<int>[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]*),(?P<frac>[0-9]*)", re.ASCII)
_DOT = re.compile(r"(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?", re.ASCII)
_WHOLE = re.compile(r"[0-9]+", re.ASCII)


class InvalidInput(ShopError):
    """A typed number was refused; `reason` is one of not_a_number, too_long, decimals,
    too_small, too_large (the message key is `inputs.<reason>`)."""

    code = "invalid_input"
    message_key = "inputs.not_a_number"

    def __init__(self, reason: str, **params: object) -> None:
        self.reason = reason
        self.message_key = f"inputs.{reason}"
        super().__init__(f"refused input: {reason}", **params)


def _clean(text: object, limit: int) -> str:
    if not isinstance(text, str):
        raise InvalidInput("not_a_number")
    if len(text) > limit:  # before any other work on it
        raise InvalidInput("too_long", max=limit)
    return text.strip()


def _hundredths(text: object) -> int:
    """'1.234,56' / '1234.56' / '10' -> 123456 / 123456 / 1000 (value x 100), at most 2 decimals."""
    raw = _clean(text, MAX_TEXT)
    if raw[:2].upper() == "R$":
        raw = raw[2:]
    raw = _SPACES.sub("", raw)
    match = _BR.fullmatch(raw) if "," in raw else _DOT.fullmatch(raw)
    if match is None:
        raise InvalidInput("not_a_number")
    whole, frac = match["int"].replace(".", ""), match["frac"] or ""
    if not whole and not frac:
        raise InvalidInput("not_a_number")
    if len(frac) > 2:
        raise InvalidInput("decimals")
    return int(whole or "0") * 100 + int(frac.ljust(2, "0"))


def _bounded(value: int, lo: int, hi: int, shown_lo: object, shown_hi: object) -> int:
    if value < lo:
        raise InvalidInput("too_small", min=shown_lo, max=shown_hi)
    if value > hi:
        raise InvalidInput("too_large", min=shown_lo, max=shown_hi)
    return value


def _brl(cents: int) -> str:
    reais, cent = divmod(cents, 100)
    return f"R$ {reais:,}".replace(",", ".") + f",{cent:02d}"


def parse_money(text: object, *, max_cents: int = MAX_CENTS, min_cents: int = 0) -> int:
    """'19,90', 'R$ 1.234,56', '10.5', '10' -> centavos; `InvalidInput` otherwise."""
    return _bounded(_hundredths(text), min_cents, max_cents, _brl(min_cents), _brl(max_cents))


def parse_percent(text: object, *, max_bps: int = 100_00) -> int:
    """'10' / '12,5' / '12.5' percent -> basis points (1000 / 1250); at most 2 decimals."""
    return _bounded(_hundredths(text), 0, max_bps, 0, f"{max_bps / 100:g}")


def parse_quantity(text: object, *, lo: int = 1, hi: int) -> int:
    """A whole number lo..hi typed as plain ASCII digits (a quantity, a count, a limit)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return _bounded(text, lo, hi, lo, hi)
    raw = _clean(text, MAX_TEXT)
    if not _WHOLE.fullmatch(raw):
        raise InvalidInput("whole_number")
    if len(raw.lstrip("0")) > MAX_WHOLE_DIGITS:
        raise InvalidInput("too_large", min=lo, max=hi)
    return _bounded(int(raw), lo, hi, lo, hi)


def parse_id(text: object, *, max_id: int = MAX_ID) -> int:
    """A database id, 1..2**31-1."""
    return parse_quantity(text, lo=1, hi=max_id)


def parse_ids(values: Iterable[object], *, limit: int) -> list[int]:
    """The valid ids among form values (checkboxes), at most `limit` of them; others dropped."""
    out: list[int] = []
    for value in values:
        if len(out) >= limit:
            break
        try:
            out.append(parse_id(value))
        except InvalidInput:
            continue
    return out


def page_number(text: object, *, max_page: int = 10_000) -> int:
    """A `?page=` argument: 1 when missing or not a page number, at most `max_page`."""
    try:
        return parse_quantity(text, lo=1, hi=max_page)
    except InvalidInput as refusal:
        return max_page if refusal.reason == "too_large" else 1
