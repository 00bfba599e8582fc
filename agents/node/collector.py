"""Hypervisor samples to the model's hello, reports and lifecycle events.

Real hosts report measured figures: CPU from cumulative CPU time, network from interface
counters, both as rates over the last period. Test-driver hosts measure nothing, so their
VM figures come from the load source and every value they report is marked simulated.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from vmgrid.agents import model
from vmgrid.agents.node.guest_memory import ResidentMeter
from vmgrid.agents.node.hypervisor import (
    DomainEvent,
    DomainEventKind,
    DomainSample,
    HostInfo,
    HostSample,
)
from vmgrid.agents.node.load import LoadSource
from vmgrid.agents.node.pressure import VmPressureReader, read_host_pressure
from vmgrid.agents.node.rates import DomainRates, RateTracker, host_busy_millicores

MIB = 1 << 20
# Unlike the manager, the agent reports no memory in use for a guest the guest's own power
# management suspended (PM_SUSPENDED): that domain's figures are not sampled as held memory.
_HOLDS_MEMORY = model.HOLDS_MEMORY_STATES - {model.VmState.PM_SUSPENDED}

_LIFECYCLE: dict[DomainEventKind, tuple[model.LifecycleEventKind, str]] = {
    DomainEventKind.DEFINED: (model.LifecycleEventKind.DEFINED, ""),
    DomainEventKind.UNDEFINED: (model.LifecycleEventKind.UNDEFINED, ""),
    DomainEventKind.STARTED: (model.LifecycleEventKind.STARTED, ""),
    DomainEventKind.SUSPENDED: (model.LifecycleEventKind.SUSPENDED, ""),
    DomainEventKind.RESUMED: (model.LifecycleEventKind.RESUMED, ""),
    DomainEventKind.STOPPED: (model.LifecycleEventKind.STOPPED, ""),
    DomainEventKind.CRASHED: (model.LifecycleEventKind.STOPPED, "crashed"),
    DomainEventKind.MIGRATED_IN: (model.LifecycleEventKind.MIGRATED, "migrated in"),
    DomainEventKind.MIGRATED_OUT: (model.LifecycleEventKind.MIGRATED, "migrated out"),
}
_STARTED_DETAIL = ("booted", "migrated", "restored", "from snapshot", "wakeup")
_STOPPED_DETAIL = ("shutdown", "destroyed", "crashed", "migrated", "saved", "failed", "snapshot")


def node_hello(
    info: HostInfo,
    node_id: str,
    nic_bandwidth_mbps: int,
    migration_uri: str,
    simulated: bool,
    report_period_ms: int,
    started_at_unix_ns: int,
    agent_version: str,
    peer_uri: str = "",
    cpu_millicores: int = 0,
) -> model.NodeHello:
    """Who this node is and what it offers, from the host's static figures.

    `cpu_millicores` > 0 declares the CPU capacity instead of the host's (lab hosts share one
    machine, so each one is given its own share).
    """
    return model.NodeHello(
        identity=model.NodeIdentity(
            node_id=node_id,
            hostname=info.hostname,
            migration_uri=migration_uri,
            agent_version=agent_version,
            hypervisor_kind=info.hypervisor_type.lower(),
            simulated=simulated,
            peer_uri=peer_uri,
        ),
        capacity=model.NodeCapacity(
            cpu_millicores=cpu_millicores or info.cpu_count * 1000,
            memory_bytes=info.memory_mib * MIB,
            nic_bandwidth_bps=nic_bandwidth_mbps * 1_000_000,
        ),
        started_at_unix_ns=started_at_unix_ns,
        report_period_ms=report_period_ms,
    )


def lifecycle_event(event: DomainEvent, simulated: bool) -> model.LifecycleEvent | None:
    """The model's event for a hypervisor event; None for ones the manager need not see."""
    mapped = _LIFECYCLE.get(event.kind)
    if mapped is None:
        return None
    kind, detail = mapped
    if not detail and event.kind is DomainEventKind.STARTED:
        detail = _detail(_STARTED_DETAIL, event.detail)
    elif not detail and event.kind is DomainEventKind.STOPPED:
        detail = _detail(_STOPPED_DETAIL, event.detail)
    return model.LifecycleEvent(
        at_unix_ns=time.time_ns(),
        kind=kind,
        vm_uuid=event.uuid,
        vm_name=event.name,
        detail=detail,
        simulated=simulated,
    )


def _detail(names: tuple[str, ...], code: int) -> str:
    return names[code] if 0 <= code < len(names) else str(code)


