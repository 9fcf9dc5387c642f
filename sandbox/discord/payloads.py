"""Render sandbox records as Discord API JSON objects (the shapes disnake parses)."""

from __future__ import annotations

from typing import Any

from sandbox.discord.models import (
    DM,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_PRESENCES,
    INTENT_MESSAGE_CONTENT,
    BotApp,
    Channel,
    Guild,
    Member,
    Message,
    Role,
    User,
    iso,
)
from sandbox.discord.state import DiscordState


def user(u: User) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": u.id,
        "username": u.username,
        "discriminator": "0",
        "global_name": None if u.bot else u.global_name,
        "avatar": None,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
    }
    if u.bot:
        out["bot"] = True
    return out


def me(u: User, *, with_email: bool = False) -> dict[str, Any]:
    """The /users/@me object (adds account fields)."""
    out = user(u)
    out.update({"mfa_enabled": False, "locale": u.locale, "premium_type": 0, "verified": True})
    if with_email:
        out["email"] = u.email
    return out


def role(r: Role) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.id,
        "name": r.name,
        "color": r.color,
        "colors": {"primary_color": r.color, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": r.position,
        "permissions": str(r.permissions),
        "managed": r.managed,
        "mentionable": False,
        "flags": 0,
    }
    if r.bot_id:
        out["tags"] = {"bot_id": r.bot_id}
    return out


def member(state: DiscordState, g: Guild, m: Member, *, perms: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "user": user(state.users[m.user_id]),
        "nick": m.nick,
        "avatar": None,
        "roles": list(m.roles),
        "joined_at": iso(m.joined_at),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
        "communication_disabled_until": None,
    }
    if perms:
        out["permissions"] = str(state.permissions(g, m.user_id))
    return out


def channel(state: DiscordState, c: Channel) -> dict[str, Any]:
    if c.type == DM:
        others = [state.users[u] for u in c.recipients if not state.users[u].bot]
        return {
            "id": c.id,
            "type": DM,
            "last_message_id": c.last_message_id,
            "flags": 0,
            "recipients": [user(u) for u in others],
        }
    out: dict[str, Any] = {
        "id": c.id,
        "type": c.type,
        "guild_id": c.guild_id,
        "name": c.name,
        "position": c.position,
        "permission_overwrites": [dict(o) for o in c.overwrites],
        "parent_id": c.parent_id,
        "nsfw": False,
        "topic": None,
        "rate_limit_per_user": 0,
        "last_message_id": c.last_message_id,
        "flags": 0,
    }
    if c.type in (10, 11, 12):
        out["owner_id"] = c.owner_id
        out["thread_metadata"] = {
            "archived": c.archived,
            "auto_archive_duration": 1440,
            "archive_timestamp": iso(0),
            "locked": c.locked,
            "invitable": False,
        }
        out["message_count"] = 0
        out["member_count"] = 1
    return out


def guild(state: DiscordState, g: Guild, *, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": g.id,
        "name": g.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "owner_id": g.owner_id,
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [role(r) for r in g.roles.values()],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "description": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": g.locale,
        "public_updates_channel_id": None,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
    }
    if full:
        out.update(
            {
                "unavailable": False,
                "large": False,
                "member_count": len(g.members),
                "joined_at": iso(0),
                "channels": [
                    channel(state, state.channels[c])
                    for c in g.channels
                    if state.channels[c].type not in (10, 11, 12)
                ],
                "threads": [],
                "members": [member(state, g, m) for m in g.members.values()],
                "voice_states": [],
                "presences": [],
                "stage_instances": [],
                "guild_scheduled_events": [],
                "soundboard_sounds": [],
            }
        )
    return out


def attachment(state: DiscordState, a: Any) -> dict[str, Any]:
    url = f"{state.config.base_url}/_sandbox/attachments/{a.id}/{a.filename}"
    return {
        "id": a.id,
        "filename": a.filename,
        "size": len(a.data),
        "url": url,
        "proxy_url": url,
        "content_type": a.content_type,
        "description": a.description,
    }


def message(state: DiscordState, m: Message) -> dict[str, Any]:
    author = state.users[m.author_id]
    out: dict[str, Any] = {
        "id": m.id,
        "type": 19 if m.reference else (20 if m.interaction_id else 0),
        "channel_id": m.channel_id,
        "author": user(author),
        "content": m.content,
        "timestamp": iso(m.created),
        "edited_timestamp": iso(m.edited) if m.edited else None,
        "tts": False,
        "mention_everyone": m.mention_everyone,
        "mentions": [user(state.users[u]) for u in m.mentions],
        "mention_roles": [],
        "attachments": [attachment(state, a) for a in m.attachments],
        "embeds": m.embeds,
        "components": m.components,
        "pinned": False,
        "flags": m.flags,
    }
    if m.guild_id:
        out["guild_id"] = m.guild_id
    if m.application_id:
        out["application_id"] = m.application_id
    if m.webhook_id:
        out["webhook_id"] = m.webhook_id
    if m.reference:
        out["message_reference"] = m.reference
    if m.interaction_id and m.interaction_id in state.interactions:
        inter = state.interactions[m.interaction_id]
        out["interaction_metadata"] = {
            "id": inter.id,
            "type": inter.type,
            "user": user(state.users[inter.user_id]),
            "authorizing_integration_owners": {"0": inter.guild_id}
            if inter.guild_id
            else {"1": inter.user_id},
        }
    return out


# A privileged intent switched on in the Developer Portal (Bot page) shows in the application's
# flags: the *_LIMITED bit for an app in under 100 servers (the verified bit, for apps in 100
# or more, is set by Discord's review and can be given through the control API as `flags`)
# https://discord.com/developers/docs/resources/application#application-object-application-flags
INTENT_FLAGS = {
    INTENT_GUILD_PRESENCES: 1 << 13,  # GATEWAY_PRESENCE_LIMITED
    INTENT_GUILD_MEMBERS: 1 << 15,  # GATEWAY_GUILD_MEMBERS_LIMITED
    INTENT_MESSAGE_CONTENT: 1 << 19,  # GATEWAY_MESSAGE_CONTENT_LIMITED
}


def app_flags(app: BotApp) -> int:
    """The application's `flags`: those set through the control API plus the intents' bits."""
    flags = app.flags
    for intent, bit in INTENT_FLAGS.items():
        if app.enabled_intents & intent:
            flags |= bit
    return flags


def application(state: DiscordState, app: BotApp) -> dict[str, Any]:
    return {
        "id": app.application_id,
        "name": app.name,
        "icon": None,
        "description": "",
        "rpc_origins": [],
        "bot_public": app.bot_public,
        "bot_require_code_grant": False,
        "bot": user(state.users[app.user_id]),
        "owner": user(state.users[app.owner_id]),
        "team": None,
        "verify_key": app.verify_key,
        "flags": app_flags(app),
        "summary": "",
        "tags": [],
        "approximate_guild_count": len(state.bot_guilds(app)),
        "integration_types_config": {"0": {}},
    }
