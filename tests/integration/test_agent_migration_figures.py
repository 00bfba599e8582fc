"""What the agent reports for the manager's migration estimate (#16), end to end on the
agent's side: a test-driver node measures nothing (zeros, so the manager's estimate is the
one from used memory), and a real host's collector measures a guest's resident non-zero
memory from its process, found by the ``-uuid`` on its command line as QEMU's is."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from vmgrid.agents import model
from vmgrid.agents.cluster.act.driver import DriverOptions, real_migration_seconds
from vmgrid.agents.node.collector import Collector
from vmgrid.agents.node.hypervisor import DomainSample, HostCounters, HostInfo, HostSample
from vmgrid.agents.node.libvirt_hypervisor import LibvirtHypervisor
from vmgrid.agents.node.load import LoadSource
from vmgrid.agents.node.testnode import SimVm, node_xml

MIB = 1 << 20
FIELDS = ("memory_resident_bytes", "memory_dirty_bytes_per_second", "memory_dirty_set_bytes")
OPTIONS = DriverOptions(migration_bandwidth_bps=400_000_000)


def test_a_test_driver_node_reports_no_migration_figures_and_the_estimate_is_unchanged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "node.xml"
    path.write_text(node_xml([SimVm("mig-on", memory_mib=1024)], cpus=4, memory_mib=8192))
    hv = LibvirtHypervisor(f"test://{path}")
    hv.connect()
    try:
        collector = Collector(hv.host_info(), LoadSource(default={"cpu": 50}), simulated=True)
        for _ in range(2):
            sample = hv.sample()
            (vm,) = collector.report(sample).vms
        assert hv.dirty_rates.start_due() == 1  # due, yet never started on a test node
    finally:
        hv.close()
    (dom,) = sample.domains
    assert (dom.rss_bytes, dom.dirty_bytes_per_second, dom.dirty_set_bytes) == (0, 0, 0)
    assert [getattr(vm, name) for name in FIELDS] == [0, 0, 0]
    assert vm.memory_used_bytes == 1024 * MIB
    # the manager counts the used memory, none dirtied: 1024 MiB at 47 MiB/s plus the fixed cost
    bare = model.VmUsage(vm.uuid, vm.name, vm.state, 1, 0, 1024 * MIB, 1024 * MIB)
    assert real_migration_seconds(vm, OPTIONS) == real_migration_seconds(bare, OPTIONS)
    assert real_migration_seconds(vm, OPTIONS) == pytest.approx(1024 / 47 + 0.7)


GUEST_MIB = 48
GUEST = """
import mmap, sys, time
ram = mmap.mmap(-1, {size}, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
for offset in range(0, {written}, 4096):
    ram[offset:offset + 8] = b"guestram"
for offset in range({written}, {touched}, 4096):
    ram[offset] = 0
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def guest_process() -> Iterator[str]:
    """A process with a guest-RAM-like mapping (20 MiB written, 10 MiB touched but zero) and
    ``-uuid UUID`` on its command line; yields the uuid."""
    vm_uuid = str(uuid.uuid4())
    code = GUEST.format(size=GUEST_MIB * MIB, written=20 * MIB, touched=30 * MIB)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "-uuid", vm_uuid], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield vm_uuid
    finally:
        proc.kill()
        proc.wait()


def test_a_real_hosts_collector_reports_the_guests_nonzero_resident_memory(
    guest_process: str,
) -> None:
    info = HostInfo("h", "qemu:///session", "QEMU", 2, 2000, 4096)
    collector = Collector(info, None, simulated=False)
    host = HostCounters(0, 0, 4096, 2048)
    dom = DomainSample(
        guest_process, "guest", model.VmState.RUNNING, 1, GUEST_MIB, 0, (),
        dirty_bytes_per_second=6 * MIB, dirty_set_bytes=9 * MIB,
    )  # fmt: skip
    (vm,) = collector.report(HostSample(time.monotonic_ns(), host, (dom,))).vms
    # 512 pages sampled of 12,288 (every 24th): the written 20 MiB, within a sample's step;
    # not the 30 MiB resident, nor the 48 MiB allocated
    assert 19 * MIB <= vm.memory_resident_bytes <= 21 * MIB
    assert (vm.memory_dirty_bytes_per_second, vm.memory_dirty_set_bytes) == (6 * MIB, 9 * MIB)
    assert vm.memory_used_bytes == GUEST_MIB * MIB
    # the estimate sends the 20 MiB (and one re-sent round of the dirty set), not 48 MiB
    assert real_migration_seconds(vm, OPTIONS) < real_migration_seconds(
        model.VmUsage(vm.uuid, vm.name, vm.state, 1, 0, GUEST_MIB * MIB, GUEST_MIB * MIB), OPTIONS
    )
    stopped = DomainSample(guest_process, "guest", model.VmState.SHUT_OFF, 1, GUEST_MIB, 0, ())
    (vm,) = collector.report(HostSample(time.monotonic_ns(), host, (stopped,))).vms
    assert [getattr(vm, name) for name in FIELDS] == [0, 0, 0]


ARRIVING = """
import mmap, sys, time
ram = mmap.mmap(-1, {size}, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
def write(low, high):
    for offset in range(low, high, 4096):
        ram[offset:offset + 8] = b"guestram"
write(0, {first})
print("ready", flush=True)
sys.stdin.readline()
write({first}, {written})
print("filled", flush=True)
time.sleep(120)
"""


def test_a_guest_whose_memory_is_arriving_is_measured_once_it_runs_not_before() -> None:
    """An incoming migration fills the guest's RAM: a figure read then (8 MiB of 28) would be
    kept for the meter's 10 s and given to the manager for the migration back."""
    vm_uuid = str(uuid.uuid4())
    code = ARRIVING.format(size=GUEST_MIB * MIB, first=8 * MIB, written=28 * MIB)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "-uuid", vm_uuid],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        collector = Collector(HostInfo("h", "qemu:///session", "QEMU", 2, 2000, 4096), None, False)
        host = HostCounters(0, 0, 4096, 2048)

        def report(state: model.VmState, arriving: bool) -> model.VmUsage:
            dom = DomainSample(
                vm_uuid, "guest", state, 1, GUEST_MIB, 0, (),
                rss_bytes=GUEST_MIB * MIB, memory_arriving=arriving,
            )  # fmt: skip
            (vm,) = collector.report(HostSample(time.monotonic_ns(), host, (dom,))).vms
            return vm

        # paused while its memory arrives: not measured, and not QEMU's RSS either
        assert report(model.VmState.PAUSED, arriving=True).memory_resident_bytes == 0
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "filled"
        # running on arrival: the first report measures all 28 MiB
        vm = report(model.VmState.RUNNING, arriving=False)
        assert 27 * MIB <= vm.memory_resident_bytes <= 29 * MIB
    finally:
        proc.kill()
        proc.wait()
