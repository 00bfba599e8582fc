"""One instant of the data centre as CloudSim's hosts compute it (HostDynamicWorkload).

Time-shared scheduling with oversubscription: each VM's request is capped at one PE; when the
capped requests exceed the host, every share is scaled down and floored. A VM migrating out gets
90 % of its share on the source; a VM migrating in is also listed on the destination, which
reserves 10 % of it but counts its whole request, so the destination shows "allocated <
requested" for the whole migration (a CloudSim quirk that SLATAH inherits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class HostState:
    """Per-host and per-VM allocation at one instant."""

    utilisation: F64
    """Allocated MIPS / host MIPS, as the power model sees it."""
    active: B
    violating: B
    vm_requested_mips: F64
    vm_allocated_mips: F64
    vm_migrating_out: B


def compute_state(
    requested: F64,
    vm_host: I64,
    migrating_out: B,
    in_requested: F64,
    in_host: I64,
    host_total: F64,
    host_pe: F64,
) -> HostState:
    """Allocate every host's MIPS among its VMs (and the VMs migrating into it)."""
    hosts = host_total.shape[0]
    capped = np.minimum(requested, host_pe[vm_host])
    capped_in = np.minimum(in_requested, host_pe[in_host])
    need = np.bincount(vm_host, capped, hosts) + np.bincount(in_host, capped_in * 0.1, hosts)
    over = need > host_total
    scale = np.where(over, host_total / np.where(need > 0, need, 1.0), 1.0)
    over_vm = over[vm_host]
    alloc = np.where(
        over_vm,
        np.floor(np.where(migrating_out, capped * scale[vm_host] * 0.9, capped * scale[vm_host])),
        np.where(migrating_out, capped * 0.9, capped),
    )
    alloc_in = np.where(over[in_host], np.floor(capped_in * 0.1 * scale[in_host]), capped_in * 0.1)
    host_share = np.where(migrating_out, alloc / 0.9, alloc)
    used = np.bincount(vm_host, host_share, hosts) + np.bincount(in_host, alloc_in, hosts)
    host_requested = np.bincount(vm_host, requested, hosts) + np.bincount(
        in_host, in_requested, hosts
    )
    util = used / host_total
    util = np.where((util > 1.0) & (util < 1.01), 1.0, util)
    return HostState(
        utilisation=util,
        active=used > 0,
        violating=used < host_requested,
        vm_requested_mips=requested,
        vm_allocated_mips=alloc,
        vm_migrating_out=migrating_out,
    )
