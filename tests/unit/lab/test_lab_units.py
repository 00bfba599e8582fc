"""Pure parts of the lab: guest XML, boot sectors, port ranges, pid identity, CLI errors."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from vmgrid.lab import LabError, create_boot_disk, make_guest_xml, wait_until
from vmgrid.lab.guests import boot_sector, disk_format
from vmgrid.lab.host import MAX_HOSTS, migration_ports, qemu_conf
from vmgrid.lab.main import main
from vmgrid.lab.procs import ProcessRecord, is_alive, read_pid_file, record_of, write_pid_file


@pytest.mark.parametrize(("mode", "code"), [("spin", b"\xeb\xfe"), ("idle", b"\xfa\xf4\xeb\xfd")])
def test_boot_sector_holds_code_and_signature(mode: str, code: bytes) -> None:
    sector = boot_sector(mode)
    assert len(sector) == 512
    assert sector.startswith(code)
    assert sector[510:] == b"\x55\xaa"


def test_unknown_mode_names_the_accepted_ones() -> None:
    with pytest.raises(LabError, match=r"'busy'.*spin, idle"):
        boot_sector("busy")


def test_raw_disk_guest_is_readonly_kvm_and_tiny(tmp_path: Path) -> None:
    disk = create_boot_disk(tmp_path / "spin.raw", "spin")
    root = ET.fromstring(make_guest_xml("g1", disk=disk))
    assert root.get("type") == "kvm"
    assert root.findtext("memory") == "64" and root.findtext("vcpu") == "1"
    assert root.find("devices/disk/readonly") is not None
    assert root.find("devices/disk/driver").get("type") == "raw"  # type: ignore[union-attr]
    assert root.find("devices/interface") is None


def test_tcg_guest_with_tap_and_qcow2_disk(tmp_path: Path) -> None:
    disk = tmp_path / "fake.qcow2"
    disk.write_bytes(b"QFI\xfb" + bytes(100))
    root = ET.fromstring(make_guest_xml("g2", "idle", 32, 2, disk=disk, tap="tap0", kvm=False))
    assert root.get("type") == "qemu"
    assert disk_format(disk) == "qcow2"
    assert root.find("devices/disk/readonly") is None
    target = root.find("devices/interface/target")
    assert target is not None and target.get("dev") == "tap0" and target.get("managed") == "no"


def test_guest_without_disk_is_refused() -> None:
    with pytest.raises(LabError, match="needs a disk"):
        make_guest_xml("g3")


def test_hosts_of_a_lab_get_disjoint_port_ranges() -> None:
    ranges = [migration_ports(Path("/tmp/lab-a"), i) for i in range(1, MAX_HOSTS + 1)]
    for (_, high), (low, _) in zip(ranges, ranges[1:], strict=False):
        assert high < low
    assert all(49152 <= low <= high <= 65535 for low, high in ranges)
    assert f"migration_port_min = {ranges[0][0]}" in qemu_conf(*ranges[0])
    with pytest.raises(LabError, match="accepted: 1..16"):
        migration_ports(Path("/tmp/lab-a"), MAX_HOSTS + 1)


def test_pid_record_round_trips_and_detects_reuse(tmp_path: Path) -> None:
    me = record_of(os.getpid())
    assert me is not None and is_alive(me)
    write_pid_file(tmp_path / "x.pid", me)
    assert read_pid_file(tmp_path / "x.pid") == me
    assert not is_alive(ProcessRecord(me.pid, me.start_ticks + 1))
    assert read_pid_file(tmp_path / "missing.pid") is None


def test_wait_until_names_what_never_came() -> None:
    with pytest.raises(LabError, match="the moon"):
        wait_until(lambda: None, 0.2, "the moon", interval_s=0.05)
    assert wait_until(lambda: 7, 1.0, "seven") == 7


def test_cli_rejects_bad_host_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["start", "--hosts", "0", "--dir", "/tmp/vmgrid-lab-never"]) == 2
    assert "--hosts 0 is out of range; accepted: 1..16" in capsys.readouterr().err
