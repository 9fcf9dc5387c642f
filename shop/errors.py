"""Errors of the commerce side: one root, subclasses named for what happened.

Each error carries an i18n key for the message a person reads; the web and Discord adapters
translate them once (HTTP status in `web.admin.api.SHOP_ERROR_STATUS`).
"""

from __future__ import annotations

from typing import Any

from core.errors import VitrineError
from core.i18n import t


class ShopError(VitrineError):
    """Root of every commerce error raised on purpose."""

    code = "shop_error"
    message_key = "shop.error.generic"

    def __init__(self, detail: str = "", **params: object) -> None:
        self.detail = detail
        self.params = params
        super().__init__(detail or self.message())

    def message(self, locale: str | None = None) -> str:
        """The user-facing text in `locale` (pt-BR by default)."""
        return t(self.message_key, locale, **self.params)


class OrderNotFound(ShopError):
    code = "order_not_found"
    message_key = "shop.error.order_not_found"


class PaymentNotFound(ShopError):
    code = "payment_not_found"
    message_key = "shop.error.payment_not_found"


class WithdrawalNotFound(ShopError):
    code = "withdrawal_not_found"
    message_key = "shop.error.withdrawal_not_found"


class InvalidStateChange(ShopError):
    """The order/payment/withdrawal is not in a state that allows this action."""

    code = "invalid_state"
    message_key = "shop.error.invalid_state"


class PayoutInFlight(InvalidStateChange):
    """An automatic payout of this withdrawal is queued or sent: only its answer settles it."""

    code = "payout_in_flight"
    message_key = "shop.error.payout_in_flight"


class AutomaticPayoutsOff(InvalidStateChange):
    """PAYOUT_MODE is manual: the platform sends no PIX itself."""

    code = "automatic_payouts_off"
    message_key = "shop.error.automatic_payouts_off"


class InvalidAmount(ShopError):
    code = "invalid_amount"
    message_key = "shop.error.invalid_amount"


class InsufficientBalance(ShopError):
    code = "insufficient_balance"
    message_key = "shop.error.insufficient_balance"


class InvalidPixKey(ShopError):
    code = "invalid_pix_key"
    message_key = "shop.error.invalid_pix_key"


class PaymentProviderError(ShopError):
    """Mercado Pago refused the request; `provider_message` is MP's own text."""

    code = "payment_provider_error"
    message_key = "shop.error.provider"

    def __init__(
        self, status: int, provider_message: str, error: str = "", cause: list[Any] | None = None
    ) -> None:
        self.status = status
        self.provider_message = provider_message
        self.error = error
        self.cause = cause or []
        super().__init__(f"Mercado Pago answered {status} {error}: {provider_message}")


class PaymentProviderUnavailable(PaymentProviderError):
    """Mercado Pago could not be reached, or kept answering 429/5xx after our retries."""

    code = "payment_provider_unavailable"
    message_key = "shop.error.provider_unavailable"


class NegativeBalance(InsufficientBalance):
    """Refunds or chargebacks left the seller owing money: withdrawals are blocked."""

    code = "negative_balance"
    message_key = "shop.error.negative_balance"


class RefundNotCovered(InsufficientBalance):
    """A seller refund would take more than the seller's balance (available + on hold) holds:
    the platform would pay the rest. Refused before anything reaches Mercado Pago."""

    code = "refund_not_covered"
    message_key = "shop.error.refund_not_covered"


class RefundInProgress(InvalidStateChange):
    """Another refund of the same payment (a cart's other line, the whole cart, a second press)
    is in flight: refused before anything is computed or sent (`shop.payments.refund_lease`)."""

    code = "refund_in_progress"
    message_key = "shop.error.refund_in_progress"


class ReasonRequired(ShopError):
    """An operator action that must say why (kept in the audit log) came without a reason."""

    code = "reason_required"
    message_key = "shop.error.reason_required"
