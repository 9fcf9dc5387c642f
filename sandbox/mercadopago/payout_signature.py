"""Money-out request signatures, checked the way Mercado Pago documents them.

https://www.mercadopago.com.br/developers/en/docs/money-out/end-to-end-encryption: the
integrator makes an Ed25519 key pair (`openssl genpkey -algorithm ed25519`), gives Mercado
Pago the public key and signs each request body with the private one; the `x-signature`
header carries the signature in standard base64. "Sending the security key is only necessary
in production environments"; the test requests in
https://www.mercadopago.com.br/developers/en/docs/money-out/integration-configuration send
`x-enforce-signature: false`.

The stand-in: an account that enforces signatures (production: `enforce_signature`, set with
the control API together with the public key) refuses a transfer whose body is unsigned or
badly signed, whatever `X-Enforce-Signature` says; any account checks the signature of a
request that asks for it (`X-Enforce-Signature: true`). Assumed (the pages show no refusal):
the answer is 401 `invalid_signature`, and nothing is created.
"""

from __future__ import annotations

import base64
import binascii

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from .errors import MPError, bad_request


def parse_public_key(pem: str) -> Ed25519PublicKey:
    """The account's registered public key (PEM); 400 unless it is an Ed25519 one."""
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise bad_request(f"signing_public_key: {exc}", "invalid_public_key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise bad_request("signing_public_key must be an Ed25519 key", "invalid_public_key")
    return key


def _refused(message: str) -> MPError:
    return MPError(401, "unauthorized", message, "invalid_signature")


async def check_signature(
    request: web.Request, public_key: Ed25519PublicKey | None, enforced: bool
) -> None:
    """Raise 401 unless the body is signed as required (see the module docstring)."""
    asked = request.headers.get("X-Enforce-Signature", "").strip().lower() == "true"
    if not (enforced or asked):
        return
    raw_signature = request.headers.get("X-Signature", "")
    if not raw_signature or len(raw_signature) > 200:
        raise _refused("X-Signature is required: sign the body with your Ed25519 key")
    if public_key is None:
        raise _refused("No public key registered for this account")
    try:
        signature = base64.b64decode(raw_signature, validate=True)
        public_key.verify(signature, await request.read())
    except (binascii.Error, ValueError, InvalidSignature):
        raise _refused("Invalid X-Signature for this request body") from None
