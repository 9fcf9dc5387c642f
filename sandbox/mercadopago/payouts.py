"""Money out: PIX transfers from the platform's account (`/v1/transaction-intents`).

As documented by Mercado Pago:
- `POST /v1/transaction-intents/process` creates and processes one transfer in one call
  (https://www.mercadopago.com.br/developers/en/reference/money-out/pix-transfer/post and
  https://www.mercadopago.com.br/developers/en/docs/payouts/integration-configuration/
  money-transfers): `X-Idempotency-Key` required ("safely retry requests without the risk of
  performing the same action more than once"), `point_of_interaction: {"type":
  "PSP_TRANSFER"}`, one destination only (`transaction.to.accounts`), amounts in reais;
  answered 200 on success (".../reference/online-payments/payouts/create-bank-transaction").
- `GET /v1/transaction-intents/{id}` (".../reference/money-out/get-transaction/get"), 404
  `not_found` for an unknown id.
- Statuses (".../docs/payouts/resources/transaction-status-and-errors"): `approved` with no
  detail is intermediate (created, not processed yet), `processed`/`approved` is success,
  `rejected` (`by_bank`, `by_provider`, `high_risk`) and `error`/`failed` are failures.
Assumed (not in the pages we found; docs/payments.md lists them): the PIX end-to-end id is in
`transaction.to.accounts[0].origin_id`; a balance too small answers 400; a repeated key with
a different body answers 409 like `/v1/payments`.

Control (tests and demo, no auth) under `/_sandbox/mp/payouts`: the platform balance, a
script of outcomes for the next transfers (`processed`, `pending`, `rejected:<detail>`,
`error:failed`), PIX keys that do not exist (rejected `by_bank`), settling a pending
transfer, and `lost_answers`: the next N creations are processed and then the connection
is dropped without an answer. 5xx and 429 come from the shared API faults (`faults.py`).
Signed requests (the registered public key, `enforce_signature`): `payout_signature.py`.
"""

from __future__ import annotations

import re
import secrets
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .errors import MPError, bad_request, conflict
from .keys import MP_STATE
from .payout_signature import check_signature, parse_public_key
from .routes import _idempotency_key, authenticate, read_json
from .state import fingerprint
from .util import cents_to_number, format_mp_date, parse_cents

PREFIX = "/_sandbox/mp/payouts"
MP_ISPB = "10573521"  # Mercado Pago's ISPB: the first part of the E2E ids it issues
_REF = re.compile(r"[^\"“”\[\]()@]{1,64}")
_ALNUM = string.ascii_letters + string.digits


@dataclass
class Transfer:
    id: str
    collector_id: int
    external_reference: str | None
    amount_cents: int
    chave: dict[str, Any]
    status: str
    status_detail: str
    created: datetime
    updated: datetime
    origin_id: str | None = None


@dataclass
class PayoutsState:
    balance_cents: int = 1_000_000_00  # R$ 1 million on the platform's account
    transfers: dict[str, Transfer] = field(default_factory=dict)
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (body hash, id)
    outcomes: list[str] = field(default_factory=list)  # consumed by each new transfer
    rejected_keys: set[str] = field(default_factory=set)
    lost_answers: int = 0
    creations: int = 0  # POSTs answered or lost, repeats included
    # Request signing (payout_signature.py): the key the integrator registered, and whether
    # the account refuses unsigned transfers (production does).
    signing_public_key: Ed25519PublicKey | None = None
    enforce_signature: bool = False
    refused_signatures: int = 0


PAYOUTS = web.AppKey("mp_payouts", PayoutsState)


def _e2e(now: datetime) -> str:
    tail = "".join(secrets.choice(_ALNUM) for _ in range(11))
    return f"E{MP_ISPB}{now.astimezone(UTC):%Y%m%d%H%M}{tail}"


