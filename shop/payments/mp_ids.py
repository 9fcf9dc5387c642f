"""Which Mercado Pago API a provider id belongs to, told from the id alone.

A payment we create is keyed by the id the API gave it (`Payment.provider_payment_id`): the
Payments API numbers its payments (an int64, "id": 1234567890, developers/en/reference/
payments/_payments/post), the Orders API names its orders with a string ("id":
"ORD01JQ4S4KY8HWQ6NA5PXB65B3D3", developers/en/reference/orders/online-payments/create/post).
So the id records which API created the payment: it is read, refunded and cancelled through
that API whatever `MERCADOPAGO_API` says today, with no column to keep in step.
"""

from __future__ import annotations

PAYMENTS = "payments"  # /v1/payments, the legacy path
ORDERS = "orders"  # /v1/orders
APIS = (PAYMENTS, ORDERS)

PAYMENT_ID_MAX = 20  # Mercado Pago payment ids are ~11 digits today; an int64 has 19
ORDER_ID_MAX = 64  # "ORD" + a 26-character ULID today; bounded before any lookup


def is_payment_id(pid: str) -> bool:
    """A Payments API id: ASCII digits ('²'.isdigit() is True too), at most 20."""
    return 0 < len(pid) <= PAYMENT_ID_MAX and pid.isascii() and pid.isdigit()


def is_order_id(pid: str) -> bool:
    """An Orders API id: ASCII letters and digits starting with a letter, at most 64."""
    return 0 < len(pid) <= ORDER_ID_MAX and pid.isascii() and pid.isalnum() and pid[0].isalpha()


def is_provider_id(pid: str) -> bool:
    """An id either API could have given one of our charges."""
    return is_payment_id(pid) or is_order_id(pid)


def api_of(pid: str) -> str:
    """The API that owns `pid`: numbers are Payments API payments, the rest Orders API orders."""
    return PAYMENTS if pid.isascii() and pid.isdigit() else ORDERS
