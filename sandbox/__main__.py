"""`python -m sandbox`: serve the Discord and Mercado Pago stand-ins until SIGTERM/SIGINT."""

import sys

from sandbox.server import main

if __name__ == "__main__":
    sys.exit(main())
