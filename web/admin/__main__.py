"""`python -m web.admin`: serve the admin API with hypercorn on ADMIN_BIND:ADMIN_PORT."""

from core.bootstrap import start_service
from web.admin import create_app
from web.common import run


def main() -> None:
    settings = start_service("admin")
    run(create_app(settings), settings.admin_bind, settings.admin_port)


if __name__ == "__main__":
    main()
