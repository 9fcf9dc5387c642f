"""Control commands (web tier -> orchestrator) over a Redis stream with a consumer group.

The caller XADDs a command to `keys.CONTROL_STREAM` and waits on its reply list
(`keys.control_reply(cmd_id)`); an orchestrator reads the stream through the consumer group
`keys.CONTROL_GROUP`, acts, LPUSHes one JSON `ControlResult` and XACKs. A command whose
orchestrator died before acknowledging stays pending and is read again on restart.

With several orchestrator nodes, each also reads its own stream `keys.control_node_stream`:
node-wide commands are sent there (`send_command(..., node=...)`), and a node that reads an
instance command for an instance whose lease another live node holds forwards it there
(`forward`); that node answers.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT, KeyT, StreamIdT

from fleet import keys
from fleet.errors import FleetError

STREAM_MAXLEN = 10_000
_POLL_S = 1.0  # BLPOP slice: stays below the client's socket timeout


class Action(StrEnum):
    RESTART = "restart"  # stop (if running) and start now; clears error/crash-loop state
    SUSPEND = "suspend"  # stop and keep stopped (DB flag, survives restarts); needs a reason
    RESUME = "resume"  # clear the suspension and the crash history; start if wanted
    STOP = "stop"  # desired state stopped (the tenant turned the bot off)
    START = "start"  # desired state running
    STOP_ALL = "stop_all"  # node-wide: stop every worker, start none until the daemon restarts


INSTANCE_ACTIONS = frozenset(Action) - {Action.STOP_ALL}


class ResultCode(StrEnum):
    """Machine-readable outcome; `t(f"control.{code}")` is the text for people."""

    OK = "ok"
    NOT_FOUND = "not_found"
    SUSPENDED = "suspended"  # refused: the instance is suspended by an admin
    BLOCKED = "blocked"  # refused: the tenant's owner account is blocked
    BAD_REQUEST = "bad_request"
    FAILED = "failed"


@dataclass(frozen=True)
class ControlResult:
    ok: bool
    code: ResultCode
    message: str  # English, for logs and operators
    state: str | None = None  # instance state after the command
    cmd_id: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> ControlResult:
        data = json.loads(raw)
        return cls(
            ok=bool(data["ok"]),
            code=ResultCode(data["code"]),
            message=data["message"],
            state=data.get("state"),
            cmd_id=data.get("cmd_id", ""),
        )


@dataclass(frozen=True)
class Command:
    cmd_id: str
    action: Action
    instance_id: int
    actor: str
    reason: str | None = None
    sent_at: float = 0.0
    entry_id: str = ""  # stream entry id (set when read)
    stream: str = keys.CONTROL_STREAM  # the stream it was read from

    @property
    def forwarded(self) -> bool:
        """Read from a node's own stream: it is this node's to answer, never to pass on."""
        return self.stream != keys.CONTROL_STREAM

    def fields(self) -> dict[FieldT, EncodableT]:
        return {
            "cmd_id": self.cmd_id,
            "action": str(self.action),
            "instance_id": str(self.instance_id),
            "actor": self.actor,
            "reason": self.reason or "",
            "sent_at": f"{self.sent_at:.3f}",
        }

    @classmethod
    def from_entry(
        cls, entry_id: str, data: dict[str, str], stream: str = keys.CONTROL_STREAM
    ) -> Command:
        return cls(
            cmd_id=data["cmd_id"],
            action=Action(data["action"]),
            instance_id=int(data["instance_id"]),
            actor=data.get("actor", "?"),
            reason=data.get("reason") or None,
            sent_at=float(data.get("sent_at") or 0),
            entry_id=entry_id,
            stream=stream,
        )


class ControlError(FleetError):
    """A command could not be sent; `field` names the argument at fault, if one is."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ControlTimeout(ControlError, TimeoutError):
    """No orchestrator answered in time (the admin API answers 504)."""

    def __init__(self, cmd_id: str, timeout: float) -> None:
        super().__init__(f"no orchestrator answered command {cmd_id} within {timeout:g}s")
        self.cmd_id = cmd_id


