"""A gateway session outlives its worker process (issue 14, decision 11).

The worker keeps its Discord session (`session_id`, `resume_gateway_url`, the last sequence it
has handled) in Redis (`fleet.keys.gateway_session`), written with its heartbeats. Its
successor, started after a crash, a stuck kill or an adoption, connects to the resume URL and
sends op 6 RESUME; Discord replays what the session missed and answers RESUMED. Only op 9
INVALID_SESSION `d: false` (or close 4007/4009), or no stored session, costs an IDENTIFY,
and disnake's own reconnect loop already does that fallback.

disnake is used as is except for one patch, in this module: `ResumingWebSocket` replaces
`disnake.client.DiscordWebSocket` so that (1) the first connection of a process RESUMEs the
stored session instead of IDENTIFYing, after filling the cache a READY would have filled (the
store's guild, the application id), and (2) every IDENTIFY sent is announced as the event
`gateway_identify` (the daily login budget counts IDENTIFYs, not process starts). Checked
against `DISNAKE_CHECKED`, which pyproject pins; `check_disnake()` refuses another version.

Replayed dispatches are handled once (`ReplayGate`): every interaction is claimed with a
Redis SET NX on its id before any handler sees it (a copy replayed after a crash finds the
claim and is dropped), and an interaction replayed after its 3 s window is dropped quietly
(an answer would only get 10062 Unknown interaction / 40060 already acknowledged).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import disnake
import disnake.client
import redis.asyncio as aioredis
from disnake.gateway import DiscordWebSocket
from redis.exceptions import RedisError

from fleet import keys

log = logging.getLogger("worker.resume")

DISNAKE_CHECKED = "2.12.2"  # the disnake whose gateway code this patch was read against
INTERACTION_WINDOW_S = 3.0  # an interaction must get its initial response within 3 s


def check_disnake(version: str = disnake.__version__) -> None:
    """The patch below relies on disnake internals; another version must be re-checked."""
    if version != DISNAKE_CHECKED:
        raise RuntimeError(f"worker.resume was checked against disnake {DISNAKE_CHECKED}")


@dataclass(frozen=True)
class StoredSession:
    session_id: str
    resume_url: str
    seq: int
    app_id: int | None
    at: float
    intents: int | None = None  # what the session was identified with (a RESUME keeps them)


class SessionStore:
    """The instance's stored gateway session in Redis (one hash with a TTL)."""

    def __init__(self, redis: aioredis.Redis, instance_id: int) -> None:
        self.redis, self.key = redis, keys.gateway_session(instance_id)

    async def load(self) -> StoredSession | None:
        # the client decodes responses to str (core.redis: decode_responses=True)
        raw = cast(dict[str, str], await self.redis.hgetall(self.key))
        try:
            return StoredSession(
                raw["session_id"],
                raw["resume_url"],
                int(raw["seq"]),
                int(raw["app_id"]) if raw.get("app_id") else None,
                float(raw["at"]),
                int(raw["intents"]) if raw.get("intents") else None,
            )
        except (KeyError, ValueError):
            return None

    async def save(
        self,
        session_id: str,
        resume_url: str,
        seq: int,
        app_id: int | None,
        intents: int | None = None,
    ) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(
            self.key,
            mapping={
                "session_id": session_id,
                "resume_url": resume_url,
                "seq": seq,
                "app_id": app_id or "",
                "at": f"{time.time():.3f}",
                "intents": intents or "",
            },
        )
        pipe.expire(self.key, keys.GATEWAY_SESSION_TTL)
        await pipe.execute()

    async def clear(self) -> None:
        await self.redis.delete(self.key)


@dataclass
class ResumeState:
    """What the patched websocket reads from the bot: the session to resume (consumed by the
    first connection), the replay gate, and how the current session began."""

    plan: StoredSession | None
    gate: ReplayGate
    guild_id: int | None
    mode: str | None = None  # "resume" or "identify": how the last connection began
    start_seq: int = 0  # where the current session began here (1: READY; the RESUME's seq)
    _floor: int | None = field(default=None, repr=False)  # seq seen at the previous beat
    _sid: str | None = field(default=None, repr=False)

    def handled_seq(self, session_id: str, seq: int) -> int:
        """The sequence to store: the one seen a beat ago (handlers of later events may still
        be running), so a crash replays up to two beats of events rather than losing one."""
        if session_id != self._sid or self._floor is None:
            # a session this process has not stored yet: from where it began here
            self._sid, self._floor = session_id, min(self.start_seq, seq)
        stored, self._floor = self._floor, seq
        return min(stored, seq)


