"""PIX BR Code ("copia e cola"): EMV MPM TLV builder, parser and CRC16."""

from __future__ import annotations

import base64
import io
import unicodedata
from typing import Any

import segno

GUI_PIX = "br.gov.bcb.pix"
# Templates whose value is itself a TLV list.
_TEMPLATE_IDS = {f"{n:02d}" for n in range(26, 52)} | {"62"} | {f"{n:02d}" for n in range(80, 100)}


class BRCodeError(ValueError):
    """The string is not a valid BR Code."""


def crc16_ccitt(data: str | bytes) -> str:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) as 4 uppercase hex digits."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    crc = 0xFFFF
    for byte in raw:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return f"{crc:04X}"


def tlv(tag: str, value: str) -> str:
    """Encode one EMV field: ID(2) LEN(2) VALUE."""
    if len(value) > 99:
        raise BRCodeError(f"field {tag} longer than 99 characters")
    return f"{tag}{len(value):02d}{value}"


def ascii_upper(text: str, limit: int) -> str:
    """Strip accents, keep printable ASCII, upper-case and cut to ``limit``."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    cleaned = "".join(ch for ch in folded if 32 <= ord(ch) < 127).strip().upper()
    return cleaned[:limit]


def format_amount(cents: int) -> str:
    """Centavos to the BR Code amount text, e.g. 1050 -> '10.50'."""
    return f"{cents // 100}.{cents % 100:02d}"


def build_brcode(
    *,
    amount_cents: int,
    txid: str,
    merchant_name: str,
    merchant_city: str,
    pix_key: str | None = None,
    pix_url: str | None = None,
) -> str:
    """Build a dynamic BR Code (point of initiation 12) ending with its CRC."""
    if (pix_key is None) == (pix_url is None):
        raise BRCodeError("give exactly one of pix_key or pix_url")
    account = tlv("00", GUI_PIX) + (tlv("01", pix_key) if pix_key else tlv("25", pix_url or ""))
    body = (
        tlv("00", "01")
        + tlv("01", "12")
        + tlv("26", account)
        + tlv("52", "0000")
        + tlv("53", "986")
        + tlv("54", format_amount(amount_cents))
        + tlv("58", "BR")
        + tlv("59", ascii_upper(merchant_name, 25) or "N")
        + tlv("60", ascii_upper(merchant_city, 15) or "C")
        + tlv("62", tlv("05", txid[:25]))
        + "6304"
    )
    return body + crc16_ccitt(body)


def _parse_tlv(text: str, nested: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    pos = 0
    while pos < len(text):
        if pos + 4 > len(text):
            raise BRCodeError(f"truncated field header at {pos}")
        tag, size_text = text[pos : pos + 2], text[pos + 2 : pos + 4]
        if not (tag.isdigit() and size_text.isdigit()):
            raise BRCodeError(f"bad field header {text[pos : pos + 4]!r} at {pos}")
        size = int(size_text)
        value = text[pos + 4 : pos + 4 + size]
        if len(value) != size:
            raise BRCodeError(f"field {tag} is truncated")
        if tag in fields:
            raise BRCodeError(f"duplicate field {tag}")
        fields[tag] = _parse_tlv(value, False) if nested and tag in _TEMPLATE_IDS else value
        pos += 4 + size
    return fields


def parse_brcode(code: str) -> dict[str, Any]:
    """Parse and validate a BR Code; templates (26-51, 62, 80-99) become nested dicts.

    Raises BRCodeError if the TLV structure, the mandatory fields or the CRC are wrong.
    """
    if len(code) < 8 or code[-8:-4] != "6304":
        raise BRCodeError("missing CRC field 6304 at the end")
    expected = crc16_ccitt(code[:-4])
    if code[-4:] != expected:
        raise BRCodeError(f"CRC mismatch: got {code[-4:]}, expected {expected}")
    fields = _parse_tlv(code, True)
    if next(iter(fields)) != "00" or fields["00"] != "01":
        raise BRCodeError("field 00 (payload format) must be first and equal 01")
    for tag in ("52", "53", "58", "59", "60"):
        if tag not in fields:
            raise BRCodeError(f"mandatory field {tag} missing")
    if not any(isinstance(v, dict) and v.get("00", "").lower() == GUI_PIX for v in fields.values()):
        raise BRCodeError("no merchant account template with GUI br.gov.bcb.pix")
    return fields


def qr_png_base64(text: str, scale: int = 4) -> str:
    """Render ``text`` as a QR code PNG and return it base64-encoded."""
    buf = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buf, kind="png", scale=scale, border=4)
    return base64.b64encode(buf.getvalue()).decode("ascii")
