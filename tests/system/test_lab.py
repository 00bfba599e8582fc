"""The lab gives real libvirt hosts: real CPU time, real counters, real live migration."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import libvirt
import pytest
from vmgrid.lab import (
    Lab,
    LabHost,
    create_boot_disk,
    create_overlay,
    define_and_start,
    make_guest_xml,
    wait_until,
)
from vmgrid.lab.procs import is_alive, processes_of_user_mentioning

# Every test here boots real guests (seconds of CPU each under nested KVM).
pytestmark = [pytest.mark.system, pytest.mark.slow]

WAIT_S = 60.0
MIGRATION_FLAGS = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
MIGRATION_BANDWIDTH_MIB_S = 500


def _cpu_time_ns(host: LabHost, name: str) -> int:
    with contextlib.closing(host.connect()) as conn:
        domain = conn.lookupByName(name)
        ((_, stats),) = conn.domainListGetStats([domain], libvirt.VIR_DOMAIN_STATS_CPU_TOTAL)
        return int(stats["cpu.time"])


def _vcpu_time_ns(host: LabHost, name: str) -> int:
    """CPU time of the guest's vCPU threads only: QEMU's other threads (main loop, I/O) still
    run, and are counted in cpu.time, while the guest is paused."""
    with contextlib.closing(host.connect()) as conn:
        domain = conn.lookupByName(name)
        ((_, stats),) = conn.domainListGetStats([domain], libvirt.VIR_DOMAIN_STATS_VCPU)
        count = int(stats["vcpu.current"])
        return sum(int(stats[f"vcpu.{i}.time"]) for i in range(count))


def _domain_state(host: LabHost, name: str) -> int | None:
    with contextlib.closing(host.connect()) as conn:
        try:
            return int(conn.lookupByName(name).state()[0])
        except libvirt.libvirtError:
            return None


def test_hosts_answer_with_their_own_uuids(lab: Lab) -> None:
    hosts = lab.hosts()
    assert [host.name for host in hosts] == ["host1", "host2", "host3"]
    for host in hosts:
        with contextlib.closing(host.connect()) as conn:
            assert conn.getURI().startswith("qemu")
            assert f"<uuid>{host.host_uuid}</uuid>" in conn.getCapabilities()
    assert len({host.host_uuid for host in hosts}) == len(hosts)
    ranges = [(host.migration_port_min, host.migration_port_max) for host in hosts]
    assert all(a_max < b_min for (_, a_max), (b_min, _) in zip(ranges, ranges[1:], strict=False))


def test_start_again_keeps_running_hosts(lab: Lab) -> None:
    before = lab.hosts()
    again = Lab(lab.path).start(2)
    assert [host.pid for host in again] == [host.pid for host in before[:2]]
    assert [host.pid for host in lab.hosts()] == [host.pid for host in before]


def test_stop_ends_every_process_it_started_and_nothing_else() -> None:
    directory = Path(tempfile.mkdtemp(prefix="vmgrid-lab-stop-", dir="/tmp"))
    directory.chmod(0o755)
    own_lab = Lab(directory, use_kvm=False)  # also covers the TCG fallback
    try:
        hosts = own_lab.start(2)
        assert [host.domain_type for host in hosts] == ["qemu", "qemu"]
        disk = create_boot_disk(own_lab.guest_dir / "idle.raw", "idle")
        define_and_start(hosts[0], make_guest_xml("left", "idle", disk=disk, kvm=own_lab.kvm))
        uid = directory.joinpath("host1").stat().st_uid
        assert processes_of_user_mentioning(uid, f"{directory}/", "qemu-system")
        result = own_lab.stop()
        assert result["daemons"] == 2
        assert all(not is_alive(host.record) for host in hosts)
        assert processes_of_user_mentioning(uid, f"{directory}/", "qemu-system") == []
        assert own_lab.hosts() == []
        assert own_lab.stop()["daemons"] == 0  # idempotent
    finally:
        own_lab.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _settled_cpu_time_ns(host: LabHost, name: str) -> int:
    """cpu.time once the guest has finished booting (SeaBIOS alone costs seconds of CPU
    under nested KVM): two reads 0.5 s apart differ by under 50 ms."""

    def settled() -> int | None:
        first = _cpu_time_ns(host, name)
        time.sleep(0.5)
        second = _cpu_time_ns(host, name)
        return second if second - first < 50_000_000 else None

    return wait_until(settled, WAIT_S, f"guest {name} to finish booting")


def test_spinning_guest_burns_cpu_and_idle_guest_does_not(lab: Lab, lab_guests) -> None:
    host = lab.hosts()[2]
    lab_guests(host, "idle-cpu", "idle")
    idle_start = _settled_cpu_time_ns(host, "idle-cpu")
    lab_guests(host, "spin-cpu", "spin")
    spin_start = _cpu_time_ns(host, "spin-cpu")
    wait_until(
        lambda: _cpu_time_ns(host, "spin-cpu") - spin_start >= 1_000_000_000,
        WAIT_S,
        "the spinning guest to use 1 s of CPU",
    )
    spin_used = _cpu_time_ns(host, "spin-cpu") - spin_start
    idle_used = _cpu_time_ns(host, "idle-cpu") - idle_start
    assert idle_used * 5 < spin_used


def test_tcg_guest_runs_without_kvm(lab: Lab, lab_guests) -> None:
    host = lab.hosts()[2]
    lab_guests(host, "spin-tcg", "spin", kvm=False)
    with contextlib.closing(host.connect()) as conn:
        assert "type='qemu'" in conn.lookupByName("spin-tcg").XMLDesc()
    start = _cpu_time_ns(host, "spin-tcg")
    wait_until(lambda: _cpu_time_ns(host, "spin-tcg") > start, WAIT_S, "the TCG guest to use CPU")


def test_tap_guest_reports_interface_counters(lab: Lab, lab_guests) -> None:
    host = lab.hosts()[2]
    tap = lab.create_tap(f"vmgl{os.getpid() % 100000}")
    lab_guests(host, "tap-guest", "idle", tap=tap)

    def counters() -> dict[str, int]:
        with contextlib.closing(host.connect()) as conn:
            domain = conn.lookupByName("tap-guest")
            ((_, stats),) = conn.domainListGetStats([domain], libvirt.VIR_DOMAIN_STATS_INTERFACE)
            return stats

    before = counters()
    assert before["net.count"] == 1 and before["net.0.name"] == tap
    # Frames sent into the tap are the guest's receive side. The OS-less guest never reads
    # them, so once the tap's queue is full they count as receive drops: real counters.
    frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + b"vmgrid-lab" * 10
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
        raw.bind((tap, 0))
        for _ in range(1500):
            raw.send(frame)

    def received(stats: dict[str, int]) -> int:
        return stats["net.0.rx.pkts"] + stats["net.0.rx.drop"]

    wait_until(
        lambda: received(counters()) - received(before) >= 100,
        WAIT_S,
        "the tap's receive counters to grow",
    )


def test_live_migration_moves_running_guest_to_host2(lab: Lab, lab_guests) -> None:
    host1, host2 = lab.hosts()[:2]
    domain = lab_guests(host1, "mover", "spin", memory_mib=64)
    params = {
        libvirt.VIR_MIGRATE_PARAM_URI: host1.migration_uri,
        libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: MIGRATION_BANDWIDTH_MIB_S,
    }
    began = time.monotonic()
    domain.migrateToURI3(host2.uri, params, MIGRATION_FLAGS)
    print(f"migration of a 64 MiB guest took {time.monotonic() - began:.2f} s", file=sys.stderr)
    assert _domain_state(host2, "mover") == libvirt.VIR_DOMAIN_RUNNING
    assert _domain_state(host1, "mover") in (None, libvirt.VIR_DOMAIN_SHUTOFF)
    after = _cpu_time_ns(host2, "mover")
    wait_until(lambda: _cpu_time_ns(host2, "mover") > after, WAIT_S, "the guest to run on host2")


def test_internal_snapshot_create_and_revert(lab: Lab, lab_guests) -> None:
    host = lab.hosts()[2]
    base = create_boot_disk(lab.guest_dir / "snap-base.raw", "idle")
    overlay = create_overlay(base, lab.guest_dir / "snap.qcow2")
    domain = lab_guests(host, "snapper", "idle", disk=overlay)
    snapshot = domain.snapshotCreateXML("<domainsnapshot><name>s1</name></domainsnapshot>", 0)
    assert domain.snapshotListNames() == ["s1"]
    domain.suspend()
    assert domain.state()[0] == libvirt.VIR_DOMAIN_PAUSED
    domain.revertToSnapshot(snapshot, 0)
    assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING  # taken while running
    assert snapshot.isCurrent()


def test_suspend_freezes_cpu_time_and_resume_restores_it(lab: Lab, lab_guests) -> None:
    host = lab.hosts()[2]
    domain = lab_guests(host, "pauser", "spin")
    domain.suspend()
    assert domain.state()[0] == libvirt.VIR_DOMAIN_PAUSED
    # The kernel may account the last tick (10 ms) of a vCPU thread just after the pause:
    # wait for the counter to settle, then it must stay put.
    frozen = _vcpu_time_ns(host, "pauser")
    deadline = time.monotonic() + 5
    while True:
        time.sleep(0.2)
        now = _vcpu_time_ns(host, "pauser")
        if now == frozen or time.monotonic() > deadline:
            break
        frozen = now
    time.sleep(0.5)
    assert _vcpu_time_ns(host, "pauser") == frozen
    domain.resume()
    assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    wait_until(lambda: _vcpu_time_ns(host, "pauser") > frozen, WAIT_S, "the resumed guest to run")
