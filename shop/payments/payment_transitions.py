"""The one function every payment status change goes through (as `shop.orders.transition` is
for orders).

`transition_payment` checks each step against `shop.states.PAYMENT_TRANSITIONS` (raising
`IllegalTransition`), sets the status and writes the audit record in the caller's transaction;
the caller saves the payment there, with the other fields it changes. `payment_path` finds the
forward steps a provider picture calls for (a webhook may skip `in_process`, or bring
`approved → refunded` at once).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from core import audit
from shop.models import Payment
from shop.states import PAYMENT_TRANSITIONS, PaymentStatus, check

_STATUS_ONLY = object()  # audit `before` default: {"status": <the status moved from>}


def payment_path(current: PaymentStatus, target: PaymentStatus) -> list[PaymentStatus] | None:
    """The shortest forward path current → target in the table ([] if equal, None if none)."""
    if current == target:
        return []
    queue: deque[tuple[PaymentStatus, list[PaymentStatus]]] = deque([(current, [])])
    seen = {current}
    while queue:
        state, path = queue.popleft()
        for nxt in PAYMENT_TRANSITIONS[state]:
            if nxt == target:
                return [*path, nxt]
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, [*path, nxt]))
    return None


async def transition_payment(
    payment: Payment,
    path: list[PaymentStatus],
    actor: str,
    *,
    using_db: Any,
    action: str = "",
    before: Any = _STATUS_ONLY,
    after: dict[str, Any] | None = None,
) -> PaymentStatus:
    """Move `payment` along `path` (every step checked against the table) and audit it once as
    `action` (default `payment.<final status>`); returns the status it left. Not saved: the
    caller saves it in `using_db`. Raises `IllegalTransition` (nothing changed then)."""
    start = current = PaymentStatus(payment.status)
    if not path:
        return start
    for step in path:
        check(PAYMENT_TRANSITIONS, "payment", current, step)
        current = step
    payment.status = current
    await audit.record(
        actor,
        action or f"payment.{current}",
        "payment",
        payment.id,
        tenant_id=payment.tenant_id,
        before={"status": str(start)} if before is _STATUS_ONLY else before,
        after=after if after is not None else {"status": str(current)},
        using_db=using_db,
    )
    return start
