"""Who may do what, against real mTLS servers on loopback with certificates from vmgrid's own
code: every role against every RPC of the cluster manager and of the coordinator, hellos
that claim another identity, a certificate without an identity and a foreign CA.

The expected roles are written here from the rule (reads: list/get/watch/check; writes: the
rest) over the methods the proto files declare, not read from the servers' tables, so a table
that drifts from the rule, or a new RPC, fails this test.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from tls_servers import (
    CLUSTER_SERVICE,
    COORDINATOR_SERVICE,
    DENIED,
    GRID_LINK,
    HOLDERS,
    NODE_LINK,
    STANDARD,
    Pair,
    Servers,
    call,
    cluster_hello,
    node_hello,
    run,
    write_cert_without_identity,
)
from vmgrid.agents.identity import Identity, Role
from vmgrid.agents.tls import TlsFiles, channel_credentials, server_role_options
from vmgrid.coordinator.certs import init_certs, issue_cert
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc


def is_read(method: MethodDescriptor) -> bool:
    return method.name.startswith(("List", "Get", "Watch", "Check", "Explain"))


def cluster_roles(service: ServiceDescriptor, method: MethodDescriptor) -> set[Role]:
    if service is NODE_LINK:
        return {Role.NODE}
    if service is CLUSTER_SERVICE:
        if method.name == "ForgetNode":  # removes records: an operator's own certificate only
            return {Role.OPERATOR}
        readers = {Role.READONLY} if is_read(method) else set()
        return {Role.OPERATOR, Role.COORDINATOR} | readers
    return set(Role)


def coordinator_roles(service: ServiceDescriptor, method: MethodDescriptor) -> set[Role]:
    if service is GRID_LINK:
        return {Role.CLUSTER}
    if service is COORDINATOR_SERVICE:
        return {Role.OPERATOR} | ({Role.READONLY} if is_read(method) else set())
    return set(Role)


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
            await asyncio.gather(*(channel.channel_ready() for channel in channels.values()))
            # Streams let in stay open until the deadline, which is long enough that a refusal
            # on a loaded machine still arrives before it; all calls run at once.
            codes = await asyncio.gather(
                *(call(channels[(pair.server, pair.role)], pair, 10.0) for pair in pairs)
            )
            for channel in channels.values():
                await channel.close()
        return {str(pair): code for pair, code in zip(pairs, codes, strict=True)}

    return dict(run(scenario()))


ANSWERED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.DEADLINE_EXCEEDED,  # a stream let in, still open
    grpc.StatusCode.INVALID_ARGUMENT,  # an empty request, refused by the service itself
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNIMPLEMENTED,  # a bare manager without its operator API
}
"""Statuses of a call the service itself answered (so the role check let it through)."""


@pytest.mark.parametrize("pair", every_pair(), ids=str)
def test_every_role_against_every_rpc(pair: Pair, outcomes: dict[str, Any]) -> None:
    code = outcomes[str(pair)]
    if pair.allowed:
        assert code in ANSWERED, f"{pair.role.value} not answered on {pair.path} ({code})"
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
