"""Mercado Pago money out (PIX transfers from the platform's account): `PayoutGateway`.

Documented (developers/pt/reference/money-out/pix-transfer/post and
developers/en/docs/payouts/integration-configuration/money-transfers):
`POST /v1/transaction-intents/process` with a mandatory `X-Idempotency-Key` ("safely retry
requests without the risk of performing the same action more than once"), body
`{external_reference, point_of_interaction: {type: "PSP_TRANSFER"}, transaction: {from:
{accounts: [{amount}]}, to: {accounts: [{type: "current", amount, chave: {type, value}}]},
total_amount}}`; `GET /v1/transaction-intents/{id}` (developers/en/reference/money-out/
get-transaction/get). Production requests are signed: `x-signature` = base64 of the Ed25519
signature of the body (developers/en/docs/money-out/end-to-end-encryption). Statuses
(developers/en/docs/payouts/resources/transaction-status-and-errors): `approved` without
detail is an intermediate status, `processed`/`approved` is success, `rejected` (`by_bank`,
`by_provider`, `high_risk`, ...), `error`/`failed` and `canceled` are failures. What the docs
do not say, and we assumed, is listed in docs/payments.md ("Automatic payouts").
"""

from __future__ import annotations

import base64
import json
from typing import Any, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from core.settings import Settings
from shop.cents import cents_to_reais, reais_to_cents
from shop.payments.mp_http import MercadoPagoHttp
from shop.payments.payout_gateway import PayoutOutcome, PayoutRequest, ProviderPayout
from shop.pix_proof import InvalidEndToEndId, parse_e2e_id

PROCESS_PATH = "/v1/transaction-intents/process"
_FAILED = frozenset({"rejected", "error", "canceled", "cancelled", "refunded"})
# Our PixKeyType → the `chave.type` the API takes (the docs show "CPF"; the rest assumed).
CHAVE_TYPES = {"cpf": "CPF", "cnpj": "CNPJ", "email": "EMAIL", "phone": "PHONE", "random": "EVP"}


def _first_destination(body: dict[str, Any]) -> dict[str, Any]:
    to = ((body.get("transaction") or {}).get("to") or {}).get("accounts") or []
    return to[0] if to and isinstance(to[0], dict) else {}


def outcome_of(status: str, detail: str) -> PayoutOutcome:
    """Map the documented status (and detail) to what it means for the withdrawal."""
    if status == "processed":
        return PayoutOutcome.PAID
    if status == "approved" and detail == "partially_refunded":
        return PayoutOutcome.PAID  # it was paid; the destination bank sent part back later
    if status in _FAILED:
        return PayoutOutcome.FAILED
    return PayoutOutcome.PENDING  # created, approved (intermediate) or a status we do not know


def parse_payout(body: dict[str, Any]) -> ProviderPayout:
    """A transaction intent → ProviderPayout (the E2E id kept only if it is a real one)."""
    dest = _first_destination(body)
    status = str(body.get("status") or "")
    detail = str(dest.get("status_detail") or body.get("status_detail") or "")
    try:
        e2e: str | None = parse_e2e_id(dest.get("origin_id"))
    except InvalidEndToEndId:
        e2e = None
    try:
        amount: int | None = reais_to_cents((body.get("transaction") or {})["total_amount"])
    except (KeyError, TypeError, ValueError):
        amount = None
    ref = body.get("external_reference")
    return ProviderPayout(
        id=str(body["id"]),
        status=status,
        status_detail=detail,
        outcome=outcome_of(status, detail),
        amount_cents=amount,
        e2e_id=e2e,
        external_reference=str(ref) if ref else None,
        raw=body,
    )


def sign_body(signing_key_pem: bytes, body: bytes) -> str:
    """`x-signature` for a money-out request: the Ed25519 signature of the exact body bytes,
    standard base64 (developers/en/docs/money-out/end-to-end-encryption)."""
    key = load_pem_private_key(signing_key_pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError("the money-out signing key must be an Ed25519 private key")
    return base64.b64encode(key.sign(body)).decode("ascii")


class MercadoPagoPayouts(MercadoPagoHttp):
    """`PayoutGateway` on the platform's Mercado Pago account (one per process).

    With a signing key every transfer's body is signed (`X-Signature`) and sent with
    `X-Enforce-Signature: true`, as production requires; without one (test credentials, the
    sandbox) it is sent unsigned with `X-Enforce-Signature: false`, as the docs' test requests
    are."""

    def __init__(self, *args: Any, signing_key: bytes | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._signing_key = signing_key

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Self:
        kwargs.setdefault("signing_key", settings.payout_signing_key)
        return super().from_settings(settings, **kwargs)

    def _signed(self, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-Enforce-Signature": "false"}
        if self._signing_key is not None:
            headers["X-Enforce-Signature"] = "true"
            headers["X-Signature"] = sign_body(self._signing_key, raw)
        return raw, headers

    async def send_pix(self, request: PayoutRequest) -> ProviderPayout:
        amount = float(cents_to_reais(request.amount_cents))
        chave = {"type": CHAVE_TYPES.get(request.pix_key_type, "EVP"), "value": request.pix_key}
        body = {
            "external_reference": request.external_reference,
            "point_of_interaction": {"type": "PSP_TRANSFER"},
            "transaction": {
                "from": {"accounts": [{"amount": amount}]},
                "to": {"accounts": [{"type": "current", "amount": amount, "chave": chave}]},
                "total_amount": amount,
            },
        }
        raw, headers = self._signed(body)  # the same bytes (and signature) on every retry
        data = await self._request(
            "POST",
            PROCESS_PATH,
            content=raw,
            headers=headers,
            idempotency_key=request.idempotency_key,
        )
        return parse_payout(data)

    async def get_payout(self, provider_id: str) -> ProviderPayout:
        return parse_payout(await self._get_found(f"/v1/transaction-intents/{provider_id}"))
