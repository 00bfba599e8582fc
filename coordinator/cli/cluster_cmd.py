"""`vmgridctl nodes` and `vmgridctl vms`: query a cluster manager's ClusterService."""

from __future__ import annotations

import argparse
from typing import Any

from vmgrid.agents.errors import ConfigError
from vmgrid.coordinator.cli import settings as s
from vmgrid.v1 import cluster_pb2, common_pb2

VM_STATES = tuple(
    n.removeprefix("VM_STATE_").lower()
    for n in common_pb2.VmState.keys()  # noqa: SIM118 - protobuf enum wrapper
    if n != "VM_STATE_UNSPECIFIED"
)


def add_nodes_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "nodes",
        help="list the nodes of a cluster (or forget one)",
        usage="vmgridctl nodes [forget NODE] [options]",
        epilog="examples:\n  vmgridctl nodes --cluster 10.0.0.1:7443 --insecure --output json\n"
        "  vmgridctl nodes forget n7   # a node whose agent is gone and that holds no VMs: "
        "removed\n                              # from the state, its history and the journal\n"
        + s.EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_connection_arguments(parser)
    parser.add_argument("action", nargs="?", choices=("forget",), help=argparse.SUPPRESS)
    parser.add_argument("node_id", nargs="?", metavar="NODE", help=argparse.SUPPRESS)
    parser.set_defaults(handler=lambda a: s.run(a, _nodes))


def add_vms_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "vms",
        help="list the VMs of a cluster",
        epilog="examples:\n  vmgridctl vms --node n1 --state running\n  vmgridctl vms --name web\n"
        + s.EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_connection_arguments(parser)
    parser.add_argument("--node", default="", help="only VMs on this node")
    parser.add_argument(
        "--state", action="append", choices=VM_STATES, help="only VMs in this state (repeatable)"
    )
    parser.add_argument("--name", default="", help="only VMs whose name starts so")
    parser.add_argument("--name-prefix", default="", help=argparse.SUPPRESS)
    parser.set_defaults(handler=lambda a: s.run(a, _vms))


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f}"


def node_status_name(value: int) -> str:
    """``connected``, ``lost``, ``powered_off``... from the wire enum; ``?`` when unset or
    unknown to this client (a newer manager)."""
    known = cluster_pb2.NodeStatus.values()
    if value == cluster_pb2.NODE_STATUS_UNSPECIFIED or value not in known:
        return "?"
    return cluster_pb2.NodeStatus.Name(value).removeprefix("NODE_STATUS_").lower()


async def _forget_node(stub: s.Stub, args: argparse.Namespace) -> int:
    if not args.node_id:
        raise ConfigError("forget: give the id of the node to forget (see vmgridctl nodes)")
    request = cluster_pb2.ForgetNodeRequest(node_id=args.node_id)
    reply = await stub.ForgetNode(request, timeout=args.timeout)
    if args.output == "json":
        s.print_json(reply)
    else:
        print(f"node {reply.node_id} forgotten")
    return s.EXIT_OK


async def _nodes(stub: s.Stub, args: argparse.Namespace) -> int:
    if args.action == "forget":
        return await _forget_node(stub, args)
    reply = await stub.ListNodes(cluster_pb2.ListNodesRequest(), timeout=args.timeout)
    if args.output == "json":
        s.print_json(reply)
        return s.EXIT_OK
    rows = [
        [
            n.node_id,
            node_status_name(n.status) + (" draining" if n.draining else ""),
            n.vm_count,
            f"{n.usage.cpu_used_millicores}/{n.capacity.cpu_millicores}",
            f"{_gib(n.usage.memory_used_bytes)}/{_gib(n.capacity.memory_bytes)}",
            "yes" if n.simulated else "no",
            n.hostname,
            n.degraded_reason or "-",
        ]
        for n in reply.nodes
    ]
    headers = ["NODE", "STATUS", "VMS", "CPU_MILLICORES", "MEM_GIB", "SIMULATED", "HOST"]
    s.print_table([*headers, "DEGRADED"], rows)
    return s.EXIT_OK


async def _vms(stub: s.Stub, args: argparse.Namespace) -> int:
    states = [f"VM_STATE_{x.upper()}" for x in args.state or []]
    request = cluster_pb2.ListVmsRequest(
        node_id=args.node, name_prefix=args.name or args.name_prefix, states=states
    )
    reply = await stub.ListVms(request, timeout=args.timeout)
    if args.output == "json":
        s.print_json(reply)
        return s.EXIT_OK
    rows = [
        [
            v.usage.uuid,
            v.usage.name,
            v.node_id,
            common_pb2.VmState.Name(v.usage.state).removeprefix("VM_STATE_").lower(),
            v.usage.vcpus,
            v.usage.cpu_used_millicores,
            v.usage.memory_used_bytes // 2**20,
            "yes" if v.usage.simulated else "no",
        ]
        for v in reply.vms
    ]
    headers = ["UUID", "NAME", "NODE", "STATE", "VCPUS", "CPU_MILLICORES", "MEM_MIB", "SIMULATED"]
    s.print_table(headers, rows)
    return s.EXIT_OK


# Kept for the commands that registered through these names (jobs_cmd): same flags, same runner.
_common = s.add_connection_arguments
_run = s.run