class ReplayGate:
    """Wraps the INTERACTION_CREATE parser: claim each interaction once, drop stale replays."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.replaying = False  # between sending RESUME and receiving RESUMED
        self.dropped_late = 0
        self.dropped_duplicate = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def install(self, parsers: dict[str, Callable[[Any], None]]) -> None:
        parse, ready, resumed = (
            parsers["INTERACTION_CREATE"],
            parsers["READY"],
            parsers["RESUMED"],
        )

        def gate(data: dict[str, Any]) -> None:
            # replayed or live is decided now: RESUMED may be parsed before the task runs
            task = asyncio.get_running_loop().create_task(self.admit(data, parse, self.replaying))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        def end_replay(parser: Callable[[Any], None]) -> Callable[[Any], None]:
            def wrapped(data: Any) -> None:
                self.replaying = False
                parser(data)

            return wrapped

        parsers["INTERACTION_CREATE"] = gate
        parsers["READY"] = end_replay(ready)
        parsers["RESUMED"] = end_replay(resumed)

    async def admit(
        self, data: dict[str, Any], parse: Callable[[Any], None], replayed: bool
    ) -> None:
        """Parse the interaction (handlers run) unless it is a stale replay or claimed."""
        inter_id = str(data.get("id"))
        if replayed:
            age = time.time() - disnake.utils.snowflake_time(int(inter_id)).timestamp()
            if age > INTERACTION_WINDOW_S:
                self.dropped_late += 1
                log.info("replayed interaction %s is %.1f s old: dropped", inter_id, age)
                return
        try:
            first = await self.redis.set(
                keys.interaction_claim(inter_id), "1", nx=True, ex=keys.INTERACTION_CLAIM_TTL
            )
        except (RedisError, OSError) as exc:
            # answering twice gets 40060 from Discord; not answering loses the buyer's click
            log.warning("interaction claim failed (%s): handling it anyway", type(exc).__name__)
            first = True
        if not first:
            self.dropped_duplicate += 1
            log.info("interaction %s was already handled: replayed copy dropped", inter_id)
            return
        try:
            parse(data)
        except Exception:
            log.exception("INTERACTION_CREATE %s failed to parse", inter_id)


async def hydrate(client: disnake.Client, plan: StoredSession, guild_id: int | None) -> None:
    """Fill what READY would have: a RESUME replays only what was missed, so a new process
    learns its application id and the store's guild (roles, channels) by REST first; without
    the guild, a replayed member join or an interaction's `guild` would be discarded."""
    state = client._connection
    if state.application_id is None and plan.app_id is not None:
        state.application_id = plan.app_id
    if guild_id is None:
        return
    try:
        data: Any = await client.http.get_guild(guild_id, with_counts=False)
        data["channels"] = await client.http.get_all_guild_channels(guild_id)
        if state.self_id is not None:
            data["members"] = [await client.http.get_member(guild_id, state.self_id)]
    except disnake.HTTPException as exc:
        log.warning("could not load guild %s before RESUME: %s", guild_id, exc)
        return
    state._add_guild_from_data(data)


class ResumingWebSocket(DiscordWebSocket):
    """disnake's websocket with the process's first connection turned into a RESUME."""

    @classmethod
    async def from_client(
        cls,
        client: disnake.Client,
        *,
        initial: bool = False,
        gateway: str | None = None,
        shard_id: int | None = None,
        session: str | None = None,
        sequence: int | None = None,
        resume: bool = False,
    ) -> ResumingWebSocket:
        rs: ResumeState | None = getattr(client, "resume_state", None)
        if rs is not None and rs.plan is not None and initial and not resume:
            plan, rs.plan = rs.plan, None  # one try: a refusal falls back to IDENTIFY
            await hydrate(client, plan, rs.guild_id)
            gateway, session, sequence, resume = plan.resume_url, plan.session_id, plan.seq, True
            log.info("resuming session %s from seq %d", plan.session_id, plan.seq)
        if rs is not None:
            rs.mode = "resume" if resume else "identify"
            rs.gate.replaying = resume
            # a new session's READY is its dispatch 1; a resumed one goes on from `sequence`
            rs.start_seq = (sequence or 0) if resume else 1
        return await super().from_client(
            client,
            initial=initial,
            gateway=gateway,
            shard_id=shard_id,
            session=session,
            sequence=sequence,
            resume=resume,
        )

    async def identify(self) -> None:
        self._dispatch("gateway_identify")  # a login: counted in the daily budget
        await super().identify()

    keep_session = False  # set by close_keeping_session: a handover, not an end

    async def close(self, code: int = 4000) -> None:
        # disnake's Client.close() closes with 1000, which ends the session at Discord
        if self.keep_session and code in (1000, 1001):
            code = 4000
        await super().close(code)


