"""`vmgridctl rules list | add | delete | check`: the cluster's placement rules.

Rules are kept by the cluster manager (ClusterService ListRules, AddRule, DeleteRule,
CheckRules), which validates each one before storing it: the error names the unknown kind,
VM or node, the malformed value, or the rule it contradicts. VMs are given by name or uuid.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from google.protobuf.json_format import MessageToDict
from vmgrid.coordinator.cli import settings as s
from vmgrid.coordinator.cli.cluster_plan_cmd import vm_names
from vmgrid.v1 import cluster_pb2

KINDS_HELP = """rule kinds (BtrPlace vocabulary) and what add takes:
  spread            --vms (2+)            running VMs on pairwise distinct nodes
  gather            --vms (2+)            running VMs on one node
  ban               --vms --nodes         VMs never run on these nodes
  fence             --vms --nodes         VMs run only on these nodes
  among             --vms --part (2+)     VMs all within one group of nodes
  lonely            --vms                 VMs share no node with other VMs
  split             --group (2+)          VMs of different groups never share a node
  quarantine        --nodes               nothing moves onto or off these nodes
  root              --vms                 VMs never move
  maxOnline         --nodes --amount      at most AMOUNT of the nodes online
  runningCapacity   --nodes --amount      at most AMOUNT VMs run on the nodes together
  resourceCapacity  --nodes --rc --amount the nodes' total use of RC (cpu millicores, mem MiB,
                                          net Mbit/s) at most AMOUNT
  networkAffinity   --pair (1+) [--max-crossing-mbit]  VM pairs' traffic kept off the network
