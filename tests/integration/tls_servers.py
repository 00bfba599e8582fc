"""Real mTLS servers on loopback for the role tests: a cluster manager and a coordinator,
certificates made by vmgrid's own code, and calls of any RPC with an empty request."""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from vmgrid.agents import grid_codec
from vmgrid.agents import grid_model as gm
from vmgrid.agents import model as m
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.common import node_codec
from vmgrid.agents.identity import Role
from vmgrid.agents.tls import TlsFiles, channel_credentials
from vmgrid.coordinator.certs import load_ca
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.server import CoordinatorServer
from vmgrid.v1 import cluster_pb2, coordinator_pb2, grid_pb2, node_pb2

DENIED = grpc.StatusCode.PERMISSION_DENIED
HOLDERS = {
    Role.NODE: "n1",
    Role.CLUSTER: "c1",
    Role.COORDINATOR: "coordinator",
    Role.OPERATOR: "vmgridctl",
    Role.READONLY: "viewer",
}
STANDARD = (
    health_pb2.DESCRIPTOR.services_by_name["Health"],
    reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"],
)
CLUSTER_SERVICE = cluster_pb2.DESCRIPTOR.services_by_name["ClusterService"]
NODE_LINK = node_pb2.DESCRIPTOR.services_by_name["NodeLinkService"]
COORDINATOR_SERVICE = coordinator_pb2.DESCRIPTOR.services_by_name["CoordinatorService"]
GRID_LINK = grid_pb2.DESCRIPTOR.services_by_name["GridLinkService"]


@dataclass(frozen=True)
class Pair:
    server: str
    service: ServiceDescriptor
    method: MethodDescriptor
    role: Role
    allowed: bool

    @property
    def path(self) -> str:
        return f"/{self.service.full_name}/{self.method.name}"

    def __str__(self) -> str:
        verdict = "allowed" if self.allowed else "denied"
        return f"{self.role.value}->{self.service.name}.{self.method.name}:{verdict}"


def write_cert_without_identity(ca_dir: Path, stem: Path) -> None:
    """A certificate the project CA signed the way it did before identities (no URI SAN)."""
    ca = load_ca(ca_dir)
    assert ca is not None
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "anonymous")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca[1], hashes.SHA256())
    )
    stem.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    stem.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


class Servers:
    """A TLS cluster manager and a TLS coordinator, on one event loop."""

    def __init__(self, certs: Path, tmp: Path) -> None:
        cluster = TlsFiles.from_dir(certs, "cluster-1")
        self.cluster = ClusterServer(
            ClusterConfig(
                listen="127.0.0.1:0",
                tls_ca_file=cluster.ca_file,
                tls_cert_file=cluster.cert_file,
                tls_key_file=cluster.key_file,
            ).validate()
        )
        grid = TlsFiles.from_dir(certs, "coordinator")
        self.coordinator = CoordinatorServer(
            CoordinatorConfig(
                listen="127.0.0.1:0",
                state_db=str(tmp / "grid.sqlite"),
                tls_ca_file=grid.ca_file,
                tls_cert_file=grid.cert_file,
                tls_key_file=grid.key_file,
            ).validate()
        )
        self.certs = certs

    async def __aenter__(self) -> Servers:
        await self.cluster.start()
        await self.coordinator.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cluster.stop(0)
        await self.coordinator.stop(0)

    def channel(self, server: str, name: str, certs: Path | None = None) -> grpc.aio.Channel:
        address = self.cluster.address if server == "cluster" else self.coordinator.address
        files = TlsFiles.from_dir(certs or self.certs, name)
        return grpc.aio.secure_channel(address, channel_credentials(files))


async def call(
    channel: grpc.aio.Channel, pair: Pair, stream_timeout_s: float = 1.5
) -> grpc.StatusCode:
    """The status of one call with an empty request (OK or DEADLINE_EXCEEDED for a stream
    that was let in and stays open)."""
    request = message_factory.GetMessageClass(pair.method.input_type)()
    reply_type = message_factory.GetMessageClass(pair.method.output_type)
    kind = (pair.method.client_streaming, pair.method.server_streaming)
    options: dict[str, Any] = {
        "request_serializer": type(request).SerializeToString,
        "response_deserializer": reply_type.FromString,
    }
    try:
        if kind == (False, False):
            await channel.unary_unary(pair.path, **options)(request, timeout=10)
        elif kind == (False, True):
            stream = channel.unary_stream(pair.path, **options)(request, timeout=stream_timeout_s)
            await stream.read()
        else:
            duplex = channel.stream_stream(pair.path, **options)(
                iter([request]), timeout=stream_timeout_s
            )
            await duplex.read()
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def node_hello(channel: grpc.aio.Channel, node_id: str) -> tuple[str, grpc.StatusCode]:
    identity = m.NodeIdentity(node_id, "host", "test:///default", simulated=True)
    hello = m.NodeHello(identity, m.NodeCapacity(4000, 8 * 2**30, 10**9))
    request = node_pb2.NodeLinkServiceConnectRequest(hello=node_codec.encode_hello(hello))
    return await first_answer(channel, f"/{NODE_LINK.full_name}/Connect", request, node_pb2)


async def cluster_hello(channel: grpc.aio.Channel, cluster_id: str) -> tuple[str, grpc.StatusCode]:
    hello = gm.ClusterHello(cluster_id, gm.Capacity(4000, 8 * 2**30, 10**9), endpoint="e:1")
    request = grid_codec.hello_request(hello)
    return await first_answer(channel, f"/{GRID_LINK.full_name}/Connect", request, grid_pb2)


async def first_answer(
    channel: grpc.aio.Channel, path: str, request: Any, module: Any
) -> tuple[str, grpc.StatusCode]:
    """The first answer's payload kind (or '') and the stream's status once it ends."""
    reply_type = type(request).__name__.replace("Request", "Response")
    stream = channel.stream_stream(
        path,
        request_serializer=type(request).SerializeToString,
        response_deserializer=getattr(module, reply_type).FromString,
    )(iter([request]))
    try:
        reply = await asyncio.wait_for(stream.read(), 5)
    except grpc.aio.AioRpcError as exc:
        return "", exc.code()
    stream.cancel()
    assert reply is not grpc.aio.EOF
    return reply.WhichOneof("payload"), grpc.StatusCode.OK
