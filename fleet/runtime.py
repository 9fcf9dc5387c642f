"""The runtime store: each instance's runtime record in Redis (state, pid, heartbeat, lastError,
crash history). Workers and the orchestrator write it; the web tier reads a page of instances in
one round-trip."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import WatchError
from redis.typing import EncodableT, FieldT

from fleet import keys
from fleet.errors import FleetError
from fleet.states import InstanceState, check_transition


@dataclass(frozen=True)
class LastError:
    """The most recent error of an instance, as shown to tenants and operators."""

    message: str
    code: str
    at: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | None) -> LastError | None:
        if not raw:
            return None
        data = json.loads(raw)
        return cls(message=data["message"], code=str(data["code"]), at=float(data["at"]))


@dataclass(frozen=True)
class RuntimeRecord:
    instance_id: int
    state: InstanceState
    pid: int | None = None
    pid_start: int | None = None  # process start time (clock ticks), to recognise a reused pid
    node: str | None = None
    since: float | None = None  # when the current state began
    online_since: float | None = None
    heartbeat_at: float | None = None  # None: no live heartbeat key
    latency_ms: float | None = None
    guilds: int | None = None
    last_error: LastError | None = None
    restarts: int = 0
    next_start_at: float | None = None
    config_version: int | None = None
    lease: str | None = None  # "node:token" granted for the current process (fleet.leases)
    # how the current process's gateway session began: "resume" (RESUMEd its predecessor's
    # session, no login spent) or "identify" (a login); written by the worker (worker.resume)
    connected_by: str | None = None
    connected_at: float | None = None
    crashes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def heartbeat_age(self) -> float | None:
        return None if self.heartbeat_at is None else max(0.0, time.time() - self.heartbeat_at)

    def public(self) -> dict[str, Any]:
        """A JSON-ready view for APIs (no secrets live here)."""
        data = asdict(self)
        data["state"] = str(self.state)
        data["heartbeat_age"] = self.heartbeat_age
        return data


def _num(value: str | None, kind: type = float) -> Any:
    if value is None or value == "":
        return None
    return kind(float(value)) if kind is int else kind(value)


def _record(
    instance_id: int, raw: dict[str, str], hb: str | None, crashes: list[str]
) -> RuntimeRecord:
    return RuntimeRecord(
        instance_id=instance_id,
        state=InstanceState(raw.get("state", InstanceState.STOPPED)),
        pid=_num(raw.get("pid"), int),
        pid_start=_num(raw.get("pid_start"), int),
        node=raw.get("node") or None,
        since=_num(raw.get("since")),
        online_since=_num(raw.get("online_since")),
        heartbeat_at=_num(hb),
        latency_ms=_num(raw.get("latency_ms")),
        guilds=_num(raw.get("guilds"), int),
        last_error=LastError.from_json(raw.get("last_error")),
        restarts=_num(raw.get("restarts"), int) or 0,
        next_start_at=_num(raw.get("next_start_at")),
        config_version=_num(raw.get("config_version"), int),
        lease=raw.get("lease") or None,
        connected_by=raw.get("connected_by") or None,
        connected_at=_num(raw.get("connected_at")),
        crashes=[json.loads(c) for c in crashes],
    )


def _encode(fields: dict[str, Any]) -> tuple[dict[FieldT, EncodableT], list[str]]:
    """Split into values to set and names to delete (None means 'clear this field')."""
    to_set: dict[FieldT, EncodableT] = {}
    to_del: list[str] = []
    for name, value in fields.items():
        if value is None:
            to_del.append(name)
        elif isinstance(value, LastError):
            to_set[name] = value.to_json()
        else:
            to_set[name] = str(value)
    return to_set, to_del


@dataclass(frozen=True)
class BeatWrite:
    """What a worker's heartbeat writes: its TTL key and the figures the dashboard shows."""

    hb_key: str
    hb_value: str
    hb_ttl: int
    rt_key: str
    fields: dict[FieldT, EncodableT]


def beat_write(
    instance_id: int, latency_ms: float | None, guilds: int | None, ttl: int = keys.HEARTBEAT_TTL
) -> BeatWrite:
    pairs = (("latency_ms", latency_ms), ("guilds", guilds))
    fields = {k: v for k, v in pairs if v is not None}
    return BeatWrite(
        keys.heartbeat(instance_id),
        f"{time.time():.3f}",
        ttl,
        keys.runtime(instance_id),
        _encode(fields)[0],
    )


class StaleWriter(FleetError):
    """The runtime record belongs to another process of the instance now."""

    def __init__(self, instance_id: int, pid: int, recorded: str | None) -> None:
        super().__init__(f"instance {instance_id}: record names pid {recorded}, not {pid}")