async def close_keeping_session(bot: disnake.Client) -> None:
    """Stop the bot but leave its gateway session resumable by a successor on another process
    or node (a handover): the socket closes with 4000, not the 1000 that ends the session."""
    if isinstance(bot.ws, ResumingWebSocket):
        bot.ws.keep_session = True
    await bot.close()


def _finish_first_resume(bot: disnake.Client) -> None:
    """A process that began by RESUME gets no READY: on its first RESUMED, run what READY
    would have (disnake's application-command cache and sync wait for the first connect;
    `is_ready()` / `wait_until_ready()` for the rest), so a new release's commands are
    still registered and disnake's "unknown command" guard has a cache to look in."""
    state = bot._connection
    resumed = state.parsers["RESUMED"]

    def parse_resumed(data: Any) -> None:
        resumed(data)
        if not bot.is_ready():
            state.call_handlers("connect_internal")
            state.call_handlers("ready")

    state.parsers["RESUMED"] = parse_resumed


def install(bot: disnake.Client, redis: aioredis.Redis, plan: StoredSession | None) -> ResumeState:
    """Give the bot its resume state and gate (before it connects)."""
    check_disnake()
    disnake.client.DiscordWebSocket = ResumingWebSocket  # type: ignore[misc]
    gate = ReplayGate(redis)
    gate.install(bot._connection.parsers)
    _finish_first_resume(bot)
    ctx = getattr(bot, "ctx", None)
    rs = ResumeState(plan, gate, getattr(ctx, "store_guild_id", None))
    bot.resume_state = rs  # type: ignore[attr-defined]
    return rs


async def count_login(redis: aioredis.Redis, instance_id: int) -> None:
    """One IDENTIFY spent: the crash policy's daily budget counts these, not starts."""
    day = time.strftime("%Y%m%d", time.gmtime())
    pipe = redis.pipeline(transaction=False)
    pipe.incr(keys.restart_budget(instance_id, day))
    pipe.expire(keys.restart_budget(instance_id, day), 2 * 86400)
    await pipe.execute()


# An unchanged session is stored again this often (its `at` and TTL, 600 s, kept fresh).
SAVE_UNCHANGED_EVERY_S = 60.0


class SessionKeeper:
    """Per heartbeat: store the session for a successor, and say how the bot connected."""

    def __init__(self, redis: aioredis.Redis, instance_id: int, rs: ResumeState) -> None:
        self.store = SessionStore(redis, instance_id)
        self.rs = rs
        self.written_mode: str | None = None
        # what was stored last, and when: an idle bot's session does not change between beats
        self.saved: tuple[str, str, int, int] | None = None
        self.saved_at = 0.0

    def connected_by(self) -> str | None:
        """The runtime record's `connected_by` once it changed ("resume" / "identify")."""
        mode = self.rs.mode
        if mode is None or mode == self.written_mode:
            return None
        self.written_mode = mode
        return mode

    async def save(self, bot: disnake.Client) -> None:
        ws = bot.ws
        if ws is None or not ws.session_id or ws.sequence is None or not ws.resume_gateway:
            return
        seq = self.rs.handled_seq(ws.session_id, ws.sequence)
        intents = bot._connection._intents.value  # worker.optional_intents reads them back
        state = (ws.session_id, ws.resume_gateway, seq, intents)
        now = time.monotonic()
        if state == self.saved and now - self.saved_at < SAVE_UNCHANGED_EVERY_S:
            return  # nothing new to store: one Redis write less per beat for an idle bot
        await self.store.save(ws.session_id, ws.resume_gateway, seq, bot.application_id, intents)
        self.saved, self.saved_at = state, now
