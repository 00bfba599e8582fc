"""`vmgridctl apply | migrate VM --cluster C | events --follow`: act on the grid.

``apply`` and ``migrate`` start the moves, then follow the plan with a progress bar on stderr
until it ends (exit 0 when every move succeeded, 1 otherwise); Ctrl-C cancels the plan: moves
not started are skipped, and reservations of moves whose VM has not left are released.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time

from google.protobuf.json_format import MessageToDict
from vmgrid.coordinator.cli.grid_cmd import EXIT_ERROR, EXIT_OK, _common, _print_json, run
from vmgrid.v1 import common_pb2, coordinator_pb2, coordinator_pb2_grpc

_FINAL = {
    common_pb2.PLAN_STATE_SUCCEEDED,
    common_pb2.PLAN_STATE_FAILED,
    common_pb2.PLAN_STATE_CANCELLED,
}


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register apply, migrate and events."""
    apply = sub.add_parser("apply", help="execute a dry-run grid plan (from 'vmgridctl plan')")
    apply.add_argument("plan_id", help="id printed by 'vmgridctl plan'")
    apply.add_argument("--copy-storage", action="store_true", help="copy disks (no shared disk)")
    apply.add_argument("--no-wait", action="store_true", help="start it and return")
    _common(apply)
    apply.set_defaults(handler=lambda a: run(a, _apply))
    migrate = sub.add_parser("migrate", help="move a VM to another cluster")
    migrate.add_argument("vm", help="VM uuid")
    migrate.add_argument("--cluster", required=True, help="destination cluster id")
    migrate.add_argument("--bandwidth-mbps", type=int, default=0, help="cap (0: uncapped)")
    migrate.add_argument("--copy-storage", action="store_true", help="copy disks (no shared disk)")
    migrate.add_argument("--id", default="", help="request id: a retry with it is not repeated")
    migrate.add_argument("--no-wait", action="store_true", help="start it and return")
    _common(migrate)
    migrate.set_defaults(handler=lambda a: run(a, _migrate))
    events = sub.add_parser("events", help="show grid events (clusters, plans, moves)")
    events.add_argument("--follow", action="store_true", help="keep streaming until Ctrl-C")
    events.add_argument("--cluster", default="", help="only this cluster's events")
    _common(events)
    events.set_defaults(handler=lambda a: run(a, _events))


async def _apply(
    stub: coordinator_pb2_grpc.CoordinatorServiceStub, args: argparse.Namespace
) -> int:
    request = coordinator_pb2.ApplyGridPlanRequest(
        plan_id=args.plan_id, copy_storage=args.copy_storage
    )
    reply = await stub.ApplyGridPlan(request, timeout=args.timeout)
    return await _follow(stub, args, reply.plan)


async def _migrate(
    stub: coordinator_pb2_grpc.CoordinatorServiceStub, args: argparse.Namespace
) -> int:
    request = coordinator_pb2.MigrateVmToClusterRequest(
        vm_uuid=args.vm,
        destination_cluster_id=args.cluster,
        bandwidth_cap_bps=args.bandwidth_mbps * 1_000_000,
        command_id=args.id,
        copy_storage=args.copy_storage,
    )
    reply = await stub.MigrateVmToCluster(request, timeout=args.timeout)
    return await _follow(stub, args, reply.plan)


async def _follow(
    stub: coordinator_pb2_grpc.CoordinatorServiceStub,
    args: argparse.Namespace,
    plan: coordinator_pb2.GridPlan,
) -> int:
    """Poll the plan and draw its progress until it ends; Ctrl-C cancels it."""
    try:
        while not args.no_wait and plan.state not in _FINAL:
            _bar(plan)
            await asyncio.sleep(0.5)
            request = coordinator_pb2.GetGridPlanRequest(plan_id=plan.plan_id)
            plan = (await stub.GetGridPlan(request, timeout=args.timeout)).plan
    except (KeyboardInterrupt, asyncio.CancelledError):
        request_cancel = coordinator_pb2.CancelGridPlanRequest(plan_id=plan.plan_id)
        plan = (await stub.CancelGridPlan(request_cancel, timeout=args.timeout)).plan
        print(f"\ncancelled {plan.plan_id}", file=sys.stderr)
    _bar(plan)
    print(file=sys.stderr)
    if args.output == "json":
        _print_json(plan)
    else:
        print(f"plan {plan.plan_id}: {plan.summary}")
        for mv in plan.moves:
            tag = " (simulated)" if mv.simulated else ""
            print(f"  {mv.vm_uuid} {mv.source_cluster_id} -> {mv.destination_cluster_id}: ")
            print(f"    {mv.message}{tag}")
    ok = args.no_wait or plan.state == common_pb2.PLAN_STATE_SUCCEEDED
    return EXIT_OK if ok else EXIT_ERROR


def _bar(plan: coordinator_pb2.GridPlan, width: int = 30) -> None:
    total = max(1, len(plan.moves))
    fraction = sum(mv.progress_fraction for mv in plan.moves) / total
    filled = round(fraction * width)
    state = common_pb2.PlanState.Name(plan.state).removeprefix("PLAN_STATE_").lower()
    line = f"\r{plan.plan_id} [{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%} {state}"
    print(line, end="", file=sys.stderr, flush=True)


async def _events(
    stub: coordinator_pb2_grpc.CoordinatorServiceStub, args: argparse.Namespace
) -> int:
    """Grid events: until Ctrl-C with --follow, else for --duration seconds (or --count)."""
    request = coordinator_pb2.CoordinatorServiceWatchEventsRequest(cluster_id=_cluster_filter(args))
    stream = stub.WatchEvents(request)
    seen = 0

    async def read() -> None:
        nonlocal seen
        async for reply in stream:
            print(_event_line(reply.event, args.output), flush=True)
            seen += 1
            if getattr(args, "count", 0) and seen >= args.count:
                return

    try:
        if args.follow:
            await read()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(read(), getattr(args, "duration", args.timeout))
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        stream.cancel()
    return EXIT_OK


def _cluster_filter(args: argparse.Namespace) -> str:
    """A cluster id given as --cluster filters; a HOST:PORT there names a manager, not a filter."""
    cluster = getattr(args, "cluster", None) or ""
    return "" if ":" in cluster else cluster


def _event_line(event: common_pb2.Event, output: str) -> str:
    if output == "json":
        return json.dumps(MessageToDict(event, preserving_proto_field_name=True))
    stamp = time.strftime("%H:%M:%S", time.localtime(event.at.seconds))
    kind = common_pb2.EventKind.Name(event.kind).removeprefix("EVENT_KIND_").lower()
    subject = event.vm_uuid or event.cluster_id or event.plan_id
    tag = " (simulated)" if event.simulated else ""
    return f"{stamp} {kind:<16} {subject} {event.message}{tag}"