class RuntimeStore:
    """Reads and writes runtime records; every state change is checked against the table."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def get(self, instance_id: int) -> RuntimeRecord | None:
        return (await self.get_many([instance_id])).get(instance_id)

    async def get_many(self, instance_ids: Iterable[int]) -> dict[int, RuntimeRecord]:
        """Records of many instances in one pipeline (one round-trip); unknown ids are absent."""
        ids = list(instance_ids)
        if not ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for iid in ids:
            pipe.hgetall(keys.runtime(iid))
            pipe.get(keys.heartbeat(iid))
            pipe.lrange(keys.crashes(iid), 0, 9)
        results = await pipe.execute()
        records: dict[int, RuntimeRecord] = {}
        for index, iid in enumerate(ids):
            raw, hb, crash_list = results[index * 3 : index * 3 + 3]
            if raw:
                records[iid] = _record(iid, raw, hb, crash_list)
        return records

    async def transition(
        self,
        instance_id: int,
        new_state: InstanceState,
        expect_pid: int | None = None,
        **fields: Any,
    ) -> InstanceState | None:
        """Move to `new_state` (checked, compare-and-set); return the previous state.

        `expect_pid`: only when the record still names this process (raises `StaleWriter`),
        so a worker that was replaced cannot overwrite its successor's state."""
        key = keys.runtime(instance_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    # the client decodes responses to str (core.redis: decode_responses=True)
                    current_raw, pid_raw = cast(
                        list[str | None], await pipe.hmget(key, ["state", "pid"])
                    )
                    if expect_pid is not None and pid_raw != str(expect_pid):
                        raise StaleWriter(instance_id, expect_pid, pid_raw)
                    current = InstanceState(current_raw) if current_raw else None
                    check_transition(current, new_state)
                    now = time.time()
                    values = {"state": str(new_state), **fields}
                    if current != new_state:
                        values.setdefault("since", now)
                    if new_state == InstanceState.ONLINE and current != new_state:
                        values.setdefault("online_since", now)
                    to_set, to_del = _encode(values)
                    pipe.multi()  # type: ignore[no-untyped-call]  # unannotated in redis-py
                    pipe.hset(key, mapping=to_set)
                    if to_del:
                        pipe.hdel(key, *to_del)
                    await pipe.execute()
                    return current
                except WatchError:
                    continue

    async def update(self, instance_id: int, **fields: Any) -> None:
        """Set fields that are not the state (None clears a field)."""
        if "state" in fields:
            raise ValueError("use transition() to change the state")
        to_set, to_del = _encode(fields)
        pipe = self.redis.pipeline(transaction=True)
        if to_set:
            pipe.hset(keys.runtime(instance_id), mapping=to_set)
        if to_del:
            pipe.hdel(keys.runtime(instance_id), *to_del)
        await pipe.execute()

    async def beat(
        self,
        instance_id: int,
        latency_ms: float | None,
        guilds: int | None,
        ttl: int = keys.HEARTBEAT_TTL,
    ) -> None:
        """A worker's heartbeat: TTL key plus the figures the dashboard shows."""
        write = beat_write(instance_id, latency_ms, guilds, ttl)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(write.hb_key, write.hb_value, ex=write.hb_ttl)
        if write.fields:
            pipe.hset(write.rt_key, mapping=write.fields)
        await pipe.execute()

    async def set_last_error(self, instance_id: int, message: str, code: str | int) -> LastError:
        """Record `runtime.lastError` and keep it in the capped error history."""
        error = LastError(message=message, code=str(code), at=time.time())
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.runtime(instance_id), "last_error", error.to_json())
        pipe.lpush(keys.errors(instance_id), error.to_json())
        pipe.ltrim(keys.errors(instance_id), 0, keys.ERROR_HISTORY_MAX - 1)
        await pipe.execute()
        return error

    async def error_history(self, instance_id: int) -> list[LastError]:
        # the client decodes responses to str (core.redis.connect: decode_responses=True)
        raw = cast(list[str], await self.redis.lrange(keys.errors(instance_id), 0, -1))
        return [e for e in (LastError.from_json(r) for r in raw) if e is not None]

    async def record_crash(self, instance_id: int, crash: dict[str, Any]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.lpush(keys.crashes(instance_id), json.dumps(crash))
        pipe.ltrim(keys.crashes(instance_id), 0, keys.CRASH_HISTORY_MAX - 1)
        pipe.hincrby(keys.runtime(instance_id), "restarts", 1)
        await pipe.execute()

    async def crash_history(self, instance_id: int) -> list[dict[str, Any]]:
        return [json.loads(c) for c in await self.redis.lrange(keys.crashes(instance_id), 0, -1)]

    async def clear_crashes(self, instance_id: int) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys.crashes(instance_id))
        pipe.hset(keys.runtime(instance_id), "restarts", "0")
        await pipe.execute()

    async def delete(self, instance_id: int) -> None:
        await self.redis.delete(
            keys.runtime(instance_id),
            keys.heartbeat(instance_id),
            keys.crashes(instance_id),
            keys.errors(instance_id),
        )
