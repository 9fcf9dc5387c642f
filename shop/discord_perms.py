"""Discord permission math for the store's bot: what it may do in a channel, what it lacks
for the features in use, and the permission integer its invite link asks for.

Pure functions over plain data (no I/O), following Discord's documented algorithm
(https://discord.com/developers/docs/topics/permissions#permission-overwrites):
the guild owner has every permission; base = @everyone role | each of the member's roles;
ADMINISTRATOR grants everything and no overwrite takes it away; then, in a channel, the
@everyone overwrite, then the member's role overwrites (all denies, then all allows), then the
member's own overwrite. Implicit permissions
(https://discord.com/developers/docs/topics/permissions#implicit-permissions): without
VIEW_CHANNEL a member has no other permission in the channel; without SEND_MESSAGES it cannot
embed links, attach files, mention @everyone or send TTS either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntFlag

# Permission bits (https://discord.com/developers/docs/topics/permissions#permissions-bitwise-permission-flags).
MANAGE_CHANNELS = 1 << 4  # also: create a channel (a ticket's private channel) in a category
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
SEND_TTS_MESSAGES = 1 << 12
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
MANAGE_ROLES = 1 << 28
MANAGE_THREADS = 1 << 34  # lock a thread (a closed ticket's)
CREATE_PRIVATE_THREADS = 1 << 36
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 53) - 1  # every bit Discord defines today fits in 53 bits

# What losing SEND_MESSAGES implicitly takes away in a text channel.
_NEEDS_SEND = EMBED_LINKS | ATTACH_FILES | MENTION_EVERYONE | SEND_TTS_MESSAGES

PERMISSION_NAMES: dict[int, str] = {
    VIEW_CHANNEL: "view_channel",
    SEND_MESSAGES: "send_messages",
    EMBED_LINKS: "embed_links",
    ATTACH_FILES: "attach_files",
    READ_MESSAGE_HISTORY: "read_message_history",
    MANAGE_ROLES: "manage_roles",
    CREATE_PRIVATE_THREADS: "create_private_threads",
    SEND_MESSAGES_IN_THREADS: "send_messages_in_threads",
    MANAGE_THREADS: "manage_threads",
    MANAGE_CHANNELS: "manage_channels",
}


class OverwriteType(IntFlag):
    ROLE = 0
    MEMBER = 1


@dataclass(frozen=True)
class Overwrite:
    """One entry of a channel's `permission_overwrites` (ids as strings, bits as ints)."""

    id: str
    type: int  # 0 role, 1 member
    allow: int
    deny: int


@dataclass(frozen=True)
class Role:
    id: str
    permissions: int
    position: int
    managed: bool = False


def base_permissions(
    guild_id: str,
    owner_id: str,
    user_id: str,
    member_roles: Iterable[str],
    roles: Mapping[str, Role],
) -> int:
    """Guild-level permissions of a member (the guild's id is the @everyone role's id)."""
    if user_id == owner_id:
        return ALL_PERMISSIONS
    everyone = roles.get(guild_id)
    perms = everyone.permissions if everyone else 0
    for role_id in member_roles:
        role = roles.get(role_id)
        if role is not None:
            perms |= role.permissions
    return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms


def channel_permissions(
    base: int,
    guild_id: str,
    user_id: str,
    member_roles: Iterable[str],
    overwrites: Iterable[Overwrite],
) -> int:
    """Apply a channel's overwrites to `base`, then the implicit rules."""
    if base & ADMINISTRATOR:
        return ALL_PERMISSIONS
    by_key = {(o.type, o.id): o for o in overwrites}
    perms = base
    everyone = by_key.get((OverwriteType.ROLE, guild_id))
    if everyone is not None:
        perms = (perms & ~everyone.deny) | everyone.allow
    allow = deny = 0
    for role_id in set(member_roles) - {guild_id}:
        found = by_key.get((OverwriteType.ROLE, role_id))
        if found is not None:
            allow |= found.allow
            deny |= found.deny
    perms = (perms & ~deny) | allow
    member = by_key.get((OverwriteType.MEMBER, user_id))
    if member is not None:
        perms = (perms & ~member.deny) | member.allow
    return implicit(perms)


def implicit(perms: int) -> int:
    """Discord's implicit permissions in a text channel."""
    if not perms & VIEW_CHANNEL:
        return 0
    if not perms & SEND_MESSAGES:
        perms &= ~_NEEDS_SEND
    return perms


def top_position(member_roles: Iterable[str], roles: Mapping[str, Role]) -> int:
    """The position of the member's highest role (0: only @everyone)."""
    return max((roles[r].position for r in member_roles if r in roles), default=0)


def names(bits: int) -> list[str]:
    """The names of the bits we check, lowest first."""
    return [name for bit, name in sorted(PERMISSION_NAMES.items()) if bits & bit]
