"""Control commands (web tier -> orchestrator) over a Redis stream with a consumer group.

The caller XADDs a command to `keys.CONTROL_STREAM` and waits on its reply list
(`keys.control_reply(cmd_id)`); an orchestrator reads the stream through the consumer group
`keys.CONTROL_GROUP`, acts, LPUSHes one JSON `ControlResult` and XACKs. A command whose
orchestrator died before acknowledging stays pending and is read again on restart.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

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
        return cls(ok=bool(data["ok"]), code=ResultCode(data["code"]), message=data["message"],
                   state=data.get("state"), cmd_id=data.get("cmd_id", ""))


@dataclass(frozen=True)
class Command:
    cmd_id: str
    action: Action
    instance_id: int
    actor: str
    reason: str | None = None
    sent_at: float = 0.0
    entry_id: str = ""  # stream entry id (set when read)

    def fields(self) -> dict[str, str]:
        return {"cmd_id": self.cmd_id, "action": str(self.action),
                "instance_id": str(self.instance_id), "actor": self.actor,
                "reason": self.reason or "", "sent_at": f"{self.sent_at:.3f}"}

    @classmethod
    def from_entry(cls, entry_id: str, data: dict[str, str]) -> Command:
        return cls(cmd_id=data["cmd_id"], action=Action(data["action"]),
                   instance_id=int(data["instance_id"]), actor=data.get("actor", "?"),
                   reason=data.get("reason") or None, sent_at=float(data.get("sent_at") or 0),
                   entry_id=entry_id)


class ControlError(FleetError):
    """A command could not be sent."""


class ControlTimeout(ControlError, TimeoutError):
    """No orchestrator answered in time (the admin API answers 504)."""

    def __init__(self, cmd_id: str, timeout: float) -> None:
        super().__init__(f"no orchestrator answered command {cmd_id} within {timeout:g}s")
        self.cmd_id = cmd_id


async def send_command(redis: aioredis.Redis, action: Action | str, instance_id: int, *,
                       reason: str | None = None, actor: str,
                       timeout: float = 10.0) -> ControlResult:  # noqa: ASYNC109
    """Send one command and wait for its result; raise `ControlTimeout` when none comes."""
    action = Action(action)
    if action == Action.SUSPEND and not (reason or "").strip():
        raise ControlError("suspend needs a reason")
    cmd = Command(cmd_id=uuid.uuid4().hex, action=action, instance_id=int(instance_id),
                  actor=actor, reason=reason, sent_at=time.time())
    await redis.xadd(keys.CONTROL_STREAM, cmd.fields(), maxlen=STREAM_MAXLEN, approximate=True)
    reply_key = keys.control_reply(cmd.cmd_id)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ControlTimeout(cmd.cmd_id, timeout)
        got = await redis.blpop([reply_key], timeout=min(_POLL_S, max(left, 0.01)))
        if got:
            return ControlResult.from_json(got[1])


async def ensure_group(redis: aioredis.Redis) -> None:
    """Create the consumer group (and stream) if missing; Redis may have lost them."""
    try:
        await redis.xgroup_create(keys.CONTROL_STREAM, keys.CONTROL_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def read_commands(redis: aioredis.Redis, consumer: str, *, block_ms: int = 1000,
                        pending: bool = False, count: int = 50) -> list[Command]:
    """Next commands for `consumer`; `pending=True` re-reads this consumer's unacked ones."""
    try:
        resp = await redis.xreadgroup(keys.CONTROL_GROUP, consumer,
                                      {keys.CONTROL_STREAM: "0" if pending else ">"},
                                      count=count, block=None if pending else block_ms)
    except ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        await ensure_group(redis)
        return []
    commands: list[Command] = []
    for _stream, entries in resp or []:
        for entry_id, data in entries:
            if not data:  # deleted by XTRIM while pending
                await redis.xack(keys.CONTROL_STREAM, keys.CONTROL_GROUP, entry_id)
                continue
            try:
                commands.append(Command.from_entry(entry_id, data))
            except (KeyError, ValueError):
                await redis.xack(keys.CONTROL_STREAM, keys.CONTROL_GROUP, entry_id)
    return commands


async def reply(redis: aioredis.Redis, cmd: Command, result: ControlResult) -> None:
    """Publish the result for the waiting caller and acknowledge the entry."""
    payload = ControlResult(result.ok, result.code, result.message, result.state, cmd.cmd_id)
    pipe = redis.pipeline(transaction=True)
    pipe.lpush(keys.control_reply(cmd.cmd_id), payload.to_json())
    pipe.expire(keys.control_reply(cmd.cmd_id), keys.CONTROL_REPLY_TTL)
    pipe.xack(keys.CONTROL_STREAM, keys.CONTROL_GROUP, cmd.entry_id)
    await pipe.execute()


async def mark_dirty(redis: aioredis.Redis, *instance_ids: int) -> None:
    """Tell the orchestrator that these instances' desired state changed in the database
    (token saved, settings edited, owner blocked): it reloads them within a second or two."""
    if instance_ids:
        await redis.sadd(keys.INSTANCES_DIRTY, *[str(i) for i in instance_ids])


def result(ok: bool, code: ResultCode, message: str, state: Any = None) -> ControlResult:
    return ControlResult(ok=ok, code=code, message=message,
                         state=None if state is None else str(state))
