"""A lost webhook costs seconds: polling and the "Verificar pagamento" button, measured.

Everything runs for real on loopback: the sandbox (Discord + Mercado Pago) in this process, a
private redis-server, SQLite, and the orchestrator with one worker process per bot.

1. Button: buyers buy through Discord (panel → card → PIX card); their PIX is approved at
   Mercado Pago without any webhook, then each presses "Já paguei / Verificar pagamento".
   Printed: press → DM (target ≤ 3 s). The poller is not running, so only the button can
   find the payment.
2. Portal down: `--payments` PIX charges are created; while the portal is down for
   `--outage` seconds (every webhook lost) they are all approved, spread over the outage. No
   webhook ever arrives afterwards (Mercado Pago would retry minutes later). The reconciler's
   poller (`shop.payments.payment_polling`, in this process, as in `python -m reconciler`) runs
   throughout. Printed: approval → DM and "portal back" → DM (target ≤ 20 s after the portal
   returns; 0 when delivered while it was still down).

    .venv/bin/python bench/lost_webhook.py [--bots 4] [--payments 20] [--outage 15] [--presses 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._world import (  # noqa: E402
    hook_dm_times,
    make_orders,
    make_stores,
    pct,
    start_fleet,
    wait_dms,
    world,
)
from ops.fleet_harness import make_store  # noqa: E402


def summary(name: str, values: list[float], expected: int) -> str:
    if not values:
        return f"{name}: nothing delivered of {expected}"
    return (
        f"{name} s: n={len(values)}/{expected} p50={pct(values, 50):.1f} "
        f"p90={pct(values, 90):.1f} max={max(values):.1f}"
    )


async def button_presses(dc, mpc, store, presses: int) -> list[float]:
    """Buy through Discord, approve silently, press the button; press → DM seconds."""
    from ops.demo_buyer import buy, order_id_of, post_panel
    from shop.models import Payment

    panel = await post_panel(store)
    times: list[float] = []
    for i in range(presses):
        buyer = await dc.buyer(f"press{i}", guilds=[store.guild])
        pix = await buy(buyer, panel, store.variations[0].id)
        order_id = order_id_of(pix)
        payment = await Payment.get(order_id=order_id)
        await mpc.approve(int(payment.provider_payment_id), notify=False)
        pressed = time.monotonic()
        reply = await (await buyer.click(pix.message, f"vt:chk:{order_id}")).wait_reply(10)
        await buyer.wait_dm(lambda m: m.embeds, timeout=10)
        times.append(time.monotonic() - pressed)
        assert "✅" in reply.content, reply.content
    return times


async def lost_webhooks(mpc, orders, outage: float) -> tuple[dict[str, float], float]:
    """Approve every order silently over `outage` s; the poller finds them."""
    from shop.models import Payment

    approved: dict[str, float] = {}
    start = time.monotonic()
    await mpc.set_faults(drop=True)  # the portal is down: every notification is lost

    async def one(i: int, order_id: int, buyer_id: str) -> None:
        await asyncio.sleep(max(0.0, start + i * outage / len(orders) - time.monotonic()))
        payment = await Payment.get(order_id=order_id)
        await mpc.approve(int(payment.provider_payment_id))
        approved[buyer_id] = time.monotonic()

    await asyncio.gather(*(one(i, oid, buyer) for i, (oid, buyer, _) in enumerate(orders)))
    await asyncio.sleep(max(0.0, start + outage - time.monotonic()))
    back = time.monotonic()
    await mpc.clear_faults()  # the portal is back; Mercado Pago would retry minutes later
    return approved, back


async def main(args: argparse.Namespace) -> None:
    from fleet.states import InstanceState
    from shop.payments.payment_reconciler import run_forever, with_poller

    per_bot = max(1, -(-args.payments // args.bots))
    async with world("vitrine-bench-lw-") as w:
        sb, dc, mpc, svc, fleet = w.sb, w.dc, w.mpc, w.svc, w.fleet
        stores = await make_stores(fleet, dc, args.bots, per_bot)
        button_store = await make_store(
            fleet,
            dc,
            stock={"1 mês": [f"PRESS-{i}" for i in range(args.presses)]},
            name="Botao",
        )
        await start_fleet(fleet, stores)
        print(f"bots={args.bots} cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}")
        if args.presses:
            await fleet.wait_state(button_store.instance_id, InstanceState.ONLINE, timeout=60)
            await dc.wait_commands(button_store.bot, ["painel", "comprar"], timeout=20)
            presses = await button_presses(dc, mpc, button_store, args.presses)
            print(summary("button: press -> DM", presses, args.presses))
        orders = (await make_orders(svc, dc, stores, per_bot))[: args.payments]
        dm_at = hook_dm_times(sb.discord_state)
        stop = asyncio.Event()
        reconciler = asyncio.create_task(with_poller(run_forever(svc, 30.0, stop), svc, 120, stop))
        approved, back = await lost_webhooks(mpc, orders, args.outage)
        await wait_dms(dm_at, len(orders), 60)
        stop.set()
        await reconciler
        after_approval = [dm_at[b] - approved[b] for b in approved if b in dm_at]
        after_back = [max(0.0, dm_at[b] - back) for b in approved if b in dm_at]
        print(
            f"portal down {args.outage:.0f}s, {len(orders)} approvals, no webhook; "
            f"load={os.getloadavg()[0]:.1f}"
        )
        print(summary("poll: approval -> DM", after_approval, len(orders)))
        print(summary("poll: portal back -> DM", after_back, len(orders)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bots", type=int, default=4)
    parser.add_argument("--payments", type=int, default=20)
    parser.add_argument("--outage", type=float, default=15.0)
    parser.add_argument("--presses", type=int, default=8)
    asyncio.run(asyncio.wait_for(main(parser.parse_args()), 600))
