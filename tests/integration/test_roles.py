"""Who may do what, against real mTLS servers on loopback with certificates from vmgrid's own
code: every role against every RPC of the cluster manager and of the coordinator, hellos
that claim another identity, a certificate without an identity and a foreign CA.

The expected roles are written here from the rule (reads: list/get/watch/check; writes: the
rest) over the methods the proto files declare, not read from the servers' tables, so a table
that drifts from the rule, or a new RPC, fails this test.
"""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
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
from vmgrid.agents.cluster.link import codec as node_codec
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.identity import Identity, Role
from vmgrid.agents.tls import TlsFiles, channel_credentials, server_role_options
from vmgrid.coordinator.certs import init_certs, issue_cert, load_ca
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.server import CoordinatorServer
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, coordinator_pb2, grid_pb2, node_pb2

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


def is_read(method: MethodDescriptor) -> bool:
    return method.name.startswith(("List", "Get", "Watch", "Check"))


def cluster_roles(service: ServiceDescriptor, method: MethodDescriptor) -> set[Role]:
    if service is NODE_LINK:
        return {Role.NODE}
    if service is CLUSTER_SERVICE:
        readers = {Role.READONLY} if is_read(method) else set()
        return {Role.OPERATOR, Role.COORDINATOR} | readers
    return set(Role)


def coordinator_roles(service: ServiceDescriptor, method: MethodDescriptor) -> set[Role]:
    if service is GRID_LINK:
        return {Role.CLUSTER}
    if service is COORDINATOR_SERVICE:
        return {Role.OPERATOR} | ({Role.READONLY} if is_read(method) else set())
    return set(Role)


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


def every_pair() -> list[Pair]:
    pairs = []
    for server, services, rule in (
        ("cluster", (NODE_LINK, CLUSTER_SERVICE, *STANDARD), cluster_roles),
        ("coordinator", (GRID_LINK, COORDINATOR_SERVICE, *STANDARD), coordinator_roles),
    ):
        for service in services:
            for method in service.methods:
                allowed = rule(service, method)
                pairs += [Pair(server, service, method, r, r in allowed) for r in Role]
    return pairs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("roles")
    dirs = {"good": base / "certs", "foreign": base / "foreign"}
    init_certs(dirs["good"])
    for role, name in HOLDERS.items():
        issue_cert(dirs["good"], Identity(role, name))
    issue_cert(dirs["good"], Identity(Role.NODE, "n2"))
    issue_cert(dirs["good"], Identity(Role.CLUSTER, "c2"))
    init_certs(dirs["foreign"])
    issue_cert(dirs["foreign"], Identity(Role.OPERATOR, "vmgridctl"))
    # Trusts the project CA, presents a certificate another CA signed.
    (dirs["foreign"] / "ca.crt").write_bytes((dirs["good"] / "ca.crt").read_bytes())
    write_cert_without_identity(base / "certs-ca", dirs["good"] / "anonymous")
    return dirs


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
        cluster = TlsFiles.from_dir(certs, "cluster")
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


