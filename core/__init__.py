"""Shared foundations: settings, database, Redis, token vault, logging, i18n."""
