"""Bot instances: list/filter/search, detail (runtime, lastErrors, crashes), control actions."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, current_app
from quart_schema import tag, validate_querystring, validate_response
from tortoise.expressions import Q

from core import audit
from fleet.control_protocol import (
    ControlError,
    ControlResult,
    ControlTimeout,
    ResultCode,
    send_command,
)
from fleet.models import Alert, BotInstance
from fleet.runtime import RuntimeRecord, RuntimeStore
from fleet.states import DesiredState, InstanceState
from shop import inputs
from web.admin.api import (
    MAX_ID,
    ErrorBody,
    PageInfo,
    PageQuery,
    Strict,
    actor,
    error,
    iso,
    json_body,
)

bp = Blueprint("instances", __name__)

ACTIONS = ("restart", "suspend", "resume", "stop", "start")
RESULT_STATUS = {
    ResultCode.OK: 200,
    ResultCode.NOT_FOUND: 404,
    ResultCode.SUSPENDED: 409,
    ResultCode.BLOCKED: 409,
    ResultCode.BAD_REQUEST: 400,
    ResultCode.FAILED: 502,
}
DEFAULT_CONTROL_TIMEOUT = 10.0


class InstancesQuery(PageQuery):
    state: InstanceState | None = None
    tenant_id: int | None = Field(None, ge=0, le=MAX_ID)
    desired_state: DesiredState | None = None
    suspended: bool | None = None
    q: str | None = Field(None, max_length=100, description="search name, bot name/id, store")


class InstanceOut(BaseModel):
    id: int
    tenant_id: int
    tenant_name: str | None
    name: str
    bot_username: str | None
    bot_user_id: str | None
    application_id: str | None
    bot_public: bool | None = None  # Discord's "Public Bot" as last read (None: not read)
    desired_state: DesiredState
    suspended: bool
    suspension_reason: str | None
    suspended_by: str | None
    config_version: int
    created_at: str | None
    state: InstanceState
    last_error: dict[str, Any] | None
    heartbeat_age: float | None
    runtime: dict[str, Any] | None


class InstancesOut(BaseModel):
    items: list[InstanceOut]
    page: PageInfo


class InstanceDetailOut(InstanceOut):
    errors: list[dict[str, Any]]
    crashes: list[dict[str, Any]]
    alerts: list[dict[str, Any]]


class ActionIn(Strict):
    reason: str | None = Field(None, max_length=1000, description="required for suspend")


class ControlOut(BaseModel):
    """The orchestrator's answer to the command."""

    instance_id: int
    action: str
    ok: bool
    code: str
    message: str
    state: str | None
    cmd_id: str


def instance_json(inst: BotInstance, record: RuntimeRecord | None) -> dict[str, Any]:
    """An instance for the API: database row plus runtime facts (never the token)."""
    runtime = record.public() if record else None
    return {
        "id": inst.id,
        "tenant_id": inst.tenant_id,
        "tenant_name": getattr(inst.tenant, "name", None) if _tenant_loaded(inst) else None,
        "name": inst.name,
        "bot_username": inst.bot_username,
        "bot_user_id": inst.bot_user_id,
        "application_id": inst.application_id,
        "bot_public": inst.bot_public,
        "desired_state": str(inst.desired_state),
        "suspended": inst.suspended,
        "suspension_reason": inst.suspension_reason,
        "suspended_by": inst.suspended_by,
        "config_version": inst.config_version,
        "created_at": iso(inst.created_at),
        "state": str(record.state if record else InstanceState.STOPPED),
        "last_error": runtime["last_error"] if runtime else None,
        "heartbeat_age": record.heartbeat_age if record else None,
        "runtime": runtime,
    }


def _tenant_loaded(inst: BotInstance) -> bool:
    return "_tenant" in inst.__dict__ and inst.__dict__["_tenant"] is not None


def _filtered(args: InstancesQuery):
    query = BotInstance.all().select_related("tenant")
    if args.tenant_id is not None:
        query = query.filter(tenant_id=args.tenant_id)
    if args.desired_state is not None:
        query = query.filter(desired_state=args.desired_state)
    if args.suspended is not None:
        query = query.filter(suspended=args.suspended)
    if args.q and args.q.strip():
        text = args.q.strip()
        cond = (
            Q(name__icontains=text)
            | Q(bot_username__icontains=text)
            | Q(tenant__name__icontains=text)
        )
        if len(text) <= 32:  # a Discord snowflake; longer cannot match the column
            cond |= Q(bot_user_id=text)
        try:
            cond |= Q(id=inputs.parse_id(text, max_id=MAX_ID))
        except inputs.InvalidInput:
            pass  # not an instance id: the name searches above still apply
        query = query.filter(cond)
    return query.order_by("id")


