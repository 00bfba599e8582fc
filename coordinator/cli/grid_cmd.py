"""`vmgridctl clusters | topology | status | plan`: query the grid coordinator.

The coordinator's address comes from ``--coordinator``, else ``$VMGRID_COORDINATOR``, else
127.0.0.1:7600; certificates from ``--certs``, else ``$VMGRID_CERTS`` (or ``--insecure``).
Exit codes: 0 ok, 1 other error, 2 bad usage or value, 3 coordinator unreachable,
4 not found, 5 not possible in the current state (e.g. no topology configured).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from vmgrid.agents.common.link_stream import LEADER_METADATA
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.identity import Role
from vmgrid.agents.tls import TlsFiles, channel_credentials, server_role_options
from vmgrid.coordinator.cli import settings
from vmgrid.v1 import coordinator_pb2, coordinator_pb2_grpc, grid_pb2

DEFAULT_COORDINATOR = "127.0.0.1:7600"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_FOUND, EXIT_STATE = 0, 1, 2, 3, 4, 5
_EXIT_BY_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_USAGE,
    grpc.StatusCode.UNAVAILABLE: EXIT_UNREACHABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: EXIT_UNREACHABLE,
    grpc.StatusCode.NOT_FOUND: EXIT_NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION: EXIT_STATE,
}

Query = Callable[[coordinator_pb2_grpc.CoordinatorServiceStub, argparse.Namespace], Awaitable[int]]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--coordinator",
        metavar="HOST:PORT[,...]",
        help="coordinator address; replicated: every replica's, separated by commas (default "
        f"$VMGRID_COORDINATOR or {DEFAULT_COORDINATOR})",
    )
    parser.add_argument(
        "--output", choices=("table", "json"), default="table", help="(default table)"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--insecure", action="store_true", help="plaintext (test coordinators)")
    group.add_argument(
        "--certs", metavar="DIR", help="certs dir from 'vmgridctl certs init' ($VMGRID_CERTS)"
    )
    parser.add_argument(
        "--cert-name", default="vmgridctl", help="client cert name in --certs (default vmgridctl)"
    )
    parser.add_argument(
        "--timeout", type=settings.positive_seconds, default=10.0, help="RPC seconds (default 10)"
    )


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the grid sub-commands."""
    for name, help_text, query in (
        ("clusters", "list the clusters registered with the coordinator", _clusters),
        ("topology", "show the grid topology with link utilisation", _topology),
        ("status", "one-screen overview of the grid", _status),
        ("plan", "dry-run an inter-cluster plan and show each move's reason", _plan),
    ):
        parser = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"example:\n  vmgridctl {name} --coordinator 10.0.0.9:7600 --certs certs\n"
            + settings.EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _common(parser)
        if name == "clusters":
            parser.usage = "vmgridctl clusters [forget CLUSTER] [options]"
            parser.add_argument("action", nargs="?", choices=("forget",), help=argparse.SUPPRESS)
            parser.add_argument("cluster_id", nargs="?", metavar="CLUSTER", help=argparse.SUPPRESS)
            parser.epilog = (
                "examples:\n  vmgridctl clusters --coordinator 10.0.0.9:7600 --certs certs\n"
                "  vmgridctl clusters forget c9   # a disconnected cluster with no VMs: removed "
                "from the\n                                 # registry; its pending grid moves "
                "fail\n" + settings.EXIT_CODES_HELP
            )
        parser.set_defaults(handler=lambda a, q=query: run(a, q))


def addresses(args: argparse.Namespace) -> list[str]:
    """The coordinator addresses (every replica's, separated by commas), each checked to be
    HOST:PORT."""
    value = args.coordinator or os.environ.get("VMGRID_COORDINATOR") or DEFAULT_COORDINATOR
    found = [a.strip() for a in value.split(",") if a.strip()]
    for one in found or [value]:
        host, sep, port = one.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ConfigError(
                f"--coordinator {one!r} is not HOST:PORT (e.g. {DEFAULT_COORDINATOR})"
            )
    return found


def address(args: argparse.Namespace) -> str:
    """The first coordinator address, checked to be HOST:PORT."""
    return addresses(args)[0]


_NOT_ANSWERED = ("is a standby", "is not leading", "has just been elected", "failed to connect")
"""What an UNAVAILABLE says when the replica did nothing with the call: the next is tried."""


