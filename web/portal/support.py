"""Support: requests from a store to the operators (the admin work queue)."""

from __future__ import annotations

from quart import Blueprint, g, redirect, request, url_for

from core import audit
from shop.models import AdminRequest, AdminRequestKind
from web.portal.context import _, actor, owned, render, say, store_required

bp = Blueprint("support", __name__)

SUBJECT_MAX = 200
BODY_MAX = 5000
OPEN_LIMIT = 10  # open requests per store: the queue is for people, not for scripts
KINDS = (AdminRequestKind.SUPPORT, AdminRequestKind.INSTANCE_REVIEW)


async def _page(form: dict[str, str], error: str | None = None, status: int = 200):
    requests = await AdminRequest.filter(tenant_id=g.tenant.id).order_by("-id").limit(50)
    return await render(
        "portal/support.html",
        status=status,
        requests=requests,
        form=form,
        error=error,
        kinds=[k.value for k in KINDS],
    )


@bp.get("/support")
@store_required
async def support():
    kind = request.args.get("kind") or AdminRequestKind.SUPPORT.value
    return await _page({"kind": kind})


@bp.post("/support")
@store_required
async def create():
    form = await request.form
    data = {k: (form.get(k) or "").strip() for k in ("kind", "subject", "body")}
    if data["kind"] not in {k.value for k in KINDS}:
        data["kind"] = AdminRequestKind.SUPPORT.value
    if not data["subject"]:
        return await _page(data, _("portal.support.subject_required"), 400)
    if len(data["subject"]) > SUBJECT_MAX or len(data["body"]) > BODY_MAX:
        return await _page(data, _("portal.error.too_long", max=BODY_MAX), 400)
    open_count = await AdminRequest.filter(tenant_id=g.tenant.id, status="open").count()
    if open_count >= OPEN_LIMIT:
        return await _page(data, _("portal.support.too_many", max=OPEN_LIMIT), 429)
    req = await AdminRequest.create(
        kind=AdminRequestKind(data["kind"]),
        tenant_id=g.tenant.id,
        account_id=g.account.id,
        subject=data["subject"],
        body=data["body"],
    )
    await audit.record(
        actor(),
        "admin_request.created",
        "admin_request",
        req.id,
        tenant_id=g.tenant.id,
        after={"kind": data["kind"], "subject": data["subject"]},
    )
    await say("portal.support.created", id=req.id)
    return redirect(url_for("support.support_detail", request_id=req.id))


@bp.get("/support/<int:request_id>")
@store_required
async def support_detail(request_id: int):
    req = await owned(AdminRequest, request_id)
    return await render("portal/support_detail.html", req=req)
