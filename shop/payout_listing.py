"""Withdrawals with their automatic payouts, for the operators' lists (admin API, console,
`vitrine withdrawals`): one query for the payouts of a page of withdrawals, and the console's
work queue (what waits for an operator, failed payouts nobody sent again included)."""

from __future__ import annotations

from collections.abc import Iterable

from tortoise.expressions import Q

from shop.models import Payout, Withdrawal
from shop.states import PayoutStatus, WithdrawalStatus

PENDING = (WithdrawalStatus.REQUESTED, WithdrawalStatus.PROCESSING)
# The platform is paying it: nobody may complete or reject it by hand (PayoutInFlight).
IN_FLIGHT = frozenset({PayoutStatus.QUEUED, PayoutStatus.SENT})


async def payouts_by_withdrawal(withdrawal_ids: Iterable[int]) -> dict[int, Payout]:
    """The payout of each withdrawal that has one (one query)."""
    ids = list(withdrawal_ids)
    if not ids:
        return {}
    return {p.withdrawal_id: p for p in await Payout.filter(withdrawal_id__in=ids)}


async def withdrawal_queue(limit: int) -> list[Withdrawal]:
    """Oldest first: requested and processing withdrawals, and failed ones whose payout was
    neither sent again nor handed to an operator yet (`retry` / `manual`)."""
    waiting = Q(status__in=PENDING) | Q(
        status=WithdrawalStatus.FAILED, payout__superseded_by__isnull=True
    )
    return await Withdrawal.filter(waiting).order_by("requested_at", "id").limit(limit)
