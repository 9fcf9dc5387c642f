"""Errors the `vitrine` command prints as one line."""


class CliError(Exception):
    """A failure the user can act on; printed as one line."""
