"""The grid link's codec: grid.proto messages between a cluster manager and the coordinator, both
ways. Every decoder validates what it is given and raises ``MalformedMessage`` naming the dotted
field and what is accepted, so a bad summary never reaches the registry."""

from __future__ import annotations

import re

from google.protobuf.timestamp_pb2 import Timestamp
from vmgrid.agents import grid_model as m
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.grid_traffic_codec import decode_summary_traffic, encode_summary_traffic
from vmgrid.agents.wire_limits import MAX_QUANTITY, check_unix_ns, clamped
from vmgrid.v1 import common_pb2, grid_pb2

_CLUSTER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


HEALTH_FROM_WIRE = {
    grid_pb2.CLUSTER_HEALTH_STATE_UNSPECIFIED: m.HealthState.UNSPECIFIED,
    grid_pb2.CLUSTER_HEALTH_STATE_HEALTHY: m.HealthState.HEALTHY,
    grid_pb2.CLUSTER_HEALTH_STATE_DEGRADED: m.HealthState.DEGRADED,
    grid_pb2.CLUSTER_HEALTH_STATE_OVERLOADED: m.HealthState.OVERLOADED,
}


HEALTH_TO_WIRE = {v: k for k, v in HEALTH_FROM_WIRE.items()}


def check_cluster_id(field: str, value: str) -> str:
    """A cluster name: letters, digits, '.', '_', '-', at most 63 characters."""
    if not _CLUSTER_ID.match(value):
        raise MalformedMessage(
            field,
            f"{value!r} is not a cluster id (1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit)",
        )
    return value


def _non_negative(field: str, value: int) -> int:
    if value < 0:
        raise MalformedMessage(field, f"{value} must be >= 0")
    if value > MAX_QUANTITY:
        raise MalformedMessage(field, f"{value} is above the largest accepted, 2**53")
    return value


def _decode_resources(field: str, wire: common_pb2.Resources, positive: bool) -> m.Capacity:
    for name in ("cpu_millicores", "memory_bytes", "network_bps"):
        value = getattr(wire, name)
        if positive and value <= 0:
            raise MalformedMessage(f"{field}.{name}", f"{value} must be > 0")
        _non_negative(f"{field}.{name}", value)
    return m.Capacity(wire.cpu_millicores, wire.memory_bytes, wire.network_bps)


def encode_resources(value: m.Capacity) -> common_pb2.Resources:
    """Totals are Python ints of any size; the wire carries them clamped to [0, 2**53]."""
    return common_pb2.Resources(
        cpu_millicores=clamped(value.cpu_millicores),
        memory_bytes=clamped(value.memory_bytes),
        network_bps=clamped(value.network_bps),
    )


def decode_hello(wire: grid_pb2.ClusterHello) -> m.ClusterHello:
    """Validate a hello: a well-formed cluster id and a non-negative capacity (a cluster
    whose nodes have not reported yet has none)."""
    return m.ClusterHello(
        cluster_id=check_cluster_id("hello.cluster_id", wire.cluster_id),
        capacity=_decode_resources("hello.capacity", wire.capacity, positive=False),
        node_count=_non_negative("hello.node_count", wire.node_count),
        endpoint=wire.endpoint,
        manager_version=wire.manager_version,
        migration_uri=wire.migration_uri,
    )


def encode_hello(hello: m.ClusterHello) -> grid_pb2.ClusterHello:
    return grid_pb2.ClusterHello(
        cluster_id=hello.cluster_id,
        capacity=encode_resources(hello.capacity),
        node_count=hello.node_count,
        endpoint=hello.endpoint,
        manager_version=hello.manager_version,
        migration_uri=hello.migration_uri,
    )


def _decode_vm(field: str, wire: grid_pb2.VmDemand) -> m.VmDemand:
    if not wire.vm_uuid:
        raise MalformedMessage(f"{field}.vm_uuid", "empty; every movable VM needs its uuid")
    for name in ("cpu_millicores", "memory_bytes", "network_bps"):
        _non_negative(f"{field}.{name}", getattr(wire, name))
    return m.VmDemand(
        wire.vm_uuid, wire.name, wire.node_id, wire.cpu_millicores, wire.memory_bytes,
        wire.network_bps,
    )  # fmt: skip


