"""End to end: with `VITRINE_KSM=on` every worker a real orchestrator forks has its memory
opted in to kernel same-page merging (the kernel says so in /proc/<pid>/ksm_stat), and with
`off` none has; the orchestrator says once, in its log, when the host will not merge."""

from __future__ import annotations

import os

import pytest

from fleet import ksm
from fleet.states import InstanceState


def _kernel_can() -> bool:
    try:
        ksm.merging()
    except OSError:
        return False
    return os.path.exists("/proc/self/ksm_stat")


pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not _kernel_can(), reason="kernel without per-process KSM (Linux < 6.4)"),
]


@pytest.fixture(params=["on", "off"])
def fleet_env(request) -> dict[str, str]:
    return {"VITRINE_KSM": request.param}


def merge_any(pid: int) -> str:
    with open(f"/proc/{pid}/ksm_stat") as fh:
        for line in fh:
            if line.startswith("ksm_merge_any:"):
                return line.split(":", 1)[1].strip()
    raise AssertionError(f"no ksm_merge_any in /proc/{pid}/ksm_stat")


async def test_workers_opt_their_memory_in_to_ksm_only_when_vitrine_ksm_is_on(fleet, dc, fleet_env):
    bots = [await dc.create_bot(f"Loja {n}") for n in range(2)]
    ids = [await fleet.add_instance(bot.token, name=f"Loja {n}") for n, bot in enumerate(bots)]
    fleet.start()
    records = [await fleet.wait_state(iid, InstanceState.ONLINE, timeout=40) for iid in ids]
    on = fleet_env["VITRINE_KSM"] == "on"
    assert [merge_any(rec.pid) for rec in records] == ["yes" if on else "no"] * 2
    warned = "pages will not be merged" in fleet.output()
    if not on:
        assert not warned
    elif ksm.host_problem() is not None:  # the host's ksmd is off (the usual CI host)
        assert warned
