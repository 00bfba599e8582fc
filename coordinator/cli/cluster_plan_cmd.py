"""`vmgridctl plan | plans | apply | approve | reject | migrate` against one cluster manager.

`apply` and `migrate` follow their plan on the manager's event stream, drawing a progress bar on
stderr; Ctrl-C asks the manager to cancel the plan (pending actions are dropped, running
migrations aborted) and waits for the plan to end. The stream is opened before the plan is
started, so no progress event can be missed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from google.protobuf.json_format import MessageToDict
from vmgrid.coordinator.cli import settings as s
from vmgrid.v1 import cluster_pb2, common_pb2

_FINAL = {
    common_pb2.PLAN_STATE_SUCCEEDED,
    common_pb2.PLAN_STATE_FAILED,
    common_pb2.PLAN_STATE_CANCELLED,
}
FOLLOW_AFTER_CANCEL_S = 60.0


def state_name(value: int) -> str:
    return common_pb2.PlanState.Name(value).removeprefix("PLAN_STATE_").lower()


def kind_name(value: int) -> str:
    return common_pb2.PlanActionKind.Name(value).removeprefix("PLAN_ACTION_KIND_").lower()


async def vm_names(stub: s.Stub, timeout: float) -> dict[str, str]:
    reply = await stub.ListVms(cluster_pb2.ListVmsRequest(), timeout=timeout)
    return {v.usage.uuid: v.usage.name or v.usage.uuid for v in reply.vms}


async def resolve_vm(stub: s.Stub, ref: str, timeout: float) -> str:
    """A VM's uuid from its uuid or its name (names must be unique)."""
    reply = await stub.ListVms(cluster_pb2.ListVmsRequest(), timeout=timeout)
    by_uuid = [v.usage.uuid for v in reply.vms if v.usage.uuid == ref]
    by_name = sorted({v.usage.uuid for v in reply.vms if v.usage.name == ref})
    if by_uuid:
        return by_uuid[0]
    if len(by_name) == 1:
        return by_name[0]
    if by_name:
        raise s.CommandError(f"VM name {ref!r} is ambiguous: give one of {by_name}", s.EXIT_USAGE)
    raise s.CommandError(
        f"no VM named {ref!r} or with that uuid in the cluster (see vmgridctl vms)",
        s.EXIT_NOT_FOUND,
    )


def print_plan(plan: common_pb2.Plan, names: dict[str, str], dry_run: bool = False) -> None:
    note = " (dry run, nothing executed)" if dry_run else ""
    print(f"plan {plan.plan_id or '-'}: {state_name(plan.state)}{note}")
    print(plan.summary)
    if plan.actions:
        rows = [
            [
                a.action_id,
                kind_name(a.kind),
                names.get(a.vm_uuid, a.vm_uuid) or "-",
                a.source_node_id or "-",
                a.destination_node_id or "-",
                f"{a.start_ms / 1000:.0f}",
                f"{a.duration_ms / 1000:.0f}",
                state_name(a.state),
                "yes" if a.simulated else "no",
                a.reason,
            ]
            for a in plan.actions
        ]
        headers = ["ID", "ACTION", "VM", "FROM", "TO", "START_S", "EST_S", "STATE", "SIMULATED"]
        s.print_table([*headers, "REASON"], rows)
    if plan.active_nodes_before or plan.active_nodes_after:
        print(f"active nodes: {plan.active_nodes_before} -> {plan.active_nodes_after}")


# ---- plan / plans ----------------------------------------------------------------------------


async def plan_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    request = cluster_pb2.PlanReconfigurationRequest(
        objective=args.objective or "",
        drain_node_ids=args.drain or [],
        time_limit_ms=int(args.time_limit_s * 1000),
    )
    timeout = args.timeout + args.time_limit_s * 2 + 10
    reply = await stub.PlanReconfiguration(request, timeout=timeout)
    if args.output == "json":
        s.print_json(reply)
    else:
        print_plan(reply.plan, await vm_names(stub, args.timeout), dry_run=True)
        if reply.plan.actions:
            print(f"run it with: vmgridctl apply {reply.plan.plan_id}")
    return s.EXIT_OK


async def plans_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    reply = await stub.ListPlans(
        cluster_pb2.ListPlansRequest(limit=args.limit), timeout=args.timeout
    )
    if args.output == "json":
        s.print_json(reply)
        return s.EXIT_OK
    rows = [[p.plan_id, state_name(p.state), len(p.actions), p.summary] for p in reply.plans]
    s.print_table(["PLAN", "STATE", "ACTIONS", "SUMMARY"], rows)
    return s.EXIT_OK


# ---- apply / migrate and following a plan --------------------------------------------------


def _bar(fraction: float, width: int = 30) -> str:
    done = int(round(fraction * width))
    return "[" + "#" * done + "." * (width - done) + f"] {fraction:4.0%}"


class _Progress:
    """A one-line progress bar on stderr, redrawn in place when stderr is a terminal."""

    def __init__(self, quiet: bool) -> None:
        self._quiet = quiet
        self._tty = sys.stderr.isatty()

    def show(self, fraction: float, message: str) -> None:
        if self._quiet:
            return
        line = f"{_bar(fraction)} {message}"
        if self._tty:
            sys.stderr.write("\r\033[K" + line[:160])
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def end(self) -> None:
        if self._tty and not self._quiet:
            sys.stderr.write("\n")