def _decode_traffic(
    field: str, wire: grid_pb2.InterClusterTraffic, cluster_id: str
) -> m.InterClusterTraffic:
    if not wire.vm_uuid or not wire.peer_vm_uuid:
        raise MalformedMessage(field, "vm_uuid and peer_vm_uuid must both be set")
    peer = check_cluster_id(f"{field}.peer_cluster_id", wire.peer_cluster_id)
    if peer == cluster_id:
        raise MalformedMessage(
            f"{field}.peer_cluster_id", f"{peer!r} is the reporting cluster; inter-cluster only"
        )
    rate = _non_negative(f"{field}.bytes_per_second", wire.bytes_per_second)
    return m.InterClusterTraffic(wire.vm_uuid, wire.peer_vm_uuid, peer, rate)


def decode_summary(wire: grid_pb2.ClusterSummary, cluster_id: str) -> m.ClusterSummary:
    """Validate a summary of ``cluster_id``; the error names the first bad field."""
    if wire.sequence == 0:
        raise MalformedMessage("summary.sequence", "0; sequences start at 1 and grow")
    vms = tuple(_decode_vm(f"summary.movable_vms[{i}]", v) for i, v in enumerate(wire.movable_vms))
    seen: set[str] = set()
    for i, vm in enumerate(vms):
        if vm.vm_uuid in seen:
            raise MalformedMessage(
                f"summary.movable_vms[{i}].vm_uuid", f"{vm.vm_uuid!r} is listed twice"
            )
        seen.add(vm.vm_uuid)
    traffic = tuple(
        _decode_traffic(f"summary.inter_cluster_traffic[{i}]", t, cluster_id)
        for i, t in enumerate(wire.inter_cluster_traffic)
    )
    external, addresses, heavy = decode_summary_traffic(wire)
    health = wire.health
    state = HEALTH_FROM_WIRE.get(health.state)
    if state is None:
        raise MalformedMessage("summary.health.state", f"unknown value {health.state}")
    return m.ClusterSummary(
        sequence=wire.sequence,
        sent_at_unix_ns=check_unix_ns("summary.sent_at", wire.sent_at.seconds, wire.sent_at.nanos),
        capacity=_decode_resources("summary.capacity", wire.capacity, positive=False),
        usage=_decode_resources("summary.usage", wire.usage, positive=False),
        movable_vms=vms,
        inter_cluster_traffic=traffic,
        health=m.ClusterHealth(
            state,
            _non_negative("summary.health.nodes_total", health.nodes_total),
            _non_negative("summary.health.nodes_lost", health.nodes_lost),
            _non_negative("summary.health.nodes_overloaded", health.nodes_overloaded),
            health.message,
        ),
        external_flows=external,
        vm_addresses=addresses,
        heavy_pairs=heavy,
    )


def encode_summary(summary: m.ClusterSummary) -> grid_pb2.ClusterSummary:
    sent_at = Timestamp()
    sent_at.FromNanoseconds(summary.sent_at_unix_ns)
    h = summary.health
    wire = grid_pb2.ClusterSummary(
        sent_at=sent_at,
        sequence=summary.sequence,
        capacity=encode_resources(summary.capacity),
        usage=encode_resources(summary.usage),
        movable_vms=[
            grid_pb2.VmDemand(
                vm_uuid=v.vm_uuid,
                name=v.name,
                node_id=v.node_id,
                cpu_millicores=clamped(v.cpu_millicores),
                memory_bytes=clamped(v.memory_bytes),
                network_bps=clamped(v.network_bps),
            )  # fmt: skip
            for v in summary.movable_vms
        ],
        inter_cluster_traffic=[
            grid_pb2.InterClusterTraffic(
                vm_uuid=t.vm_uuid,
                peer_vm_uuid=t.peer_vm_uuid,
                peer_cluster_id=t.peer_cluster_id,
                bytes_per_second=clamped(t.bytes_per_second),
            )  # fmt: skip
            for t in summary.inter_cluster_traffic
        ],
        health=grid_pb2.ClusterHealth(
            state=HEALTH_TO_WIRE[h.state],
            nodes_total=h.nodes_total,
            nodes_lost=h.nodes_lost,
            nodes_overloaded=h.nodes_overloaded,
            message=h.message,
        ),  # fmt: skip
    )
    encode_summary_traffic(summary, wire)
    return wire


