"""The key that signs automatic payouts (Mercado Pago's money-out API), read at start-up.

Mercado Pago (developers/en/docs/money-out/end-to-end-encryption): in production every
money-out request carries `x-signature`, the Ed25519 signature of the request body, base64;
the integrator keeps the private key and gives Mercado Pago the public one. The key comes from
`MERCADOPAGO_PAYOUT_SIGNING_KEY_FILE` (a PEM file, e.g. a mounted secret) or
`MERCADOPAGO_PAYOUT_SIGNING_KEY` (the PEM itself). Filled by `core.settings.load_settings`;
see docs/configuration.md, "Automatic payouts".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from core.errors import ConfigError

Get = Callable[[str], str | None]
FILE_VAR = "MERCADOPAGO_PAYOUT_SIGNING_KEY_FILE"
PEM_VAR = "MERCADOPAGO_PAYOUT_SIGNING_KEY"
_MAX_PEM = 4096  # an Ed25519 PEM is ~120 bytes: anything this long is not one
_EXAMPLE = "/run/secrets/mp-payouts.pem (openssl genpkey -algorithm ed25519 -out mp-payouts.pem)"


def _read_pem(get: Get) -> tuple[str, bytes] | None:
    path = get(FILE_VAR)
    if path:
        file = Path(path)
        try:
            if file.stat().st_size > _MAX_PEM:
                raise ConfigError(FILE_VAR, "is too large for an Ed25519 key", _EXAMPLE)
            return FILE_VAR, file.read_bytes()
        except OSError as exc:
            raise ConfigError(FILE_VAR, f"cannot be read ({exc.strerror})", _EXAMPLE) from None
    raw = get(PEM_VAR)
    if not raw:
        return None
    if len(raw) > _MAX_PEM:
        raise ConfigError(PEM_VAR, "is too long for an Ed25519 key", "-----BEGIN PRIVATE KEY-----…")
    return PEM_VAR, raw.replace("\\n", "\n").encode()  # one-line env values keep "\n" escaped


def _is_loopback(api_base: str) -> bool:
    host = urlparse(api_base).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def key_material(pem: bytes | None) -> list[str]:
    """The key's base64 lines (not the BEGIN/END armour), for log redaction."""
    if pem is None:
        return []
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


def load_payout_signing_key(get: Get, *, automatic: bool, api_base: str) -> bytes | None:
    """The Ed25519 private key (PEM) that signs money-out requests, or None when unset.

    Refuses a key that is not an unencrypted Ed25519 private key, and PAYOUT_MODE=automatic
    against a Mercado Pago that is not on loopback (the sandbox) without one: production
    refuses unsigned transfers, so every payout would fail."""
    found = _read_pem(get)
    if found is None:
        if automatic and not _is_loopback(api_base):
            raise ConfigError(
                FILE_VAR, "is required with PAYOUT_MODE=automatic (signed money out)", _EXAMPLE
            )
        return None
    name, pem = found
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(name, "is not an unencrypted PEM private key", _EXAMPLE) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(name, "is not an Ed25519 key", _EXAMPLE)
    return pem
