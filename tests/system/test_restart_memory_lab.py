"""Issue #16 item 6 on the real lab: a group restarts from a checkpoint with its memory.

A real `vmgrid-cluster` (jobs on, memory checkpoints in the lab's NFS export directory) and
one `vmgrid-agent` per lab host; a 2-member spread group of `count` guests, whose counter lives
in guest memory (deploy/lab/guests.py). Two checkpoints, the counters run on, the first
member's host dies: the member runs again on the spare host and its peer is rolled back, both
from the second checkpoint's memory (`vmgrid.bench.restart_memory.scenario`). Prints the JSON.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from vmgrid.bench.failover import HaLab
from vmgrid.bench.restart_memory import JOB_NAME, manager_flags, scenario
from vmgrid.lab import Lab

pytestmark = [pytest.mark.system, pytest.mark.slow]


@pytest.fixture
def memory_lab(lab: Lab, tmp_path: Path) -> Iterator[HaLab]:
    ha = HaLab(lab, lab.hosts(), tmp_path / "procs", *manager_flags(lab))
    ha.start()
    try:
        yield ha
    finally:
        ha.stop()
        for host in ha.dead:
            lab.restart_host(host)
        for host in lab.hosts():
            with contextlib.closing(host.connect()) as conn:
                for dom in conn.listAllDomains():
                    if dom.name().startswith(JOB_NAME):
                        with contextlib.suppress(libvirt.libvirtError):
                            if dom.isActive():
                                dom.destroy()
                        with contextlib.suppress(libvirt.libvirtError):
                            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)


def test_both_counters_continue_from_the_checkpoint_after_a_host_dies(
    lab: Lab, memory_lab: HaLab
) -> None:
    result = scenario(memory_lab, lab, advance_s=8.0, timeout_s=120.0)
    print(json.dumps(result, sort_keys=True))

    members = result["members"]
    victim, survivor = sorted(members)
    assert members[victim]["host_after"] not in (
        result["killed_host"],
        members[survivor]["host_after"],
    )
    assert members[survivor]["host_after"] == members[survivor]["host_before"]  # in place
    for name, m in members.items():
        assert m["stamp_kept"], f"{name} booted cold: its memory was not restored"
        # From the second checkpoint: not from zero, nor from the first checkpoint (taken 3 s
        # earlier), nor where it had counted to when the host died.
        assert m["before_checkpoint"] <= m["resumed_at"] < m["at_kill"], (name, m)
        assert m["at_kill"] - m["after_checkpoint"] > 50, (name, m)  # the test discriminates
    assert result["memory_restored"] is True
    checkpoint_dir = lab.path / "nfs" / "export" / "checkpoints"
    saved = sorted(p.name for p in checkpoint_dir.glob("job-*/*/*.save"))
    assert saved == sorted(f"{n}.save" for n in members for _ in result["checkpoints"])