def encode_hello_ack(ack: m.HelloAck) -> grid_pb2.GridLinkServiceConnectResponse:
    return grid_pb2.GridLinkServiceConnectResponse(
        hello_ack=grid_pb2.ClusterHelloAck(
            grid_id=ack.grid_id,
            summary_period_ms=ack.summary_period_ms,
            heartbeat_timeout_ms=ack.heartbeat_timeout_ms,
            known_cluster=ack.known_cluster,
            term=ack.term,
        )
    )


def decode_hello_ack(wire: grid_pb2.ClusterHelloAck) -> m.HelloAck:
    return m.HelloAck(
        wire.grid_id,
        wire.summary_period_ms,
        wire.heartbeat_timeout_ms,
        wire.known_cluster,
        wire.term,
    )


def encode_stream_error(error: m.StreamError) -> grid_pb2.GridLinkServiceConnectResponse:
    return grid_pb2.GridLinkServiceConnectResponse(
        error=grid_pb2.GridStreamError(message=error.message, field=error.field)
    )


def hello_request(hello: m.ClusterHello) -> grid_pb2.GridLinkServiceConnectRequest:
    return grid_pb2.GridLinkServiceConnectRequest(hello=encode_hello(hello))


def summary_request(summary: m.ClusterSummary) -> grid_pb2.GridLinkServiceConnectRequest:
    return grid_pb2.GridLinkServiceConnectRequest(summary=encode_summary(summary))


def decode_response(
    wire: grid_pb2.GridLinkServiceConnectResponse,
) -> m.HelloAck | m.StreamError | m.GridCommand | None:
    """What the coordinator sent a cluster; None for commands this side does not handle."""
    kind = wire.WhichOneof("payload")
    if kind == "hello_ack":
        return decode_hello_ack(wire.hello_ack)
    if kind == "error":
        return m.StreamError(wire.error.message, wire.error.field)
    if kind == "command":
        return decode_command(wire.command)
    return None


def _vm_demand(vm: m.VmDemand) -> grid_pb2.VmDemand:
    return grid_pb2.VmDemand(
        vm_uuid=vm.vm_uuid,
        name=vm.name,
        node_id=vm.node_id,
        cpu_millicores=vm.cpu_millicores,
        memory_bytes=vm.memory_bytes,
        network_bps=vm.network_bps,
    )


def command_term(wire: grid_pb2.GridLinkServiceConnectResponse) -> int:
    """The coordinator's leadership term a command message carries (0 for other messages)."""
    return wire.command.term if wire.WhichOneof("payload") == "command" else 0


def encode_command(
    command: m.GridCommand, term: int = 0
) -> grid_pb2.GridLinkServiceConnectResponse:
    """A grid command for a cluster's stream, with the sender's leadership term (0: a single
    coordinator)."""
    wire = grid_pb2.GridCommand(command_id=command.command_id, term=term)
    if isinstance(command, m.ReserveCapacity):
        wire.reserve_capacity.CopyFrom(
            grid_pb2.ReserveCapacityCommand(
                reservation_id=command.reservation_id,
                vm=_vm_demand(command.vm),
                ttl_ms=command.ttl_ms,
            )
        )
    elif isinstance(command, m.MigrateToUri):
        wire.migrate_to_uri.CopyFrom(
            grid_pb2.MigrateToUriCommand(
                vm_uuid=command.vm_uuid,
                destination_uri=command.destination_uri,
                bandwidth_cap_bps=command.bandwidth_cap_bps,
                live=command.live,
                reservation_id=command.reservation_id,
                migration_uri=command.migration_uri,
                copy_storage=command.copy_storage,
                simulated_destination=command.simulated_destination,
                destination_node_id=command.destination_node_id,
                memory_bytes=command.memory_bytes,
            )
        )
    elif isinstance(command, m.CommitReservation):
        wire.commit_reservation.reservation_id = command.reservation_id
    elif isinstance(command, m.SubmitJobToCluster):
        wire.submit_job.job_id = command.job_id
        wire.submit_job.spec.document_json = command.document_json
    else:
        wire.release_reservation.reservation_id = command.reservation_id
    return grid_pb2.GridLinkServiceConnectResponse(command=wire)


