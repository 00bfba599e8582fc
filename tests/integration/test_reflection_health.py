"""gRPC reflection and health on `vmgrid-cluster` and `vmgrid-coordinator` processes.

What grpcurl does, done with grpcio-reflection's client: list the services, resolve a method's
types from the server alone (a fresh descriptor pool, nothing from vmgrid.v1), call it with
those dynamic types, and check gRPC health reports SERVING for the server and each service.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

BIN = Path(sys.executable).parent
HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"


@dataclass(frozen=True)
class Served:
    """A server process, its address, the vmgrid services it must offer and one query."""

    name: str
    process: subprocess.Popen[bytes]
    address: str
    services: tuple[str, ...]
    query: str
    """Full name of a parameterless unary method, and the response field it must have."""
    response_field: str


def _start(name: str, argv: list[str], workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    ready = workdir / f"{name}.ready"
    with (workdir / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / name), *argv, "--ready-file", str(ready)], stdout=log, stderr=log
        )
    deadline = time.monotonic() + 30
    while not (ready.exists() and ready.read_text().strip()):
        assert process.poll() is None, (workdir / f"{name}.log").read_text()
        assert time.monotonic() < deadline, f"{name} did not start"
        time.sleep(0.1)
    return process, ready.read_text().strip()


@pytest.fixture(scope="module", params=["vmgrid-cluster", "vmgrid-coordinator"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("reflection")
    common = ["--insecure", "--listen", "127.0.0.1:0"]
    if request.param == "vmgrid-cluster":
        process, address = _start(
            "vmgrid-cluster", [*common, "--state-dir", str(workdir / "state")], workdir
        )
        services = ("vmgrid.v1.ClusterService", "vmgrid.v1.NodeLinkService")
        query, field = "vmgrid.v1.ClusterService.ListNodes", "nodes"
    else:
        process, address = _start(
            "vmgrid-coordinator", [*common, "--state-db", str(workdir / "c.sqlite")], workdir
        )
        services = ("vmgrid.v1.CoordinatorService", "vmgrid.v1.GridLinkService")
        query, field = "vmgrid.v1.CoordinatorService.ListClusters", "clusters"
    try:
        yield Served(request.param, process, address, services, query, field)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_reflection_lists_every_service(served: Served) -> None:
    with grpc.insecure_channel(served.address) as channel:
        listed = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {*served.services, HEALTH, REFLECTION} <= listed  # others may add services


def test_a_method_resolved_by_reflection_alone_can_be_called(served: Served) -> None:
    with grpc.insecure_channel(served.address) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        service_name, method_name = served.query.rsplit(".", 1)
        method = pool.FindServiceByName(service_name).FindMethodByName(method_name)
        request_type = message_factory.GetMessageClass(method.input_type)
        response_type = message_factory.GetMessageClass(method.output_type)
        call = channel.unary_unary(
            f"/{service_name}/{method_name}",
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
        )
        reply = call(request_type(), timeout=10)
    assert served.response_field in reply.DESCRIPTOR.fields_by_name
    assert list(getattr(reply, served.response_field)) == []  # nothing registered yet


def test_health_is_serving_for_the_server_and_each_service(served: Served) -> None:
    with grpc.insecure_channel(served.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", *served.services):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
        with pytest.raises(grpc.RpcError) as err:
            health.Check(health_pb2.HealthCheckRequest(service="vmgrid.v1.Nope"), timeout=10)
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
