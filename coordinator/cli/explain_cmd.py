"""`vmgridctl explain VM` and `vmgridctl capacity n-plus-one`: why a VM is where it is, and
whether the cluster can lose any one node (ClusterService ExplainVm, GetNPlusOne)."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from vmgrid.coordinator.cli import settings as s
from vmgrid.v1 import cluster_pb2


def _parser(sub: Any, name: str, help_text: str, epilog: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"examples:\n{epilog}\n{s.EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_connection_arguments(parser)
    parser.add_argument(
        "--json", dest="output", action="store_const", const="json", help="same as --output json"
    )
    return parser


def add_parsers(sub: Any) -> None:
    """Register `explain` and `capacity n-plus-one`."""
    p = _parser(
        sub,
        "explain",
        "why a VM is where it is: what placed it last and why, the rules that name it, and "
        "what would move it next",
        "  vmgridctl explain web-1\n  vmgridctl explain 6f1b9d0e-... --json",
    )
    p.add_argument("vm", help="VM name or uuid")
    p.set_defaults(handler=lambda a: s.run(a, explain_cmd))

    capacity = sub.add_parser(
        "capacity",
        help="capacity views of the cluster (n-plus-one)",
        description="Capacity views of one cluster.",
        epilog="examples:\n  vmgridctl capacity n-plus-one",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    views = capacity.add_subparsers(dest="capacity_view", required=True, metavar="VIEW")
    p = _parser(
        views,
        "n-plus-one",
        "for each node: could the cluster lose it and restart its HA VMs (job members) on the "
        "others, with room and every rule kept? Exit code 1 when some node fails",
        "  vmgridctl capacity n-plus-one\n  vmgridctl capacity n-plus-one --json",
    )
    p.set_defaults(handler=lambda a: s.run(a, n_plus_one_cmd))


async def explain_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    reply = await stub.ExplainVm(
        cluster_pb2.ExplainVmRequest(vm_uuid=args.vm), timeout=args.timeout
    )
    if args.output == "json":
        s.print_json(reply)
        return s.EXIT_OK
    print(f"{reply.vm_name} ({reply.vm_uuid}) on {reply.node_id}")
    print(textwrap.fill(reply.text, width=100))
    if reply.rules:
        print("rules:")
        s.print_table(
            ["ID", "KIND", "STATE"],
            [[r.rule.rule_id, r.rule.label, r.reason] for r in reply.rules],
        )
    return s.EXIT_OK


async def n_plus_one_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    reply = await stub.GetNPlusOne(cluster_pb2.GetNPlusOneRequest(), timeout=args.timeout)
    if args.output == "json":
        s.print_json(reply)
    else:
        rows = [
            [
                n.node_id,
                "ok" if n.ok else "FAILS",
                n.vms,
                ",".join(n.unplaced_vm_uuids) or "-",
                n.reason,
            ]
            for n in reply.nodes
        ]
        s.print_table(["NODE", "N+1", "HA VMS", "UNPLACED", "REASON"], rows)
        failing = sum(1 for n in reply.nodes if not n.ok)
        print(
            "the cluster can lose any one node"
            if reply.ok
            else f"{failing} of {len(reply.nodes)} node(s) cannot be lost without stranding HA VMs"
        )
    return s.EXIT_OK if reply.ok else s.EXIT_ERROR