def transfer_json(t: Transfer, offset_hours: int) -> dict[str, Any]:
    """The transaction intent as the API shows it."""
    amount = cents_to_number(t.amount_cents)
    to: dict[str, Any] = {
        "type": "current",
        "amount": amount,
        "chave": t.chave,
        "status_detail": t.status_detail,
        "origin_id": t.origin_id,
    }
    return {
        "id": t.id,
        "external_reference": t.external_reference,
        "status": t.status,
        "created_date": format_mp_date(t.created, offset_hours),
        "last_updated_date": format_mp_date(t.updated, offset_hours),
        "point_of_interaction": {"type": "PSP_TRANSFER"},
        "transaction": {
            "from": {"accounts": [{"amount": amount}]},
            "to": {"accounts": [to]},
            "total_amount": amount,
        },
    }


def _validate(body: Any) -> tuple[str | None, int, dict[str, Any]]:
    """(external_reference, amount in centavos, chave) or a 400 like the API's."""
    if not isinstance(body, dict):
        raise bad_request("Invalid request body", 4)
    poi = body.get("point_of_interaction")
    if not isinstance(poi, dict) or poi.get("type") != "PSP_TRANSFER":
        raise bad_request("point_of_interaction.type must be PSP_TRANSFER", "invalid_poi")
    ref = body.get("external_reference")
    if ref is not None and (not isinstance(ref, str) or not _REF.fullmatch(ref)):
        raise bad_request("Invalid external_reference", "invalid_external_reference")
    tx = body.get("transaction") if isinstance(body.get("transaction"), dict) else {}
    accounts = (tx.get("to") or {}).get("accounts") if isinstance(tx.get("to"), dict) else None
    if not isinstance(accounts, list) or len(accounts) != 1 or not isinstance(accounts[0], dict):
        raise bad_request("transaction.to.accounts must hold one account", "invalid_to")
    dest = accounts[0]
    chave = dest.get("chave")
    if not isinstance(chave, dict) or not chave.get("type") or not chave.get("value"):
        raise bad_request("transaction.to.accounts.chave is required", "invalid_chave")
    amount = parse_cents(dest.get("amount"))
    total = parse_cents(tx.get("total_amount"))
    if amount is None or amount <= 0 or total != amount:
        raise bad_request("Invalid amount", "invalid_amount")
    return ref, amount, {"type": str(chave["type"]), "value": str(chave["value"])}


def _outcome(ps: PayoutsState, chave: dict[str, Any]) -> tuple[str, str]:
    if chave["value"] in ps.rejected_keys:
        return "rejected", "by_bank"
    script = ps.outcomes.pop(0) if ps.outcomes else "processed"
    if script == "processed":
        return "processed", "approved"
    if script == "pending":
        return "approved", ""
    status, _, detail = script.partition(":")
    return status, detail or "failed"


def _create(request: web.Request, ps: PayoutsState, body: Any, collector: int) -> Transfer:
    state = request.app[MP_STATE]
    ref, amount, chave = _validate(body)
    status, detail = _outcome(ps, chave)
    if status in ("processed", "approved"):
        if amount > ps.balance_cents:
            ps.outcomes.insert(0, "pending" if status == "approved" else "processed")
            raise bad_request("Insufficient balance in the account", "insufficient_balance")
        ps.balance_cents -= amount  # processed: gone; approved (pending): reserved
    now = state.now()
    transfer = Transfer(
        id=str(uuid.uuid4()),
        collector_id=collector,
        external_reference=ref,
        amount_cents=amount,
        chave=chave,
        status=status,
        status_detail=detail,
        created=now,
        updated=now,
        origin_id=_e2e(now) if status == "processed" else None,
    )
    ps.transfers[transfer.id] = transfer
    return transfer


async def create_transfer(request: web.Request) -> web.StreamResponse:
    """POST /v1/transaction-intents/process."""
    state, ps = request.app[MP_STATE], request.app[PAYOUTS]
    collector = authenticate(request)
    body = await read_json(request)
    key = _idempotency_key(request, True)
    assert key is not None
    try:
        await check_signature(request, ps.signing_public_key, ps.enforce_signature)
    except MPError:
        ps.refused_signatures += 1
        raise
    ps.creations += 1
    stored = ps.keys.get(key)
    if stored is not None:
        if stored[0] != fingerprint(body):
            raise conflict("Idempotency key already used with a different request body")
        transfer = ps.transfers[stored[1]]
    else:
        transfer = _create(request, ps, body, collector)
        ps.keys[key] = (fingerprint(body), transfer.id)
    if ps.lost_answers > 0:  # processed, but the answer never leaves: the connection drops
        ps.lost_answers -= 1
        if request.transport is not None:
            request.transport.close()
        raise web.HTTPServiceUnavailable()  # nobody reads it: the socket is gone
    return web.json_response(transfer_json(transfer, state.config.utc_offset_hours))


