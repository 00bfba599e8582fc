"""Parsers of the cluster operator commands, and the ones shared with the grid.

`status`, `plan`, `apply`, `migrate` and `events` exist for a single cluster and for the grid:
one parser takes the flags of both, and `--coordinator` selects the grid (for `migrate`, so does
a `--cluster` value that is a cluster id rather than HOST:PORT). The grid handlers are the
coordinator CLI's own (grid_cmd, move_cmd); `skipping` keeps their modules from registering the
same names a second time.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from vmgrid.coordinator.cli import cluster_plan_cmd as plans
from vmgrid.coordinator.cli import cluster_vm_cmd as vms
from vmgrid.coordinator.cli import grid_cmd, move_cmd
from vmgrid.coordinator.cli import settings as s

SHARED = ("status", "plan", "apply", "migrate", "events")
Register = Callable[[Any], None]


class _Skipping:
    """A sub-parsers stand-in that drops the names registered here (the shared ones)."""

    def __init__(self, sub: Any, names: tuple[str, ...]) -> None:
        self._sub, self._names = sub, names

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if name in self._names:
            return argparse.ArgumentParser(prog=name, add_help=False)
        parser: argparse.ArgumentParser = self._sub.add_parser(name, **kwargs)
        return parser


def skipping(register: Register) -> Register:
    """`register` with the shared command names left out."""
    return lambda sub: register(_Skipping(sub, SHARED))


def _grid(args: argparse.Namespace) -> bool:
    if getattr(args, "coordinator", None):
        return True
    cluster = getattr(args, "cluster", None) or ""
    return args.command == "migrate" and bool(cluster) and ":" not in cluster


def _dispatch(cluster_query: s.Query, grid_query: Any) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        if _grid(args):
            if args.command == "apply" and not args.plan_id:
                s.fail(args, "a grid apply needs the PLAN_ID printed by 'vmgridctl plan'")
                return s.EXIT_USAGE
            return grid_cmd.run(args, grid_query)
        return s.run(args, cluster_query)

    return handler


def _parser(sub: Any, name: str, help_text: str, epilog: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"examples:\n{epilog}\n{s.EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_connection_arguments(parser)
    return parser


def _coordinator(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--coordinator", metavar="HOST:PORT", help="act on the grid through this coordinator"
    )


def add_parsers(sub: Any) -> None:
    """Register every cluster operator command."""
    _shared(sub)
    _plans(sub)
    _vms(sub)


def _shared(sub: Any) -> None:
    p = _parser(
        sub,
        "status",
        "one-screen overview of a cluster (or of the grid with --coordinator)",
        "  vmgridctl status --cluster 10.0.0.1:7443 --certs ~/.vmgrid/certs\n"
        "  vmgridctl status --coordinator 10.0.0.9:7600 --output json",
    )
    _coordinator(p)
    p.set_defaults(handler=_dispatch(vms.status_cmd, grid_cmd._status))

    p = _parser(
        sub,
        "plan",
        "dry-run a reconfiguration and show each action's reason (nothing is executed)",
        "  vmgridctl plan                      # what the decision loop would do now\n"
        "  vmgridctl plan --objective consolidate\n"
        "  vmgridctl plan --drain n3           # as if n3 were in maintenance\n"
        "  vmgridctl plan --coordinator 10.0.0.9:7600   # inter-cluster plan",
    )
    p.add_argument("--objective", choices=("consolidate", "balance"), help="explicit objective")
    p.add_argument("--drain", action="append", metavar="NODE", help="plan as if NODE drained")
    p.add_argument(
        "--time-limit-s",
        type=s.non_negative_seconds,
        default=0.0,
        help="solver budget, seconds (default 0: the manager's own limit)",
    )
    _coordinator(p)
    p.set_defaults(handler=_dispatch(plans.plan_cmd, grid_cmd._plan))

    p = _parser(
        sub,
        "apply",
        "execute a plan with a progress bar on stderr; Ctrl-C cancels it",
        "  vmgridctl apply                     # plan now and run the result\n"
        "  vmgridctl apply dry-3f2a9c01d4      # run a plan shown by 'vmgridctl plan'\n"
        "  vmgridctl apply plan-77c1e0a2b3 --no-wait",
    )
    p.add_argument("plan_id", nargs="?", default="", help="plan id (default: plan now)")
    p.add_argument("--no-wait", action="store_true", help="start it and return")
    p.add_argument("--copy-storage", action="store_true", help="grid: copy disks")
    _coordinator(p)
    p.set_defaults(handler=_dispatch(plans.apply_cmd, move_cmd._apply))

    p = _parser(
        sub,
        "migrate",
        "move a VM to NODE (or where the solver puts it), or to a cluster of the grid",
        "  vmgridctl migrate web-1 n2          # by name or uuid, to node n2\n"
        "  vmgridctl migrate web-1             # the solver picks the node\n"
        "  vmgridctl migrate 6f1c... --cluster c2 --coordinator 10.0.0.9:7600"
        "   # VM uuid to cluster c2",
    )
    p.add_argument("vm", help="VM name or uuid (a move to another cluster takes the uuid)")
    p.add_argument("node", nargs="?", default="", help="destination node (default: solver)")
    p.add_argument("--no-wait", action="store_true", help="start it and return")
    p.add_argument(
        "--bandwidth-mbps",
        type=s.non_negative_int,
        default=0,
        help="grid: cap, Mbit/s (default 0: uncapped)",
    )
    p.add_argument("--copy-storage", action="store_true", help="grid: copy disks")
    p.add_argument("--id", default="", help="grid: request id, a retry is not repeated")
    _coordinator(p)
    p.set_defaults(handler=_dispatch(plans.migrate_cmd, move_cmd._migrate))

    p = _parser(
        sub,
        "events",
        "stream the cluster's events (plans with progress, VMs, nodes)",
        "  vmgridctl events --follow\n"
        "  vmgridctl events --kind plan_changed --kind command_result --count 20\n"
        "  vmgridctl events --follow --coordinator 10.0.0.9:7600",
    )
    p.add_argument("--follow", action="store_true", help="stream until Ctrl-C")
    p.add_argument(
        "--duration",
        type=s.positive_seconds,
        default=10.0,
        help="seconds to stream without --follow (default 10)",
    )
    p.add_argument(
        "--count",
        type=s.non_negative_int,
        default=0,
        help="stop after this many events (default 0: no limit)",
    )
    p.add_argument("--kind", action="append", help="only this kind (repeatable)")
    p.add_argument("--node", default="", help="only this node's events")
    _coordinator(p)
    p.set_defaults(handler=_dispatch(vms.events_cmd, move_cmd._events))


def _plans(sub: Any) -> None:
    p = _parser(
        sub,
        "plans",
        "list dry runs, plans awaiting approval and recent plans",
        "  vmgridctl plans --limit 5",
    )
    p.add_argument(
        "--limit",
        type=s.non_negative_int,
        default=20,
        help="journaled plans to show (default 20; 0 also means 20)",
    )
    p.set_defaults(handler=lambda a: s.run(a, plans.plans_cmd))
    for name, help_text, query in (
        ("approve", "run a plan that awaits approval", plans.approve_cmd),
        ("reject", "drop a plan that awaits approval", plans.reject_cmd),
        ("cancel", "cancel a running plan", plans.cancel_cmd),
    ):
        p = _parser(sub, name, help_text, f"  vmgridctl {name} plan-77c1e0a2b3")
        p.add_argument("plan_id", help="plan id (see vmgridctl plans)")
        if name == "reject":
            p.add_argument("--reason", default="", help="why (kept with the plan)")
        p.set_defaults(handler=lambda a, q=query: s.run(a, q))


def _vms(sub: Any) -> None:
    for name, help_text, query in (
        ("suspend", "pause a running VM in memory", vms.suspend_cmd),
        ("resume", "resume a paused VM", vms.resume_cmd),
    ):
        p = _parser(sub, name, help_text, f"  vmgridctl {name} web-1")
        p.add_argument("vm", help="VM name or uuid")
        p.set_defaults(handler=lambda a, q=query: s.run(a, q))
    p = _parser(
        sub,
        "snapshot",
        "create, list, revert to or delete a VM's snapshots",
        "  vmgridctl snapshot create web-1 before-upgrade\n"
        "  vmgridctl snapshot list web-1\n"
        "  vmgridctl snapshot revert web-1 before-upgrade\n"
        "  vmgridctl snapshot delete web-1 before-upgrade",
    )
    p.add_argument("snapshot_action", choices=("create", "list", "revert", "delete"))
    p.add_argument("vm", help="VM name or uuid")
    p.add_argument("name", nargs="?", default="", help="snapshot name (not for list)")
    p.add_argument("--description", default="", help="create: free text")
    p.set_defaults(handler=lambda a: s.run(a, vms.snapshot_cmd))
    for name, help_text in (
        ("drain", "put a node in maintenance: its VMs are moved away"),
        ("undrain", "end a node's maintenance: its VMs come back"),
    ):
        p = _parser(sub, name, help_text, f"  vmgridctl {name} n3")
        p.add_argument("node", help="node id (see vmgridctl nodes)")
        p.set_defaults(handler=lambda a: s.run(a, vms.drain_cmd))
