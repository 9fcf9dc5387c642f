"""Create a message exactly once, and find it again.

disnake's `send` cannot pass `enforce_nonce`, so delivery messages go through the raw route:
Create Message with `nonce` and `enforce_nonce: true` makes a second create with the same nonce
by the same author within Discord's window ("the past few minutes") return the first message
instead of creating one (https://discord.com/developers/docs/resources/message#create-message).
Beyond that window the caller looks for the message (`find_own_message`) before sending.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import disnake
from disnake.http import Route, to_multipart_with_attachments

if TYPE_CHECKING:
    from disnake.types.message import AllowedMentions as AllowedMentionsPayload

HISTORY_LIMIT = 50  # messages read back when checking whether a delivery is already there


log = logging.getLogger("worker.storefront.delivery")


def _mentions(
    bot: disnake.Client, allowed: disnake.AllowedMentions | None
) -> AllowedMentionsPayload:
    """As `Messageable.send` does: the client's defaults, merged with the call's."""
    base = bot.allowed_mentions
    if allowed is None:
        return (base or disnake.AllowedMentions.none()).to_dict()
    return (base.merge(allowed) if base is not None else allowed).to_dict()


async def create_message(
    bot: disnake.Client,
    channel_id: int | str,
    *,
    nonce: str,
    content: str | None = None,
    embed: disnake.Embed | None = None,
    file: tuple[str, bytes] | None = None,
    allowed_mentions: disnake.AllowedMentions | None = None,
    components: list[disnake.ui.ActionRow[Any]] | None = None,
) -> dict[str, Any]:
    """POST the message with `enforce_nonce`; returns Discord's message object (the first
    one if this nonce was already used here within the window)."""
    payload: dict[str, Any] = {
        "nonce": nonce,
        "enforce_nonce": True,
        "allowed_mentions": _mentions(bot, allowed_mentions),
    }
    if content:
        payload["content"] = content
    if embed is not None:
        payload["embeds"] = [embed.to_dict()]
    if components:
        payload["components"] = [row.to_component_dict() for row in components]
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=int(channel_id))
    if file is None:
        return await bot.http.request(route, json=payload)
    files = [disnake.File(io.BytesIO(file[1]), file[0])]
    try:  # nonce fields travel in payload_json, as disnake builds it for send_files
        return await bot.http.request(
            route, form=to_multipart_with_attachments(payload, files), files=files
        )
    finally:
        for f in files:
            f.close()


async def find_own_message(
    bot: disnake.Client, channel_id: int | str, match: Callable[[dict[str, Any]], bool]
) -> str | None:
    """The id of the newest of the bot's own recent messages in the channel that `match`es.
    Messages read back do not reliably carry their nonce, so the caller matches on what it
    wrote (an embed title, an attachment name)."""
    assert bot.user is not None
    me = str(bot.user.id)
    # read as the plain JSON objects they are (disnake types them as its Message TypedDict)
    messages = cast(list[dict[str, Any]], await bot.http.logs_from(int(channel_id), HISTORY_LIMIT))
    for msg in messages:
        if str(msg.get("author", {}).get("id")) == me and match(msg):
            return str(msg["id"])
    return None


async def open_dm(bot: disnake.Client, user_id: str) -> str | None:
    """The id of the bot's DM channel with the user, or None for an unknown user."""
    try:
        data = await bot.http.start_private_message(int(user_id))
    except (disnake.Forbidden, disnake.NotFound) as exc:
        log.info("DM channel with %s not opened: %s", user_id, exc)
        return None
    return str(data["id"])


async def send_dm(bot: disnake.Client, user_id: str, **kwargs: object) -> bool:
    """DM a user; False when they do not accept DMs from the bot (50007) or are unknown.
    With `nonce` the message is created once (`enforce_nonce`); without, as `send` does."""
    channel_id = await open_dm(bot, user_id)
    if channel_id is None:
        return False
    nonce = kwargs.pop("nonce", None)
    try:
        if nonce is not None:
            # create_message()'s own keyword arguments, passed through as given
            await create_message(bot, channel_id, nonce=str(nonce), **kwargs)  # type: ignore[arg-type]
        else:
            channel = bot.get_partial_messageable(int(channel_id), type=disnake.ChannelType.private)
            # send()'s own keyword arguments, passed through as given
            await channel.send(**{k: v for k, v in kwargs.items() if v is not None})  # type: ignore[call-overload]
    except (disnake.Forbidden, disnake.NotFound) as exc:
        log.info("DM to %s refused: %s", user_id, exc)
        return False
    return True
