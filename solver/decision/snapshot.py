"""The read-only view of a cluster that one decision cycle works on.

CPU quantities are in millicores of the cluster's reference CPU. The policy only compares CPU
quantities with each other, so the replay feeds CloudSim MIPS in these fields unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from vmgrid.solver.decision.errors import DecisionError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ClusterSnapshot:
    """Hosts and VMs at the start of a decision cycle (arrays are not modified by the policy)."""

    step: int
    """Decision cycle number; seeds anything random so that a run can be replayed."""
    host_capacity_millicores: F64
    host_vm_limit_millicores: F64
    """Most CPU a single VM can get on the host (one physical core)."""
    host_idle_w: F64
    host_peak_w: F64
    vm_id: I64
    """Stable identity of each VM across cycles (hysteresis memory is keyed on it)."""
    vm_host: I64
    """Index of each VM's host."""
    vm_demand_millicores: F64
    """CPU each VM asks for now."""
    vm_history_millicores: F64
    """Recent demand, newest first, one row per VM; only the first ``vm_history_len`` count."""
    vm_history_len: I64
    vm_ram_mib: F64

    def __post_init__(self) -> None:
        hosts = self.host_capacity_millicores.shape[0]
        vms = self.vm_host.shape[0]
        for name in ("host_vm_limit_millicores", "host_idle_w", "host_peak_w"):
            if getattr(self, name).shape != (hosts,):
                raise DecisionError(
                    f"{name} has shape {getattr(self, name).shape}; expected ({hosts},)"
                )
        for name in ("vm_id", "vm_demand_millicores", "vm_history_len", "vm_ram_mib"):
            if getattr(self, name).shape != (vms,):
                raise DecisionError(
                    f"{name} has shape {getattr(self, name).shape}; expected ({vms},)"
                )
        if vms and (self.vm_host.min() < 0 or self.vm_host.max() >= hosts):
            raise DecisionError(f"vm_host refers to hosts outside 0..{hosts - 1}")

    @property
    def host_count(self) -> int:
        return int(self.host_capacity_millicores.shape[0])

    @property
    def vm_count(self) -> int:
        return int(self.vm_host.shape[0])

    def host_load_millicores(self) -> F64:
        return np.asarray(
            np.bincount(self.vm_host, self.vm_demand_millicores, self.host_count), dtype=np.float64
        )

    def host_powered(self) -> npt.NDArray[np.bool_]:
        """Hosts that hold at least one VM (the others are asleep)."""
        return np.bincount(self.vm_host, minlength=self.host_count) > 0
