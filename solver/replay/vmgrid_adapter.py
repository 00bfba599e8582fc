"""Drives vmgrid's production decision policy from the replay's simulated hosts.

The adapter only translates: simulator arrays -> ClusterSnapshot, Decision -> migrations. MIPS
are fed in the snapshot's millicore fields unchanged (the policy only compares CPU quantities).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from vmgrid.solver.decision import ClusterSnapshot, DecisionPolicy, PolicyConfig
from vmgrid.solver.replay import datacenter as dc
from vmgrid.solver.replay.engine import Migration, Simulator


class VmgridPolicy:
    """The ``vmgrid`` replay policy: :class:`DecisionPolicy` with its production defaults."""

    name = "vmgrid"
    initial_threshold = 0.7

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.policy = DecisionPolicy(config)

    def snapshot(self, sim: Simulator) -> ClusterSnapshot:
        live = np.flatnonzero(sim.vm_alive)
        mips = sim.vm_mips[live]
        return ClusterSnapshot(
            step=sim.step,
            host_capacity_millicores=sim.host_total,
            host_vm_limit_millicores=sim.host_pe,
            host_idle_w=dc.POWER_TABLE[sim.host_type, 0],
            host_peak_w=dc.POWER_TABLE[sim.host_type, -1],
            vm_id=live.astype(np.int64),
            vm_host=sim.vm_host[live],
            vm_demand_millicores=sim.requested[live],
            vm_history_millicores=sim.vm_history[live] * mips[:, None],
            vm_history_len=sim.vm_history_len[live],
            vm_ram_mib=sim.vm_ram_mb[live],
        )

    def decide(self, sim: Simulator) -> Sequence[Migration]:
        decision = self.policy.decide(self.snapshot(sim))
        return [(m.vm_id, m.destination) for m in decision.moves]
