"""How long a VM's real live migration should take, from what its agent measured (#16).

One estimate serves the operator's migrations (the applier's driver) and the decision loop's
plans (the solver's view gives each VM of a real node its ``migrate`` duration), so both time
a migration the same way: the pre-copy model of ``vmgrid.solver.migration_time`` at the cap
libvirt is given (whole MiB/s), over the VM's resident non-zero memory, its dirty rate and
its dirty set, plus a fixed cost.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmgrid.agents import model as m
from vmgrid.solver.migration_time import QEMU_DOWNTIME_LIMIT_S, PrecopyInput, estimate

_MIB = 1 << 20
REAL_MIGRATION_FIXED_S = 0.7
"""Memory-independent cost of one real live migration (connection, destination QEMU, device
state, handover): 0.2 s on a quiet lab, 0.5 to 1.8 s at load 5 to 13 (TCG guests, 2 shared
cores), 3 to 5 s at load 20 to 50 (docs/migration.md)."""


@dataclass(frozen=True, slots=True)
class MigrationLink:
    """What the manager's real live migrations run with."""

    bandwidth_bps: int
    """The per-migration cap libvirt is given (``control.migration_bandwidth_mbit``)."""

    max_downtime_ms: int = 0
    """QEMU's downtime limit (``control.migration_max_downtime_ms``; 0: QEMU's 300 ms)."""


def precopy_seconds(
    vm: m.VmUsage,
    link: MigrationLink,
    dirty_mib_s: float | None = None,
    fixed_s: float = REAL_MIGRATION_FIXED_S,
) -> float:
    """Pre-copy estimate from the VM's resident non-zero pages, its dirty rate and the most it
    dirtied within one window (the working set a round re-sends). A VM whose agent measured
    nothing (the test driver, an unreadable QEMU process) counts its used memory as resident
    and dirties nothing. `dirty_mib_s` overrides the reported rate; `fixed_s` is the
    memory-independent part."""
    rate = max(1, link.bandwidth_bps // 8 // _MIB)
    memory = vm.memory_resident_bytes or vm.memory_used_bytes or vm.memory_allocated_bytes
    if vm.memory_allocated_bytes:
        memory = min(memory, vm.memory_allocated_bytes)
    if dirty_mib_s is None:
        dirty_mib_s = vm.memory_dirty_bytes_per_second / _MIB
    working_set = vm.memory_dirty_set_bytes / _MIB if vm.memory_dirty_set_bytes else None
    inputs = PrecopyInput(
        memory / _MIB,
        rate,
        dirty_mib_s,
        working_set_mib=working_set,
        fixed_s=fixed_s,
        downtime_limit_s=link.max_downtime_ms / 1000 or QEMU_DOWNTIME_LIMIT_S,
    )
    return estimate(inputs).seconds


def migrate_attributes(
    vm: m.VmUsage, simulated: bool, link: MigrationLink | None
) -> dict[str, int]:
    """The solver's ``migrate`` attribute of a VM on a real node: its estimate in whole seconds
    (at least 1, as a plan's actions last). Nothing for a simulated node's VM, or without a link:
    the solver's default (1 s) stands."""
    if simulated or link is None:
        return {}
    return {"migrate": max(1, round(precopy_seconds(vm, link)))}