async def call(channel: grpc.aio.Channel, pair: Pair) -> grpc.StatusCode:
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
            await channel.unary_unary(pair.path, **options)(request, timeout=5)
        elif kind == (False, True):
            stream = channel.unary_stream(pair.path, **options)(request, timeout=1.5)
            await stream.read()
        else:
            duplex = channel.stream_stream(pair.path, **options)(iter([request]), timeout=1.5)
            await duplex.read()
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def outcomes(certs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The status of every (role, RPC) pair, called concurrently, one channel per holder."""
    pairs = every_pair()

    async def scenario() -> dict[str, Any]:
        async with Servers(certs["good"], tmp_path_factory.mktemp("grid")) as servers:
            channels = {
                (server, role): servers.channel(server, name)
                for server in ("cluster", "coordinator")
                for role, name in HOLDERS.items()
            }
            codes = await asyncio.gather(
                *(call(channels[(pair.server, pair.role)], pair) for pair in pairs)
            )
            for channel in channels.values():
                await channel.close()
        return {str(pair): code for pair, code in zip(pairs, codes, strict=True)}

    return dict(run(scenario()))


@pytest.mark.parametrize("pair", every_pair(), ids=str)
def test_every_role_against_every_rpc(pair: Pair, outcomes: dict[str, Any]) -> None:
    code = outcomes[str(pair)]
    if pair.allowed:
        assert code is not DENIED, f"{pair.role.value} refused on {pair.path}"
    else:
        assert code is DENIED, f"{pair.role.value} let into {pair.path} ({code})"


def test_the_rule_covers_reads_and_writes_of_both_operator_services() -> None:
    """Guards the table-driven test itself: both kinds occur on both servers."""
    pairs = every_pair()
    readonly = [p for p in pairs if p.role is Role.READONLY and p.service is not NODE_LINK]
    assert {p.allowed for p in readonly if p.service is CLUSTER_SERVICE} == {True, False}
    assert {p.allowed for p in readonly if p.service is COORDINATOR_SERVICE} == {True, False}
    assert len(pairs) == 5 * sum(
        len(s.methods)
        for s in (NODE_LINK, CLUSTER_SERVICE, GRID_LINK, COORDINATOR_SERVICE, *STANDARD, *STANDARD)
    )


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


def test_a_node_may_only_say_hello_as_itself(
    certs: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with Servers(certs["good"], tmp_path) as servers:
            async with servers.channel("cluster", "n1") as channel:
                assert await node_hello(channel, "n2") == ("", DENIED)
                assert await node_hello(channel, "n1") == ("hello_ack", grpc.StatusCode.OK)
            async with servers.channel("cluster", "viewer") as channel:
                stub = cluster_pb2_grpc.ClusterServiceStub(channel)
                nodes = (await stub.ListNodes(cluster_pb2.ListNodesRequest())).nodes
            assert [node.node_id for node in nodes] == ["n1"]
            async with servers.channel("cluster", "c1") as channel:
                assert await node_hello(channel, "c1") == ("", DENIED)

    run(scenario())
    assert "certificate vmgrid://node/n1 said hello as 'n2'; refused" in caplog.text


def test_a_cluster_manager_may_only_say_hello_for_its_own_cluster(
    certs: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with Servers(certs["good"], tmp_path) as servers:
            async with servers.channel("coordinator", "c1") as channel:
                assert await cluster_hello(channel, "c2") == ("", DENIED)
                assert await cluster_hello(channel, "c1") == ("hello_ack", grpc.StatusCode.OK)
            assert servers.coordinator.registry.find("c2") is None
            async with servers.channel("coordinator", "n1") as channel:
                assert await cluster_hello(channel, "n1") == ("", DENIED)
            assert servers.coordinator.registry.find("n1") is None

    run(scenario())
    assert "certificate vmgrid://cluster/c1 said hello as 'c2'; refused" in caplog.text


@pytest.mark.parametrize("server", ["cluster", "coordinator"])
def test_a_certificate_without_an_identity_or_from_a_foreign_ca_is_refused(
    server: str, certs: dict[str, Path], tmp_path: Path
) -> None:
    service = CLUSTER_SERVICE if server == "cluster" else COORDINATOR_SERVICE
    listing = next(meth for meth in service.methods if meth.name.startswith("List"))
    pair = Pair(server, service, listing, Role.OPERATOR, True)

    async def scenario() -> None:
        async with Servers(certs["good"], tmp_path) as servers:
            async with servers.channel(server, "vmgridctl") as channel:
                assert await call(channel, pair) is grpc.StatusCode.OK
            async with servers.channel(server, "anonymous") as channel:
                assert await call(channel, pair) is DENIED
            foreign = servers.channel(server, "vmgridctl", certs["foreign"])
            async with foreign as channel:
                assert await call(channel, pair) is grpc.StatusCode.UNAVAILABLE

    run(scenario())


@pytest.mark.parametrize(
    ("server", "expected_role", "status"),
    [
        ("cluster", Role.CLUSTER, grpc.StatusCode.OK),
        ("coordinator", Role.CLUSTER, grpc.StatusCode.UNAVAILABLE),
        ("coordinator", Role.COORDINATOR, grpc.StatusCode.OK),
        ("cluster", Role.COORDINATOR, grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_clients_that_require_a_server_role_refuse_any_other(
    server: str,
    expected_role: Role,
    status: grpc.StatusCode,
    certs: dict[str, Path],
    tmp_path: Path,
) -> None:
    """The channel options the agent, the uplink and the dashboard use: the handshake fails
    unless the server's certificate has the role the client asked for."""
    health = STANDARD[0].methods_by_name["Check"]
    pair = Pair(server, STANDARD[0], health, Role.OPERATOR, True)

    async def scenario() -> None:
        async with Servers(certs["good"], tmp_path) as servers:
            address = (
                servers.cluster.address if server == "cluster" else servers.coordinator.address
            )
            files = TlsFiles.from_dir(certs["good"], "vmgridctl")
            options = server_role_options(expected_role)
            async with grpc.aio.secure_channel(
                address, channel_credentials(files), options
            ) as chan:
                assert await call(chan, pair) is status

    run(scenario())