def next_replica(exc: grpc.aio.AioRpcError, tried: list[str], targets: list[str]) -> str | None:
    """Where to send a call `tried[-1]` did not take: the leader a standby names, else the
    next replica not tried; None when the call may have been taken, or none is left."""
    if exc.code() is not grpc.StatusCode.UNAVAILABLE:
        return None
    leader = next((str(v) for k, v in exc.trailing_metadata() or () if k == LEADER_METADATA), "")
    if leader and leader not in tried[-2:]:
        return leader
    if not any(text in (exc.details() or "") for text in _NOT_ANSWERED):
        return None
    return next((t for t in targets if t not in tried), None)


def _channel(args: argparse.Namespace, target: str) -> grpc.aio.Channel:
    if args.insecure:
        return grpc.aio.insecure_channel(target)
    certs = args.certs or os.environ.get("VMGRID_CERTS")
    if not certs:
        raise ConfigError(
            "give --certs DIR (or $VMGRID_CERTS) for mTLS, or --insecure for a plaintext "
            "coordinator"
        )
    files = TlsFiles.from_dir(certs, args.cert_name)
    credentials = channel_credentials(files)
    settings.verify_server(target, files, Role.COORDINATOR)
    return grpc.aio.secure_channel(target, credentials, server_role_options(Role.COORDINATOR))