class Collector:
    """Turns successive samples of one host into reports (sequence numbers are the link's).

    Pressure (PSI) is read for real hosts only: a test-driver node's figures come from a load
    source, and the machine's /proc/pressure is not that node's, so its pressure is reported
    unavailable (as are the VMs of any host whose cgroups cannot be read). So is what a
    migration would send (#16): a real guest's resident non-zero memory from its QEMU process
    (`guest_memory`), its dirty rate from the hypervisor's sample; a test-driver VM reports 0
    for both (not measured). A guest whose memory is still arriving (an incoming migration)
    is not measured and reports 0: the meter forgets it, and measures it at the first report
    once it runs, rather than keeping a figure of its half-filled RAM for the meter's 10 s.
    """

    def __init__(
        self,
        info: HostInfo,
        load: LoadSource | None,
        simulated: bool,
        host_cpu_from_guests: bool = False,
        pressure_root: Path | None = Path("/proc/pressure"),
        vm_pressure: VmPressureReader | None = None,
    ) -> None:
        self._info = info
        self._load = load
        self._simulated = simulated
        self._host_cpu_from_guests = host_cpu_from_guests
        self._pressure_root = None if simulated else pressure_root
        self._vm_pressure = None if simulated else (vm_pressure or VmPressureReader())
        self._resident = (
            None if self._vm_pressure is None else ResidentMeter(self._vm_pressure.pids)
        )
        self._rates = RateTracker()
        self._started = time.monotonic()

    def reset(self, info: HostInfo) -> None:
        """After a reconnect: new static figures, and no rate across the gap."""
        self._info = info
        self._rates.reset()

    def report(self, sample: HostSample) -> model.NodeReport:
        previous, rates = self._rates.update(sample)
        elapsed_s = time.monotonic() - self._started
        resident: dict[str, int] = {}
        if self._resident is not None:
            held = [
                (d.uuid, d.memory_mib * MIB)
                for d in sample.domains
                if d.state in _HOLDS_MEMORY and not d.memory_arriving
            ]
            resident = self._resident.measure(held)
        vms = tuple(
            self._vm(dom, rates[dom.uuid], elapsed_s, resident.get(dom.uuid, 0))
            for dom in sample.domains
        )
        host = self._host(sample, previous, vms)
        if self._pressure_root is not None:
            host = replace(host, pressure=read_host_pressure(self._pressure_root))
        vm_pressure: tuple[model.VmPressure, ...] = ()
        if self._vm_pressure is not None:
            running = [vm.uuid for vm in vms if vm.state in model.RUNNING_STATES]
            vm_pressure = self._vm_pressure.read(running) if running else ()
        return model.NodeReport(
            sent_at_unix_ns=time.time_ns(),
            sequence=0,
            host=host,
            vms=vms,
            vm_pressure=vm_pressure,
        )

    def _vm(
        self, dom: DomainSample, rates: DomainRates, elapsed_s: float, resident: int
    ) -> model.VmUsage:
        active = dom.state in model.RUNNING_STATES
        cpu, rx, tx = (
            rates.cpu_millicores or 0,
            rates.net_rx_bytes_per_second,
            rates.net_tx_bytes_per_second,
        )
        if dom.vcpus > 0:  # QEMU's start-up threads can add a burst no vCPU ever gets
            cpu = min(cpu, dom.vcpus * 1000)
        if self._simulated:
            cpu = rx = tx = 0
            if active and self._load is not None:
                figures = self._load.figures(dom.name, dom.vcpus, elapsed_s)
                cpu = figures.cpu_millicores
                rx, tx = figures.net_rx_bytes_per_second, figures.net_tx_bytes_per_second
        memory = dom.memory_mib * MIB
        holds = dom.state in _HOLDS_MEMORY
        if holds and not resident and not self._simulated and dom.rss_bytes:
            # QEMU's whole RSS: an upper bound, except while the guest's memory arrives
            resident = 0 if dom.memory_arriving else min(dom.rss_bytes, memory)
        return model.VmUsage(
            uuid=dom.uuid,
            name=dom.name,
            state=dom.state,
            vcpus=dom.vcpus,
            cpu_used_millicores=cpu if active else 0,
            memory_used_bytes=memory if holds else 0,
            memory_allocated_bytes=memory,
            net_rx_bytes_per_second=rx if active else 0,
            net_tx_bytes_per_second=tx if active else 0,
            simulated=self._simulated,
            memory_resident_bytes=resident if holds else 0,
            memory_dirty_bytes_per_second=dom.dirty_bytes_per_second if active else 0,
            memory_dirty_set_bytes=dom.dirty_set_bytes if active else 0,
        )

    def _host(
        self, sample: HostSample, previous: HostSample | None, vms: tuple[model.VmUsage, ...]
    ) -> model.HostUsage:
        total = sample.host.memory_total_mib * MIB
        vm_memory = sum(vm.memory_used_bytes for vm in vms)
        if self._simulated or sample.host.memory_free_mib is None:
            memory_used = min(vm_memory, total)
        else:
            memory_used = total - sample.host.memory_free_mib * MIB
        if self._simulated or self._host_cpu_from_guests:
            cpu = sum(vm.cpu_used_millicores for vm in vms)
        elif previous is None:
            cpu = 0
        else:
            cpu = host_busy_millicores(previous.host, sample.host, self._info.cpu_count)
        return model.HostUsage(
            cpu_used_millicores=cpu,
            memory_used_bytes=memory_used,
            memory_total_bytes=total,
            net_rx_bytes_per_second=sum(vm.net_rx_bytes_per_second for vm in vms),
            net_tx_bytes_per_second=sum(vm.net_tx_bytes_per_second for vm in vms),
        )
