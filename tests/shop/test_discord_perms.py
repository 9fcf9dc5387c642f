"""Properties of the Discord permission math (shop.discord_perms, shop.bot_requirements),
checked against Discord's documented rules and against the sandbox's own implementation."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.discord.models import Channel as SbChannel
from sandbox.discord.models import Guild as SbGuild
from sandbox.discord.models import Member as SbMember
from sandbox.discord.models import Role as SbRole
from sandbox.discord.models import User as SbUser
from sandbox.discord.state import DiscordState
from shop.bot_requirements import (
    IN_CHANNEL,
    IN_SUPPORT_CHANNEL,
    ChannelInfo,
    Choices,
    GuildSnapshot,
    StoreFeatures,
    check,
    invite_permissions,
    seller_can_manage,
)
from shop.discord_perms import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    ATTACH_FILES,
    EMBED_LINKS,
    MANAGE_GUILD,
    MANAGE_ROLES,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    Overwrite,
    Role,
    base_permissions,
    channel_permissions,
)

GUILD, OWNER, BOT = "100000000000000001", "100000000000000002", "100000000000000003"
ROLE_IDS = [f"2000000000000000{i:02d}" for i in range(6)]
SANDBOX_BITS = (1 << 51) - 1  # the sandbox's "all permissions"
# Bits without ADMINISTRATOR, so a draw does not short-circuit everything.
perm_bits = st.integers(min_value=0, max_value=(1 << 40) - 1).map(lambda p: p & ~ADMINISTRATOR)


@st.composite
def worlds(draw, admin_allowed: bool = False):
    """A guild's roles, the bot's roles and a channel's overwrites."""
    bits = st.integers(min_value=0, max_value=(1 << 40) - 1) if admin_allowed else perm_bits
    roles = {rid: Role(rid, draw(bits), position=i + 1) for i, rid in enumerate(ROLE_IDS)}
    roles[GUILD] = Role(GUILD, draw(bits), position=0)
    member_roles = draw(st.lists(st.sampled_from(ROLE_IDS), unique=True, max_size=4))
    targets = st.sampled_from([(0, GUILD), *((0, r) for r in ROLE_IDS), (1, BOT)])
    overwrites = draw(
        st.lists(
            st.builds(lambda t, a, d: Overwrite(t[1], t[0], a, d), targets, perm_bits, perm_bits),
            unique_by=lambda o: (o.type, o.id),
            max_size=5,
        )
    )
    return roles, member_roles, overwrites


def _perms(roles, member_roles, overwrites, user=BOT, owner=OWNER):
    base = base_permissions(GUILD, owner, user, member_roles, roles)
    return channel_permissions(base, GUILD, user, member_roles, overwrites)


@given(worlds(admin_allowed=True))
def test_owner_and_administrator_have_every_permission_whatever_the_overwrites(world):
    roles, member_roles, overwrites = world
    assert _perms(roles, member_roles, overwrites, owner=BOT) == ALL_PERMISSIONS
    roles = dict(roles, **{ROLE_IDS[0]: Role(ROLE_IDS[0], ADMINISTRATOR, 1)})
    assert _perms(roles, [*member_roles, ROLE_IDS[0]], overwrites) == ALL_PERMISSIONS


@given(worlds(), st.randoms())
def test_order_of_roles_and_overwrites_does_not_matter(world, rnd):
    roles, member_roles, overwrites = world
    shuffled_roles, shuffled_ow = list(member_roles), list(overwrites)
    rnd.shuffle(shuffled_roles)
    rnd.shuffle(shuffled_ow)
    assert _perms(roles, member_roles, overwrites) == _perms(roles, shuffled_roles, shuffled_ow)


@given(worlds(), st.sampled_from([VIEW_CHANNEL, SEND_MESSAGES, MANAGE_ROLES]))
def test_the_member_overwrite_has_the_last_word(world, bit):
    roles, member_roles, overwrites = world
    others = [o for o in overwrites if o.type != 1]
    allowed = _perms(roles, member_roles, [*others, Overwrite(BOT, 1, bit | VIEW_CHANNEL, 0)])
    assert allowed & bit
    denied = _perms(roles, member_roles, [*others, Overwrite(BOT, 1, 0, bit)])
    assert not denied & bit


@given(worlds(), st.sampled_from([SEND_MESSAGES, EMBED_LINKS, MANAGE_ROLES]))
def test_a_role_allow_beats_another_roles_deny(world, bit):
    roles, _member_roles, _ = world
    member_roles = ROLE_IDS[:2]
    overwrites = [
        Overwrite(GUILD, 0, VIEW_CHANNEL | SEND_MESSAGES, 0),
        Overwrite(ROLE_IDS[0], 0, 0, bit),
        Overwrite(ROLE_IDS[1], 0, bit, 0),
    ]
    assert _perms(roles, member_roles, overwrites) & bit


