"""`vitrine ratings` and `vitrine ratings delete ID --reason R` (issue 17) against a real admin
app served by hypercorn: the operator lists a store's ratings and deletes one, audited."""

from __future__ import annotations

import uuid

from core.models import AuditLog
from shop import ratings
from shop.models import Rating
from tests.ops.test_ops_cli import cli, served  # noqa: F401 - a fixture
from tests.shop.test_ratings import delivered, rating_store


async def test_cli_lists_ratings_and_deletes_one_with_a_reason(served, capsys):
    store = await rating_store()
    other = await rating_store(name="Outra")
    for shop, stars in ((store, 1), (store, 5), (other, 3)):
        order = await delivered(shop, buyer=uuid.uuid4().hex[:18])
        await ratings.submit(
            shop["tenant"].id, order.id, order.buyer_discord_id, stars, f"n{stars}"
        )
    bad = await Rating.get(stars=1)
    tenant = str(store["tenant"].id)
    code, out, _ = await cli(capsys, "ratings", "--tenant", tenant)
    assert code == 0 and "n1" in out and "n5" in out and "n3" not in out and "2 rating(s)" in out

    code, _, err = await cli(capsys, "ratings", "delete", str(bad.id))
    assert code == 2 and "needs a reason" in err
    code, _, err = await cli(capsys, "ratings", "delete", str(bad.id), "--tenant", tenant)
    assert code == 2 and "--tenant" in err
    assert (await Rating.get(id=bad.id)).deleted_at is None  # nothing was sent

    code, out, _ = await cli(capsys, "ratings", "delete", str(bad.id), "--reason", "ofensivo")
    assert code == 0 and f"rating {bad.id}" in out and "deleted" in out
    assert (await Rating.get(id=bad.id)).deleted_at is not None
    entry = await AuditLog.get(action="rating.deleted", target_id=str(bad.id))
    assert entry.after == {"reason": "ofensivo"} and entry.actor.startswith("admin:")
    code, _, err = await cli(capsys, "ratings", "delete", str(bad.id), "--reason", "de novo")
    assert code == 1 and "deleted already" in err
    code, out, _ = await cli(capsys, "ratings", "--deleted")
    assert "n1" in out and "n5" not in out
