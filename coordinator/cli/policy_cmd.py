"""`vmgridctl policy show | set KEY=VALUE...`: the decision loop's operator policy.

The cluster manager keeps it (ClusterService GetPolicy, SetPolicy): a utilisation band per
resource, a migration budget and the minimum times before a VM moves again or back, all set
at once by an aggressiveness level. ``set`` changes only the keys given (``KEY=default``
makes a key follow the level again); a bad value is refused with one line naming it, and then
nothing changes.
"""

from __future__ import annotations

import argparse
from typing import Any

from vmgrid.agents.cluster.decide.operator_policy import HELP, SETTABLE
from vmgrid.agents.cluster.operator.codec import policy_to_json
from vmgrid.coordinator.cli import settings as s
from vmgrid.v1 import cluster_pb2

KEYS_HELP = "keys:\n" + "\n".join(f"  {key:<26}{HELP[key]}" for key in SETTABLE)


def _setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. cpu_high=0.75)")
    return key.strip(), value.strip()


def add_parsers(sub: Any) -> None:
    """Register `policy` and its two actions."""
    policy = sub.add_parser(
        "policy",
        help="show or set the decision loop's operator policy (band, budget, minimum times)",
        description="The operator policy of one cluster's decision loop.",
        epilog="examples:\n  vmgridctl policy show\n  vmgridctl policy set cpu_high=0.75 "
        "migrations_per_hour=12\n  vmgridctl policy set aggressiveness=conservative\n\n"
        + KEYS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = policy.add_subparsers(dest="policy_action", required=True, metavar="ACTION")
    for name, text in (
        ("show", "print the policy in force"),
        ("set", "change keys of the policy (KEY=default: follow the aggressiveness level)"),
    ):
        p: argparse.ArgumentParser = actions.add_parser(
            name,
            help=text,
            description=text,
            epilog=f"{KEYS_HELP}\n{s.EXIT_CODES_HELP}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        s.add_connection_arguments(p)
        p.add_argument(
            "--json",
            dest="output",
            action="store_const",
            const="json",
            help="same as --output json",
        )
        if name == "set":
            p.add_argument("settings", nargs="+", type=_setting, metavar="KEY=VALUE")
            p.set_defaults(handler=lambda a: s.run(a, set_cmd))
        else:
            p.set_defaults(handler=lambda a: s.run(a, show_cmd))


def _print(policy: cluster_pb2.OperatorPolicy, output: str) -> None:
    shown = policy_to_json(policy)
    if output == "json":
        s.print_json(shown)
        return
    explicit = set(shown.pop("explicit"))
    rows = [[key, value, "set" if key in explicit else ""] for key, value in shown.items()]
    s.print_table(["KEY", "VALUE", "EXPLICIT"], rows)


async def show_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    reply = await stub.GetPolicy(cluster_pb2.GetPolicyRequest(), timeout=args.timeout)
    _print(reply.policy, args.output)
    return s.EXIT_OK


async def set_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    request = cluster_pb2.SetPolicyRequest(values=dict(args.settings))
    reply = await stub.SetPolicy(request, timeout=args.timeout)
    _print(reply.policy, args.output)
    return s.EXIT_OK
