"""Actuators with a real LibvirtHypervisor on the test driver: snapshots and save/restore.

The test driver keeps snapshots in memory and writes real save images, so these commands
run for real here; results are labelled simulated because the node is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from vmgrid.agents import model
from vmgrid.agents.node.actuators import Actuators
from vmgrid.agents.node.libvirt_hypervisor import LibvirtHypervisor
from vmgrid.agents.node.testnode import SimVm, node_xml

VM = SimVm("act-vm", vcpus=1, memory_mib=256)
OK, FAILED = model.CommandState.SUCCEEDED, model.CommandState.FAILED


@pytest.fixture
def hypervisor(tmp_path: Path) -> Iterator[LibvirtHypervisor]:
    path = tmp_path / "node.xml"
    path.write_text(node_xml([VM], cpus=2, memory_mib=4096))
    hv = LibvirtHypervisor(f"test://{path}")
    hv.connect()
    yield hv
    hv.close()


def run(hv: LibvirtHypervisor, *commands: model.Command) -> list[model.CommandResult]:
    """Final result of each command, submitted one after the other."""

    async def scenario() -> list[model.CommandResult]:
        actuators = Actuators(hv, lambda _result: None)
        finals = []
        for command in commands:
            actuators.submit(command)
            await actuators.drain()
            final = actuators.cached(command.command_id)
            assert final is not None
            finals.append(final)
        return finals

    return asyncio.run(scenario())


def test_snapshot_create_list_revert_delete_cycle(hypervisor: LibvirtHypervisor) -> None:
    results = run(
        hypervisor,
        model.CreateSnapshotCommand("s1", VM.uuid, "before", "first"),
        model.CreateSnapshotCommand("s2", VM.uuid, "before"),
        model.CreateSnapshotCommand("s3", VM.uuid, "after"),
        model.ListSnapshotsCommand("s4", VM.uuid),
        model.SuspendCommand("s5", VM.uuid),
        model.RevertSnapshotCommand("s6", VM.uuid, "before"),
        model.RevertSnapshotCommand("s7", VM.uuid, "before"),
        model.DeleteSnapshotCommand("s8", VM.uuid, "before"),
        model.DeleteSnapshotCommand("s9", VM.uuid, "before"),
        model.ListSnapshotsCommand("s10", VM.uuid),
    )
    assert [r.state for r in results] == [OK] * 10, [r.message for r in results]
    assert [r.message for r in results[:3]] == [
        "snapshot before taken",
        "snapshot before already exists",
        "snapshot after taken",
    ]
    assert results[3].snapshot_names == ("before", "after")
    assert all(r.simulated for r in results)
    assert [r.message for r in results[7:9]] == [
        "snapshot before deleted",
        "snapshot before already absent",
    ]
    assert results[9].snapshot_names == ("after",)
    assert hypervisor.domain_state(VM.uuid) is model.VmState.RUNNING  # the snapshot ran


def test_revert_to_a_missing_snapshot_fails_naming_the_vm_and_known_ones(
    hypervisor: LibvirtHypervisor,
) -> None:
    created, missing, unnamed = run(
        hypervisor,
        model.CreateSnapshotCommand("m1", VM.uuid, "kept"),
        model.RevertSnapshotCommand("m2", VM.uuid, "nope"),
        model.CreateSnapshotCommand("m3", VM.uuid, ""),
    )
    assert created.state is OK
    assert missing.state is FAILED
    assert VM.uuid in missing.message and "'nope'" in missing.message
    assert "it has: kept" in missing.message
    assert unnamed.state is FAILED and "snapshot_name is empty" in unnamed.message


def test_save_then_restore_is_idempotent_by_effect(
    hypervisor: LibvirtHypervisor, tmp_path: Path
) -> None:
    image = str(tmp_path / "act-vm.save")
    saved, saved_again, restored, restored_again = run(
        hypervisor,
        model.SaveCommand("v1", VM.uuid, image),
        model.SaveCommand("v2", VM.uuid, image),
        model.RestoreCommand("v3", image),
        model.RestoreCommand("v4", image),
    )
    assert (saved.state, saved.message) == (OK, f"saved to {image}")
    assert (saved_again.state, saved_again.message) == (OK, f"already saved to {image}")
    assert (restored.state, restored.vm_uuid) == (OK, VM.uuid)
    assert restored_again.message == f"already restored from {image}"
    assert hypervisor.domain_state(VM.uuid) is model.VmState.RUNNING


def test_save_and_restore_errors_are_one_clear_line(
    hypervisor: LibvirtHypervisor, tmp_path: Path
) -> None:
    relative, missing_file, stopped = run(
        hypervisor,
        model.SaveCommand("e1", VM.uuid, "relative.save"),
        model.RestoreCommand("e2", str(tmp_path / "absent.save")),
        model.DestroyCommand("e3", VM.uuid),
    )
    assert relative.state is FAILED and "'relative.save' is not absolute" in relative.message
    assert missing_file.state is FAILED and "absent.save" in missing_file.message
    assert stopped.state is OK
    (off,) = run(hypervisor, model.SaveCommand("e4", VM.uuid, str(tmp_path / "off.save")))
    assert off.state is FAILED and "shut off" in off.message
