"""Synthetic consolidation-from-scratch instances: identical nodes, ready VMs that must run.

Seeded, so a benchmark figure can be replayed. Names are decimal ids, as in BtrPlace files, so
plans export the same way.
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
    """``nodes=1000,vms=10000,seed=1`` -> {"nodes": 1000, "vms": 10000, "seed": 1}."""
    out = {"nodes": 100, "vms": 1000, "seed": 1}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key not in out or not value.strip().isdigit():
            raise BtrPlaceError(
                f"--generate: bad item {item!r}; expected nodes=N,vms=M,seed=S with integers"
            )
        out[key] = int(value)
    if out["nodes"] < 1 or out["vms"] < 1:
        raise BtrPlaceError(f"--generate: {spec!r} needs nodes >= 1 and vms >= 1")
    return out


def consolidation_instance(nodes: int, vms: int, seed: int) -> BtrInstance:
    """`nodes` empty nodes and `vms` ready VMs (uniform cpu and memory demands) to place."""
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
    model = Model({n.name: n for n in node_list}, {v.name: v for v in vm_list})
    running = tuple(Running(v.name) for v in vm_list)
    return BtrInstance(f"generated-n{nodes}-v{vms}-s{seed}", model, {}, running, "consolidation")


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
