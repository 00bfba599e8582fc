"""Synthetic consolidation instances: identical nodes, VMs that must run.

From scratch (ready VMs to place), or with ``running=1`` a running cluster to consolidate: the
VMs run spread over the nodes (each on a random node that has room, every node kept under 3/4
of its CPU and memory), so consolidating means choosing which VMs move. Seeded, so a benchmark
figure can be replayed. Names are decimal ids, as in BtrPlace files, so plans export the same
way.
"""

from __future__ import annotations

import math
import random

from vmgrid.solver.btrplace.instance import BtrInstance, Running
from vmgrid.solver.btrplace.reader import BtrPlaceError
from vmgrid.solver.model import CPU, MEMORY, VM, Model, Node, VMState

NODE_CPU_MILLICORES = 32_000
NODE_MEM_MIB = 131_072
VM_CPU_MILLICORES = (250, 4_000)
VM_MEM_MIB = (512, 8_192)


def parse_spec(spec: str) -> dict[str, int]:
    """``nodes=1000,vms=10000,seed=1`` -> {"nodes": 1000, "vms": 10000, "seed": 1, ...}."""
    out = {"nodes": 100, "vms": 1000, "seed": 1, "running": 0}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key not in out or not value.strip().isdigit():
            raise BtrPlaceError(
                f"--generate: bad item {item!r}; expected nodes=N,vms=M,seed=S[,running=1] "
                "with integers"
            )
        out[key] = int(value)
    if out["nodes"] < 1 or out["vms"] < 1:
        raise BtrPlaceError(f"--generate: {spec!r} needs nodes >= 1 and vms >= 1")
    return out


def consolidation_instance(nodes: int, vms: int, seed: int, running: int = 0) -> BtrInstance:
    """`nodes` empty nodes and `vms` ready VMs (uniform cpu and memory demands) to place; with
    `running`, the VMs already run, spread at random (see the module doc)."""
    rng = random.Random(seed)
    node_list = [
        Node(str(i), {CPU: NODE_CPU_MILLICORES, MEMORY: NODE_MEM_MIB}) for i in range(nodes)
    ]
    vm_list = [
        VM(
            str(i),
            {CPU: rng.randrange(*VM_CPU_MILLICORES, 50), MEMORY: rng.randrange(*VM_MEM_MIB, 256)},
            VMState.READY,
        )
        for i in range(vms)
    ]
    name = f"generated-n{nodes}-v{vms}-s{seed}"
    if running:
        vm_list, name = _spread(vm_list, nodes, rng), name + "-running"
    model = Model({n.name: n for n in node_list}, {v.name: v for v in vm_list})
    rules = tuple(Running(v.name) for v in vm_list)
    return BtrInstance(name, model, {}, rules, "consolidation")


def _spread(vms: list[VM], nodes: int, rng: random.Random) -> list[VM]:
    """Each VM running on a random node kept under 3/4 of its CPU and memory (the first such
    node when 64 draws found none)."""
    cpu, mem = [0] * nodes, [0] * nodes
    out = []

    def fits(i: int, vm: VM) -> bool:
        return cpu[i] + vm.need(CPU) <= NODE_CPU_MILLICORES * 3 // 4 and (
            mem[i] + vm.need(MEMORY) <= NODE_MEM_MIB * 3 // 4
        )

    for vm in vms:
        draws = (rng.randrange(nodes) for _ in range(64))
        i = next((i for i in draws if fits(i, vm)), -1)
        if i < 0:
            i = next((i for i in range(nodes) if fits(i, vm)), -1)
        if i < 0:
            raise BtrPlaceError(f"--generate: {len(vms)} VMs do not fit 3/4 of {nodes} nodes")
        cpu[i] += vm.need(CPU)
        mem[i] += vm.need(MEMORY)
        out.append(vm.on(str(i)))
    return out


def packing_lower_bound(instance: BtrInstance) -> int:
    """Fewest identical nodes that hold every VM's demand, resource by resource."""
    src = instance.source
    best = 0
    for rc in src.resources:
        total = sum(instance.target_demand(v).get(rc, 0) for v in src.vms)
        cap = max((n.cap(rc) for n in src.nodes.values()), default=0)
        if cap > 0:
            best = max(best, math.ceil(total / cap))
    return best