def _transfer(request: web.Request) -> Transfer:
    found = request.app[PAYOUTS].transfers.get(request.match_info["id"])
    if found is None:
        raise MPError(404, "not_found", "The transaction was not found", "not_found")
    return found


async def get_transfer(request: web.Request) -> web.Response:
    """GET /v1/transaction-intents/{id}."""
    authenticate(request)
    transfer = _transfer(request)
    return web.json_response(transfer_json(transfer, request.app[MP_STATE].config.utc_offset_hours))


async def control_view(request: web.Request) -> web.Response:
    """GET /_sandbox/mp/payouts: balance and every transfer."""
    ps, offset = request.app[PAYOUTS], request.app[MP_STATE].config.utc_offset_hours
    return web.json_response(
        {
            "balance_cents": ps.balance_cents,
            "creations": ps.creations,
            "refused_signatures": ps.refused_signatures,
            "transfers": [transfer_json(t, offset) for t in ps.transfers.values()],
        }
    )


async def control_script(request: web.Request) -> web.Response:
    """POST /_sandbox/mp/payouts/script: `outcomes`, `rejected_keys`, `lost_answers`,
    `balance_cents`, `signing_public_key` (PEM), `enforce_signature` (each optional)."""
    ps = request.app[PAYOUTS]
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("a JSON object", 4)
    if "outcomes" in body:
        ps.outcomes = [str(o) for o in body["outcomes"]]
    if "rejected_keys" in body:
        ps.rejected_keys = {str(k) for k in body["rejected_keys"]}
    for name in ("lost_answers", "balance_cents"):
        if name in body:
            setattr(ps, name, int(body[name]))
    if "signing_public_key" in body:
        pem = body["signing_public_key"]
        ps.signing_public_key = parse_public_key(str(pem)) if pem else None
    if "enforce_signature" in body:
        ps.enforce_signature = bool(body["enforce_signature"])
    return await control_view(request)


async def control_settle(request: web.Request) -> web.Response:
    """POST /_sandbox/mp/payouts/{id}/settle `{"status": "processed"}` or
    `{"status": "rejected", "status_detail": "by_bank"}`: a pending transfer ends."""
    ps, state = request.app[PAYOUTS], request.app[MP_STATE]
    transfer = _transfer(request)
    body = await read_json(request)
    status = body.get("status") if isinstance(body, dict) else None
    if transfer.status != "approved" or transfer.status_detail:
        raise MPError(409, "conflict", f"transfer is {transfer.status}, not pending")
    if status == "processed":
        transfer.status, transfer.status_detail = "processed", "approved"
        transfer.origin_id = _e2e(state.now())
    elif status in ("rejected", "error"):
        transfer.status = status
        transfer.status_detail = str(body.get("status_detail") or "by_bank")
        ps.balance_cents += transfer.amount_cents  # the reserved money comes back
    else:
        raise bad_request("status must be processed, rejected or error", 4)
    transfer.updated = state.now()
    return web.json_response(transfer_json(transfer, state.config.utc_offset_hours))


def setup_payouts(app: web.Application) -> None:
    """Register the money-out routes and their control API."""
    app[PAYOUTS] = PayoutsState()
    app.router.add_post("/v1/transaction-intents/process", create_transfer)
    app.router.add_get("/v1/transaction-intents/{id}", get_transfer)
    app.router.add_get(PREFIX, control_view)
    app.router.add_post(f"{PREFIX}/script", control_script)
    app.router.add_post(PREFIX + "/{id}/settle", control_settle)
