"""How long a VM's real live migration should take, from what its agent measured (#16).

One estimate serves the operator's migrations (the applier's driver) and the decision loop's
plans (the solver's view gives each VM of a real node its ``migrate`` duration), so both time
a migration the same way: the pre-copy model of ``vmgrid.solver.migration_time`` at the cap
libvirt is given (whole MiB/s), over the VM's resident non-zero memory, its dirty rate and
its dirty set, plus a fixed cost.

The fixed cost (connection, destination QEMU, device state, handover, and on a loaded host
the time QEMU's migration thread waits for a core) rises with the machine's load, so the
manager learns it (`MigrationFixedCost`) from libvirt's job statistics, which the source's
agent sends with each successful migration's result: the job's time minus the time the
memory it sent takes at the cap.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from vmgrid.agents import model as m
from vmgrid.solver.migration_time import QEMU_DOWNTIME_LIMIT_S, PrecopyInput, estimate

_MIB = 1 << 20
REAL_MIGRATION_FIXED_S = 0.7
"""Memory-independent cost of one real live migration (connection, destination QEMU, device
state, handover): 0.2 s on a quiet lab, 0.5 to 1.8 s at load 5 to 13 (TCG guests, 2 shared
cores), 3 to 5 s at load 20 to 50 (docs/migration.md). What a plan counts until the manager
has learned its own (`MigrationFixedCost`)."""
MAX_FIXED_S = 60.0
"""Most a learned fixed cost counts (a migration slower than that beyond its memory is a
fault, not a cost to plan on)."""


@dataclass(frozen=True, slots=True)
class MigrationLink:
    """What the manager's real live migrations run with."""

    bandwidth_bps: int
    """The per-migration cap libvirt is given (``control.migration_bandwidth_mbit``)."""

    max_downtime_ms: int = 0
    """QEMU's downtime limit (``control.migration_max_downtime_ms``; 0: QEMU's 300 ms)."""

    @property
    def rate_mib_s(self) -> int:
        """The cap in whole MiB/s, as libvirt takes it (at least 1)."""
        return max(1, self.bandwidth_bps // 8 // _MIB)


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
    rate = link.rate_mib_s
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
    vm: m.VmUsage,
    simulated: bool,
    link: MigrationLink | None,
    fixed_s: float = REAL_MIGRATION_FIXED_S,
) -> dict[str, int]:
    """The solver's ``migrate`` attribute of a VM on a real node: its estimate in whole seconds
    (at least 1, as a plan's actions last) with `fixed_s` (the snapshot's learned fixed cost).
    Nothing for a simulated node's VM, or without a link: the solver's default (1 s) stands."""
    if simulated or link is None:
        return {}
    return {"migrate": max(1, round(precopy_seconds(vm, link, fixed_s=fixed_s)))}


class MigrationFixedCost:
    """The memory-independent part of the cluster's real live migrations, learned from the
    ones that ended: the median of (libvirt's job time - memory sent / the cap) over the last
    `window` of them, each bounded to [0, MAX_FIXED_S]; samples older than `max_age_s` are
    forgotten, and without any the default stands. One figure for the cluster: it follows the
    load of the machines the migrations run on, and every migration teaches it, so it catches
    up with a change of load within two migrations (a median over more, or one per link,
    lags by several); one outlier of three does not move it. Kept in memory only: a restarted
    manager starts from the default."""

    def __init__(
        self,
        window: int = 3,
        max_age_s: float = 1800.0,
        default_s: float = REAL_MIGRATION_FIXED_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if window < 1 or max_age_s <= 0 or not 0 <= default_s <= MAX_FIXED_S:
            raise ValueError(
                f"MigrationFixedCost: window {window} must be >= 1, max_age_s {max_age_s} > 0 "
                f"and default_s {default_s} in [0, {MAX_FIXED_S}]"
            )
        self.default_s = default_s
        self.max_age_s = max_age_s
        self._monotonic = monotonic
        self._seen: deque[tuple[float, float]] = deque(maxlen=window)
        """(when, fixed cost in s) of the latest migrations, oldest first."""

    def learn(self, job: m.MigrationJob, link: MigrationLink) -> float | None:
        """Count one completed migration's fixed cost and return it; None (nothing learned)
        when libvirt gave no time or no memory sent."""
        if job.elapsed_ms <= 0 or job.memory_processed_bytes <= 0:
            return None
        sending_s = job.memory_processed_bytes / _MIB / link.rate_mib_s
        fixed = min(MAX_FIXED_S, max(0.0, job.elapsed_ms / 1000 - sending_s))
        self._seen.append((self._monotonic(), fixed))
        return fixed

    def seconds(self) -> float:
        """The fixed cost a plan counts now."""
        oldest = self._monotonic() - self.max_age_s
        while self._seen and self._seen[0][0] < oldest:
            self._seen.popleft()
        if not self._seen:
            return self.default_s
        return statistics.median(fixed for _, fixed in self._seen)
