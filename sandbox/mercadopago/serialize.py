"""Render payments and refunds as Mercado Pago JSON objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .config import MercadoPagoConfig
from .state import Payment, Refund
from .util import cents_to_number, fee_cents, format_mp_date


def _date(moment: datetime | None, config: MercadoPagoConfig) -> str | None:
    return None if moment is None else format_mp_date(moment, config.utc_offset_hours)


def refund_json(refund: Refund, config: MercadoPagoConfig) -> dict[str, Any]:
    """A refund object as POST/GET /v1/payments/{id}/refunds returns it."""
    return {
        "id": refund.id,
        "payment_id": refund.payment_id,
        "amount": cents_to_number(refund.amount_cents),
        "amount_refunded_to_payer": cents_to_number(refund.amount_cents),
        "adjustment_amount": 0,
        "metadata": refund.metadata,
        "source": {"id": str(config.user_id), "name": config.merchant_name, "type": "collector"},
        "date_created": _date(refund.created, config),
        "unique_sequence_number": None,
        "refund_mode": "standard",
        "reason": None,
        "labels": [],
        "partition_details": [],
        "status": "approved",
    }


def _transaction_details(payment: Payment, config: MercadoPagoConfig) -> dict[str, Any]:
    paid = payment.approved is not None
    fee = fee_cents(payment.amount_cents, config.fee_basis_points) if paid else 0
    return {
        "net_received_amount": cents_to_number(payment.amount_cents - fee) if paid else 0,
        "total_paid_amount": cents_to_number(payment.amount_cents),
        "overpaid_amount": 0,
        "installment_amount": 0,
        "external_resource_url": None,
        "financial_institution": None,
        "payable_deferral_period": None,
        "acquirer_reference": None,
        "bank_transfer_id": payment.id + 7_000_000_000 if paid else None,
        "transaction_id": f"PIXE{payment.id}" if paid else None,
    }


def _fee_details(payment: Payment, config: MercadoPagoConfig) -> list[dict[str, Any]]:
    if payment.approved is None:
        return []
    fee = fee_cents(payment.amount_cents, config.fee_basis_points)
    mp_fee = {"type": "mercadopago_fee", "amount": cents_to_number(fee), "fee_payer": "collector"}
    details = [mp_fee]
    if payment.application_fee_cents:  # the marketplace's fee (a connected seller's charge)
        amount = cents_to_number(payment.application_fee_cents)
        details.append({"type": "application_fee", "amount": amount, "fee_payer": "collector"})
    return details


def _point_of_interaction(payment: Payment) -> dict[str, Any]:
    return {
        "type": "PIX",
        "sub_type": None,
        "application_data": {"name": None, "version": None},
        "transaction_data": {
            "qr_code": payment.qr_code,
            "qr_code_base64": payment.qr_code_base64,
            "ticket_url": payment.ticket_url,
            "transaction_id": None,
            "bank_transfer_id": None,
            "financial_institution": None,
            "bank_info": {
                "payer": {"id": None, "account_id": None, "long_name": None},
                "collector": {"account_id": None, "long_name": None, "account_holder_name": None},
            },
        },
    }


def payment_json(payment: Payment, config: MercadoPagoConfig) -> dict[str, Any]:
    """The full payment object (GET /v1/payments/{id})."""
    return {
        "id": payment.id,
        "date_created": _date(payment.created, config),
        "date_approved": _date(payment.approved, config),
        "date_last_updated": _date(payment.updated, config),
        "date_of_expiration": _date(payment.expires, config),
        "money_release_date": _date(payment.approved, config),
        "operation_type": "regular_payment",
        "issuer_id": None,
        "payment_method_id": "pix",
        "payment_type_id": "bank_transfer",
        "payment_method": {"id": "pix", "type": "bank_transfer", "issuer_id": None},
        "status": payment.status,
        "status_detail": payment.status_detail,
        "currency_id": "BRL",
        "description": payment.description,
        "live_mode": False,
        "sponsor_id": None,
        "authorization_code": None,
        "collector_id": payment.collector_id,
        "payer": payment.payer,
        "metadata": payment.metadata,
        "additional_info": {},
        "external_reference": payment.external_reference,
        "transaction_amount": cents_to_number(payment.amount_cents),
        "transaction_amount_refunded": cents_to_number(payment.refunded_cents),
        "coupon_amount": 0,
        "installments": 1,
        "transaction_details": _transaction_details(payment, config),
        "fee_details": _fee_details(payment, config),
        "refunds": [refund_json(r, config) for r in payment.refunds],
        "captured": True,
        "binary_mode": False,
        "statement_descriptor": None,
        "notification_url": payment.notification_url,
        "point_of_interaction": _point_of_interaction(payment),
    }
