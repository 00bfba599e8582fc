"""`vmgrid-bench agent --driver kvm` end to end on a small lab host: the agent is measured while
it watches real idle guests through the lab's libvirtd, and the lab is gone afterwards."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import pytest
from vmgrid.bench import agent as bench_agent
from vmgrid.lab import hypervisor_unavailable_reason
from vmgrid.lab.procs import cmdline

pytestmark = [pytest.mark.system, pytest.mark.slow]

GUESTS = 5


def test_kvm_mode_measures_the_agent_on_a_lab_host_and_removes_the_lab() -> None:
    reason = hypervisor_unavailable_reason()
    if reason is not None:
        pytest.skip(f"no KVM and no TCG here: {reason}")
    parent = Path(tempfile.mkdtemp(prefix="vmg-", dir="/tmp"))
    parent.chmod(0o755)
    parser = argparse.ArgumentParser()
    bench_agent.add_arguments(parser)
    args = parser.parse_args(
        ["--driver", "kvm", "--vms", str(GUESTS), "--seconds", "2", "--warmup", "3"]
        + ["--lab-parent", str(parent), "--open-cost", "--rss-trace"]
    )
    try:
        result = bench_agent.run(args)
        leftovers = list(parent.iterdir())
        qemus_left = _qemus_mentioning(str(parent))
    finally:
        shutil.rmtree(parent, ignore_errors=True)

    assert result["driver"] == "kvm" and result["domain_type"] in ("kvm", "qemu")
    assert result["rss_mb"] > 10  # a Python process with gRPC and libvirt loaded
    assert 0 < result["uss_mb"] < result["rss_mb"]
    assert result["rss_trace_mb"][0] == result["rss_first_mb"]
    # the URI the agent watched is the lab host's, with the guests started there
    assert result["libvirt_open_cost"]["domains"] == GUESTS
    assert leftovers == [] and qemus_left == []


def _qemus_mentioning(needle: str) -> list[int]:
    """Pids of QEMU processes (any user) whose command line mentions `needle`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            argv = cmdline(int(entry.name))
            if argv and "qemu-system" in argv[0] and any(needle in arg for arg in argv):
                pids.append(int(entry.name))
    return pids
