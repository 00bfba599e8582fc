"""The source's agent asks the destination's libvirt for the completed migration job, for
real, on the libvirt test driver: it keeps no job statistics (``virDomainGetJobStats`` is not
supported there), so the reading fails with a message naming the destination, and the
migration's result is still a success, without figures. A test-driver node (simulated) does
not ask at all."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from vmgrid.agents import model
from vmgrid.agents.node.actuators import Actuators
from vmgrid.agents.node.hypervisor import HypervisorError
from vmgrid.agents.node.libvirt_hypervisor import LibvirtHypervisor
from vmgrid.agents.node.migration import MigrationRequest
from vmgrid.agents.node.testnode import SimVm, node_xml

VM = SimVm("moving-vm", vcpus=1, memory_mib=256)


class MigratedHere(LibvirtHypervisor):
    """A real hypervisor whose migration call alone is skipped (the test driver has none):
    everything after it runs against libvirt."""

    def migrate(self, vm: str, request: MigrationRequest) -> str:
        return ""


@pytest.fixture
def node_uri(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "node.xml"
    path.write_text(node_xml([VM], cpus=2, memory_mib=4096))
    yield f"test://{path}"


def test_the_destinations_libvirt_is_asked_and_its_refusal_is_named(node_uri: str) -> None:
    hv = LibvirtHypervisor(node_uri, simulated=False)
    with pytest.raises(HypervisorError, match=rf"cannot ask libvirt at '{node_uri}'.*support"):
        hv.completed_migration(node_uri, VM.uuid)
    assert LibvirtHypervisor(node_uri).completed_migration(node_uri, VM.uuid) is None


def test_a_migration_without_job_statistics_succeeds_without_figures(node_uri: str) -> None:
    hv = MigratedHere(node_uri, simulated=False)
    hv.connect()
    command = model.MigrateCommand("c1", VM.uuid, node_uri)

    async def scenario() -> model.CommandResult | None:
        actuators = Actuators(hv, lambda _result: None)
        actuators.submit(command)
        await actuators.drain()
        return actuators.cached(command.command_id)

    try:
        result = asyncio.run(scenario())
    finally:
        hv.close()
    assert result is not None and result.state is model.CommandState.SUCCEEDED, result
    assert result.migration_job is None