async def send_command(
    redis: aioredis.Redis,
    action: Action | str,
    instance_id: int,
    *,
    reason: str | None = None,
    actor: str,
    timeout: float = 10.0,  # noqa: ASYNC109
    node: str | None = None,
) -> ControlResult:
    """Send one command and wait for its result; raise `ControlTimeout` when none comes.
    `node`: for that orchestrator node only (node-wide commands); otherwise any node reads it
    and the one that holds the instance answers."""
    action = Action(action)
    if action == Action.SUSPEND and not (reason or "").strip():
        raise ControlError("suspend needs a reason", field="reason")
    cmd = Command(
        cmd_id=uuid.uuid4().hex,
        action=action,
        instance_id=int(instance_id),
        actor=actor,
        reason=reason,
        sent_at=time.time(),
    )
    stream = keys.control_node_stream(node) if node else keys.CONTROL_STREAM
    await redis.xadd(stream, cmd.fields(), maxlen=STREAM_MAXLEN, approximate=True)
    reply_key = keys.control_reply(cmd.cmd_id)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ControlTimeout(cmd.cmd_id, timeout)
        got = await redis.blpop([reply_key], timeout=min(_POLL_S, max(left, 0.01)))
        if got:
            # the client decodes responses to str (core.redis.connect: decode_responses=True)
            return ControlResult.from_json(cast(str, got[1]))


async def ensure_group(redis: aioredis.Redis, node: str | None = None) -> None:
    """Create the consumer group (and stream) if missing, on the shared stream and on the
    node's own one; Redis may have lost them."""
    streams = [keys.CONTROL_STREAM] + ([keys.control_node_stream(node)] if node else [])
    for stream in streams:
        try:
            await redis.xgroup_create(stream, keys.CONTROL_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


async def read_commands(
    redis: aioredis.Redis,
    consumer: str,
    *,
    block_ms: int = 1000,
    pending: bool = False,
    count: int = 50,
) -> list[Command]:
    """Next commands for node `consumer` (shared stream and its own stream); `pending=True`
    re-reads this consumer's unacked ones."""
    start = "0" if pending else ">"
    streams: dict[KeyT, StreamIdT] = {
        keys.CONTROL_STREAM: start,
        keys.control_node_stream(consumer): start,
    }
    for attempt in (1, 2):
        try:
            resp = await redis.xreadgroup(
                keys.CONTROL_GROUP,
                consumer,
                streams,
                count=count,
                block=None if pending else block_ms,
            )
            break
        except ResponseError as exc:
            if "NOGROUP" not in str(exc) or attempt == 2:
                raise
            await ensure_group(redis, consumer)
    commands: list[Command] = []
    # RESP2, decoded to str: [(stream, [(entry id, fields or None if trimmed), ...]), ...]
    streams_read = cast(list[tuple[str, list[tuple[str, dict[str, str] | None]]]], resp)
    for stream, entries in streams_read or []:
        for entry_id, data in entries:
            if not data:  # deleted by XTRIM while pending
                await redis.xack(stream, keys.CONTROL_GROUP, entry_id)
                continue
            try:
                commands.append(Command.from_entry(entry_id, data, stream))
            except (KeyError, ValueError):
                await redis.xack(stream, keys.CONTROL_GROUP, entry_id)
    return commands


async def forward(redis: aioredis.Redis, cmd: Command, node: str) -> None:
    """Hand a command read from the shared stream to `node` (which holds the instance)."""
    pipe = redis.pipeline(transaction=True)
    pipe.xadd(keys.control_node_stream(node), cmd.fields(), maxlen=STREAM_MAXLEN, approximate=True)
    pipe.xack(cmd.stream, keys.CONTROL_GROUP, cmd.entry_id)
    await pipe.execute()


async def reply(redis: aioredis.Redis, cmd: Command, result: ControlResult) -> None:
    """Publish the result for the waiting caller and acknowledge the entry."""
    payload = ControlResult(result.ok, result.code, result.message, result.state, cmd.cmd_id)
    pipe = redis.pipeline(transaction=True)
    pipe.lpush(keys.control_reply(cmd.cmd_id), payload.to_json())
    pipe.expire(keys.control_reply(cmd.cmd_id), keys.CONTROL_REPLY_TTL)
    pipe.xack(cmd.stream, keys.CONTROL_GROUP, cmd.entry_id)
    await pipe.execute()


async def mark_dirty(redis: aioredis.Redis, *instance_ids: int) -> None:
    """Tell the orchestrator that these instances' desired state changed in the database
    (token saved, settings edited, owner blocked): it reloads them within a second or two."""
    if instance_ids:
        await redis.sadd(keys.INSTANCES_DIRTY, *[str(i) for i in instance_ids])


def result(ok: bool, code: ResultCode, message: str, state: Any = None) -> ControlResult:
    return ControlResult(
        ok=ok, code=code, message=message, state=None if state is None else str(state)
    )
