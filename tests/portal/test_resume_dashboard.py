"""The seller's dashboard says how the bot came back (issue 14): resumed or a new login."""

from __future__ import annotations

from fleet.models import BotInstance
from fleet.runtime import RuntimeStore
from fleet.states import InstanceState
from tests.helpers.portal import make_seller


async def test_dashboard_shows_resumed_then_logged_in(portal):
    seller = await make_seller(portal)
    instance = await BotInstance.create(tenant=seller.tenant, token_enc="x", application_id="9")
    store = RuntimeStore(portal.config["REDIS"])
    await store.transition(instance.id, InstanceState.STARTING)
    await store.transition(instance.id, InstanceState.ONLINE)
    await store.update(instance.id, connected_by="resume")
    _, html = await seller.text("/dashboard/live")
    assert 'id="gateway-mode"' in html and "retomada (sem novo login" in html
    await store.update(instance.id, connected_by="identify")
    _, html = await seller.text("/dashboard/live")
    assert "novo login" in html and "retomada" not in html
