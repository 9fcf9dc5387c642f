"""`python -m orchestrator.probe`: exit 0 when this node's orchestrator is live (its heartbeat
key is in Redis), 1 otherwise. The orchestrator StatefulSet's readiness probe
(deploy/kubernetes/base/orchestrator.yaml): a rolling update moves to the next pod only once
the new one has adopted, warmed its zygote and joined placement, so two nodes never hand
over at the same time. Not a liveness probe: restarting an orchestrator pod ends its bots,
and a Redis outage must not do that. Imports only redis-py and `fleet.keys` (it runs every
few seconds)."""

from __future__ import annotations

import os
import socket
import sys

import redis

from fleet import keys


def main() -> int:
    url = os.environ.get("REDIS_URL", "").strip()
    node = os.environ.get("ORCHESTRATOR_NODE", "").strip() or socket.gethostname()
    if not url:
        print("REDIS_URL is not set", file=sys.stderr)
        return 1
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            live = client.exists(keys.orchestrator_heartbeat(node))
        finally:
            client.close()
    except redis.RedisError as exc:
        print(f"redis: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if not live:
        print(f"orchestrator node {node}: no heartbeat", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
