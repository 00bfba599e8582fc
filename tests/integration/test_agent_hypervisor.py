"""The libvirt side of the agent on the test driver: samples, events, actuators' idempotency."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from vmgrid.agents import model
from vmgrid.agents.node.actuators import Actuators
from vmgrid.agents.node.collector import Collector
from vmgrid.agents.node.hypervisor import DomainEvent, DomainEventKind, HypervisorUnavailable
from vmgrid.agents.node.libvirt_hypervisor import LibvirtHypervisor
from vmgrid.agents.node.load import LoadSource
from vmgrid.agents.node.testnode import SimVm, domain_xml, node_xml

ON, OFF = SimVm("hv-on", vcpus=2, memory_mib=1024), SimVm("hv-off", running=False)


@pytest.fixture
def hypervisor(tmp_path: Path) -> Iterator[LibvirtHypervisor]:
    path = tmp_path / "node.xml"
    path.write_text(node_xml([ON, OFF], cpus=4, memory_mib=8192))
    hv = LibvirtHypervisor(f"test://{path}")
    hv.connect()
    yield hv
    hv.close()


def test_sample_and_report_of_a_simulated_node(hypervisor: LibvirtHypervisor) -> None:
    info = hypervisor.host_info()
    assert (info.cpu_count, info.memory_mib, info.hypervisor_type) == (4, 8192, "TEST")
    collector = Collector(info, LoadSource(default={"cpu": 50, "net_tx": 8}), simulated=True)
    report = collector.report(hypervisor.sample())
    vms = {vm.name: vm for vm in report.vms}
    assert vms["hv-on"].cpu_used_millicores == 1000 and vms["hv-on"].simulated
    assert vms["hv-on"].net_tx_bytes_per_second == 1_000_000
    assert vms["hv-off"].state is model.VmState.SHUT_OFF and vms["hv-off"].cpu_used_millicores == 0
    assert report.host.cpu_used_millicores == 1000
    assert report.host.memory_used_bytes == 1024 << 20


def test_lifecycle_events_arrive_from_libvirts_thread(hypervisor: LibvirtHypervisor) -> None:
    seen: list[DomainEvent] = []
    arrived = threading.Event()

    def on_event(event: DomainEvent) -> None:
        seen.append(event)
        arrived.set()

    hypervisor.subscribe(on_event, lambda _up, _why: None)
    hypervisor.start(OFF.uuid)
    assert arrived.wait(timeout=5)
    assert (seen[0].uuid, seen[0].kind) == (OFF.uuid, DomainEventKind.STARTED)


def test_unreachable_uri_raises_unavailable_naming_it() -> None:
    with pytest.raises(HypervisorUnavailable, match="cannot reach libvirt at 'qemu\\+tcp://"):
        LibvirtHypervisor("qemu+tcp://127.0.0.1:1/system").connect()


def run_commands(hv: LibvirtHypervisor, commands: list[model.Command]) -> list[model.CommandResult]:
    """Submit commands one after the other; return the final result of each."""

    async def scenario() -> list[model.CommandResult]:
        published: list[model.CommandResult] = []
        actuators = Actuators(hv, published.append)
        finals = []
        for command in commands:
            first = actuators.submit(command)
            if not first.is_final:
                await actuators.drain()
                first = actuators.cached(command.command_id) or first
            finals.append(first)
        return finals

    return asyncio.run(scenario())


def test_reached_states_are_no_ops_and_a_resent_id_is_not_run_again(
    hypervisor: LibvirtHypervisor,
) -> None:
    results = run_commands(
        hypervisor,
        [
            model.StartCommand("c1", ON.uuid),
            model.DestroyCommand("c2", OFF.uuid),
            model.DestroyCommand("c3", ON.uuid),
            model.StartCommand("c3", ON.uuid),  # same id: answered from the cache
            model.SuspendCommand("c4", ON.uuid),
        ],
    )
    assert [r.message for r in results[:3]] == ["already running", "already shut off", "shut off"]
    assert results[3] == results[2]
    assert hypervisor.domain_state(ON.uuid) is model.VmState.SHUT_OFF
    assert results[4].state is model.CommandState.FAILED
    assert "only a running VM can suspend" in results[4].message


def test_define_undefine_suspend_resume_cycle(hypervisor: LibvirtHypervisor) -> None:
    new = SimVm("hv-new")
    results = run_commands(
        hypervisor,
        [
            model.DefineCommand("d1", domain_xml(new)),
            model.StartCommand("d2", new.uuid),
            model.SuspendCommand("d3", new.uuid),
            model.ResumeCommand("d4", new.uuid),
            model.UndefineCommand("d5", new.uuid),
            model.DestroyCommand("d6", new.uuid),
            model.UndefineCommand("d7", new.uuid),
            model.UndefineCommand("d8", new.uuid),
        ],
    )
    states = [r.state for r in results]
    assert results[0].vm_uuid == new.uuid
    assert states[:4] == [model.CommandState.SUCCEEDED] * 4
    assert (
        states[4] is model.CommandState.FAILED and "destroy or shut it down" in results[4].message
    )
    assert [r.message for r in results[5:]] == ["shut off", "undefined", "already undefined"]


def test_migration_on_a_simulated_node_fails_pointing_at_the_manager(
    hypervisor: LibvirtHypervisor,
) -> None:
    migrate = model.MigrateCommand("x1", ON.uuid, "test:///default")
    abort = model.AbortMigrationCommand("x2", ON.uuid)
    failed, aborted = run_commands(hypervisor, [migrate, abort])
    assert failed.state is model.CommandState.FAILED and failed.simulated
    assert "simulated nodes migrate through the manager" in failed.message
    assert ON.uuid in failed.message
    assert (aborted.state, aborted.message) == (
        model.CommandState.SUCCEEDED,
        "no migration was running",
    )
    assert hypervisor.domain_state(ON.uuid) is model.VmState.RUNNING


def test_nic_macs_come_from_the_domain_xml_read_through_libvirt() -> None:
    """Read as on a real host (not simulated): the test driver's default domain has a NIC."""
    real = LibvirtHypervisor("test:///default", simulated=False)
    real.connect()
    try:
        [dom] = real.sample().domains
        assert dom.macs == ("aa:bb:cc:dd:ee:ff",)
    finally:
        real.close()


def test_a_simulated_node_reads_no_macs(hypervisor: LibvirtHypervisor) -> None:
    domains = hypervisor.sample().domains
    assert domains and all(dom.macs == () for dom in domains)
