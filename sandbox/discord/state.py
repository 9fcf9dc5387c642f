"""In-memory world of the Discord stand-in: apps, users, guilds, channels, messages."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.discord.models import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    ATTACH_FILES,
    BOT_PERMISSIONS,
    DM,
    EMBED_LINKS,
    EVERYONE_PERMISSIONS,
    GUILD_TEXT,
    MENTION_EVERYONE,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    Attachment,
    BotApp,
    Channel,
    Guild,
    Interaction,
    Member,
    Message,
    OAuthApp,
    OAuthGrant,
    OAuthToken,
    Role,
    User,
)

if TYPE_CHECKING:
    from sandbox.discord.gateway import GatewayHub

DISCORD_EPOCH_MS = 1420070400000


class SandboxError(Exception):
    """A Discord-shaped API error: HTTP status, JSON code and message."""

    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.errors = errors  # Discord's per-field `errors` object (Invalid Form Body)


def unknown(kind: str, code: int) -> SandboxError:
    return SandboxError(404, code, f"Unknown {kind}")


@dataclass
class DiscordConfig:
    heartbeat_interval_ms: int = 41250
    interaction_ack_timeout_s: float = 3.0
    interaction_token_ttl_s: float = 15 * 60
    oauth_code_ttl_s: float = 600.0
    oauth_token_ttl_s: int = 604800
    session_buffer_size: int = 1000
    # how long a session whose socket dropped can still be resumed (Discord does not document
    # it; PATCH /_sandbox/config {"session_resume_window_s": 0} makes every dropped one stale)
    session_resume_window_s: float = 120.0
    # Create Message with `enforce_nonce`: "checked for uniqueness in the past few minutes"
    # (https://discord.com/developers/docs/resources/message#create-message); Discord does not
    # say how many, so the sandbox picks 5 min (PATCH /_sandbox/config {"nonce_window_s": …}).
    nonce_window_s: float = 300.0
    base_url: str = "http://127.0.0.1"  # set by the runner once bound


@dataclass
class DiscordState:
    """All sandbox data; every mutation happens on the event loop thread."""

    config: DiscordConfig = field(default_factory=DiscordConfig)
    users: dict[str, User] = field(default_factory=dict)
    bots: dict[str, BotApp] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # bot token -> application id
    guilds: dict[str, Guild] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    channel_messages: dict[str, list[str]] = field(default_factory=dict)
    dm_channels: dict[tuple[str, str], str] = field(default_factory=dict)
    interactions: dict[str, Interaction] = field(default_factory=dict)
    uploads: dict[str, Attachment] = field(default_factory=dict)  # files users gave as options
    oauth_apps: dict[str, OAuthApp] = field(default_factory=dict)
    oauth_grants: dict[str, OAuthGrant] = field(default_factory=dict)
    oauth_tokens: dict[str, OAuthToken] = field(default_factory=dict)
    oauth_refresh: dict[str, str] = field(default_factory=dict)
    unknown_routes: list[str] = field(default_factory=list)
    # (author id, channel id, nonce) -> (message id, monotonic time it was created)
    nonces: dict[tuple[str, str, str], tuple[str, float]] = field(default_factory=dict)
    hub: GatewayHub | None = None
    _seq: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- ids -------------------------------------------------------------
    def snowflake(self) -> str:
        """A new, strictly increasing snowflake (timestamp-based, like Discord's)."""
        with self._lock:
            ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
            self._seq = max((ms << 22) | (1 << 17), self._seq + 1)
            return str(self._seq)

    # ---- creation ----------------------------------------------------------
    def create_user(
        self,
        username: str,
        *,
        global_name: str | None = None,
        locale: str = "pt-BR",
        bot: bool = False,
        email: str | None = None,
    ) -> User:
        user = User(self.snowflake(), username, global_name or username, bot, locale, email)
        self.users[user.id] = user
        return user

    def create_bot(
        self,
        name: str,
        *,
        enabled_intents: int = 0,
        owner_id: str | None = None,
        token: str | None = None,
    ) -> BotApp:
        app_id = self.snowflake()
        bot_user = self.create_user(name, bot=True)
        if owner_id is None:
            owner_id = self.create_user(f"{name}-owner").id
        token = token or f"{secrets.token_urlsafe(18)}.{app_id}.{secrets.token_urlsafe(27)}"
        app = BotApp(app_id, name, token, bot_user.id, owner_id, enabled_intents)
        app.verify_key = secrets.token_hex(32)
        self.bots[app_id] = app
        self.tokens[token] = app_id
        return app

    def create_guild(self, name: str, owner_id: str, *, locale: str = "pt-BR") -> Guild:
        guild = Guild(self.snowflake(), name, owner_id, locale)
        guild.roles[guild.id] = Role(guild.id, guild.id, "@everyone", EVERYONE_PERMISSIONS, 0)
        self.guilds[guild.id] = guild
        self.add_member(guild, owner_id)
        return guild

    def create_role(
        self,
        guild: Guild,
        name: str,
        permissions: int = 0,
        *,
        color: int = 0,
        position: int | None = None,
    ) -> Role:
        if position is None:
            position = max((r.position for r in guild.roles.values()), default=0) + 1
        role = Role(self.snowflake(), guild.id, name, permissions, position, color)
        guild.roles[role.id] = role
        return role

    def create_channel(
        self,
        guild: Guild | None,
        name: str | None,
        *,
        type: int = GUILD_TEXT,
        parent_id: str | None = None,
    ) -> Channel:
        position = len(guild.channels) if guild else 0
        channel = Channel(
            self.snowflake(), type, name, guild.id if guild else None, position, parent_id
        )
        self.channels[channel.id] = channel
        self.channel_messages[channel.id] = []
        if guild:
            guild.channels.append(channel.id)
        return channel

    def add_member(self, guild: Guild, user_id: str, roles: list[str] | None = None) -> Member:
        if user_id not in self.users:
            raise unknown("User", 10013)
        member = guild.members.get(user_id) or Member(user_id)
        for role_id in roles or []:
            if role_id not in guild.roles:
                raise unknown("Role", 10011)
            if role_id not in member.roles:
                member.roles.append(role_id)
        guild.members[user_id] = member
        return member

    def add_bot_to_guild(
        self, guild: Guild, app: BotApp, permissions: int = BOT_PERMISSIONS
    ) -> Role:
        """Make the bot a member with its managed role placed at the top."""
        role = self.create_role(guild, app.name, permissions)
        role.managed, role.bot_id = True, app.user_id
        self.add_member(guild, app.user_id, [role.id])
        if app.application_id not in guild.bots:
            guild.bots.append(app.application_id)
        return role

    def remove_bot_from_guild(self, guild: Guild, app: BotApp) -> None:
        """The bot is no longer a member: its managed role goes with it."""
        if app.application_id in guild.bots:
            guild.bots.remove(app.application_id)
        guild.members.pop(app.user_id, None)
        for role_id in [r.id for r in guild.roles.values() if r.bot_id == app.user_id]:
            del guild.roles[role_id]

    def dm_channel(self, bot_user_id: str, user_id: str) -> Channel:
        key = (bot_user_id, user_id)
        channel_id = self.dm_channels.get(key)
        if channel_id is None:
            channel = self.create_channel(None, None, type=DM)
            channel.recipients = [user_id, bot_user_id]
            self.dm_channels[key] = channel.id
            return channel
        return self.channels[channel_id]

    # ---- lookups -----------------------------------------------------------
    def bot(self, app_id: str) -> BotApp:
        try:
            return self.bots[str(app_id)]
        except KeyError:
            raise unknown("Application", 10002) from None

    def bot_by_token(self, token: str) -> BotApp | None:
        app_id = self.tokens.get(token)
        return self.bots.get(app_id) if app_id else None

    def bot_by_user(self, user_id: str) -> BotApp | None:
        return next((b for b in self.bots.values() if b.user_id == user_id), None)

    def user(self, user_id: str) -> User:
        try:
            return self.users[str(user_id)]
        except KeyError:
            raise unknown("User", 10013) from None

    def guild(self, guild_id: str) -> Guild:
        try:
            return self.guilds[str(guild_id)]
        except KeyError:
            raise unknown("Guild", 10004) from None

    def channel(self, channel_id: str) -> Channel:
        try:
            return self.channels[str(channel_id)]
        except KeyError:
            raise unknown("Channel", 10003) from None

    def message(self, channel_id: str, message_id: str) -> Message:
        msg = self.messages.get(str(message_id))
        if msg is None or msg.deleted or msg.channel_id != str(channel_id):
            raise unknown("Message", 10008)
        return msg

    def attachment(self, attachment_id: str) -> Attachment:
        """A file a user uploaded (slash option) or one of a message's attachments."""
        found = self.uploads.get(str(attachment_id))
        if found is not None:
            return found
        for msg in self.messages.values():
            for att in msg.attachments:
                if att.id == str(attachment_id):
                    return att
        raise unknown("Attachment", 10015)

    def bot_guilds(self, app: BotApp) -> list[Guild]:
        return [g for g in self.guilds.values() if app.application_id in g.bots]

    def user_guilds(self, user_id: str) -> list[Guild]:
        return [g for g in self.guilds.values() if user_id in g.members]

    # ---- permissions -------------------------------------------------------
    def permissions(self, guild: Guild, user_id: str) -> int:
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        member = guild.members.get(user_id)
        if member is None:
            return 0
        perms = guild.roles[guild.id].permissions
        for role_id in member.roles:
            role = guild.roles.get(role_id)
            if role:
                perms |= role.permissions
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def top_role_position(self, guild: Guild, user_id: str) -> int:
        member = guild.members.get(user_id)
        if member is None:
            return -1
        return max((guild.roles[r].position for r in member.roles if r in guild.roles), default=0)

    def channel_permissions(self, guild: Guild, channel: Channel, user_id: str) -> int:
        """Guild permissions with the channel's overwrites applied, in Discord's order:
        @everyone, then the member's roles (denies, then allows), then the member; then the
        implicit rules (no View Channel: nothing; no Send Messages: no embeds or files)
        (https://discord.com/developers/docs/topics/permissions#permission-overwrites,
        https://discord.com/developers/docs/topics/permissions#implicit-permissions)."""
        perms = self.permissions(guild, user_id)
        if perms & ADMINISTRATOR or perms == ALL_PERMISSIONS:
            return perms
        member = guild.members.get(user_id)
        roles = set(member.roles) if member else set()
        found = {(int(o["type"]), str(o["id"])): o for o in channel.overwrites}
        everyone = found.get((0, guild.id))
        if everyone:
            perms = (perms & ~int(everyone["deny"])) | int(everyone["allow"])
        allow = deny = 0
        for role_id in roles - {guild.id}:
            o = found.get((0, role_id))
            if o:
                allow, deny = allow | int(o["allow"]), deny | int(o["deny"])
        perms = (perms & ~deny) | allow
        own = found.get((1, user_id))
        if own:
            perms = (perms & ~int(own["deny"])) | int(own["allow"])
        if not perms & VIEW_CHANNEL:
            return 0
        if not perms & SEND_MESSAGES:
            perms &= ~(EMBED_LINKS | ATTACH_FILES | MENTION_EVERYONE | (1 << 12))
        return perms

    def bot_can_see(self, app: BotApp, channel: Channel) -> bool:
        if channel.guild_id is None:
            return app.user_id in channel.recipients
        guild = self.guilds.get(channel.guild_id)
        return guild is not None and app.application_id in guild.bots

    # ---- messages ----------------------------------------------------------
    def add_message(self, channel: Channel, author_id: str, **fields: Any) -> Message:
        msg = Message(self.snowflake(), channel.id, author_id, channel.guild_id, **fields)
        self.messages[msg.id] = msg
        self.channel_messages.setdefault(channel.id, []).append(msg.id)
        if not msg.ephemeral:
            channel.last_message_id = msg.id
        return msg

    def channel_history(self, channel_id: str, *, include_ephemeral: bool = False) -> list[Message]:
        out = []
        for mid in self.channel_messages.get(str(channel_id), []):
            msg = self.messages[mid]
            if msg.deleted or (msg.ephemeral and not include_ephemeral):
                continue
            out.append(msg)
        return out

    def dispatch(self, app: BotApp, event: str, data: dict[str, Any]) -> int:
        """Send a gateway event to the bot's sessions; returns how many got it."""
        if self.hub is None:
            return 0
        return self.hub.dispatch(app.application_id, event, data)

    # ---- oauth -------------------------------------------------------------
    def create_oauth_app(
        self,
        redirect_uris: list[str],
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        name: str = "Sandbox OAuth app",
    ) -> OAuthApp:
        app = OAuthApp(
            client_id or self.snowflake(),
            client_secret or secrets.token_urlsafe(24),
            list(redirect_uris),
            name,
        )
        self.oauth_apps[app.client_id] = app
        return app

    def issue_token(self, client_id: str, user_id: str, scope: str) -> OAuthToken:
        tok = OAuthToken(
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(24),
            client_id,
            user_id,
            scope,
            time.time() + self.config.oauth_token_ttl_s,
        )
        self.oauth_tokens[tok.access_token] = tok
        self.oauth_refresh[tok.refresh_token] = tok.access_token
        return tok

    def bearer(self, access_token: str) -> OAuthToken | None:
        tok = self.oauth_tokens.get(access_token)
        if tok is None or tok.revoked or tok.expires < time.time():
            return None
        return tok
