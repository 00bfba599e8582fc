"""The literature's heuristics as CloudSim 3.0.3 codes them: detector + MMT + PABFD + underload.

Decisions are taken on a *virtual* copy of the allocation (CloudSim's saveAllocation /
restoreAllocation), with its quirks kept on purpose, because the reference numbers depend on them:
- PABFD's power increase compares the power after placement (virtual load) with the host's power
  at the last update (actual load), and ignores idle power, so it readily wakes a sleeping host;
- hosts that received VMs from overloaded hosts may still be chosen as underloaded in the same
  round, and their new VMs then move twice (two migrations);
- underload candidates are taken by actual utilisation, lowest first, all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from vmgrid.solver.replay import datacenter as dc
from vmgrid.solver.replay.detectors import FALLBACK_THRESHOLD, Detector
from vmgrid.solver.replay.engine import Migration, Simulator
from vmgrid.solver.replay.state import B


class _Virtual:
    """The policy's scratch allocation for one decision round."""

    def __init__(self, sim: Simulator, detector: Detector) -> None:
        assert sim.state is not None
        self.sim, self.detector = sim, detector
        self.req = sim.requested
        self.total, self.pe = sim.host_total, sim.host_pe
        self.lists = [list(vms) for vms in sim.host_vms]
        hosts = sim.host_count
        live = np.flatnonzero(sim.vm_alive)
        host_of = sim.vm_host[live]
        req = self.req[live]
        self.req_sum = np.bincount(host_of, req, hosts)
        self.cap_sum = np.bincount(host_of, np.minimum(req, self.pe[host_of]), hosts)
        self.track_history = detector.kind != "thr"
        self.hist = np.zeros((hosts, sim.vm_history.shape[1]))
        self.hlen = np.zeros(hosts, dtype=np.int64)
        if self.track_history:
            scale = sim.vm_mips[live] / self.total[host_of]
            np.add.at(self.hist, host_of, sim.vm_history[live] * scale[:, None])
            np.maximum.at(self.hlen, host_of, sim.vm_history_len[live])
        self.util_actual = sim.state.utilisation
        self.power_actual = dc.power_w(self.util_actual, sim.host_type)

    def overloaded(self, rows: np.ndarray, extra_vm: int | None = None) -> B:
        req, hist, hlen = self.req_sum[rows], self.hist[rows], self.hlen[rows]
        if extra_vm is not None:
            req = req + self.req[extra_vm]
            if self.track_history:
                scale = self.sim.vm_mips[extra_vm] / self.total[rows]
                hist = hist + self.sim.vm_history[extra_vm][None, :] * scale[:, None]
                hlen = np.maximum(hlen, self.sim.vm_history_len[extra_vm])
        return self.detector.overloaded(req / self.total[rows], hist, hlen)

    def _refresh(self, h: int) -> None:
        vms = self.lists[h]
        self.req_sum[h] = float(self.req[vms].sum()) if vms else 0.0
        self.cap_sum[h] = float(np.minimum(self.req[vms], self.pe[h]).sum()) if vms else 0.0
        if self.track_history:
            sim = self.sim
            if vms:
                self.hist[h] = (
                    sim.vm_history[vms] * (sim.vm_mips[vms] / self.total[h])[:, None]
                ).sum(0)
                self.hlen[h] = int(sim.vm_history_len[vms].max())
            else:
                self.hist[h] = 0.0
                self.hlen[h] = 0

    def add(self, h: int, vm: int) -> None:
        self.lists[h].append(vm)
        self._refresh(h)

    def remove(self, h: int, vm: int) -> None:
        self.lists[h].remove(vm)
        self._refresh(h)

    def mmt(self, h: int) -> int | None:
        """Minimum migration time: least RAM, first in the host's VM list on ties."""
        vms = self.lists[h]
        if not vms:
            return None
        ram = self.sim.vm_ram_mb
        return min(vms, key=lambda v: ram[v])

    def find_host(self, vm: int, excluded: B) -> int:
        """PABFD: the suitable host whose power rises least; -1 if none.

        The load after placement is the virtual allocation plus the VM; the load before it is the
        host's actual load at the last update (CloudSim 3.0.3; later versions differ).
        """
        r = self.req[vm]
        oversubscribed = self.cap_sum > self.total
        available = np.where(oversubscribed, 0.0, self.total - self.cap_sum)
        alloc = np.minimum(self.cap_sum, self.total)
        ok = ~excluded & (self.pe >= r) & (available >= r)
        check = np.flatnonzero(ok & (alloc != 0))
        if check.size:
            ok[check[self.overloaded(check, vm)]] = False
        if not ok.any():
            return -1
        rows = np.flatnonzero(ok)
        after = np.minimum((alloc[rows] + r) / self.total[rows], 1.0)
        diff = dc.power_w(after, self.sim.host_type[rows]) - self.power_actual[rows]
        return int(rows[int(np.argmin(diff))])


