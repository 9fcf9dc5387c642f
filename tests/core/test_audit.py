import json

from core.audit import record
from core.models import AuditLog


async def test_audit_entry_goes_to_db_and_jsonl_without_secrets(db, tmp_path, monkeypatch):
    monkeypatch.setenv("LOG_DIR", str(tmp_path / "logs"))
    token = "MTA5ODc2NTQzMjEwOTg3NjU0.GabcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"
    entry = await record(
        "admin:token:abcd1234",
        "instance.suspend",
        "instance",
        7,
        tenant_id=3,
        before={"state": "online"},
        after={"state": "suspended", "t": token},
    )
    row = await AuditLog.get(id=entry.id)
    assert (row.actor, row.action, row.target_id, row.tenant_id) == (
        "admin:token:abcd1234",
        "instance.suspend",
        "7",
        3,
    )
    assert row.before == {"state": "online"}
    lines = (tmp_path / "logs" / "audit.jsonl").read_text().splitlines()
    data = json.loads(lines[-1])
    assert data["id"] == entry.id and data["after"]["state"] == "suspended"
    assert token not in lines[-1]