def run(args: argparse.Namespace, query: Query) -> int:
    """Run one query; print one line naming the problem on failure and map it to an exit code."""

    async def go(target: str) -> int:
        async with _channel(args, target) as channel:
            return await query(coordinator_pb2_grpc.CoordinatorServiceStub(channel), args)

    target = ""
    try:
        targets = addresses(args)
        tried = [targets[0]]
        while True:
            target = tried[-1]
            try:
                return asyncio.run(go(target))
            except grpc.aio.AioRpcError as exc:
                following = next_replica(exc, tried, targets) if len(tried) < 8 else None
                if following is None:
                    raise
                tried.append(following)
    except ConfigError as exc:
        print(f"vmgridctl {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except settings.CommandError as exc:
        print(f"vmgridctl {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
        detail = exc.details() or code.name
        if code is grpc.StatusCode.UNAVAILABLE:
            detail = f"coordinator unreachable ({detail})"
        print(f"vmgridctl {args.command}: {target}: {code.name}: {detail}", file=sys.stderr)
        return _EXIT_BY_STATUS.get(code, EXIT_ERROR)


def _print_json(message: Message) -> None:
    print(json.dumps(MessageToDict(message, preserving_proto_field_name=True), indent=2))


def _print_table(headers: list[str], rows: list[list[Any]]) -> None:
    widths = [max(len(str(v)) for v in col) for col in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _health(info: coordinator_pb2.ClusterInfo) -> str:
    if not info.HasField("health"):
        return "-"
    name = grid_pb2.ClusterHealthState.Name(info.health.state)
    return name.removeprefix("CLUSTER_HEALTH_STATE_").lower()


def _used(used: int, total: int, scale: float, digits: int = 0) -> str:
    return f"{used / scale:.{digits}f}/{total / scale:.{digits}f}"


def _cluster_rows(clusters: list[coordinator_pb2.ClusterInfo]) -> list[list[Any]]:
    return [
        [
            c.cluster_id,
            "connected" if c.connected else ("lost" if c.last_seen.seconds else "unseen"),
            _health(c),
            c.node_count,
            c.vm_count,
            _used(c.usage.cpu_millicores, c.capacity.cpu_millicores, 1),
            _used(c.usage.memory_bytes, c.capacity.memory_bytes, 2**30, 1),
            _used(c.usage.network_bps, c.capacity.network_bps, 1e6),
            c.last_seen.ToDatetime().strftime("%Y-%m-%d %H:%M:%S") if c.last_seen.seconds else "-",
            c.endpoint or "-",
        ]
        for c in clusters
    ]


_CLUSTER_HEADERS = [
    "CLUSTER", "STATE", "HEALTH", "NODES", "VMS", "CPU_MILLICORES", "MEM_GIB", "NET_MBPS",
    "LAST_SEEN_UTC", "ENDPOINT",
]  # fmt: skip


async def _clusters(
    stub: coordinator_pb2_grpc.CoordinatorServiceStub, args: argparse.Namespace
) -> int:
    if args.action == "forget":
        return await _forget_cluster(stub, args)
    reply = await stub.ListClusters(coordinator_pb2.ListClustersRequest(), timeout=args.timeout)
    if args.output == "json":
        _print_json(reply)
    else:
        _print_table(_CLUSTER_HEADERS, _cluster_rows(list(reply.clusters)))
    return EXIT_OK


async def _forget_cluster(
    stub: coordinator_pb2_grpc.CoordinatorServiceStub, args: argparse.Namespace
) -> int:
    if not args.cluster_id:
        raise ConfigError("forget: give the id of the cluster to forget (see vmgridctl clusters)")
    request = coordinator_pb2.ForgetClusterRequest(cluster_id=args.cluster_id)
    reply = await stub.ForgetCluster(request, timeout=args.timeout)
    if args.output == "json":
        _print_json(reply)
        return EXIT_OK
    moves = ", ".join(reply.failed_move_ids)
    print(
        f"cluster {reply.cluster_id} forgotten" + (f"; grid moves failed: {moves}" if moves else "")
    )
    return EXIT_OK


async def _topology(
    stub: coordinator_pb2_grpc.CoordinatorServiceStub, args: argparse.Namespace
) -> int:
    reply = await stub.GetTopology(coordinator_pb2.GetTopologyRequest(), timeout=args.timeout)
    if args.output == "json":
        _print_json(reply)
        return EXIT_OK
    topology = reply.topology
    _print_table(_CLUSTER_HEADERS, _cluster_rows(list(topology.clusters)))
    print()
    rows = [
        [
            link.cluster_a,
            link.cluster_b,
            link.bandwidth_bps // 1_000_000,
            link.latency_ms,
            f"{100 * link.used_bps / link.bandwidth_bps:.1f}" if link.bandwidth_bps else "-",
        ]
        for link in topology.links
    ]
    _print_table(["END_A", "END_B", "BANDWIDTH_MBPS", "LATENCY_MS", "USED_PCT"], rows)
    return EXIT_OK


async def _status(
    stub: coordinator_pb2_grpc.CoordinatorServiceStub, args: argparse.Namespace
) -> int:
    clusters = (
        await stub.ListClusters(coordinator_pb2.ListClustersRequest(), timeout=args.timeout)
    ).clusters
    in_topology: set[str] | None = None
    try:
        reply = await stub.GetTopology(coordinator_pb2.GetTopologyRequest(), timeout=args.timeout)
        in_topology = {c.cluster_id for c in reply.topology.clusters}
    except grpc.aio.AioRpcError as exc:
        if exc.code() is not grpc.StatusCode.FAILED_PRECONDITION:
            raise
    registered = {c.cluster_id for c in clusters}
    status = {
        "coordinator": address(args),
        "clusters": len(clusters),
        "connected": sum(1 for c in clusters if c.connected),
        "lost": sorted(c.cluster_id for c in clusters if not c.connected),
        "cpu_millicores": _totals(clusters, "cpu_millicores"),
        "memory_bytes": _totals(clusters, "memory_bytes"),
        "network_bps": _totals(clusters, "network_bps"),
        "topology": in_topology is not None,
        "not_in_topology": sorted(registered - in_topology) if in_topology is not None else [],
        "never_seen": sorted(in_topology - registered) if in_topology is not None else [],
    }
    if args.output == "json":
        print(json.dumps(status, indent=2))
    else:
        for key, value in status.items():
            print(f"{key.replace('_', ' ')}: {_shown(value)}")
    return EXIT_OK


def _shown(value: Any) -> str:
    """One status value as text, the way the cluster's `vmgridctl status` shows it."""
    if isinstance(value, list):
        return ", ".join(value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _totals(clusters: Any, field: str) -> dict[str, int]:
    return {
        "used": sum(getattr(c.usage, field) for c in clusters),
        "capacity": sum(getattr(c.capacity, field) for c in clusters),
    }


async def _plan(stub: coordinator_pb2_grpc.CoordinatorServiceStub, args: argparse.Namespace) -> int:
    reply = await stub.PlanGrid(coordinator_pb2.PlanGridRequest(), timeout=args.timeout)
    if args.output == "json":
        _print_json(reply)
        return EXIT_OK
    plan = reply.plan
    rows = [
        [
            mv.vm_uuid,
            mv.source_cluster_id,
            mv.destination_cluster_id,
            ">".join(mv.path_cluster_ids),
            f"{mv.start_ms / 1000:.1f}",
            f"{mv.estimated_duration_ms / 1000:.1f}",
            mv.reason,
        ]
        for mv in plan.moves
    ]
    print(f"plan {plan.plan_id} (dry run, nothing executed)")
    if rows:
        _print_table(["VM", "FROM", "TO", "PATH", "START_S", "EST_S", "REASON"], rows)
    print(plan.summary)
    return EXIT_OK