@given(worlds())
def test_implicit_rules_no_view_no_anything_no_send_no_embeds_or_files(world):
    roles, member_roles, overwrites = world
    perms = _perms(roles, member_roles, overwrites)
    if not perms & VIEW_CHANNEL:
        assert perms == 0
    if not perms & SEND_MESSAGES:
        assert not perms & (EMBED_LINKS | ATTACH_FILES)


@settings(max_examples=200)
@given(worlds(admin_allowed=True))
def test_same_answer_as_the_sandbox_discord(world):
    """Two implementations written apart from the same documentation agree."""
    roles, member_roles, overwrites = world
    state = DiscordState()
    state.users = {u: SbUser(u, u) for u in (OWNER, BOT)}
    guild = SbGuild(GUILD, "g", OWNER)
    guild.roles = {
        r.id: SbRole(r.id, GUILD, r.id, r.permissions, r.position) for r in roles.values()
    }
    guild.members[BOT] = SbMember(BOT, list(member_roles))
    channel = SbChannel("300000000000000001", 0, "c", GUILD)
    channel.overwrites = [
        {"id": o.id, "type": o.type, "allow": str(o.allow), "deny": str(o.deny)} for o in overwrites
    ]
    ours = _perms(roles, member_roles, overwrites) & SANDBOX_BITS
    assert ours == state.channel_permissions(guild, channel, BOT) & SANDBOX_BITS


def _snapshot(bot_perms: int, overwrites=(), bot_position=5, buyer_position=1):
    roles = {
        GUILD: Role(GUILD, 0, 0),
        "bot-role": Role("bot-role", bot_perms, bot_position, managed=True),
        "buyer": Role("buyer", 0, buyer_position),
    }
    channels = {
        c: ChannelInfo(c, c, 0, tuple(overwrites)) for c in ("sales", "support", "feedback")
    }
    return GuildSnapshot(GUILD, OWNER, roles, channels, BOT, ("bot-role",))


ALL_CHOSEN = Choices({"sales_log": "sales", "support": "support", "feedback": "feedback"}, "buyer")


@given(st.booleans(), st.booleans())
def test_a_bot_invited_with_the_computed_permissions_lacks_nothing(buyer_role, threads):
    features = StoreFeatures(buyer_role=buyer_role, private_threads=threads)
    snap = _snapshot(invite_permissions(features))
    choices = Choices(
        {
            "sales_log": "sales",
            "feedback": "feedback",
            **({"support": "support"} if threads else {}),
        },
        "buyer" if buyer_role else None,
    )
    assert check(snap, choices) == []


@given(perm_bits)
def test_the_check_names_exactly_what_is_missing(bot_perms):
    problems = check(_snapshot(bot_perms), ALL_CHOSEN)
    by_where = {p.where: p for p in problems if p.code == "channel_missing"}
    granted = channel_permissions(bot_perms, GUILD, BOT, ("bot-role",), ())
    for channel, needed in (("sales", IN_CHANNEL), ("support", IN_SUPPORT_CHANNEL)):
        assert (channel in by_where) == bool(needed & ~granted)
    assert any(p.code == "manage_roles" for p in problems) == (not bot_perms & MANAGE_ROLES)


def test_send_messages_denied_to_everyone_in_one_channel_is_reported_there_only():
    snap = _snapshot(invite_permissions(StoreFeatures(buyer_role=True)))
    channels = dict(snap.channels)
    channels["sales"] = ChannelInfo("sales", "vendas", 0, (Overwrite(GUILD, 0, 0, SEND_MESSAGES),))
    snap = GuildSnapshot(GUILD, OWNER, snap.roles, channels, BOT, snap.bot_roles)
    [problem] = check(snap, ALL_CHOSEN)
    assert (problem.code, problem.where, problem.where_name) == (
        "channel_missing",
        "sales",
        "vendas",
    )
    assert problem.permissions == ("send_messages", "embed_links", "attach_files")


def test_the_buyer_role_must_sit_below_the_bots_highest_role():
    perms = invite_permissions(StoreFeatures(buyer_role=True))
    for bot_pos, buyer_pos, refused in ((5, 1, False), (3, 3, True), (2, 7, True)):
        problems = check(
            _snapshot(perms, bot_position=bot_pos, buyer_position=buyer_pos), ALL_CHOSEN
        )
        assert any(p.code == "role_too_high" for p in problems) == refused


def test_only_the_owner_or_manage_server_may_pick_the_guild():
    roles = {GUILD: Role(GUILD, VIEW_CHANNEL, 0), "mod": Role("mod", MANAGE_GUILD, 1)}
    roles["admin"] = Role("admin", ADMINISTRATOR, 2)
    seller = "400000000000000001"
    assert seller_can_manage(GUILD, seller, seller, None, roles)
    assert not seller_can_manage(GUILD, OWNER, seller, None, roles)  # not a member
    assert not seller_can_manage(GUILD, OWNER, seller, [], roles)
    assert seller_can_manage(GUILD, OWNER, seller, ["mod"], roles)
    assert seller_can_manage(GUILD, OWNER, seller, ["admin"], roles)
