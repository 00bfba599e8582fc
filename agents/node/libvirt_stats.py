"""What the agent reads from libvirt's bulk statistics: the fields it asks for, the domain
states, the interfaces' counters and the host's CPU and memory counters."""

from __future__ import annotations

from typing import Any

import libvirt
from vmgrid.agents.model import VmState
from vmgrid.agents.node.hypervisor import HostCounters, InterfaceCounters

STATS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_VCPU
    | libvirt.VIR_DOMAIN_STATS_INTERFACE
)

STATES = {
    libvirt.VIR_DOMAIN_RUNNING: VmState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: VmState.BLOCKED,
    libvirt.VIR_DOMAIN_PAUSED: VmState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: VmState.SHUTTING_DOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: VmState.SHUT_OFF,
    libvirt.VIR_DOMAIN_CRASHED: VmState.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: VmState.PM_SUSPENDED,
}


def interfaces_from_stats(stats: dict[str, Any]) -> tuple[InterfaceCounters, ...]:
    """Pull ``net.<i>.*`` counters out of one domain's bulk stats record."""
    found = []
    for index in range(int(stats.get("net.count", 0))):
        prefix = f"net.{index}."
        found.append(
            InterfaceCounters(
                name=str(stats.get(prefix + "name", f"net{index}")),
                rx_bytes=int(stats.get(prefix + "rx.bytes", 0)),
                tx_bytes=int(stats.get(prefix + "tx.bytes", 0)),
            )
        )
    return tuple(found)


def host_counters(conn: libvirt.virConnect) -> HostCounters:
    """The host's CPU counters and memory (the test driver has no memory statistics: free
    memory unknown)."""
    cpu = conn.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS)
    busy = int(cpu.get("user", 0)) + int(cpu.get("kernel", 0))
    total = busy + int(cpu.get("idle", 0)) + int(cpu.get("iowait", 0))
    total_mib = int(conn.getInfo()[1])
    free_mib: int | None = None
    try:
        memory = conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS)
        total_mib = int(memory["total"]) // 1024
        reclaimable = memory.get("buffers", 0) + memory.get("cached", 0)
        free_mib = int(memory["free"] + reclaimable) // 1024
    except libvirt.libvirtError:
        pass  # the test driver has no memory stats
    return HostCounters(busy, total, total_mib, free_mib)