--continuous makes a rule hold during plans too (spread, quarantine and root always do)."""


def _list_arg(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty item; give NAME[,NAME...]")
    return items


def _pair_arg(text: str) -> list[Any]:
    parts = [t.strip() for t in text.split(",")]
    if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2].isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not VM,VM,MBIT (e.g. web-1,db-1,200)")
    return [parts[0], parts[1], int(parts[2])]


def _parser(sub: Any, name: str, help_text: str, epilog: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"{epilog}\n{s.EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_connection_arguments(parser)
    parser.add_argument(
        "--json", dest="output", action="store_const", const="json", help="same as --output json"
    )
    return parser


def add_parsers(sub: Any) -> None:
    """Register `rules` and its four actions."""
    rules = sub.add_parser(
        "rules",
        help="list, add, delete or check the cluster's placement rules",
        description="Placement rules of one cluster: those operators add and those jobs bring.",
        epilog="examples:\n  vmgridctl rules list\n  vmgridctl rules add spread web-apart "
        "--vms web-1,web-2\n  vmgridctl rules check\n  vmgridctl rules delete web-apart",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = rules.add_subparsers(dest="rules_action", required=True, metavar="ACTION")
    p = _parser(
        actions,
        "list",
        "list every rule with its origin and whether it holds now",
        "examples:\n  vmgridctl rules list\n  vmgridctl rules list --origin job:mpi-1 --json",
    )
    p.add_argument("--origin", default="", help="only rules of this origin (operator, job:ID)")
    p.set_defaults(handler=lambda a: s.run(a, list_cmd))

    p = _parser(
        actions,
        "add",
        "add a rule; it is refused (and nothing stored) if it names an unknown VM or node, "
        "is malformed, or contradicts a rule in force",
        "examples:\n"
        "  vmgridctl rules add spread web-apart --vms web-1,web-2,web-3\n"
        "  vmgridctl rules add ban no-db-on-n4 --vms db-1 --nodes n4\n"
        "  vmgridctl rules add fence gpu-only --vms train-0,train-1 --nodes n5,n6\n"
        "  vmgridctl rules add among one-rack --vms a,b --part n1,n2 --part n3,n4\n"
        "  vmgridctl rules add split tenants --group a1,a2 --group b1\n"
        "  vmgridctl rules add runningCapacity n1-cap --nodes n1 --amount 8\n"
        "  vmgridctl rules add resourceCapacity rack-cpu --nodes n1,n2 --rc cpu --amount 12000\n"
        "  vmgridctl rules add networkAffinity chatty --pair web-1,db-1,200\n\n" + KINDS_HELP,
    )
    p.add_argument("kind", help="rule kind, e.g. spread, gather, ban, fence (see below)")
    p.add_argument("rule_id", help="a name for the rule, e.g. web-apart")
    p.add_argument(
        "--vms",
        metavar="VM[,VM...]",
        type=_list_arg,
        action="extend",
        default=[],
        help="VMs by name or uuid (repeatable)",
    )
    p.add_argument(
        "--nodes",
        metavar="NODE[,NODE...]",
        type=_list_arg,
        action="extend",
        default=[],
        help="node ids (repeatable)",
    )
    p.add_argument(
        "--amount", metavar="N", type=s.non_negative_int, help="capacity and count kinds"
    )
    p.add_argument("--rc", choices=("cpu", "mem", "net"), help="resourceCapacity: resource")
    p.add_argument(
        "--part",
        metavar="NODE[,NODE...]",
        type=_list_arg,
        action="append",
        help="among: NODE,NODE (repeat)",
    )
    p.add_argument(
        "--group",
        metavar="VM[,VM...]",
        type=_list_arg,
        action="append",
        help="split: VM,VM (repeat)",
    )
    p.add_argument(
        "--pair",
        metavar="VM,VM,MBIT",
        type=_pair_arg,
        action="append",
        help="networkAffinity: VM,VM,MBIT",
    )
    p.add_argument(
        "--max-crossing-mbit", metavar="MBIT", type=s.non_negative_int, help="networkAffinity cap"
    )
    p.add_argument("--continuous", action="store_true", help="hold during plans too")
    p.set_defaults(handler=lambda a: s.run(a, add_cmd))

    p = _parser(
        actions,
        "delete",
        "delete an operator rule (a job's rules go with the job)",
        "examples:\n  vmgridctl rules delete web-apart",
    )
    p.add_argument("rule_id", help="rule id (see vmgridctl rules list)")
    p.set_defaults(handler=lambda a: s.run(a, delete_cmd))

    p = _parser(
        actions,
        "check",
        "which rules the current placement violates, and why; and which cannot be kept at all",
        "examples:\n  vmgridctl rules check\n  vmgridctl rules check --json",
    )
    p.set_defaults(handler=lambda a: s.run(a, check_cmd))


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    values = {
        "amount": args.amount,
        "rc": args.rc,
        "parts": args.part,
        "groups": args.group,
        "pairs": args.pair,
        "max_crossing_mbit": args.max_crossing_mbit,
        "continuous": True if args.continuous else None,
    }
    return {k: v for k, v in values.items() if v is not None}


def _show(items: Any, names: dict[str, str]) -> str:
    return ",".join(names.get(i, i) for i in items) or "-"


def _row(rule: cluster_pb2.Rule, names: dict[str, str], state: str) -> list[str]:
    params = json.loads(rule.parameters_json) if rule.parameters_json else {}
    shown = " ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in params.items())
    return [
        rule.rule_id,
        rule.kind,
        rule.origin,
        state,
        _show(rule.vm_uuids, names),
        _show(rule.node_ids, names),
        shown or "-",
    ]


HEADERS = ["ID", "KIND", "ORIGIN", "STATE", "VMS", "NODES", "PARAMETERS"]


async def list_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    rules = await stub.ListRules(
        cluster_pb2.ListRulesRequest(origin=args.origin), timeout=args.timeout
    )
    check = await stub.CheckRules(cluster_pb2.CheckRulesRequest(), timeout=args.timeout)
    verdicts = {v.rule.rule_id: ("violated", v.reason) for v in check.violations}
    verdicts.update({v.rule.rule_id: ("impossible", v.reason) for v in check.impossible})
    if args.output == "json":
        listed = []
        for rule in rules.rules:
            state, reason = verdicts.get(rule.rule_id, ("holds", ""))
            as_dict = MessageToDict(rule, preserving_proto_field_name=True)
            listed.append({**as_dict, "state": state, "reason": reason})
        s.print_json({"rules": listed})
        return s.EXIT_OK
    names = await vm_names(stub, args.timeout)
    rows = [_row(r, names, verdicts.get(r.rule_id, ("holds", ""))[0]) for r in rules.rules]
    if not rows:
        print("no rules" + (f" of origin {args.origin}" if args.origin else ""))
        return s.EXIT_OK
    s.print_table(HEADERS, rows)
    return s.EXIT_OK


async def add_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    parameters = _parameters(args)
    rule = cluster_pb2.Rule(
        rule_id=args.rule_id,
        kind=args.kind,
        vm_uuids=args.vms,
        node_ids=args.nodes,
        parameters_json=json.dumps(parameters) if parameters else "",
    )
    reply = await stub.AddRule(cluster_pb2.AddRuleRequest(rule=rule), timeout=args.timeout)
    if args.output == "json":
        s.print_json(reply.rule)
    else:
        print(f"rule {reply.rule.rule_id} added: {reply.rule.label}")
    return s.EXIT_OK


async def delete_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    request = cluster_pb2.DeleteRuleRequest(rule_id=args.rule_id)
    reply = await stub.DeleteRule(request, timeout=args.timeout)
    if args.output == "json":
        s.print_json(reply.rule)
    else:
        print(f"rule {reply.rule.rule_id} deleted: {reply.rule.label}")
    return s.EXIT_OK


async def check_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    check = await stub.CheckRules(cluster_pb2.CheckRulesRequest(), timeout=args.timeout)
    if args.output == "json":
        s.print_json(check)
        return s.EXIT_OK
    for title, found in (("violated", check.violations), ("impossible", check.impossible)):
        if found:
            print(f"{title}:")
            s.print_table(
                ["ID", "KIND", "ORIGIN", "REASON"],
                [[v.rule.rule_id, v.rule.kind, v.rule.origin, v.reason] for v in found],
            )
    if not check.violations and not check.impossible:
        print(f"all {check.rules_checked} rules hold")
    else:
        print(
            f"{len(check.violations)} of {check.rules_checked} rules violated, "
            f"{len(check.impossible)} impossible"
        )
    return s.EXIT_OK
