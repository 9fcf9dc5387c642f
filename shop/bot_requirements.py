"""What the store's bot needs in its server, from the features the store uses: the invite
link's permission integer and the permission check (what it lacks, where, and the fix).

Pure: the caller reads the guild, its channels and roles and the bot's member record from
Discord and hands them in as `GuildSnapshot`. Mapping (also in docs/portal.md):

* storefront (panels, PIX QR, sales log, feedback): View Channel, Send Messages, Embed Links,
  Attach Files, Read Message History;
* delivery in a private thread (buyer's DMs closed, or the store delivers in the channel) and
  support tickets: Create Private Threads, Send Messages in Threads;
* support tickets: Manage Threads (to lock a closed ticket's thread, so only moderators post
  there; in the support channel); tickets as private channels under a category: Manage
  Channels (and View Channel) in that category;
* buyer role: Manage Roles, with the bot's highest role above the buyer role.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shop.discord_perms import (
    ATTACH_FILES,
    CREATE_PRIVATE_THREADS,
    EMBED_LINKS,
    MANAGE_CHANNELS,
    MANAGE_GUILD,
    MANAGE_ROLES,
    MANAGE_THREADS,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    VIEW_CHANNEL,
    Overwrite,
    Role,
    base_permissions,
    channel_permissions,
    names,
    top_position,
)

STOREFRONT = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY
PRIVATE_THREADS = CREATE_PRIVATE_THREADS | SEND_MESSAGES_IN_THREADS
# Checked in every chosen channel (the bot posts there).
IN_CHANNEL = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES
# The support channel opens a private thread per ticket and locks it when the ticket closes.
IN_SUPPORT_CHANNEL = IN_CHANNEL | PRIVATE_THREADS | MANAGE_THREADS
# Category mode: a private channel per ticket, created under the category.
IN_TICKET_CATEGORY = VIEW_CHANNEL | MANAGE_CHANNELS
CHANNEL_ROLES = ("sales_log", "support", "feedback")

# Privileged gateway intents (disnake's names) and the application flags that say each is
# switched on in the Developer Portal: the verified bit (apps in 100+ servers) or the
# *_LIMITED one (the Bot page switch, under 100 servers)
# https://discord.com/developers/docs/resources/application#application-object-application-flags
INTENT_FLAGS = {
    "presences": (1 << 12) | (1 << 13),  # GATEWAY_PRESENCE(_LIMITED)
    "members": (1 << 14) | (1 << 15),  # GATEWAY_GUILD_MEMBERS(_LIMITED)
    "message_content": (1 << 18) | (1 << 19),  # GATEWAY_MESSAGE_CONTENT(_LIMITED)
}
# Asked for only when enabled (worker.optional_intents): Server Members lets the bot hear a
# buyer rejoin (GUILD_MEMBER_ADD) and give their access roles back within seconds; without
# it the hourly check does. Never required: a missing one must not close the gateway (4014).
OPTIONAL_INTENTS: tuple[str, ...] = ("members",)


@dataclass(frozen=True)
class StoreFeatures:
    """The features a store uses that change what its bot needs."""

    buyer_role: bool = False
    # Delivery falls back to a private thread when a buyer's DMs are closed, whatever the
    # delivery mode, so every store needs it today; kept as a switch so the mapping is explicit.
    private_threads: bool = True
    # Every store can take support tickets (a support channel is picked during onboarding);
    # `ticket_channels`: the seller chose a category, tickets are private channels there.
    tickets: bool = True
    ticket_channels: bool = False


def invite_permissions(features: StoreFeatures) -> int:
    """The permission integer the invite link asks for: exactly what the features need."""
    perms = STOREFRONT
    if features.private_threads:
        perms |= PRIVATE_THREADS
    if features.tickets:
        perms |= MANAGE_THREADS
    if features.ticket_channels:
        perms |= MANAGE_CHANNELS
    if features.buyer_role:
        perms |= MANAGE_ROLES
    return perms


@dataclass(frozen=True)
class ChannelInfo:
    id: str
    name: str
    type: int
    overwrites: tuple[Overwrite, ...] = ()


@dataclass(frozen=True)
class GuildSnapshot:
    """What Discord says about the store's server, read with the bot's token."""

    guild_id: str
    owner_id: str
    roles: Mapping[str, Role]
    channels: Mapping[str, ChannelInfo]
    bot_user_id: str
    bot_roles: tuple[str, ...]


@dataclass(frozen=True)
class Problem:
    """One thing the bot lacks: `code` names the fix text; `where` is a channel id or ''."""

    code: str  # channel_missing | channel_gone | manage_roles | role_too_high | role_invalid
    where: str = ""
    where_name: str = ""
    permissions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Choices:
    """What the seller picked: channel ids by purpose (sales_log, support, feedback) and
    the buyer role."""

    channels: Mapping[str, str | None] = field(default_factory=dict)
    buyer_role_id: str | None = None
    ticket_category_id: str | None = None  # tickets as private channels under it


def bot_channel_permissions(snap: GuildSnapshot, channel: ChannelInfo) -> int:
    base = base_permissions(
        snap.guild_id, snap.owner_id, snap.bot_user_id, snap.bot_roles, snap.roles
    )
    return channel_permissions(
        base, snap.guild_id, snap.bot_user_id, snap.bot_roles, channel.overwrites
    )


def check(snap: GuildSnapshot, choices: Choices) -> list[Problem]:
    """Everything the bot lacks for the chosen channels and buyer role (empty: all good)."""
    problems: list[Problem] = []
    for purpose in CHANNEL_ROLES:
        channel_id = choices.channels.get(purpose)
        if not channel_id:
            continue
        channel = snap.channels.get(channel_id)
        if channel is None:
            problems.append(Problem("channel_gone", channel_id, purpose))
            continue
        needed = IN_SUPPORT_CHANNEL if purpose == "support" else IN_CHANNEL
        missing = needed & ~bot_channel_permissions(snap, channel)
        if missing:
            problems.append(
                Problem("channel_missing", channel.id, channel.name, tuple(names(missing)))
            )
    if choices.ticket_category_id:
        problems.extend(_category_problems(snap, choices.ticket_category_id))
    if choices.buyer_role_id:
        problems.extend(_role_problems(snap, choices.buyer_role_id))
    return problems


def _category_problems(snap: GuildSnapshot, category_id: str) -> Sequence[Problem]:
    category = snap.channels.get(category_id)
    if category is None:
        return [Problem("channel_gone", category_id, "ticket_category")]
    missing = IN_TICKET_CATEGORY & ~bot_channel_permissions(snap, category)
    if missing:
        return [Problem("channel_missing", category.id, category.name, tuple(names(missing)))]
    return []


def _role_problems(snap: GuildSnapshot, role_id: str) -> Sequence[Problem]:
    role = snap.roles.get(role_id)
    if role is None or role.managed or role.id == snap.guild_id:
        return [Problem("role_invalid", role_id)]
    out: list[Problem] = []
    base = base_permissions(
        snap.guild_id, snap.owner_id, snap.bot_user_id, snap.bot_roles, snap.roles
    )
    if not base & MANAGE_ROLES:
        out.append(Problem("manage_roles", permissions=("manage_roles",)))
    # Discord: a member can only assign roles below its own highest role, owner excepted
    # (https://discord.com/developers/docs/topics/permissions#permission-hierarchy).
    if snap.bot_user_id != snap.owner_id and top_position(snap.bot_roles, snap.roles) <= (
        role.position
    ):
        out.append(Problem("role_too_high", role.id))
    return out


def seller_can_manage(
    guild_id: str,
    owner_id: str,
    seller_id: str,
    seller_roles: Sequence[str] | None,
    roles: Mapping[str, Role],
) -> bool:
    """The seller owns the server or has Manage Server there (Administrator included)."""
    if seller_id == owner_id:
        return True
    if seller_roles is None:  # not a member
        return False
    perms = base_permissions(guild_id, owner_id, seller_id, seller_roles, roles)
    return bool(perms & MANAGE_GUILD)  # ADMINISTRATOR already turned into every bit
