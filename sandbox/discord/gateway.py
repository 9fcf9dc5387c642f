"""Gateway v10 over websocket: HELLO, heartbeats, IDENTIFY/RESUME, dispatch, zlib-stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import zlib
from collections import deque
from typing import Any

from aiohttp import WSMsgType, web

from sandbox.discord import payloads
from sandbox.discord.http_util import STATE_KEY
from sandbox.discord.models import INTENT_GUILDS, INTENT_MESSAGE_CONTENT, PRIVILEGED_INTENTS, BotApp
from sandbox.discord.state import DiscordState

log = logging.getLogger("sandbox.discord.gateway")

OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_PRESENCE = 0, 1, 2, 3
OP_RESUME, OP_RECONNECT, OP_REQUEST_MEMBERS, OP_INVALID_SESSION = 6, 7, 8, 9
OP_HELLO, OP_HEARTBEAT_ACK = 10, 11


class Connection:
    """One websocket; a writer task sends queued frames in order over the zlib stream."""

    def __init__(self, ws: web.WebSocketResponse, compress: bool, host: str) -> None:
        self.ws = ws
        self.host = host
        self._zlib = zlib.compressobj() if compress else None
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        self.app: BotApp | None = None
        self.session: Session | None = None
        self.close_code: int | None = None  # set when the server closes

    def post(self, payload: dict[str, Any]) -> None:
        self._queue.put_nowait(payload)

    async def _write_loop(self) -> None:
        while (payload := await self._queue.get()) is not None:
            raw = json.dumps(payload, separators=(",", ":"))
            if self.ws.closed:
                continue
            try:
                if self._zlib is None:
                    await self.ws.send_str(raw)
                else:
                    data = self._zlib.compress(raw.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)
            except (ConnectionError, RuntimeError):
                pass

    async def stop(self) -> None:
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    async def close(self, code: int, reason: str = "") -> None:
        if self.close_code is None:
            self.close_code = code
        await self.ws.close(code=code, message=reason.encode())


class Session:
    """A gateway session: sequence numbers and a replay buffer for RESUME.

    Like Discord's, it outlives its socket: dispatches keep being buffered while no client is
    connected, and any new connection (another process too) may RESUME it with its id and
    the last sequence it saw, until `DiscordConfig.session_resume_window_s` after the drop
    (https://discord.com/developers/docs/events/gateway#resuming: "Discord will replay any
    lost events"; how long a session lives is not documented)."""

    def __init__(self, app: BotApp, intents: int, buffer_size: int) -> None:
        self.id = secrets.token_hex(16)
        self.app = app
        self.intents = intents
        self.seq = 0
        self.buffer: deque[dict[str, Any]] = deque(maxlen=buffer_size)
        self.conn: Connection | None = None
        self.valid = True
        self.resume_not_before = 0.0  # monotonic time; RESUME waits until then
        self.dropped_at: float | None = None  # monotonic time its last socket went away

    def expired(self, now: float, window_s: float) -> bool:
        """Dropped longer ago than the resume window: Discord has forgotten it."""
        dropped = self.dropped_at
        return self.conn is None and dropped is not None and now - dropped > window_s

    def can_replay_from(self, seq: int) -> bool:
        """Every dispatch after `seq` is still in the buffer (none fell out of it)."""
        return seq >= self.seq or (bool(self.buffer) and self.buffer[0]["s"] <= seq + 1)

    def frame(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        msg = {"op": OP_DISPATCH, "t": event, "s": self.seq, "d": data}
        self.buffer.append(msg)
        return msg


class GatewayHub:
    """All sessions and live connections, per bot application."""

    def __init__(self, state: DiscordState) -> None:
        self.state = state
        self.sessions: dict[str, Session] = {}
        self.connections: set[Connection] = set()

    def dispatch(
        self,
        app_id: str,
        event: str,
        data: dict[str, Any],
        *,
        intent: int | None = None,
        stripped: dict[str, Any] | None = None,
    ) -> int:
        sent = 0
        self.expire_dropped()
        for session in list(self.sessions.values()):
            if session.app.application_id != app_id or not session.valid:
                continue
            if intent is not None and not session.intents & intent:
                continue
            body = data
            if stripped is not None and not session.intents & INTENT_MESSAGE_CONTENT:
                body = stripped
            frame = session.frame(event, body)
            if session.conn is not None:
                session.conn.post(frame)
            sent += 1
        return sent

    async def disconnect(self, app_id: str, code: int, resume_delay_ms: int = 0) -> int:
        """Close the bot's connections; 4007/4009 (and 1000) also end the session.

        resume_delay_ms holds the following RESUME so events sent meanwhile are replayed.
        """
        closed = 0
        for conn in list(self.connections):
            if conn.app is None or conn.app.application_id != app_id:
                continue
            if conn.session is not None and code in (1000, 4007, 4009):
                self.invalidate(conn.session)
            elif conn.session is not None:
                conn.session.resume_not_before = time.monotonic() + resume_delay_ms / 1000
            await conn.close(code, "Sandbox forced disconnect")
            closed += 1
        return closed

    def invalidate(self, session: Session) -> None:
        session.valid = False
        self.sessions.pop(session.id, None)

    def expire_dropped(self) -> None:
        """Forget sessions whose socket dropped longer ago than the resume window."""
        now, window = time.monotonic(), self.state.config.session_resume_window_s
        for session in [s for s in self.sessions.values() if s.expired(now, window)]:
            self.invalidate(session)

    def open_count(self, app_id: str) -> int:
        return sum(1 for c in self.connections if c.app and c.app.application_id == app_id)

    async def close_all(self) -> None:
        for conn in list(self.connections):
            await conn.close(1001, "Sandbox shutting down")


async def gateway_handler(request: web.Request) -> web.WebSocketResponse:
    state = request.app[STATE_KEY]
    hub = state.hub
    assert hub is not None
    ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024)
    await ws.prepare(request)
    conn = Connection(ws, request.query.get("compress") == "zlib-stream", request.host)
    hub.connections.add(conn)
    interval = state.config.heartbeat_interval_ms
    try:
        conn.post(
            {
                "op": OP_HELLO,
                "s": None,
                "t": None,
                "d": {"heartbeat_interval": interval, "_trace": ["sandbox-gw"]},
            }
        )
        await _receive_loop(state, hub, conn, interval)
    finally:
        hub.connections.discard(conn)
        _detach(conn, conn.close_code or ws.close_code)
        await conn.stop()
    return ws


def _detach(conn: Connection, close_code: int | None) -> None:
    if conn.app is not None:
        conn.app.stats.open_connections -= 1
        conn.app.stats.last_close_code = close_code
    if conn.session is not None and conn.session.conn is conn:
        conn.session.conn = None
        conn.session.dropped_at = time.monotonic()


async def _receive_loop(
    state: DiscordState, hub: GatewayHub, conn: Connection, interval_ms: int
) -> None:
    timeout = interval_ms / 1000 * 1.5 + 5
    while True:
        try:
            msg = await conn.ws.receive(timeout=timeout)
        except TimeoutError:
            await conn.close(4000, "Heartbeat timeout")  # zombie connection
            return
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            session = conn.session
            if msg.type == WSMsgType.CLOSE and msg.data in (1000, 1001) and session is not None:
                # a client closing with 1000/1001 ends its session; any other code (or a
                # dropped socket) keeps it resumable (gateway docs, "Disconnections")
                if session.conn is conn:
                    hub.invalidate(session)
            return
        try:
            payload = json.loads(msg.data)
            op = payload["op"]
        except (ValueError, KeyError, TypeError):
            await conn.close(4002, "Decode error")
            return
        if not await _handle_op(state, hub, conn, op, payload.get("d")):
            return


async def _handle_op(
    state: DiscordState, hub: GatewayHub, conn: Connection, op: int, d: Any
) -> bool:
    """Handle one client frame; return False once the connection was closed."""
    if op == OP_HEARTBEAT:
        conn.post({"op": OP_HEARTBEAT_ACK, "s": None, "t": None, "d": None})
        return True
    if op == OP_IDENTIFY:
        return await _identify(state, hub, conn, d or {})
    if op == OP_RESUME:
        return await _resume(state, hub, conn, d or {})
    if conn.app is None:
        await conn.close(4003, "Not authenticated.")
        return False
    if op == OP_REQUEST_MEMBERS:
        _members_chunk(state, conn, d or {})
    elif op not in (OP_PRESENCE, 4):
        await conn.close(4001, "Unknown opcode.")
        return False
    return True


async def _identify(
    state: DiscordState, hub: GatewayHub, conn: Connection, d: dict[str, Any]
) -> bool:
    if conn.app is not None:
        await conn.close(4005, "Already authenticated.")
        return False
    app = state.bot_by_token(str(d.get("token", "")))
    if app is None or app.faults.invalid_token or app.faults.gateway_auth_fail:
        return await _reject(conn, app, 4004, "Authentication failed.")
    intents = int(d.get("intents", 0))
    if intents >> 26:
        return await _reject(conn, app, 4013, "Invalid intent(s).")
    if intents & PRIVILEGED_INTENTS & ~app.enabled_intents:
        return await _reject(conn, app, 4014, "Disallowed intent(s).")
    _attach(conn, app)
    lim = app.session_limit
    lim.refresh()
    if lim.remaining <= 0:
        app.stats.invalid_sessions += 1
        conn.post({"op": OP_INVALID_SESSION, "s": None, "t": None, "d": False})
        return True
    lim.remaining -= 1
    app.stats.identify_count += 1
    if app.faults.no_ready:
        return True
    session = Session(app, intents, state.config.session_buffer_size)
    hub.sessions[session.id] = session
    session.conn = conn
    conn.session = session
    _send_ready(state, conn, session)
    return True


async def _reject(conn: Connection, app: BotApp | None, code: int, reason: str) -> bool:
    """Close a connection that failed IDENTIFY/RESUME, noting the code on the bot."""
    if app is not None and conn.app is None:
        app.stats.last_close_code = code
    await conn.close(code, reason)
    return False


def _attach(conn: Connection, app: BotApp) -> None:
    conn.app = app
    app.stats.open_connections += 1
    app.stats.total_connections += 1


def _send_ready(state: DiscordState, conn: Connection, session: Session) -> None:
    app = session.app
    guilds = state.bot_guilds(app)
    ready = {
        "v": 10,
        "user": payloads.me(state.users[app.user_id]),
        "guilds": [{"id": g.id, "unavailable": True} for g in guilds],
        "session_id": session.id,
        "session_type": "normal",
        "resume_gateway_url": f"ws://{conn.host}/gateway",
        "shard": [0, 1],
        "application": {"id": app.application_id, "flags": app.flags},
        "private_channels": [],
        "presences": [],
        "relationships": [],
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": [],
        "user_settings": {},
        "_trace": ["sandbox-gw"],
    }
    conn.post(session.frame("READY", ready))
    if session.intents & INTENT_GUILDS:
        for guild in guilds:
            conn.post(session.frame("GUILD_CREATE", payloads.guild(state, guild, full=True)))


async def _resume(
    state: DiscordState, hub: GatewayHub, conn: Connection, d: dict[str, Any]
) -> bool:
    app = state.bot_by_token(str(d.get("token", "")))
    if app is None or app.faults.invalid_token or app.faults.gateway_auth_fail:
        return await _reject(conn, app, 4004, "Authentication failed.")
    if conn.app is None:
        _attach(conn, app)
    hub.expire_dropped()
    session = hub.sessions.get(str(d.get("session_id")))
    seq = d.get("seq") or 0
    refuse = app.faults.refuse_resume
    if session is not None and session.app is app and refuse in (4007, 4009):
        hub.invalidate(session)  # "Reconnect and start a new session."
        return await _reject(conn, None, refuse, "Session refused (sandbox fault).")
    if session is not None and session.valid and session.app is app and seq > session.seq:
        # 4007 Invalid seq: "The sequence sent when resuming the session was invalid.
        # Reconnect and start a new session." (gateway close event codes)
        hub.invalidate(session)
        return await _reject(conn, None, 4007, "Invalid seq.")
    if (
        session is None
        or not session.valid
        or session.app is not app
        or not session.can_replay_from(seq)
        or refuse
    ):
        # op 9 with d: false: the session cannot be resumed; IDENTIFY on a new connection
        app.stats.invalid_sessions += 1
        if session is not None and session.app is app:
            hub.invalidate(session)
        conn.post({"op": OP_INVALID_SESSION, "s": None, "t": None, "d": False})
        return True
    hold = max(session.resume_not_before - time.monotonic(), app.faults.resume_delay_ms / 1000)
    if hold > 0:
        await asyncio.sleep(hold)
    if session.conn is not None and session.conn is not conn:
        await session.conn.close(4000, "Session resumed elsewhere")
    session.conn = conn
    conn.session = session
    app.stats.resume_count += 1
    missed = [f for f in session.buffer if f["s"] > seq]
    app.stats.replayed_events += len(missed)
    for frame in missed:
        conn.post(frame)
    conn.post(session.frame("RESUMED", {"_trace": ["sandbox-gw"]}))
    return True


def _members_chunk(state: DiscordState, conn: Connection, d: dict[str, Any]) -> None:
    session = conn.session
    guild = state.guilds.get(str(d.get("guild_id")))
    if session is None or guild is None:
        return
    members = [payloads.member(state, guild, m) for m in guild.members.values()]
    data = {
        "guild_id": guild.id,
        "members": members,
        "chunk_index": 0,
        "chunk_count": 1,
        "not_found": [],
        "nonce": d.get("nonce"),
    }
    conn.post(session.frame("GUILD_MEMBERS_CHUNK", data))
