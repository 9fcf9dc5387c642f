"""Plain data records held by the Discord stand-in."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
MENTION_EVERYONE = 1 << 17
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MANAGE_ROLES = 1 << 28
USE_APPLICATION_COMMANDS = 1 << 31
ALL_PERMISSIONS = (1 << 51) - 1
EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_APPLICATION_COMMANDS
)
MANAGE_THREADS = 1 << 34
CREATE_PRIVATE_THREADS = 1 << 36
SEND_MESSAGES_IN_THREADS = 1 << 38
# What Vitrine's invite link asks for by default (a bot added without a buyer role also
# gets Manage Roles here, as the sandbox always did; Manage Threads locks closed tickets).
BOT_PERMISSIONS = (
    268553216
    | USE_APPLICATION_COMMANDS
    | CREATE_PRIVATE_THREADS
    | SEND_MESSAGES_IN_THREADS
    | MANAGE_THREADS
)

# Privileged gateway intents.
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT
INTENT_NAMES = {
    "members": INTENT_GUILD_MEMBERS,
    "presences": INTENT_GUILD_PRESENCES,
    "message_content": INTENT_MESSAGE_CONTENT,
}
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12

# Channel types.
GUILD_TEXT = 0
DM = 1
GUILD_CATEGORY = 4
PRIVATE_THREAD = 12

EPHEMERAL = 1 << 6
LOADING = 1 << 7


def iso(ts: float) -> str:
    """Return an ISO-8601 UTC timestamp as Discord renders it."""
    t = time.gmtime(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(ts % 1 * 1e6):06d}+00:00"


@dataclass
class User:
    id: str
    username: str
    global_name: str | None = None
    bot: bool = False
    locale: str = "pt-BR"
    email: str | None = None


@dataclass
class Role:
    id: str
    guild_id: str
    name: str
    permissions: int
    position: int = 0
    color: int = 0
    managed: bool = False
    bot_id: str | None = None


@dataclass
class Channel:
    id: str
    type: int
    name: str | None = None
    guild_id: str | None = None
    position: int = 0
    parent_id: str | None = None
    recipients: list[str] = field(default_factory=list)
    owner_id: str | None = None
    last_message_id: str | None = None
    # Channel permission overwrites as Discord returns them: {id, type (0 role, 1 member),
    # allow, deny} (https://discord.com/developers/docs/resources/channel#overwrite-object)
    overwrites: list[dict[str, Any]] = field(default_factory=list)
    # Threads only (sandbox.discord.threads): archived and locked by Modify Channel.
    archived: bool = False
    locked: bool = False


@dataclass
class Member:
    user_id: str
    roles: list[str] = field(default_factory=list)
    joined_at: float = field(default_factory=time.time)
    nick: str | None = None


@dataclass
class Guild:
    id: str
    name: str
    owner_id: str
    locale: str = "pt-BR"
    roles: dict[str, Role] = field(default_factory=dict)
    channels: list[str] = field(default_factory=list)
    members: dict[str, Member] = field(default_factory=dict)
    bots: list[str] = field(default_factory=list)  # application ids


@dataclass
class Attachment:
    id: str
    filename: str
    data: bytes
    content_type: str = "application/octet-stream"
    description: str | None = None


@dataclass
class Message:
    id: str
    channel_id: str
    author_id: str
    guild_id: str | None = None
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    flags: int = 0
    created: float = field(default_factory=time.time)
    edited: float | None = None
    application_id: str | None = None
    webhook_id: str | None = None
    interaction_id: str | None = None
    reference: dict[str, Any] | None = None
    deleted: bool = False
    visible_to: str | None = None  # ephemeral: the only user who sees it
    # what the sender asked for (None: the field was absent, so Discord parses every mention)
    allowed_mentions: dict[str, Any] | None = None
    mention_everyone: bool = False  # @everyone/@here in the content actually pinged
    mentions: list[str] = field(default_factory=list)  # user ids pinged
    nonce: str | int | None = None  # as sent on Create Message (echoed in its answer only)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)


@dataclass
class FaultRule:
    """Answer the next `count` matching REST requests with an error or a delay."""

    # "ratelimit" | "error" | "delay" | "hold": apply the request, then do not answer for
    # `delay_ms` (0: 60 s) or until the client hangs up — "it reached Discord, the answer
    # never came back" (a client killed or cut off right after its request)
    kind: str
    method: str = "*"
    path: str = "*"  # fnmatch pattern on the path after /api/v10
    count: int = 1
    status: int = 500
    retry_after: float = 0.25
    is_global: bool = False
    delay_ms: int = 0


@dataclass
class Faults:
    invalid_token: bool = False  # REST 401 and gateway 4004
    gateway_auth_fail: bool = False  # gateway 4004 only (token reset after login)
    no_ready: bool = False
    # RESUME refused: 0 off, 9 op 9 INVALID_SESSION d:false, 4007 / 4009 close codes
    refuse_resume: int = 0
    resume_delay_ms: int = 0  # hold every RESUME this long (events meanwhile are replayed)
    delay_ms: int = 0
    dms_closed: set[str] = field(default_factory=set)
    missing_permissions: set[str] = field(default_factory=set)
    rules: list[FaultRule] = field(default_factory=list)


@dataclass
class SessionStartLimit:
    total: int = 1000
    remaining: int = 1000
    reset_after_ms: int = 86_400_000
    window_start: float = field(default_factory=time.monotonic)
    max_concurrency: int = 1

    def refresh(self) -> None:
        """Reset the budget when the window has passed."""
        if (time.monotonic() - self.window_start) * 1000 >= self.reset_after_ms:
            self.remaining = self.total
            self.window_start = time.monotonic()

    def reset_after(self) -> int:
        elapsed = (time.monotonic() - self.window_start) * 1000
        return max(0, int(self.reset_after_ms - elapsed))


@dataclass
class BotStats:
    identify_count: int = 0
    resume_count: int = 0
    login_count: int = 0
    open_connections: int = 0
    total_connections: int = 0
    last_close_code: int | None = None
    replayed_events: int = 0
    invalid_sessions: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BotApp:
    application_id: str
    name: str
    token: str
    user_id: str
    owner_id: str
    enabled_intents: int = 0  # privileged intents enabled in the "developer portal"
    flags: int = 0
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)
    guild_commands: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    stats: BotStats = field(default_factory=BotStats)
    session_limit: SessionStartLimit = field(default_factory=SessionStartLimit)
    verify_key: str = "0" * 64
    # "Public Bot" in the Developer Portal: true for a new application, anyone can add the bot
    # to a server (https://discord.com/developers/docs/resources/application#application-object)
    bot_public: bool = True


@dataclass
class Interaction:
    id: str
    token: str
    application_id: str
    type: int
    user_id: str
    channel_id: str
    guild_id: str | None
    data: dict[str, Any]
    locale: str = "pt-BR"
    message_id: str | None = None
    created: float = field(default_factory=time.monotonic)
    callback_type: int | None = None
    original_id: str | None = None
    followup_ids: list[str] = field(default_factory=list)
    modal: dict[str, Any] | None = None
    autocomplete: list[dict[str, Any]] | None = None
    deferred_ephemeral: bool = False
    updated: bool = False
    error: str | None = None


@dataclass
class OAuthApp:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    name: str = "Sandbox OAuth app"


@dataclass
class OAuthGrant:
    code: str
    client_id: str
    user_id: str
    scope: str
    redirect_uri: str | None
    expires: float
    used: bool = False


@dataclass
class OAuthToken:
    access_token: str
    refresh_token: str
    client_id: str
    user_id: str
    scope: str
    expires: float
    revoked: bool = False