class CloudSimPolicy:
    """One reference heuristic: ``<detector>-mmt-<parameter>`` with PABFD placement."""

    def __init__(self, name: str, detector: Detector) -> None:
        self.name = name
        self.detector = detector
        self.initial_threshold = (
            detector.parameter if detector.kind == "thr" else FALLBACK_THRESHOLD
        )

    def decide(self, sim: Simulator) -> Sequence[Migration]:
        v = _Virtual(sim, self.detector)
        over_mask = v.overloaded(np.arange(sim.host_count))
        moves = self._relieve(v, np.flatnonzero(over_mask), over_mask)
        moves += self._consolidate(v, over_mask)
        return moves

    def _relieve(self, v: _Virtual, overloaded: np.ndarray, excluded: B) -> list[Migration]:
        selected: list[int] = []
        for h in overloaded.tolist():
            while True:
                vm = v.mmt(h)
                if vm is None:
                    break
                selected.append(vm)
                v.remove(h, vm)
                if not v.overloaded(np.array([h]))[0]:
                    break
        moves: list[Migration] = []
        for vm in sorted(selected, key=lambda x: -v.req[x]):
            dst = v.find_host(vm, excluded)
            if dst >= 0:
                v.add(dst, vm)
                moves.append((vm, dst))
        return moves

    def _consolidate(self, v: _Virtual, over_mask: B) -> list[Migration]:
        util = v.util_actual
        off = util == 0
        not_source = over_mask | off
        not_target = over_mask | off
        moves: list[Migration] = []
        while not not_source.all():
            cand = ~not_source & (util > 0) & (util < 1)
            if not cand.any():
                break
            h = int(np.argmin(np.where(cand, util, np.inf)))
            not_source[h] = not_target[h] = True
            placed: list[Migration] = []
            for vm in sorted(v.lists[h], key=lambda x: -v.req[x]):
                dst = v.find_host(vm, not_target)
                if dst < 0:
                    for pv, pd in placed:
                        v.remove(pd, pv)
                    placed = []
                    break
                v.add(dst, vm)
                placed.append((vm, dst))
            for _, dst in placed:
                not_source[dst] = True
            moves += placed
        return moves


REFERENCE_POLICIES: dict[str, Detector] = {
    "thr-mmt-1.0": Detector("thr", 1.0),
    "thr-mmt-0.8": Detector("thr", 0.8),
    "iqr-mmt-1.5": Detector("iqr", 1.5),
    "mad-mmt-2.5": Detector("mad", 2.5),
    "lr-mmt-1.2": Detector("lr", 1.2),
    "lrr-mmt-1.2": Detector("lr", 1.2),
}


class NoMigrationPolicy:
    """CloudSim's DVFS baseline: first fit at t = 0, never migrates; power follows load."""

    name = "dvfs"
    initial_threshold = 0.0

    def decide(self, sim: Simulator) -> Sequence[Migration]:
        return ()
