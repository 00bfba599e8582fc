"""`vmgrid-bench n-plus-one`: time of the cluster manager's N+1 check on a generated cluster.

Every node (4 cores, `--node-gib` GiB) reports `--vms-per-node` VMs of 1 GiB using 300
millicores each; every VM is a job member (an HA VM), and with `--spread-pairs` consecutive
members form spread pairs (the rule a two-member job group brings), so rule checks run too.
The check (`vmgrid.agents.cluster.jobs.capacity.n_plus_one`) runs on one snapshot, timed alone.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from vmgrid.agents.cluster.jobs.capacity import n_plus_one
from vmgrid.agents.cluster.jobs.members import Member
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.model import (
    HostUsage,
    NodeCapacity,
    NodeHello,
    NodeIdentity,
    NodeReport,
    VmState,
    VmUsage,
)
from vmgrid.solver.constraints import Spread

GIB = 1 << 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=200, help="nodes (default 200)")
    parser.add_argument("--vms-per-node", type=int, default=10, help="VMs per node (default 10)")
    parser.add_argument("--node-gib", type=int, default=32, help="memory per node (default 32)")
    parser.add_argument(
        "--spread-pairs", action="store_true", help="members in spread pairs (rule checks)"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.nodes < 2 or args.vms_per_node < 1 or args.node_gib < 1:
        raise ValueError("--nodes must be >= 2, --vms-per-node and --node-gib >= 1")
    state = ClusterState(EventBus("bench"))
    members = []
    for i in range(args.nodes):
        node = f"n{i:05d}"
        identity = NodeIdentity(node, node, f"test:///{node}", simulated=True)
        capacity = NodeCapacity(4000, args.node_gib * GIB, 10**10)
        state.node_connected(NodeHello(identity, capacity), 1)
        vms = []
        for j in range(args.vms_per_node):
            uuid = f"vm-{i:05d}-{j:03d}"
            vms.append(VmUsage(uuid, uuid, VmState.RUNNING, 1, 300, GIB, GIB))
            members.append(Member(uuid, "bench", uuid, node, "", "", 0, 300, 1024, 0))
        host = HostUsage(300 * len(vms), len(vms) * GIB, args.node_gib * GIB)
        state.apply_report(node, NodeReport(1, 1, host, tuple(vms)))
    rules = 0
    if args.spread_pairs:
        uuids = [m.vm_uuid for m in members]
        # pair each VM with the same slot on the next node, so every pair is spread now
        per = args.vms_per_node
        for k in range(0, len(uuids) - per, 2 * per):
            for j in range(per):
                state.rules.add(f"pair-{k + j}", Spread((uuids[k + j], uuids[k + per + j])))
                rules += 1
    snapshot = state.snapshot()
    started = time.perf_counter()
    result = n_plus_one(snapshot, members)
    seconds = time.perf_counter() - started
    return {
        "nodes": args.nodes,
        "vms": len(members),
        "members": len(members),
        "rules": rules,
        "seconds": round(seconds, 3),
        "per_node_ms": round(1000 * seconds / args.nodes, 2),
        "ok": result.ok,
        "failing_nodes": sum(1 for c in result.nodes if not c.ok),
    }
