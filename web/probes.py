"""Kubernetes probes, on both web apps, without a token (deploy/kubernetes).

`/livez`: the process serves requests (its event loop answers); it checks nothing outside the
process, so a database or Redis outage does not make Kubernetes restart every replica.
`/readyz`: the process can do its job: the database and Redis answer (`dependency_health`);
while they do not, the replica is taken out of its Service and put back when they answer.
The portal's `/health` (Docker's HEALTHCHECK, scripts/run-bot.sh) answers as `/readyz` does.
"""

from __future__ import annotations

from quart import Blueprint, current_app, jsonify

from web.common import dependency_health

bp = Blueprint("probes", __name__)
PROBE_PATHS = frozenset({"/livez", "/readyz"})


@bp.get("/livez")
async def livez():
    """200 while the process answers at all."""
    return jsonify({"status": "ok", "service": current_app.config.get("SERVICE_NAME")})


@bp.get("/readyz")
async def readyz():
    """200 when the database and Redis answer, 503 otherwise."""
    deps = await dependency_health(current_app)
    ok = all(d["ok"] for d in deps.values())
    body = {"status": "ok" if ok else "degraded", **deps}
    return jsonify(body), 200 if ok else 503
