"""The pure rules of a migration: flags, the UNSAFE exception, progress from job stats."""

from __future__ import annotations

import libvirt
import pytest
from vmgrid.agents import model
from vmgrid.agents.common import node_codec
from vmgrid.agents.common import node_codec as cluster_codec
from vmgrid.agents.node.libvirt_actions import internal_snapshot_refusal
from vmgrid.agents.node.migration import (
    MigrationRequest,
    disks_of,
    is_same_machine,
    plan_migration,
    progress_from_job_stats,
)

LAB_URI = "qemu+unix:///session?socket=/tmp/lab/host2/run/libvirt/libvirt-sock"
REMOTE_URI = "qemu+tcp://10.0.0.2/system"


def domain(*disks: str, kind: str = "kvm") -> str:
    return f"<domain type='{kind}'><devices>{''.join(disks)}</devices></domain>"


RAW_RO = (
    "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
    "<source file='/g/a.raw'/><target dev='vda'/><readonly/></disk>"
)
QCOW2_RW = (
    "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
    "<source file='/g/b.qcow2'/><target dev='vdb'/></disk>"
)
RAW_RW = (
    "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
    "<source file='/g/c.raw'/><target dev='vdc'/></disk>"
)
CDROM = "<disk type='file' device='cdrom'><target dev='hdc'/><readonly/></disk>"


def test_disks_are_read_with_format_and_writability() -> None:
    disks = disks_of(domain(RAW_RO, QCOW2_RW, CDROM))
    assert [(d.target, d.driver_type, d.writable_local) for d in disks] == [
        ("vda", "raw", False),
        ("vdb", "qcow2", True),
    ]


@pytest.mark.parametrize(
    ("uri", "local"),
    [
        (LAB_URI, True),
        ("qemu:///system", True),
        ("qemu+tcp://127.0.0.1/system", True),
        (REMOTE_URI, False),
        ("qemu+ssh://localhost/system", False),
    ],
)
def test_same_machine_is_a_unix_socket_or_loopback(uri: str, local: bool) -> None:
    assert is_same_machine(uri) is local


def test_plain_live_migration_flags_and_parameters() -> None:
    request = MigrationRequest(REMOTE_URI, "tcp://10.0.0.2", bandwidth_cap_bps=800 << 20)
    plan = plan_migration(request, disks_of(domain(RAW_RO)))
    expected = (
        libvirt.VIR_MIGRATE_LIVE
        | libvirt.VIR_MIGRATE_PEER2PEER
        | libvirt.VIR_MIGRATE_PERSIST_DEST
        | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    )
    assert plan.flags == expected and not plan.unsafe_reason
    assert plan.params == {
        libvirt.VIR_MIGRATE_PARAM_URI: "tcp://10.0.0.2",
        libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 100,
    }


def test_transient_domains_stay_transient_and_auto_converge_is_passed_on() -> None:
    request = MigrationRequest(REMOTE_URI, auto_converge=True, live=False)
    plan = plan_migration(request, (), persistent=False)
    assert plan.flags == libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_AUTO_CONVERGE
    assert plan.params == {}


def test_unsafe_only_for_a_writable_disk_on_the_same_machine() -> None:
    disks = disks_of(domain(QCOW2_RW))
    local = plan_migration(MigrationRequest(LAB_URI), disks)
    assert local.flags & libvirt.VIR_MIGRATE_UNSAFE
    assert "vdb (/g/b.qcow2)" in local.unsafe_reason
    remote = plan_migration(MigrationRequest(REMOTE_URI), disks)
    assert not remote.flags & libvirt.VIR_MIGRATE_UNSAFE
    copied = plan_migration(MigrationRequest(LAB_URI, copy_storage=True), disks)
    assert copied.flags & libvirt.VIR_MIGRATE_NON_SHARED_DISK
    assert not copied.flags & libvirt.VIR_MIGRATE_UNSAFE


def test_progress_from_job_stats() -> None:
    assert progress_from_job_stats({"type": libvirt.VIR_DOMAIN_JOB_NONE}) is None
    stats = {
        "type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED,
        "data_processed": 30,
        "data_remaining": 70,
    }
    progress = progress_from_job_stats(stats)
    assert progress is not None and progress.fraction == pytest.approx(0.3)
    done = progress_from_job_stats({**stats, "data_processed": 100, "data_remaining": 0})
    assert done is not None and done.fraction == 0.99  # 1.0 only once the job has ended


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        (domain(QCOW2_RW), ""),
        (domain(RAW_RO, QCOW2_RW), ""),
        (domain(kind="test"), ""),
        (domain(RAW_RO), "no qcow2 disk"),
        (domain(QCOW2_RW, RAW_RW), "vdc (raw) is not qcow2"),
    ],
)
def test_internal_snapshots_need_qcow2(xml: str, reason: str) -> None:
    refusal = internal_snapshot_refusal(xml)
    assert (reason in refusal) if reason else refusal == ""


def test_migration_uri_crosses_the_wire_both_ways() -> None:
    command = model.MigrateCommand("c1", "vm", REMOTE_URI, 10, migration_uri="tcp://10.0.0.2")
    sent = cluster_codec.encode_command(command)
    assert node_codec.command_from_wire(sent) == command
    assert cluster_codec.decode_command(node_codec.command_to_wire(command).command) == command


def test_max_downtime_crosses_the_wire_and_reaches_the_request() -> None:
    command = model.MigrateCommand("c1", "vm", REMOTE_URI, 10, max_downtime_ms=120)
    sent = cluster_codec.encode_command(command)
    received = node_codec.command_from_wire(sent)
    assert received == command
    assert isinstance(received, model.MigrateCommand) and received.max_downtime_ms == 120
    assert model.MigrateCommand("c2", "vm", REMOTE_URI).max_downtime_ms == 0  # QEMU's default
