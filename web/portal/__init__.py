"""The tenant portal (:3100)."""

from __future__ import annotations

import time

from quart import Quart, current_app, jsonify

from core.settings import Settings
from web.common import create_base_app, dependency_health
from web.portal.setup import configure_portal
from web.portal.webhooks import bp as mercadopago_webhooks_bp
from web.probes import bp as probes_bp


def create_app(settings: Settings) -> Quart:
    app = create_base_app("portal", settings)
    app.register_blueprint(mercadopago_webhooks_bp)
    app.register_blueprint(probes_bp)  # /livez, /readyz (Kubernetes)
    configure_portal(app, settings)

    @app.get("/health")
    async def health():
        """Liveness + dependencies; 200 when the portal can serve, 503 otherwise."""
        deps = await dependency_health(current_app)
        ok = all(d["ok"] for d in deps.values())
        body = {
            "status": "ok" if ok else "degraded",
            "service": "portal",
            "uptime_s": round(time.time() - current_app.config.get("STARTED_AT", time.time()), 1),
            **deps,
        }
        return jsonify(body), 200 if ok else 503

    return app
