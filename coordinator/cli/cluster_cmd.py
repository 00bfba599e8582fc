"""`vmgridctl nodes` and `vmgridctl vms`: query a cluster manager's ClusterService."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
from google.protobuf.json_format import MessageToDict
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.tls import TlsFiles, channel_credentials
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, common_pb2

_NODE_STATUS = {1: "connected", 2: "lost"}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", default="127.0.0.1:7443", metavar="HOST:PORT")
    parser.add_argument("--output", choices=("table", "json"), default="table")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--insecure", action="store_true", help="plaintext (test managers)")
    group.add_argument("--certs", metavar="DIR", help="certs dir from 'vmgridctl certs init'")
    parser.add_argument("--cert-name", default="vmgridctl", help="client cert name in --certs")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")


def add_nodes_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("nodes", help="list the nodes of a cluster")
    _common(parser)
    parser.set_defaults(handler=lambda a: _run(a, _nodes))


def add_vms_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("vms", help="list the VMs of a cluster")
    _common(parser)
    parser.add_argument("--node", default="", help="only VMs on this node")
    parser.add_argument("--name-prefix", default="", help="only VMs whose name starts so")
    parser.set_defaults(handler=lambda a: _run(a, _vms))


def _channel(args: argparse.Namespace) -> grpc.aio.Channel:
    if args.insecure:
        return grpc.aio.insecure_channel(args.cluster)
    if not args.certs:
        raise ConfigError("give --certs DIR for mTLS, or --insecure for a plaintext manager")
    return grpc.aio.secure_channel(
        args.cluster, channel_credentials(TlsFiles.from_dir(args.certs, args.cert_name))
    )


Query = Callable[[cluster_pb2_grpc.ClusterServiceStub, argparse.Namespace], Awaitable[int]]


def _run(args: argparse.Namespace, query: Query) -> int:
    async def go() -> int:
        async with _channel(args) as channel:
            return await query(cluster_pb2_grpc.ClusterServiceStub(channel), args)

    try:
        return asyncio.run(go())
    except ConfigError as exc:
        print(f"vmgridctl {args.command}: {exc}", file=sys.stderr)
        return 2
    except grpc.aio.AioRpcError as exc:
        print(
            f"vmgridctl {args.command}: {args.cluster}: {exc.code().name}: {exc.details()}",
            file=sys.stderr,
        )
        return 1


def _print_table(headers: list[str], rows: list[list[Any]]) -> None:
    widths = [max(len(str(v)) for v in col) for col in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f}"


async def _nodes(stub: cluster_pb2_grpc.ClusterServiceStub, args: argparse.Namespace) -> int:
    reply = await stub.ListNodes(cluster_pb2.ListNodesRequest(), timeout=args.timeout)
    if args.output == "json":
        print(json.dumps(MessageToDict(reply), indent=2))
        return 0
    rows = [
        [
            n.node_id,
            _NODE_STATUS.get(n.status, "?"),
            n.vm_count,
            f"{n.usage.cpu_used_millicores}/{n.capacity.cpu_millicores}",
            f"{_gib(n.usage.memory_used_bytes)}/{_gib(n.capacity.memory_bytes)}",
            "yes" if n.simulated else "no",
            n.hostname,
        ]
        for n in reply.nodes
    ]
    _print_table(["NODE", "STATUS", "VMS", "CPU_MILLICORES", "MEM_GIB", "SIMULATED", "HOST"], rows)
    return 0


async def _vms(stub: cluster_pb2_grpc.ClusterServiceStub, args: argparse.Namespace) -> int:
    request = cluster_pb2.ListVmsRequest(node_id=args.node, name_prefix=args.name_prefix)
    reply = await stub.ListVms(request, timeout=args.timeout)
    if args.output == "json":
        print(json.dumps(MessageToDict(reply), indent=2))
        return 0
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
    _print_table(headers, rows)
    return 0
