"""Kernel same-page merging for the workers (`VITRINE_KSM`, fleet/ksm.py): the setting, the
orchestrator's one warning line, and the kernel's real per-process opt-in (inherited across
fork, which is what lets the zygote's children carry it)."""

from __future__ import annotations

import os

import pytest

from core.tuning import TuningError
from fleet import ksm


def _kernel_has_prctl() -> bool:
    try:
        ksm.merging()
    except OSError:
        return False
    return True


needs_prctl = pytest.mark.skipif(
    not _kernel_has_prctl(), reason="kernel without PR_SET_MEMORY_MERGE (Linux < 6.4)"
)


def _sysfs(tmp_path, run: str):
    (tmp_path / "run").write_text(f"{run}\n")
    return tmp_path


def test_ksm_is_on_by_default_and_off_when_asked():
    assert ksm.requested({}) is True
    assert ksm.requested({"VITRINE_KSM": " "}) is True
    assert ksm.requested({"VITRINE_KSM": "OFF"}) is False
    assert ksm.requested({"VITRINE_KSM": "on"}) is True


def test_a_bad_ksm_value_names_the_variable_and_a_good_value():
    with pytest.raises(TuningError, match="VITRINE_KSM.*on"):
        ksm.requested({"VITRINE_KSM": "yes please" * 100})


def test_orchestrator_says_once_why_nothing_will_merge_when_ksmd_is_not_running(tmp_path):
    line = ksm.startup_warning({}, _sysfs(tmp_path, "0"))
    if _kernel_has_prctl():
        assert line is not None
        assert "run is 0" in line
        assert line.startswith("VITRINE_KSM=on")


def test_orchestrator_says_the_kernel_has_no_ksm(tmp_path):
    line = ksm.startup_warning({}, tmp_path / "missing")
    assert line is not None and "no KSM" in line


def test_no_warning_when_ksm_is_off_or_the_host_runs_ksmd(tmp_path):
    assert ksm.startup_warning({"VITRINE_KSM": "off"}, tmp_path / "missing") is None
    if _kernel_has_prctl():
        assert ksm.startup_warning({}, _sysfs(tmp_path, "1")) is None


def _in_child(check) -> int:
    """Run `check` in a forked child; its exit status (0: passed)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if check() else 2
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@needs_prctl
def test_a_process_that_opts_in_is_mergeable_and_its_forked_children_too():
    def opted_in_and_inherited() -> bool:
        if ksm.merging():
            return False  # the test process itself must not be mergeable
        ksm.opt_in()
        if not ksm.merging():
            return False
        return _in_child(ksm.merging) == 0

    assert _in_child(opted_in_and_inherited) == 0
    assert ksm.merging() is False  # nothing leaked into the test process
