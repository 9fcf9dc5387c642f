"""The zygote protocol: JSON lines between the orchestrator (`orchestrator.zygote_client.Spawner`)
and the zygote (`python -m worker.zygote`).

    orchestrator -> zygote (stdin)   {"op": "spawn", "seq": N, "instance_id": ID,
                                      "lease": "node:token" or null,
                                      "start": {the instance's start row} (optional:
                                      fleet.start_data; the token in it is ciphertext)}
    zygote -> orchestrator (stdout)  {"op": "ready", "pid": P}             once, after preloading
                                     {"op": "spawned", "seq": N, "instance_id": ID, "pid": P}
                                     {"op": "exited", "pid": P, "code": C}  C < 0: signal -C

EOF on the zygote's stdin (the orchestrator is gone) ends the zygote; its children run on.

The zygote imports this module before it forks, so every worker shares it: it stays tiny and
imports nothing but the standard library's `json`.
"""

from __future__ import annotations

import json
from typing import Any

OP = "op"  # the field that names a message
SPAWN = "spawn"
READY = "ready"
SPAWNED = "spawned"
EXITED = "exited"


def encode(op: str, **fields: Any) -> bytes:
    """One message as a JSON line: `op` first, then `fields` in the order given."""
    return json.dumps({OP: op, **fields}).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """A message from one line; ValueError when it is not a JSON object."""
    msg = json.loads(line)
    if not isinstance(msg, dict):
        raise ValueError("not a JSON object")
    return msg


def spawn(
    seq: int, instance_id: int, lease: str | None, start: dict[str, Any] | None = None
) -> bytes:
    if start is None:
        return encode(SPAWN, seq=seq, instance_id=instance_id, lease=lease)
    return encode(SPAWN, seq=seq, instance_id=instance_id, lease=lease, start=start)


def ready(pid: int) -> bytes:
    return encode(READY, pid=pid)


def spawned(seq: int, instance_id: int, pid: int) -> bytes:
    return encode(SPAWNED, seq=seq, instance_id=instance_id, pid=pid)


def exited(pid: int, code: int) -> bytes:
    return encode(EXITED, pid=pid, code=code)


# The fields of a decoded message; each raises KeyError, ValueError or TypeError when the
# message is malformed.
def spawn_args(msg: dict[str, Any]) -> tuple[int, int, str | None, object]:
    """(seq, instance_id, lease, start row or None) of a `spawn` request; the worker checks
    the start row (`fleet.start_data.checked`)."""
    lease = msg.get("lease")
    return int(msg["seq"]), int(msg["instance_id"]), str(lease) if lease else None, msg.get("start")


def spawned_args(msg: dict[str, Any]) -> tuple[int, int]:
    """(seq, pid) of a `spawned` answer."""
    return int(msg["seq"]), int(msg["pid"])


def exited_args(msg: dict[str, Any]) -> tuple[int, int]:
    """(pid, code) of an `exited` message."""
    return int(msg["pid"]), int(msg["code"])
