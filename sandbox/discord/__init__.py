"""A fake Discord (REST v10, gateway, OAuth2) that real disnake can talk to over loopback."""

from sandbox.discord.app import build_app
from sandbox.discord.state import DiscordConfig, DiscordState

__all__ = ["DiscordConfig", "DiscordState", "build_app"]
