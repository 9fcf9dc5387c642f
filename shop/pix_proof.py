"""The proof that a withdrawal was paid: the PIX end-to-end id (`endToEndId`) of the transfer.

Banco Central's format (Regulamento do Pix, Manual de Padrões para Iniciação do Pix, and the
API Pix spec at https://bacen.github.io/pix-api/ where `endToEndId` is `[a-zA-Z0-9]{32}`):
32 characters, `E` + the ISPB of the paying institution (8 digits) + the UTC date and time
the transfer was initiated (`yyyyMMddHHmm`) + 11 alphanumeric characters. It is printed on
every bank's PIX receipt, so an operator copies it from the receipt of the transfer they made.
"""

from __future__ import annotations

import re
from datetime import datetime

E2E_LENGTH = 32
_E2E = re.compile(r"E(?P<ispb>[0-9]{8})(?P<when>[0-9]{12})(?P<seq>[A-Za-z0-9]{11})", re.ASCII)


class InvalidEndToEndId(ValueError):
    """Not a PIX end-to-end id; the message says what is wrong (English, for operators)."""


def parse_e2e_id(text: object) -> str:
    """The end-to-end id, stripped, or InvalidEndToEndId (length checked before anything)."""
    if not isinstance(text, str):
        raise InvalidEndToEndId("a PIX end-to-end id is text")
    if len(text) > E2E_LENGTH + 8:
        raise InvalidEndToEndId(f"a PIX end-to-end id has {E2E_LENGTH} characters")
    value = text.strip()
    match = _E2E.fullmatch(value)
    if match is None:
        raise InvalidEndToEndId(
            f"not a PIX end-to-end id: {E2E_LENGTH} characters, E + 8-digit ISPB + "
            "yyyyMMddHHmm + 11 letters/digits (it is on the transfer's receipt)"
        )
    w = match["when"]
    try:
        datetime(int(w[:4]), int(w[4:6]), int(w[6:8]), int(w[8:10]), int(w[10:]))
    except ValueError:
        raise InvalidEndToEndId(
            f"not a PIX end-to-end id: {match['when']} is not a date and time (yyyyMMddHHmm)"
        ) from None
    return value
