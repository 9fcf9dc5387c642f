"""PIX keys (chave PIX): CPF, CNPJ, e-mail, phone (+55) or random key (EVP, a UUID)."""

from __future__ import annotations

import re
import uuid
from enum import StrEnum

from shop.errors import InvalidPixKey


class PixKeyType(StrEnum):
    CPF = "cpf"
    CNPJ = "cnpj"
    EMAIL = "email"
    PHONE = "phone"
    RANDOM = "random"


_EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")
# +55, two-digit area code (11-99, no 0 in either digit), 8 (landline) or 9 (mobile) digits
_PHONE_RE = re.compile(r"^\+55[1-9]{2}(9\d{8}|[2-5]\d{7})$")


def _check_digit(digits: str, weights: list[int]) -> int:
    rest = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return 0 if rest < 2 else 11 - rest


def is_valid_cpf(digits: str) -> bool:
    if len(digits) != 11 or not digits.isdigit() or len(set(digits)) == 1:
        return False
    first = _check_digit(digits[:9], list(range(10, 1, -1)))
    second = _check_digit(digits[:10], list(range(11, 1, -1)))
    return digits[9:] == f"{first}{second}"


def is_valid_cnpj(digits: str) -> bool:
    if len(digits) != 14 or not digits.isdigit() or len(set(digits)) == 1:
        return False
    w1 = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
    first = _check_digit(digits[:12], w1)
    second = _check_digit(digits[:13], [6, *w1])
    return digits[12:] == f"{first}{second}"


def _only_digits(raw: str) -> str:
    return re.sub(r"[.\-/\s]", "", raw)


def _as(kind: PixKeyType, raw: str) -> str | None:
    """The normalised key if `raw` is a valid key of `kind`, else None."""
    if kind is PixKeyType.CPF:
        digits = _only_digits(raw)
        return digits if is_valid_cpf(digits) else None
    if kind is PixKeyType.CNPJ:
        digits = _only_digits(raw)
        return digits if is_valid_cnpj(digits) else None
    if kind is PixKeyType.EMAIL:
        return raw.lower() if len(raw) <= 77 and _EMAIL_RE.match(raw) else None
    if kind is PixKeyType.PHONE:
        phone = re.sub(r"[\s()\-]", "", raw)
        return phone if _PHONE_RE.match(phone) else None
    try:
        parsed = uuid.UUID(raw)
    except ValueError:
        return None
    return str(parsed) if len(raw) == 36 else None


def validate_pix_key(raw: str, kind: str | None = None) -> tuple[PixKeyType, str]:
    """(type, normalised key), or `InvalidPixKey`. Without `kind`, the type is inferred:
    a phone must start with +55, so 11 bare digits are read as a CPF."""
    raw = (raw or "").strip()
    if kind:
        try:
            wanted = PixKeyType(kind.lower())
        except ValueError:
            raise InvalidPixKey(f"unknown PIX key type {kind!r}") from None
        candidates = [wanted]
    else:
        candidates = list(PixKeyType)
    for candidate in candidates:
        normalised = _as(candidate, raw)
        if normalised is not None:
            return candidate, normalised
    raise InvalidPixKey(f"not a valid PIX key: {raw[:40]!r}")
