"""`vmgrid-bench traffic`: cross-host traffic after traffic-blind and traffic-aware placement.

Two variants share the placement side (this module): `--vms linux` (the default,
``vmgrid.bench.traffic_lab``) runs Debian guests on the lab exchanging iperf3 streams;
`--vms netns` (quick, seconds per phase) stands network namespaces in for VMs.

The namespace variant (``vmgrid.lab.netns``): each host is a namespace with a bridge and an
uplink, each VM's veth is a port of its host's bridge, UDP streams at set rates flow between
the members of each pair, each host's traffic meter (nftables, ``TrafficMeter``) measures the
matrix, a real ``ClusterState`` ingests the reports (traffic included) and the cluster
manager's decider (`--decider`: the vmgrid policy, the production default, or CP-SAT's
``control.decide``) answers the underload trigger, once without the matrix (blind) and once
with it (aware). Each placement is then applied to the namespaces (a VM's port moves to its
new host's bridge) and the same streams run again; cross-host traffic is what the hosts sent
on their uplinks (each crossing byte once), in Mbit/s.

Scenarios (`--scenarios`, seeds from `--seed`): `--pairs` pairs of VMs talking at
`--rate-mbit`, the two members of each pair on different hosts; every VM uses
`--vm-millicores` of a 4-core host, the band fills a host to 85 %, and the hosts are light, so
the decider consolidates onto fewer hosts. Traffic never buys migrations: CP-SAT ranks
migrations above it, and the policy's traffic pass only changes where its moved VMs go;
`same_packing` and `migrations` vs `migrations_blind` check it.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from typing import Any

from vmgrid.agents.cluster.decide.control import ControlConfig, decide, find_trigger
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
from vmgrid.agents.cluster.decide.policy_decider import PolicyDecider, policy_config
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
from vmgrid.agents.node.traffic_meter import Nft, TrafficMeter
from vmgrid.agents.traffic import TrafficMatrix
from vmgrid.solver.plan import Plan

GIB = 1 << 30
VM_MILLICORES = 450
DECIDERS = {
    "vmgrid": "vmgrid policy (PolicyDecider) on the underload trigger",
    "solver": "CP-SAT (control.decide) on the underload trigger",
}
STAND_IN = "network namespaces stand in for VMs (--vms netns)"
CONFIG = ControlConfig(
    hold_s=20,
    operator_policy=OperatorPolicy(
        cpu_high=0.85,
        memory_high=0.85,
        cpu_low=0.6,
        memory_low=0.6,
        migrations_per_cycle=0,
        migrations_per_hour=0,
        migrations_per_node_hour=0,
        min_move_interval_s=0,
        return_after_s=0,
    ),
)


LINUX_DEFAULTS = {"pairs": 3, "seconds": 20.0, "vm_millicores": 800, "scenarios": 1}
NETNS_DEFAULTS = {"pairs": 6, "seconds": 5.0, "vm_millicores": VM_MILLICORES, "scenarios": 5}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vms", choices=("linux", "netns"), default="linux",
                        help="linux: Debian guests on the lab with iperf3 (default); netns: "
                             "network namespaces stand in for VMs (quick)")  # fmt: skip
    parser.add_argument("--hosts", type=int, default=3, help="hosts (default 3)")
    parser.add_argument("--pairs", type=int, help="pairs of talking VMs (default 3; netns 6)")
    parser.add_argument("--rate-mbit", type=float, default=8.0, help="per pair (default 8)")
    parser.add_argument("--seconds", type=float,
                        help="per phase (default 20; netns 5)")  # fmt: skip
    parser.add_argument("--vm-millicores", type=int,
                        help="each VM's CPU as the decider sees it, of 4000 per host "
                             "(default 800; netns 450)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="first placement seed (default 1)")
    parser.add_argument(
        "--decider",
        choices=("vmgrid", "solver"),
        default="vmgrid",
        help="the manager's decider: the vmgrid policy (default, as in production) or CP-SAT",
    )
    parser.add_argument("--scenarios", type=int,
                        help="seeded placements, averaged (netns only; default 5)")  # fmt: skip
    parser.add_argument("--boot-timeout-s", type=float, default=900.0,
                        help="linux: longest wait for the guests' first boot (default 900)")  # fmt: skip
    parser.add_argument("--migration-timeout-s", type=float, default=180.0,
                        help="linux: longest wait for one migration (default 180)")  # fmt: skip
    parser.add_argument("--dir", help="linux: work directory (default: a new one under /tmp)")


def with_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """`args` with the defaults of its `--vms` variant filled in where not given."""
    defaults = LINUX_DEFAULTS if args.vms == "linux" else NETNS_DEFAULTS
    filled = vars(args).copy()
    for name, value in defaults.items():
        if filled.get(name) is None:
            filled[name] = value
    return argparse.Namespace(**filled)


def initial_placement(hosts: int, pairs: int, seed: int) -> dict[str, int]:
    """VM name -> host: members of a pair on two different hosts, hosts evenly filled (each
    member goes to a host with the most room left, ties broken by the seed)."""
    rng = random.Random(seed)
    room = [-(-2 * pairs // hosts)] * hosts
    placement: dict[str, int] = {}
    for p in range(pairs):
        taken: list[int] = []
        for member in "ab":
            free = [h for h in range(hosts) if h not in taken and room[h] > 0]
            most = max(room[h] for h in free)
            host = rng.choice([h for h in free if room[h] == most])
            room[host] -= 1
            taken.append(host)
            placement[f"p{p}{member}"] = host
    return placement


def cluster_state(
    placement: dict[str, int],
    hosts: int,
    matrices: list[TrafficMatrix] | None,
    vm_millicores: int = VM_MILLICORES,
) -> ClusterState:
    """A manager's state fed with every host's reports (30 s of them, the trigger's hold)."""
    now = [1_000_000_000_000]
    state = ClusterState(EventBus("bench-traffic"), clock_ns=lambda: now[0])
    for h in range(hosts):
        identity = NodeIdentity(f"h{h}", f"h{h}", f"test:///h{h}", simulated=True)
        state.node_connected(NodeHello(identity, NodeCapacity(4000, 16 * GIB, 10**10)), 1)
    for seq in range(1, 8):
        for h in range(hosts):
            vms = tuple(
                VmUsage(vm, vm, VmState.RUNNING, 1, vm_millicores, GIB, GIB)
                for vm, at in placement.items()
                if at == h
            )
            host = HostUsage(vm_millicores * len(vms), len(vms) * GIB, 16 * GIB)
            traffic = matrices[h] if matrices is not None else None
            state.apply_report(f"h{h}", NodeReport(now[0], seq, host, vms, traffic=traffic))
        now[0] += 5_000_000_000
    return state


def place(state: ClusterState, decider: str = "solver") -> Plan:
    """The plan of the manager's decider (``solver``: CP-SAT; ``vmgrid``: the policy)."""
    snapshot = state.snapshot()
    trigger = find_trigger(snapshot, CONFIG)
    if trigger is None:
        raise RuntimeError("no trigger: the scenario's hosts are not light enough to consolidate")
    if decider == "vmgrid":
        decision = PolicyDecider(policy_config(CONFIG)).decide(snapshot, trigger, CONFIG)
    else:
        decision = decide(snapshot, trigger, CONFIG)
    if decision.plan is None:
        raise RuntimeError(f"no plan: {decision.summary}")
    return decision.plan


def placement_of(plan: Plan) -> dict[str, int]:
    return {vm.name: int(str(vm.host)[1:]) for vm in plan.dst.vms.values() if vm.host}


def placement_after(start: dict[str, int], plan: Plan) -> dict[str, int]:
    """The whole placement once `plan` is carried out (its ``dst`` lists only the nodes it
    touches)."""
    return {**start, **placement_of(plan)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    args = with_defaults(args)
    if args.hosts < 2 or args.pairs < 1 or args.rate_mbit <= 0 or args.seconds <= 0:
        raise ValueError("--hosts must be >= 2, --pairs >= 1, --rate-mbit and --seconds > 0")
    if not 0 < args.vm_millicores <= 4000:
        raise ValueError(f"--vm-millicores {args.vm_millicores}: give 1 to 4000")
    if args.vms == "linux":
        from vmgrid.bench import traffic_lab

        if args.seconds < 8:
            raise ValueError(f"--seconds {args.seconds:g}: give at least 8 with real guests")
        return traffic_lab.run(args)
    if 2 * args.pairs > 6 * args.hosts:
        raise ValueError(f"--pairs {args.pairs}: at most {3 * args.hosts} on {args.hosts} hosts")
    if args.scenarios < 1:
        raise ValueError(f"--scenarios {args.scenarios}: give at least 1")
    if os.geteuid() != 0:
        raise ValueError("the traffic bench makes network namespaces: run it as root")
    runs = [scenario(args, args.seed + i) for i in range(args.scenarios)]
    blind = sum(r["cross_host_mbps_blind"] for r in runs) / len(runs)
    aware = sum(r["cross_host_mbps_aware"] for r in runs) / len(runs)
    return {
        "cross_host_mbps_blind": round(blind, 2),
        "cross_host_mbps_aware": round(aware, 2),
        "reduction": round(1 - aware / blind, 3) if blind > 0 else 0.0,
        "migrations": sum(r["migrations"] for r in runs),
        "migrations_blind": sum(r["migrations_blind"] for r in runs),
        "same_packing": all(r["hosts_used_blind"] == r["hosts_used_aware"] for r in runs),
        "cross_host_mbps_before": round(
            sum(r["cross_host_mbps_before"] for r in runs) / len(runs), 2
        ),
        "hosts": args.hosts,
        "pairs": args.pairs,
        "rate_mbit": args.rate_mbit,
        "seconds": args.seconds,
        "scenarios": runs,
        "decider": DECIDERS[args.decider],
        "vms": STAND_IN,
    }


def scenario(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One seeded placement: measure, decide blind and aware, measure each placement."""
    from vmgrid.lab.netns import NamespaceLab, Sender

    start = initial_placement(args.hosts, args.pairs, seed)
    lab = NamespaceLab(f"vgb{os.getpid() % 100000}")
    rate = int(args.rate_mbit * 125_000)
    try:
        lab.start(args.hosts)
        for vm, host in start.items():
            lab.add_vm(vm, host)
        meters = [TrafficMeter(window_s=3600, nft=Nft(netns=h)) for h in lab.hosts]

        def phase(placement: dict[str, int]) -> float:
            """Move the VMs to `placement`, run every pair's stream; cross-host Mbit/s."""
            for vm, host in placement.items():
                lab.move_vm(vm, host)
            senders = [
                Sender(lab.vms[f"p{p}a"], lab.vms[f"p{p}b"], rate, args.seconds)
                for p in range(args.pairs)
            ]
            before, started = lab.uplink_tx_bytes(), time.monotonic()
            for s in senders:
                s.start()
            for s in senders:
                s.wait()
            elapsed = time.monotonic() - started
            return (lab.uplink_tx_bytes() - before) * 8 / 1e6 / elapsed

        def ends(h: int) -> dict[str, str]:
            return {vm.mac: name for name, vm in lab.vms.items() if vm.host == h}

        for h, meter in enumerate(meters):
            meter.sample(ends(h))
        before = phase(start)
        matrices = [meter.sample(ends(h)) for h, meter in enumerate(meters)]
        blind = place(cluster_state(start, args.hosts, None, args.vm_millicores), args.decider)
        aware = place(cluster_state(start, args.hosts, matrices, args.vm_millicores), args.decider)
        blind_mbps = phase(placement_after(start, blind))
        aware_mbps = phase(placement_after(start, aware))
    finally:
        lab.close()
    return {
        "seed": seed,
        "cross_host_mbps_before": round(before, 2),
        "cross_host_mbps_blind": round(blind_mbps, 2),
        "cross_host_mbps_aware": round(aware_mbps, 2),
        "migrations": aware.migrations,
        "migrations_blind": blind.migrations,
        "hosts_used_blind": len(set(placement_after(start, blind).values())),
        "hosts_used_aware": len(set(placement_after(start, aware).values())),
        "measured_flows": sum(len(m.flows) for m in matrices if m.available),
    }
