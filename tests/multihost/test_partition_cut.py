"""A node cut off the network (its veth down) for three lease TTLs: the other node takes
its bots; when the link returns its workers stop without delivering anything; every order
paid during the split is delivered exactly once."""

from __future__ import annotations

import time

import pytest

from tests.multihost.world import a_has_delivered, check_invariants, delivered_from, wait_gone

pytestmark = [pytest.mark.multihost, pytest.mark.e2e, pytest.mark.timeout(240)]


async def test_node_cut_off_loses_its_bots_to_the_other_and_delivers_nothing_after(world):
    w = world
    on_a = await w.on_a()
    logins = {s[3].id: (await w.dc.bot_info(s[0]))["identify_count"] for s in w.stores}
    load = w.load()
    await a_has_delivered(w)  # A delivered some orders before the split
    cut_at = time.time()
    w.net.cut("a")
    try:
        await w.b_takes_over(on_a, cut_at)
    finally:
        w.net.restore("a")
    back_at = time.time()
    left = await wait_gone(list(on_a.values()), timeout=30)
    assert not left, f"A's workers {left} still run after the link came back"
    await load
    infos = await check_invariants(w)
    assert not await delivered_from(w, "a", cut_at), "A delivered during or after the split"
    for store, info in zip(w.stores, infos, strict=True):
        iid = store[3].id
        rec = await w.b.record(iid)
        if iid in on_a:  # B resumed A's session or logged in once; A never logged in again
            assert rec.node == w.b.node
            assert not rec.crashes, "A's workers were fenced off, not crashed"
            assert info["identify_count"] <= logins[iid] + 1, info
        else:
            assert info["identify_count"] == logins[iid], "B's own bots never logged in again"
    print(f"cut {back_at - cut_at:.1f}s; IDENTIFYs {[i['identify_count'] for i in infos]}")
