"""What the orchestrator does with its bots when it stops: keep them or hand them over.

* `keep` (the default; one machine under supervisord): the workers keep running and keep
  renewing their own leases, and the next orchestrator of this node adopts them, so an
  orchestrator restart disconnects no bot (docs/decisions.md, "Several orchestrator nodes").
* `handover` (`VITRINE_ORCH_ON_STOP=handover`; Kubernetes, where the pod and every process in
  it end when the orchestrator, its main process, exits): on SIGTERM the node stops counting
  as live (its heartbeat key is deleted, so the other nodes' placement leaves it out at once),
  stops its workers (SIGUSR2: stop but leave the gateway session resumable, so the next
  node's worker RESUMEs; SIGKILL after `VITRINE_POLICY_STOP_GRACE`), releases each lease
  as its worker is gone, and marks those bots dirty: the other nodes' next change pass
  (`VITRINE_ORCH_PASS_S`, 2 s) takes them, instead of waiting for the leases to expire
  (`VITRINE_LEASE_TTL_S`, 30 s) after the kill. The pod's `terminationGracePeriodSeconds` must
  cover the stop grace (deploy/kubernetes/base/orchestrator.yaml).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import redis.asyncio as aioredis

from core.tuning import TuningError, tuning_name
from fleet import keys
from fleet.control_protocol import mark_dirty
from orchestrator.supervisor import Supervisor

log = logging.getLogger("orchestrator")

ON_STOP_ENV = "VITRINE_ORCH_ON_STOP"
KEEP = "keep"
HANDOVER = "handover"


def on_stop(environ: Mapping[str, str]) -> str:
    """`keep` (default) or `handover`; `TuningError` names the variable otherwise."""
    value = tuning_name(ON_STOP_ENV, KEEP, environ)
    if value not in (KEEP, HANDOVER):
        raise TuningError(ON_STOP_ENV, f"{value!r} is neither {KEEP!r} nor {HANDOVER!r}", HANDOVER)
    return value


async def hand_over(redis: aioredis.Redis, sup: Supervisor) -> int:
    """Leave the fleet: not live any more, every worker stopped, every lease released, the
    bots marked for the other nodes. Returns how many bots were handed over."""
    await redis.delete(keys.orchestrator_heartbeat(sup.node))
    ids = set(sup.workers) | set(sup.placement.held)
    stopped = await sup.drain()  # stops the workers, releases the leases as each one ends
    await mark_dirty(redis, *ids)
    log.info(
        "orchestrator node %s handed over %d bot(s) (%d worker(s) stopped)",
        sup.node,
        len(ids),
        stopped,
    )
    return len(ids)