async def _follow(
    stub: s.Stub,
    watch: Any,
    plan_id: str,
    args: argparse.Namespace,
) -> tuple[int, bool, bool]:
    """Read the plan's events until it ends: (final wire state, simulated seen, interrupted)."""
    progress = _Progress(args.output == "json")
    simulated = False
    try:
        async for reply in watch:
            event = reply.event
            if event.plan_id != plan_id:
                continue
            simulated = simulated or event.simulated
            label = event.message + (" (simulated)" if event.simulated else "")
            progress.show(reply.plan_progress_fraction, label)
            if reply.plan_state in _FINAL:
                return reply.plan_state, simulated, False
    except asyncio.CancelledError:  # Ctrl-C: the stream is gone with the task; cancel, then poll
        progress.show(0.0, f"cancelling {plan_id} ...")
        request = cluster_pb2.CancelPlanRequest(plan_id=plan_id)
        await stub.CancelPlan(request, timeout=args.timeout)
        return await _poll_until_final(stub, plan_id, args), simulated, True
    finally:
        progress.end()
    raise s.CommandError(f"the event stream ended before plan {plan_id} did", s.EXIT_ERROR)


async def _poll_until_final(stub: s.Stub, plan_id: str, args: argparse.Namespace) -> int:
    """The plan's final wire state, read from ListPlans (a second Ctrl-C stops waiting)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FOLLOW_AFTER_CANCEL_S
    while loop.time() < deadline:
        reply = await stub.ListPlans(cluster_pb2.ListPlansRequest(limit=50), timeout=args.timeout)
        for plan in reply.plans:
            if plan.plan_id == plan_id and plan.state in _FINAL:
                return int(plan.state)
        await asyncio.sleep(0.3)
    return common_pb2.PLAN_STATE_CANCELLED


async def _start_and_follow(
    stub: s.Stub, args: argparse.Namespace, start: Any, describe: str
) -> int:
    """Open the event stream, start the plan with `start()`, follow it to its end."""
    kinds = [common_pb2.EVENT_KIND_PLAN_CHANGED]
    watch = stub.WatchEvents(cluster_pb2.WatchEventsRequest(kinds=kinds))
    try:
        await watch.initial_metadata()
        plan: common_pb2.Plan = await start()
        simulated = any(a.simulated for a in plan.actions)
        if args.output != "json":
            print(f"{describe} {plan.plan_id}: {plan.summary}", file=sys.stderr)
        if args.no_wait:
            _report(args, plan.plan_id, state_name(plan.state), simulated, plan)
            return s.EXIT_OK
        final, seen, interrupted = await _follow(stub, watch, plan.plan_id, args)
        _report(args, plan.plan_id, state_name(final), simulated or seen, plan)
        if interrupted:
            return s.EXIT_INTERRUPTED
        return s.EXIT_OK if final == common_pb2.PLAN_STATE_SUCCEEDED else s.EXIT_ERROR
    finally:
        watch.cancel()


def _report(
    args: argparse.Namespace, plan_id: str, state: str, simulated: bool, plan: common_pb2.Plan
) -> None:
    if args.output == "json":
        s.print_json(
            {
                "plan_id": plan_id,
                "state": state,
                "simulated": simulated,
                "plan": MessageToDict(plan, preserving_proto_field_name=True),
            }
        )
    else:
        print(f"plan {plan_id} {state}" + (" (simulated migrations)" if simulated else ""))


async def apply_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    plan_id = args.plan_id
    if not plan_id:
        request = cluster_pb2.PlanReconfigurationRequest()
        reply = await stub.PlanReconfiguration(request, timeout=args.timeout + 30)
        if not reply.plan.actions:
            print(f"nothing to apply: {reply.plan.summary}")
            return s.EXIT_OK
        plan_id = reply.plan.plan_id

    async def start() -> common_pb2.Plan:
        request = cluster_pb2.ApplyPlanRequest(plan_id=plan_id)
        return (await stub.ApplyPlan(request, timeout=args.timeout)).plan

    return await _start_and_follow(stub, args, start, "applying")


async def migrate_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    vm_uuid = await resolve_vm(stub, args.vm, args.timeout)

    async def start() -> common_pb2.Plan:
        request = cluster_pb2.MigrateVmRequest(
            vm_uuid=vm_uuid, destination_node_id=args.node or "", live=True
        )
        return (await stub.MigrateVm(request, timeout=args.timeout + 30)).plan

    return await _start_and_follow(stub, args, start, "migrating")


async def approve_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    request = cluster_pb2.ApprovePlanRequest(plan_id=args.plan_id)
    reply = await stub.ApprovePlan(request, timeout=args.timeout)
    return _show_plan(args, reply.plan, "approved; follow it with: vmgridctl events --follow")


async def reject_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    request = cluster_pb2.RejectPlanRequest(plan_id=args.plan_id, reason=args.reason or "")
    reply = await stub.RejectPlan(request, timeout=args.timeout)
    return _show_plan(args, reply.plan, "rejected")


async def cancel_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    request = cluster_pb2.CancelPlanRequest(plan_id=args.plan_id)
    reply = await stub.CancelPlan(request, timeout=args.timeout)
    return _show_plan(args, reply.plan, "cancel requested")


def _show_plan(args: argparse.Namespace, plan: common_pb2.Plan, note: str) -> int:
    if args.output == "json":
        s.print_json(plan)
    else:
        print(f"plan {plan.plan_id} {note} ({state_name(plan.state)}): {plan.summary}")
    return s.EXIT_OK
