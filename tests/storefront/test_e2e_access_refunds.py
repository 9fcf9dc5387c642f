"""End to end, real workers (issue 16 follow-up): a 30-day VIP bought and renewed in
advance in Discord; refunding the renewal through Mercado Pago shortens the access by its 30
days and leaves the VIP and the store's buyer role (Cliente) in place; refunding the first
order then ends the access and removes both, since no delivered order is left in the store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ops.fleet_harness import make_store
from shop.access_relay import AccessRelay
from shop.models import AccessGrant, AccessStatus, Payment, Tenant, Variation
from shop.payments.sync import sync_payment
from tests.shop.helpers import eventually
from tests.storefront.access_helpers import add_role, until_roles
from tests.storefront.helpers import bought, post_panel, wait_ready, wait_status

pytestmark = pytest.mark.e2e


async def _refund(mpc, svc, order_id: int) -> None:
    payment = await Payment.get(order_id=order_id)
    await mpc.refund(int(payment.provider_payment_id))
    await sync_payment(svc, str(payment.id), "test:webhook")
    await wait_status(order_id, "refunded")


async def test_refunded_renewal_shortens_then_last_refund_removes_vip_and_buyer_role(
    db_fleet, dc, mpc, svc
):
    store = await make_store(db_fleet, dc, stock={"30 dias": ["KEY-1", "KEY-2"]})
    vip = await add_role(dc, store, "VIP")
    monthly = store.variations[0]
    await Variation.filter(id=monthly.id).update(role_ids=[vip], duration_days=30)
    buyer_role = (await Tenant.get(id=monthly.tenant_id)).buyer_role_id
    assert buyer_role
    db_fleet.start()
    await wait_ready(db_fleet, dc, store)
    relay = AccessRelay(svc.redis)
    panel = await post_panel(store)
    first = await bought(store, mpc, svc, panel, monthly.id)
    renewal = await bought(store, mpc, svc, panel, monthly.id)
    await until_roles(dc, store, relay, has={vip, buyer_role})
    grant = await AccessGrant.get(order_id=first)
    assert grant.ends_at is not None and grant.renewals == 1
    end = grant.ends_at

    await _refund(mpc, svc, renewal)
    grant = await AccessGrant.get(id=grant.id)
    assert grant.status == AccessStatus.ACTIVE and grant.ends_at == end - timedelta(days=30)

    async def checked() -> bool:  # the buyer-role check ran (and kept it: `first` stands)
        await relay.tick()
        row = await AccessGrant.get(store_role=True, buyer_discord_id=store.buyer.id)
        return row.roles_removed_at is not None

    await eventually(checked, what="the buyer-role check")
    await until_roles(dc, store, None, has={vip, buyer_role})

    await _refund(mpc, svc, first)
    revoked = await AccessGrant.get(id=grant.id)
    assert revoked.status == AccessStatus.REVOKED and revoked.ended_reason == "refund"
    await until_roles(dc, store, relay, has=set(), lacks={vip, buyer_role})
