"""The admin API and console (:3000, bound to ADMIN_BIND)."""

from __future__ import annotations

from quart import Quart

from core.settings import Settings
from web.admin.auth import install_auth
from web.admin.status import bp as status_bp
from web.common import create_base_app


def create_app(settings: Settings) -> Quart:
    app = create_base_app("admin", settings)
    install_auth(app, settings)
    app.register_blueprint(status_bp)
    return app