def decode_command(wire: grid_pb2.GridCommand) -> m.GridCommand | None:
    """A grid command from the coordinator; None for kinds this version does not know."""
    if not wire.command_id:
        raise MalformedMessage("command.command_id", "empty; every grid command needs an id")
    cid = wire.command_id
    kind = wire.WhichOneof("kind")
    if kind == "reserve_capacity":
        r = wire.reserve_capacity
        if r.ttl_ms <= 0:
            raise MalformedMessage("command.reserve_capacity.ttl_ms", f"{r.ttl_ms} must be > 0")
        vm = _decode_vm("command.reserve_capacity.vm", r.vm)
        return m.ReserveCapacity(cid, r.reservation_id, vm, r.ttl_ms)
    if kind == "migrate_to_uri":
        g = wire.migrate_to_uri
        return m.MigrateToUri(
            cid, g.vm_uuid, g.reservation_id, g.destination_uri, g.migration_uri,
            g.bandwidth_cap_bps, g.live, g.copy_storage, g.simulated_destination,
            g.destination_node_id, g.memory_bytes,
        )  # fmt: skip
    if kind == "commit_reservation":
        return m.CommitReservation(cid, wire.commit_reservation.reservation_id)
    if kind == "release_reservation":
        return m.ReleaseReservation(cid, wire.release_reservation.reservation_id)
    if kind == "submit_job":
        job = wire.submit_job
        if not job.job_id or not job.spec.document_json:
            raise MalformedMessage("command.submit_job", "needs a job_id and spec.document_json")
        return m.SubmitJobToCluster(cid, job.job_id, job.spec.document_json)
    return None


def command_state_to_wire(state: m.GridCommandState | None) -> int:
    """Wire CommandState; None (not started) is UNSPECIFIED."""
    return common_pb2.COMMAND_STATE_UNSPECIFIED if state is None else _COMMAND_STATE_TO_WIRE[state]


def result_request(result: m.GridCommandResult) -> grid_pb2.GridLinkServiceConnectRequest:
    """A cluster's command result for its stream."""
    return grid_pb2.GridLinkServiceConnectRequest(
        command_result=grid_pb2.GridCommandResult(
            command_id=result.command_id,
            state=_COMMAND_STATE_TO_WIRE[result.state],  # type: ignore[arg-type]
            progress_fraction=result.progress_fraction,
            message=result.message,
            simulated=result.simulated,
            reservation_id=result.reservation_id,
            node_id=result.node_id,
            destination_uri=result.destination_uri,
            migration_uri=result.migration_uri,
        )
    )


def decode_result(wire: grid_pb2.GridCommandResult) -> m.GridCommandResult:
    """Validate a cluster's command result: an id and a known state."""
    if not wire.command_id:
        raise MalformedMessage("command_result.command_id", "empty; results name their command")
    state = _COMMAND_STATE_FROM_WIRE.get(wire.state)
    if state is None:
        accepted = ", ".join(s.name for s in m.GridCommandState)
        raise MalformedMessage("command_result.state", f"{wire.state} is not one of {accepted}")
    return m.GridCommandResult(
        wire.command_id, state, wire.progress_fraction, wire.message, wire.simulated,
        wire.reservation_id, wire.node_id, wire.destination_uri, wire.migration_uri,
    )  # fmt: skip


_COMMAND_STATE_TO_WIRE = {
    m.GridCommandState.ACCEPTED: common_pb2.COMMAND_STATE_ACCEPTED,
    m.GridCommandState.RUNNING: common_pb2.COMMAND_STATE_RUNNING,
    m.GridCommandState.SUCCEEDED: common_pb2.COMMAND_STATE_SUCCEEDED,
    m.GridCommandState.FAILED: common_pb2.COMMAND_STATE_FAILED,
}


_COMMAND_STATE_FROM_WIRE = {v: k for k, v in _COMMAND_STATE_TO_WIRE.items()}
