"""`vmgridctl status | suspend | resume | snapshot | drain | undrain | events` for one cluster."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections import Counter
from typing import Any

from google.protobuf.json_format import MessageToDict
from vmgrid.coordinator.cli import settings as s
from vmgrid.coordinator.cli.cluster_plan_cmd import resolve_vm, state_name
from vmgrid.v1 import cluster_pb2, common_pb2


def vm_state_name(value: int) -> str:
    return common_pb2.VmState.Name(value).removeprefix("VM_STATE_").lower()


async def status_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    nodes = (await stub.ListNodes(cluster_pb2.ListNodesRequest(), timeout=args.timeout)).nodes
    vms = (await stub.ListVms(cluster_pb2.ListVmsRequest(), timeout=args.timeout)).vms
    plans = (
        await stub.ListPlans(cluster_pb2.ListPlansRequest(limit=5), timeout=args.timeout)
    ).plans
    waiting = [p for p in plans if p.state == common_pb2.PLAN_STATE_AWAITING_APPROVAL]
    running = [p for p in plans if p.state == common_pb2.PLAN_STATE_RUNNING]
    status: dict[str, Any] = {
        "cluster": s.resolve(args).cluster,
        "nodes": len(nodes),
        "connected": sum(1 for n in nodes if n.status == cluster_pb2.NODE_STATUS_CONNECTED),
        "lost": sorted(n.node_id for n in nodes if n.status == cluster_pb2.NODE_STATUS_LOST),
        "powered_off": sorted(
            n.node_id for n in nodes if n.status == cluster_pb2.NODE_STATUS_POWERED_OFF
        ),
        "draining": sorted(n.node_id for n in nodes if n.draining),
        "simulated_nodes": sorted(n.node_id for n in nodes if n.simulated),
        "vms": len(vms),
        "vms_by_state": dict(Counter(vm_state_name(v.usage.state) for v in vms)),
        "cpu_millicores": {
            "used": sum(n.usage.cpu_used_millicores for n in nodes),
            "capacity": sum(n.capacity.cpu_millicores for n in nodes),
        },
        "memory_bytes": {
            "used": sum(n.usage.memory_used_bytes for n in nodes),
            "capacity": sum(n.capacity.memory_bytes for n in nodes),
        },
        "awaiting_approval": [{"plan_id": p.plan_id, "summary": p.summary} for p in waiting],
        "running_plans": [{"plan_id": p.plan_id, "summary": p.summary} for p in running],
    }
    if args.output == "json":
        s.print_json(status)
        return s.EXIT_OK
    for key, value in status.items():
        if isinstance(value, list):
            items = [
                f"{v['plan_id']} ({v['summary']})" if isinstance(v, dict) else v for v in value
            ]
            shown = ", ".join(items) or "-"
        elif isinstance(value, dict):
            shown = ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
        else:
            shown = str(value)
        print(f"{key.replace('_', ' ')}: {shown}")
    return s.EXIT_OK


def _print_result(args: argparse.Namespace, result: Any, text: str) -> int:
    if args.output == "json":
        s.print_json(result)
    else:
        print(text + (" (simulated)" if result.simulated else ""))
    return s.EXIT_OK


async def suspend_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    uuid = await resolve_vm(stub, args.vm, args.timeout)
    reply = await stub.SuspendVm(cluster_pb2.SuspendVmRequest(vm_uuid=uuid), timeout=args.timeout)
    return _print_result(args, reply.result, f"suspended {args.vm}: {reply.result.message}")


async def resume_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    uuid = await resolve_vm(stub, args.vm, args.timeout)
    reply = await stub.ResumeVm(cluster_pb2.ResumeVmRequest(vm_uuid=uuid), timeout=args.timeout)
    return _print_result(args, reply.result, f"resumed {args.vm}: {reply.result.message}")


async def snapshot_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    uuid = await resolve_vm(stub, args.vm, args.timeout)
    action, name, timeout = args.snapshot_action, args.name or "", args.timeout
    if action == "list":
        names = await stub.ListSnapshots(
            cluster_pb2.ListSnapshotsRequest(vm_uuid=uuid), timeout=timeout
        )
        if args.output == "json":
            s.print_json({"vm_uuid": uuid, "snapshots": list(names.snapshot_names)})
        else:
            for snapshot in names.snapshot_names:
                print(snapshot)
        return s.EXIT_OK
    if not name:
        raise s.CommandError(f"snapshot {action} needs a snapshot NAME after the VM", s.EXIT_USAGE)
    if action == "create":
        request = cluster_pb2.CreateSnapshotRequest(
            vm_uuid=uuid, snapshot_name=name, description=args.description or ""
        )
        result = (await stub.CreateSnapshot(request, timeout=timeout)).result
    elif action == "revert":
        revert = cluster_pb2.RevertSnapshotRequest(vm_uuid=uuid, snapshot_name=name)
        result = (await stub.RevertSnapshot(revert, timeout=timeout)).result
    else:
        delete = cluster_pb2.DeleteSnapshotRequest(vm_uuid=uuid, snapshot_name=name)
        result = (await stub.DeleteSnapshot(delete, timeout=timeout)).result
    return _print_result(args, result, f"snapshot {action} {args.vm} {name}: {result.message}")


async def drain_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    if args.command == "drain":
        reply: Any = await stub.DrainNode(
            cluster_pb2.DrainNodeRequest(node_id=args.node), timeout=args.timeout
        )
        note = "draining: its VMs move away (follow with: vmgridctl events --follow)"
    else:
        reply = await stub.UndrainNode(
            cluster_pb2.UndrainNodeRequest(node_id=args.node), timeout=args.timeout
        )
        note = "out of maintenance: VMs drained from it come back"
    if args.output == "json":
        s.print_json(reply)
    else:
        print(f"node {args.node} {note}")
    return s.EXIT_OK


def _event_line(reply: cluster_pb2.WatchEventsResponse) -> str:
    e = reply.event
    kind = common_pb2.EventKind.Name(e.kind).removeprefix("EVENT_KIND_").lower()
    parts = [e.at.ToDatetime().strftime("%H:%M:%S"), kind]
    parts += [x for x in (e.node_id, e.vm_uuid) if x]
    if e.vm_state:
        parts.append(vm_state_name(e.vm_state))
    if e.plan_id and reply.plan_state:
        parts.append(f"[{state_name(reply.plan_state)} {reply.plan_progress_fraction:.0%}]")
    if e.message:
        parts.append(e.message)
    if e.simulated:
        parts.append("(simulated)")
    return " ".join(parts)


async def events_cmd(stub: s.Stub, args: argparse.Namespace) -> int:
    names = {
        n.removeprefix("EVENT_KIND_").lower(): n
        for n, v in common_pb2.EventKind.items()
        if v != common_pb2.EVENT_KIND_UNSPECIFIED
    }
    kinds: list[str] = []
    for name in args.kind or []:
        if name.lower() not in names:
            raise s.CommandError(
                f"--kind {name!r} is not an event kind; accepted: {', '.join(names)}",
                s.EXIT_USAGE,
            )
        kinds.append(names[name.lower()])
    call = stub.WatchEvents(cluster_pb2.WatchEventsRequest(kinds=kinds, node_id=args.node or ""))
    seen = 0

    async def read() -> None:
        nonlocal seen
        async for reply in call:
            line = _json_line(reply) if args.output == "json" else _event_line(reply)
            print(line, flush=True)
            seen += 1
            if args.count and seen >= args.count:
                return

    try:
        if args.follow:
            await read()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(read(), args.duration)
    except asyncio.CancelledError:  # Ctrl-C ends a follow quietly
        return s.EXIT_OK
    finally:
        call.cancel()
    return s.EXIT_OK


def _json_line(reply: cluster_pb2.WatchEventsResponse) -> str:
    return json.dumps(MessageToDict(reply, preserving_proto_field_name=True))
