"""`python -m web.portal`: serve the tenant portal with hypercorn."""

from core.bootstrap import start_service
from web.common import run
from web.portal import create_app


def main() -> None:
    settings = start_service("portal")
    run(create_app(settings), settings.portal_bind, settings.portal_port)


if __name__ == "__main__":
    main()
