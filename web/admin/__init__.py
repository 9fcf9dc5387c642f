"""The admin API and console (:3000, bound to ADMIN_BIND)."""

from __future__ import annotations

from quart import Quart

from core.settings import Settings
from web.admin.accounts import bp as accounts_bp
from web.admin.alerts import bp as alerts_bp
from web.admin.api import BoundedIntConverter, install_api_errors
from web.admin.appeals import bp as appeals_bp
from web.admin.auth import install_auth
from web.admin.carts import bp as carts_bp
from web.admin.connected import bp as connected_bp
from web.admin.console import bp as console_bp
from web.admin.console_actions import bp as console_actions_bp
from web.admin.indicators import bp as indicators_bp
from web.admin.instances import bp as instances_bp
from web.admin.monitor import bp as monitor_bp
from web.admin.openapi import install_openapi
from web.admin.orders import bp as orders_bp
from web.admin.payments import bp as payments_bp
from web.admin.payouts import bp as payouts_bp
from web.admin.ratings import bp as ratings_bp
from web.admin.refunds import bp as refunds_bp
from web.admin.status import bp as status_bp
from web.admin.tickets import bp as tickets_bp
from web.admin.transactions import bp as transactions_bp
from web.admin.withdrawals import bp as withdrawals_bp
from web.common import create_base_app
from web.probes import bp as probes_bp


def create_app(settings: Settings) -> Quart:
    app = create_base_app("admin", settings)
    # Every `<int:…>` path parameter is 0..2**31-1: a bigger number is a 404, not a DB error.
    app.url_map.converters["int"] = BoundedIntConverter
    install_openapi(app)
    install_auth(app, settings)
    install_api_errors(app)
    app.register_blueprint(probes_bp)  # /livez, /readyz: no token (web.admin.auth)
    app.register_blueprint(status_bp)
    app.register_blueprint(payments_bp)
    app.register_blueprint(withdrawals_bp)
    app.register_blueprint(payouts_bp)
    app.register_blueprint(monitor_bp)
    app.register_blueprint(appeals_bp)
    app.register_blueprint(instances_bp)
    app.register_blueprint(orders_bp)
    app.register_blueprint(carts_bp)  # issue 17: GET /api/carts/<id>, /api/orders.csv
    app.register_blueprint(refunds_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(transactions_bp)
    app.register_blueprint(connected_bp)  # seller-connected Mercado Pago (issue 20)
    app.register_blueprint(alerts_bp)
    app.register_blueprint(indicators_bp)
    app.register_blueprint(ratings_bp)
    app.register_blueprint(tickets_bp)
    app.register_blueprint(console_bp)
    app.register_blueprint(console_actions_bp)
    return app
