"""Control commands, orchestrator side: change the desired state in the database (so it
survives restarts), act on the process, answer the caller."""

from __future__ import annotations

import logging

from fleet.control_protocol import Action, Command, ControlResult, ResultCode, result
from fleet.models import BotInstance
from fleet.states import DesiredState, InstanceState
from orchestrator.supervisor import Supervisor

log = logging.getLogger("orchestrator.control")
S = InstanceState


async def handle(sup: Supervisor, cmd: Command) -> ControlResult:
    """Carry out one command; never raises (failures become a `failed` result)."""
    log.info(
        "control %s instance %s by %s",
        cmd.action,
        cmd.instance_id,
        cmd.actor,
        extra={"instance_id": cmd.instance_id, "event": f"control.{cmd.action}"},
    )
    try:
        if cmd.action == Action.STOP_ALL:
            count = await sup.drain()
            return result(True, ResultCode.OK, f"stopped {count} worker(s); node drained")
        inst = await BotInstance.get_or_none(id=cmd.instance_id).prefetch_related("tenant__owner")
        if inst is None:
            return result(False, ResultCode.NOT_FOUND, f"instance {cmd.instance_id} not found")
        return await _instance_command(sup, cmd, inst)
    except Exception as exc:
        log.exception("control %s for instance %s failed", cmd.action, cmd.instance_id)
        return result(False, ResultCode.FAILED, f"{cmd.action} failed: {type(exc).__name__}")


async def _instance_command(sup: Supervisor, cmd: Command, inst: BotInstance) -> ControlResult:
    iid = inst.id
    before = {"suspended": inst.suspended, "desired_state": str(inst.desired_state)}
    if cmd.action in (Action.RESTART, Action.START):
        if inst.suspended:
            return result(
                False,
                ResultCode.SUSPENDED,
                "instance is suspended by an admin"
                + (f": {inst.suspension_reason}" if inst.suspension_reason else ""),
                await sup.state(iid),
            )
        if inst.tenant.owner.blocked:
            return result(
                False,
                ResultCode.BLOCKED,
                "the tenant's owner account is blocked",
                await sup.state(iid),
            )
    changes: dict[str, object] = {}
    if cmd.action == Action.SUSPEND:
        changes = {"suspended": True, "suspension_reason": cmd.reason, "suspended_by": cmd.actor}
    elif cmd.action == Action.RESUME:
        changes = {"suspended": False, "suspension_reason": None, "suspended_by": None}
    elif cmd.action == Action.STOP:
        changes = {"desired_state": DesiredState.STOPPED}
    elif cmd.action in (Action.START, Action.RESTART):
        changes = {"desired_state": DesiredState.RUNNING}
    if changes:
        await BotInstance.filter(id=iid).update(**changes)
    # Audited once, by the admin API that sent it (`instance.<action>`, with the outcome).
    log.info(
        "instance %s: %s by %s: %s",
        iid,
        cmd.action,
        cmd.actor,
        {k: str(v) if v is not None else None for k, v in changes.items()} | {"before": before},
        extra={"instance_id": iid, "event": f"control.{cmd.action}.applied"},
    )
    if cmd.action in (Action.RESUME, Action.RESTART, Action.START):
        await sup.clear_crashes(iid)  # a human looked at it: a fresh streak
    await _converge(sup, iid, force=cmd.action)
    return result(True, ResultCode.OK, f"{cmd.action} done", await sup.state(iid))


async def _converge(sup: Supervisor, iid: int, force: Action) -> None:
    """Reconcile the instance; restart/start also leave error, backoff and crash-loop now."""
    await sup.refresh_desired(iid)
    if force == Action.RESTART:
        await sup.restart(iid)
    elif force == Action.START:
        await sup.start(iid)
    else:
        await sup.reconcile_one(iid, fetch=True)
