"""The discrete-time replay: CloudSim's PowerDatacenter event sequence, with numpy accounting.

Timeline (CloudSim 3.0.3): the datacenter processes at t_k = 300·k + 0.1 s, k = 1 ... steps-1.
At each t_k it (1) brings every host up to date and books energy and SLA time since the last
event, (2) records each VM's utilisation in its 30-value history (zero values are skipped, as
PowerVm does), (3) asks the policy for migrations and starts them. A migration ends RAM /
62.5 MB/s later; each distinct end time is an event of its own, so energy and violation time are
booked on sub-intervals. The first interval [0, t_1] books nothing (hosts start at 0 %), exactly
as CloudSim does. After every such update CloudSim also *removes* each VM that is not migrating and
requests 0 MIPS (HostDynamicWorkload.getCompletedVms): a VM whose trace reads 0 at an event
leaves the simulation for good. The reference numbers depend on it, so the replay does it too.

Beside CloudSim's metrics the replay measures the *unmet CPU demand*: every ``sample_s`` seconds
(10 s by default, 30 samples per trace interval) the hosts are recomputed with the placement and
the migrations of that moment held, on the interpolated trace, and the CPU that VMs request but
are not allocated is summed, in VM core-seconds (one VM core busy for one second). It counts the
requests that full hosts or a slower host core cannot serve and the 10 % that a migrating VM loses
on its source (kept apart as ``unmet_migration_cpu_s``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from vmgrid.solver.replay import datacenter as dc
from vmgrid.solver.replay.errors import ReplayError
from vmgrid.solver.replay.metrics import Accounting, ReplayResult
from vmgrid.solver.replay.state import F64, I64, HostState, compute_state
from vmgrid.solver.replay.trace import Workload

HISTORY_LENGTH = 30
EVENT_OFFSET_S = 0.1

Migration = tuple[int, int]
"""(vm index, destination host index)."""


class Policy(Protocol):
    """A consolidation policy as the replay drives it."""

    name: str
    initial_threshold: float
    """CPU share above which CloudSim's t = 0 placement will not put another VM on a host;
    0 means plain first fit (CloudSim's non-migrating DVFS policy)."""

    def decide(self, sim: Simulator) -> Sequence[Migration]: ...


class Simulator:
    """Simulated hosts and VMs of one replay; policies read its arrays between events."""

    def __init__(self, workload: Workload, host_count: int = 800, sample_s: float = 10.0) -> None:
        if host_count < 1:
            raise ReplayError(f"host count {host_count} is not positive; expected e.g. 800")
        if not 0 < sample_s <= dc.STEP_S:
            raise ReplayError(
                f"unmet-demand sampling period {sample_s} s is not in (0, {dc.STEP_S:g}]; "
                "expected e.g. 10"
            )
        self.sample_s = sample_s
        self.workload = workload
        self.host_type: I64 = dc.host_type_indices(host_count)
        self.host_total: F64 = np.array(
            [dc.HOST_TYPES[t].total_mips for t in self.host_type], dtype=np.float64
        )
        self.host_pe: F64 = np.array(
            [dc.HOST_TYPES[t].pe_mips for t in self.host_type], dtype=np.float64
        )
        types = dc.vm_type_indices(workload.vm_count)
        self.vm_type: I64 = types
        self.vm_mips: F64 = np.array([dc.VM_TYPES[t].mips for t in types], dtype=np.float64)
        self.vm_ram_mb: F64 = np.array([dc.VM_TYPES[t].ram_mb for t in types], dtype=np.float64)
        self.vm_migration_s: F64 = dc.migration_time_s(self.vm_ram_mb)
        self.vm_host: I64 = np.full(workload.vm_count, -1, dtype=np.int64)
        self.vm_alive = np.ones(workload.vm_count, dtype=bool)
        self.host_vms: list[list[int]] = [[] for _ in range(host_count)]
        self.vm_history: F64 = np.zeros((workload.vm_count, HISTORY_LENGTH))
        self.vm_history_len: I64 = np.zeros(workload.vm_count, dtype=np.int64)
        self.time_s = 0.0
        self.step = 0
        self.requested: F64 = np.zeros(workload.vm_count)
        self.state: HostState | None = None
        self.acct = Accounting()
        self.host_shutdowns = 0
        self._last_active: np.ndarray | None = None

    @property
    def host_count(self) -> int:
        return len(self.host_vms)

    def utilisation_at(self, t: float) -> F64:
        """Each VM's trace value at ``t``, interpolated linearly between 300 s samples."""
        k = int(t // dc.STEP_S)
        u = self.workload.utilisation
        if t % dc.STEP_S == 0:
            return np.asarray(u[:, k], dtype=np.float64)
        k2 = min(int(np.ceil(t / dc.STEP_S)), u.shape[1] - 1)
        delta = (u[:, k2] - u[:, k]) / ((k2 - k) * dc.STEP_S) if k2 > k else 0.0 * u[:, k]
        return np.asarray(u[:, k] + delta * (t - k * dc.STEP_S), dtype=np.float64)

    def place_initial(self, threshold: float) -> None:
        """CloudSim's t = 0 placement: PABFD on full MIPS and RAM requests, in VM order."""
        hosts = self.host_count
        alloc = np.zeros(hosts)
        ram = np.zeros(hosts)
        bw = np.zeros(hosts)
        base = dc.power_w(np.zeros(hosts), self.host_type)
        for v in range(self.workload.vm_count):
            mips = self.vm_mips[v]
            ok = (self.host_pe >= mips) & (self.host_total - alloc >= mips)
            ok &= (dc.HOST_RAM_MB - ram >= self.vm_ram_mb[v]) & (
                dc.HOST_BW_KBIT_S - bw >= dc.VM_BW_KBIT_S
            )
            if threshold > 0:
                ok &= ~((alloc != 0) & (mips / self.host_total > threshold))
            after = (alloc + mips) / self.host_total
            ok &= after <= 1.0
            if not ok.any():
                raise ReplayError(
                    f"{hosts} hosts cannot hold {self.workload.vm_count} VMs at t = 0; use more hosts"
                )
            if threshold <= 0:
                h = int(np.argmax(ok))
            else:
                h = int(np.argmin(np.where(ok, dc.power_w(after, self.host_type) - base, np.inf)))
            alloc[h] += mips
            ram[h] += self.vm_ram_mb[v]
            bw[h] += dc.VM_BW_KBIT_S
            self.vm_host[v] = h
            self.host_vms[h].append(v)

    def place(self, vm_host: Sequence[int]) -> None:
        """Put VM i on host ``vm_host[i]`` (instead of CloudSim's t = 0 placement)."""
        if len(vm_host) != self.workload.vm_count or not all(
            0 <= h < self.host_count for h in vm_host
        ):
            raise ReplayError(f"placement must give one host in 0..{self.host_count - 1} per VM")
        self.host_vms = [[] for _ in range(self.host_count)]
        for v, h in enumerate(vm_host):
            self.vm_host[v] = h
            self.host_vms[h].append(v)

    def observe(self, k: int) -> HostState:
        """Bring hosts up to event k (t = 300·k + 0.1), record VM histories, and keep the state
        that policies read. Accounting is the caller's (``run``)."""
        t = EVENT_OFFSET_S + dc.STEP_S * k
        self.time_s, self.step = t, k
        self.state = self._state(t, ())
        self._record_history(t)
        return self.state

    def _state(self, t: float, moves: Sequence[Migration]) -> HostState:
        """Update every host at ``t``, then drop the idle VMs as CloudSim does."""
        self.requested = np.where(self.vm_alive, self.utilisation_at(t) * self.vm_mips, 0.0)
        out = np.zeros(self.workload.vm_count, dtype=bool)
        in_vm = np.array([m[0] for m in moves], dtype=np.int64)
        in_host = np.array([m[1] for m in moves], dtype=np.int64)
        out[in_vm] = True
        live = np.flatnonzero(self.vm_alive)
        state = compute_state(
            self.requested[live],
            self.vm_host[live],
            out[live],
            self.requested[in_vm],
            in_host,
            self.host_total,
            self.host_pe,
        )
        for v in np.flatnonzero(self.vm_alive & ~out & (self.requested == 0)).tolist():
            self.host_vms[int(self.vm_host[v])].remove(v)
            self.vm_host[v] = -1
            self.vm_alive[v] = False
        return state

    def _book(self, before: HostState, after: HostState, dt: float) -> None:
        if self._last_active is not None:
            self.host_shutdowns += int((self._last_active & ~before.active).sum())
        self._last_active = before.active
        a = self.acct
        p0 = dc.power_w(before.utilisation, self.host_type)
        p1 = dc.power_w(after.utilisation, self.host_type)
        a.add_energy(np.where(before.utilisation > 0, (p0 + (p1 - p0) / 2) * dt, 0.0))
        a.active_s += float(before.active.sum()) * dt
        a.violation_s += float((before.active & before.violating).sum()) * dt
        a.requested_mips_s += float(before.vm_requested_mips.sum()) * dt
        lost = before.vm_requested_mips - before.vm_allocated_mips
        a.migration_loss_mips_s += float(lost[before.vm_migrating_out & (lost > 0)].sum()) * dt

    def _sample_unmet(self, t0: float, t1: float, moves: Sequence[Migration]) -> None:
        """Book the unmet CPU demand at the sampling instants in (t0, t1], where the placement
        and the migrations in flight are those of the interval."""
        first, last = int(t0 // self.sample_s) + 1, int(t1 // self.sample_s)
        if last < first:
            return
        live = np.flatnonzero(self.vm_alive)
        out = np.zeros(self.workload.vm_count, dtype=bool)
        in_vm = np.array([m[0] for m in moves], dtype=np.int64)
        in_host = np.array([m[1] for m in moves], dtype=np.int64)
        out[in_vm] = True
        out_live, host_live, mips = out[live], self.vm_host[live], self.vm_mips[live]
        a = self.acct
        for n in range(first, last + 1):
            requested = self.utilisation_at(n * self.sample_s) * self.vm_mips
            req = requested[live]
            state = compute_state(
                req,
                host_live,
                out_live,
                requested[in_vm],
                in_host,
                self.host_total,
                self.host_pe,
            )
            alloc = state.vm_allocated_mips
            share = np.where(out_live, alloc / 0.9, alloc)
            a.demand_cpu_s += float((req / mips).sum()) * self.sample_s
            a.unmet_cpu_s += float((np.maximum(req - alloc, 0.0) / mips).sum()) * self.sample_s
            a.unmet_migration_cpu_s += (
                float(((share - alloc) / mips)[out_live].sum()) * self.sample_s
            )

    def _record_history(self, t: float) -> None:
        u = self.utilisation_at(t)
        m = (u != 0) & self.vm_alive
        self.vm_history[m, 1:] = self.vm_history[m, :-1]
        self.vm_history[m, 0] = u[m]
        self.vm_history_len[m] = np.minimum(self.vm_history_len[m] + 1, HISTORY_LENGTH)

    def _complete(self, moves: Sequence[Migration]) -> None:
        for v, dst in moves:
            self.host_vms[int(self.vm_host[v])].remove(v)
            self.host_vms[dst].append(v)
            self.vm_host[v] = dst

    def _migrate(self, t: float, moves: Sequence[Migration]) -> tuple[HostState, float]:
        for v, dst in moves:
            if not 0 <= dst < self.host_count or dst == self.vm_host[v]:
                raise ReplayError(f"policy moved VM {v} to host {dst}, which is not another host")
        self.acct.migrations += len(moves)
        pending = list(moves)
        prev = self._state(t, pending)
        t_prev = t
        for end in sorted({t + float(self.vm_migration_s[v]) for v, _ in pending}):
            self._sample_unmet(t_prev, end, pending)
            mid = self._state(end, pending)
            self._book(prev, mid, end - t_prev)
            done = [m for m in pending if t + float(self.vm_migration_s[m[0]]) == end]
            pending = [m for m in pending if t + float(self.vm_migration_s[m[0]]) != end]
            self._complete(done)
            prev = self._state(end, pending)
            t_prev = end
        return prev, t_prev

    def run(self, policy: Policy, steps: int | None = None, placed: bool = False) -> ReplayResult:
        """Replay the day (or its first ``steps`` intervals) under ``policy``; ``placed`` keeps a
        placement set with :meth:`place` instead of CloudSim's t = 0 one."""
        started = time.perf_counter()
        last = self.workload.steps if steps is None else min(steps, self.workload.steps)
        if not placed:
            self.place_initial(policy.initial_threshold)
        prev: HostState | None = None
        t_prev = 0.0
        active: list[int] = []
        step_sla: list[float] = []
        step_unmet: list[float] = []
        for k in range(1, last):
            v0, a0 = self.acct.violation_s, self.acct.active_s
            d0, u0 = self.acct.demand_cpu_s, self.acct.unmet_cpu_s
            if prev is not None:
                self._sample_unmet(t_prev, EVENT_OFFSET_S + dc.STEP_S * k, ())
            cur = self.observe(k)
            t = self.time_s
            if prev is not None:
                self._book(prev, cur, t - t_prev)
            moves = list(policy.decide(self))
            if moves:
                prev, t_prev = self._migrate(t, moves)
            else:
                prev, t_prev = cur, t
            active.append(int(prev.active.sum()))
            da = self.acct.active_s - a0
            step_sla.append((self.acct.violation_s - v0) / da if da > 0 else 0.0)
            dd = self.acct.demand_cpu_s - d0
            step_unmet.append((self.acct.unmet_cpu_s - u0) / dd if dd > 0 else 0.0)
        a = self.acct
        return ReplayResult(
            trace=self.workload.name,
            policy=policy.name,
            vms=self.workload.vm_count,
            hosts=self.host_count,
            energy_kwh=a.energy_j / 3.6e6,
            slatah=a.violation_s / a.active_s if a.active_s > 0 else 0.0,
            pdm=a.migration_loss_mips_s / a.requested_mips_s if a.requested_mips_s > 0 else 0.0,
            migrations=a.migrations,
            replay_s=time.perf_counter() - started,
            sample_s=self.sample_s,
            demand_cpu_s=a.demand_cpu_s,
            unmet_cpu_s=a.unmet_cpu_s,
            unmet_migration_cpu_s=a.unmet_migration_cpu_s,
            active_hosts=tuple(active),
            step_slatah=tuple(step_sla),
            step_unmet=tuple(step_unmet),
        )
