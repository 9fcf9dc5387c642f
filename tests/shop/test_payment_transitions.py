"""Every payment status change goes through one checked, audited function."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from tortoise.transactions import in_transaction

from core.errors import IllegalTransition
from core.models import AuditLog
from shop.models import Payment
from shop.payments.payment_reconciler import Policy, reconcile_once
from shop.payments.payment_transitions import transition_payment
from shop.states import PaymentStatus
from tests.shop.helpers import make_order, make_store

NOW_POLICY = Policy(
    webhook_grace=timedelta(0), recheck_every=timedelta(0), delivery_grace=timedelta(0)
)


async def _payment(status=PaymentStatus.PENDING):
    order = await make_order(await make_store())
    return await Payment.create(
        id=uuid.uuid4(),
        tenant_id=order.tenant_id,
        order_id=order.id,
        amount_cents=order.total_cents,
        status=status,
    )


async def test_forbidden_payment_move_raises_and_changes_nothing(db):
    payment = await _payment(PaymentStatus.APPROVED)
    async with in_transaction() as conn:
        with pytest.raises(IllegalTransition):
            await transition_payment(payment, [PaymentStatus.PENDING], "t", using_db=conn)
    assert payment.status == PaymentStatus.APPROVED
    assert await AuditLog.filter(target_type="payment").count() == 0


async def test_charge_never_at_the_provider_is_cancelled_with_an_audit_record(svc, mp):
    payment = await _payment()
    await Payment.filter(id=payment.id).update(created_at=datetime.now(UTC) - timedelta(minutes=11))
    await reconcile_once(svc, NOW_POLICY)
    payment = await Payment.get(id=payment.id)
    assert payment.status == PaymentStatus.CANCELLED
    assert payment.status_detail == "never_created"
    audit = await AuditLog.get(action="payment.cancelled", target_id=str(payment.id))
    assert audit.actor == "system:reconciler" and audit.before == {"status": "pending"}
