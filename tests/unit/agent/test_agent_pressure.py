"""Pressure-stall information: parsing the kernel's PSI files, finding a QEMU VM's cgroup,
and what a test-driver node reports (unavailable, never zero)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from vmgrid.agents import model
from vmgrid.agents.node.collector import Collector
from vmgrid.agents.node.hypervisor import DomainSample, HostCounters, HostInfo, HostSample
from vmgrid.agents.node.pressure import (
    PsiFormatError,
    VmPressureReader,
    cgroup2_mount,
    parse_psi,
    process_cgroup,
    read_host_pressure,
)

PSI = Path(__file__).parents[2] / "data" / "psi"
UUID = "6f1b9d0e-2c1a-4f3e-9a8b-0c1d2e3f4a5b"


def test_host_cpu_file_as_written_by_the_kernel_parses() -> None:
    stall = parse_psi((PSI / "host-cpu").read_text())
    assert stall == model.PressureStall(11.84, 0.0, 4971225137, 0)


def test_io_file_has_both_lines() -> None:
    stall = parse_psi((PSI / "host-io").read_text())
    assert (stall.some_avg10, stall.full_avg10) == (1.64, 1.21)
    assert (stall.some_total_us, stall.full_total_us) == (178980774, 45735408)


def test_cpu_file_without_a_full_line_reads_full_as_zero() -> None:
    assert parse_psi((PSI / "cpu-pre-5.13").read_text()).full_avg10 == 0.0


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("full avg10=1.00 avg60=0 avg300=0 total=3\n", "no 'some' line"),
        ("some avg10=x avg60=0 avg300=0 total=3\n", "bad or missing"),
        ("some avg10\n", "is not 'some|full key=value"),
        ("some avg60=0.00 total=3\n", "'avg10'"),
    ],
)
def test_text_that_is_not_psi_is_refused_with_the_text(text: str, named: str) -> None:
    with pytest.raises(PsiFormatError, match=named):
        parse_psi(text)


@pytest.mark.skipif(not Path("/proc/pressure/cpu").exists(), reason="kernel without PSI")
def test_this_hosts_pressure_files_read() -> None:
    pressure = read_host_pressure()
    assert pressure.available and pressure.cpu is not None
    assert 0.0 <= pressure.cpu.some_avg10 <= 100.0


def test_a_missing_pressure_directory_is_unavailable_not_zero(tmp_path: Path) -> None:
    pressure = read_host_pressure(tmp_path / "absent")
    assert not pressure.available
    assert pressure == model.NO_PRESSURE


def _proc(tmp_path: Path, cgroup: str) -> tuple[Path, Path]:
    """A /proc with one QEMU process and a cgroup v2 tree with its PSI files."""
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "4242").mkdir(parents=True)
    (proc / "4242" / "cmdline").write_bytes(
        b"\0".join(
            [b"/usr/bin/qemu-system-x86_64", b"-name", b"guest=vm1", b"-uuid", UUID.encode()]
        )
        + b"\0"
    )
    (proc / "4242" / "cgroup").write_text(f"1:cpu:/\n0::{cgroup}\n")
    (proc / "self").mkdir()
    (proc / "mounts").write_text(f"cgroup2 {root} cgroup2 rw,relatime 0 0\n")
    scope = root / cgroup.lstrip("/")
    scope.mkdir(parents=True)
    (scope / "cpu.pressure").write_text((PSI / "cgroup-cpu.pressure").read_text())
    (scope / "io.pressure").write_text((PSI / "host-io").read_text())
    return proc, root


def test_a_qemu_vm_in_its_own_cgroup_reports_that_cgroups_pressure(tmp_path: Path) -> None:
    scope = "/machine.slice/machine-qemu\\x2d1\\x2dvm1.scope/libvirt"
    proc, root = _proc(tmp_path, scope)
    assert cgroup2_mount(proc / "mounts") == root
    assert process_cgroup(4242, proc) == scope
    rows = VmPressureReader(proc).read([UUID, "absent-uuid"])
    assert [r.uuid for r in rows] == [UUID]
    pressure = rows[0].pressure
    assert pressure.cpu is not None and pressure.cpu.some_avg10 == 11.84
    assert pressure.memory is None  # no memory.pressure file: unavailable, not zero
    assert pressure.io is not None and pressure.io.full_avg10 == 1.21


def test_a_vm_in_the_root_cgroup_has_no_pressure_of_its_own(tmp_path: Path) -> None:
    proc, _ = _proc(tmp_path, "/")
    assert VmPressureReader(proc).read([UUID]) == ()


def test_a_host_without_cgroup_v2_reports_no_vm_pressure(tmp_path: Path) -> None:
    proc, _ = _proc(tmp_path, "/machine.slice/vm1.scope")
    (proc / "mounts").write_text("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n")
    assert VmPressureReader(proc).read([UUID]) == ()


def test_a_vm_whose_process_went_away_is_forgotten(tmp_path: Path) -> None:
    proc, _ = _proc(tmp_path, "/machine.slice/vm1.scope")
    reader = VmPressureReader(proc)
    assert len(reader.read([UUID])) == 1
    (proc / "4242" / "cmdline").write_bytes(b"/bin/sleep\0")
    assert reader.read([UUID]) == ()


def _sample() -> HostSample:
    domain = DomainSample(UUID, "vm1", model.VmState.RUNNING, 1, 512, None, ())
    return HostSample(time.monotonic_ns(), HostCounters(0, 0, 4096, None), (domain,))


def test_a_test_driver_node_reports_pressure_unavailable(tmp_path: Path) -> None:
    """Its figures are simulated: the machine's /proc/pressure is not that node's."""
    info = HostInfo("n1", "test:///default", "Test", 4, 2000, 4096)
    proc, _ = _proc(tmp_path, "/machine.slice/vm1.scope")
    collector = Collector(info, None, simulated=True, vm_pressure=VmPressureReader(proc))
    report = collector.report(_sample())
    assert not report.host.pressure.available
    assert report.vm_pressure == ()


def test_a_real_node_reports_host_and_vm_pressure(tmp_path: Path) -> None:
    info = HostInfo("n1", "qemu:///system", "QEMU", 4, 2000, 4096)
    proc, _ = _proc(tmp_path, "/machine.slice/vm1.scope")
    host_psi = tmp_path / "pressure"
    host_psi.mkdir()
    (host_psi / "cpu").write_text((PSI / "host-cpu").read_text())
    collector = Collector(
        info, None, simulated=False, pressure_root=host_psi, vm_pressure=VmPressureReader(proc)
    )
    report = collector.report(_sample())
    assert report.host.pressure.cpu is not None
    assert report.host.pressure.cpu.some_avg10 == 11.84
    assert report.host.pressure.memory is None
    assert [row.uuid for row in report.vm_pressure] == [UUID]


def test_a_vm_not_looked_for_before_is_found_at_once_others_every_30_s(tmp_path: Path) -> None:
    proc, _ = _proc(tmp_path, "/machine.slice/vm1.scope")
    reader = VmPressureReader(proc)
    assert reader.pids(["absent-uuid"]) == {}  # scanned: not there
    other = "6f1e2d3c-0000-4000-8000-000000000002"
    (proc / "4343").mkdir()
    (proc / "4343" / "cmdline").write_bytes(b"qemu\0-uuid\0" + other.encode() + b"\0")
    # a VM that arrived since (say by migration) is looked for now, not 30 s later
    assert reader.pids([other, UUID]) == {other: 4343, UUID: 4242}
    (proc / "4444").mkdir()
    (proc / "4444" / "cmdline").write_bytes(b"qemu\0-uuid\0absent-uuid\0")
    assert reader.pids(["absent-uuid"]) == {}  # looked for 0 s ago: no scan until 30 s on


def test_a_vm_back_on_this_host_with_a_new_process_is_found_at_once(tmp_path: Path) -> None:
    """A VM that left (migrated away: its process ended) and came back has a new process:
    it is looked for at once, not up to 30 s later (the agent would report QEMU's whole RSS
    as its resident memory meanwhile, and the manager plan its next migration on that)."""
    proc, _ = _proc(tmp_path, "/machine.slice/vm1.scope")
    reader = VmPressureReader(proc)
    assert reader.pids([UUID]) == {UUID: 4242}
    (proc / "4242" / "cmdline").write_bytes(b"/bin/sleep\0")  # its process ended
    (proc / "4545").mkdir()
    (proc / "4545" / "cmdline").write_bytes(b"qemu\0-uuid\0" + UUID.encode() + b"\0")
    assert reader.pids([UUID]) == {UUID: 4545}
    # one that stays without a process is still looked for at most every 30 s
    (proc / "4545" / "cmdline").write_bytes(b"/bin/sleep\0")
    assert reader.pids([UUID]) == {}
    (proc / "4646").mkdir()
    (proc / "4646" / "cmdline").write_bytes(b"qemu\0-uuid\0" + UUID.encode() + b"\0")
    assert reader.pids([UUID]) == {}