async def list_instances(args: InstancesQuery) -> dict[str, Any]:
    """A page of instances with runtime facts; the state filter reads Redis in one round-trip."""
    redis = current_app.config["REDIS"]
    store = RuntimeStore(redis)
    if args.state is None:
        query = _filtered(args)
        total = await query.count()
        rows = await query.offset(args.offset).limit(args.limit)
        records = await store.get_many([i.id for i in rows])
    else:
        everything = await _filtered(args)
        records = await store.get_many([i.id for i in everything])
        matching = [
            i
            for i in everything
            if (records[i.id].state if i.id in records else InstanceState.STOPPED) == args.state
        ]
        total = len(matching)
        rows = matching[args.offset : args.offset + args.limit]
    return {
        "items": [instance_json(i, records.get(i.id)) for i in rows],
        "page": {"total": total, "limit": args.limit, "offset": args.offset},
    }


@bp.get("/api/instances")
@tag(["instances"])
@validate_querystring(InstancesQuery)
@validate_response(InstancesOut)
async def instances(query_args: InstancesQuery):
    """Instances, filtered by runtime state, tenant, desired state, suspension or a search."""
    return await list_instances(query_args)


@bp.get("/api/instances/<int:instance_id>")
@tag(["instances"])
@validate_response(InstanceDetailOut)
@validate_response(ErrorBody, 404)
async def instance_detail(instance_id: int):
    """One instance: runtime record, recent lastErrors, crash history and its alerts."""
    inst = await BotInstance.get_or_none(id=instance_id).select_related("tenant")
    if inst is None:
        return error(404, "not_found", f"no instance {instance_id}")
    store = RuntimeStore(current_app.config["REDIS"])
    alerts = await Alert.filter(instance_id=instance_id).order_by("-created_at").limit(20)
    return {
        **instance_json(inst, await store.get(instance_id)),
        "errors": [vars(e) for e in await store.error_history(instance_id)],
        "crashes": await store.crash_history(instance_id),
        "alerts": [
            {
                "id": a.id,
                "kind": str(a.kind),
                "message": a.message,
                "created_at": iso(a.created_at),
                "acknowledged_at": iso(a.acknowledged_at),
            }
            for a in alerts
        ],
    }


async def control_instance(
    instance_id: int, action: str, reason: str | None, who: str
) -> tuple[dict[str, Any], int]:
    """Send a control command, wait for the orchestrator, audit what happened."""
    inst = await BotInstance.get_or_none(id=instance_id)
    if inst is None:
        return error(404, "not_found", f"no instance {instance_id}")
    redis = current_app.config["REDIS"]
    record = await RuntimeStore(redis).get(instance_id)
    before = {
        "state": str(record.state) if record else None,
        "suspended": inst.suspended,
        "desired_state": str(inst.desired_state),
    }
    timeout = float(current_app.config.get("ADMIN_CONTROL_TIMEOUT", DEFAULT_CONTROL_TIMEOUT))
    try:
        result: ControlResult = await send_command(
            redis, action, instance_id, reason=reason, actor=who, timeout=timeout
        )
    except ControlTimeout as exc:
        await audit.record(
            who,
            f"instance.{action}",
            "instance",
            instance_id,
            tenant_id=inst.tenant_id,
            before=before,
            after={"outcome": "timeout", "reason": reason},
        )
        return error(
            504,
            "orchestrator_timeout",
            f"no orchestrator answered within {timeout:g}s; the command stays queued "
            "and runs when an orchestrator reads it — check /api/status",
            cmd_id=exc.cmd_id,
        )
    except ControlError as exc:  # validated once, by the protocol (fleet.control_protocol)
        if exc.field:
            return error(
                400,
                "validation_error",
                str(exc),
                fields=[{"field": exc.field, "message": str(exc)}],
            )
        return error(400, "bad_request", str(exc))
    await audit.record(
        who,
        f"instance.{action}",
        "instance",
        instance_id,
        tenant_id=inst.tenant_id,
        before=before,
        after={
            "outcome": str(result.code),
            "state": result.state,
            "reason": reason,
            "message": result.message,
        },
    )
    body = {
        "instance_id": instance_id,
        "action": action,
        "ok": result.ok,
        "code": str(result.code),
        "message": result.message,
        "state": result.state,
        "cmd_id": result.cmd_id,
    }
    return body, RESULT_STATUS.get(result.code, 502)


@bp.post(f"/api/instances/<int:instance_id>/<any({', '.join(ACTIONS)}):action>")
@tag(["instances"])
@json_body(ActionIn, optional=True)
@validate_response(ControlOut)
@validate_response(ControlOut, 409)
@validate_response(ErrorBody, 400)
@validate_response(ErrorBody, 404)
@validate_response(ErrorBody, 504)
async def instance_action(instance_id: int, action: str, data: ActionIn):
    """restart | suspend (needs `reason`) | resume | stop | start, answered by the orchestrator.

    Waits for the orchestrator's acknowledgement; 504 when none answers in time.
    """
    return await control_instance(instance_id, action, data.reason, actor())
