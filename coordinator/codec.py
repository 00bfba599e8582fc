"""Wire <-> domain conversion of the coordinator's own API: clusters, topology, plans, events.

The grid link's messages (hello, summaries, commands, results) have their codec beside the
cluster manager that sends them, ``vmgrid.agents.grid_codec``.
"""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from vmgrid.agents import grid_model as m
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.grid_codec import HEALTH_TO_WIRE, encode_resources
from vmgrid.coordinator.moves import Move, Phase, PlanStatus
from vmgrid.solver.grid import GridPlan, Topology
from vmgrid.v1 import common_pb2, coordinator_pb2, grid_pb2

_EVENT_TO_WIRE = {
    m.GridEventKind.CLUSTER_JOINED: common_pb2.EVENT_KIND_CLUSTER_JOINED,
    m.GridEventKind.CLUSTER_LOST: common_pb2.EVENT_KIND_CLUSTER_LOST,
    m.GridEventKind.CLUSTER_RETURNED: common_pb2.EVENT_KIND_CLUSTER_RETURNED,
    m.GridEventKind.PLAN_CHANGED: common_pb2.EVENT_KIND_PLAN_CHANGED,
    m.GridEventKind.MOVE_CHANGED: common_pb2.EVENT_KIND_COMMAND_RESULT,
    m.GridEventKind.JOB_CHANGED: common_pb2.EVENT_KIND_JOB_CHANGED,
    m.GridEventKind.CLUSTER_FORGOTTEN: common_pb2.EVENT_KIND_CLUSTER_FORGOTTEN,
}
_EVENT_FROM_WIRE = {v: k for k, v in _EVENT_TO_WIRE.items()}


def _timestamp(unix_ns: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(unix_ns)
    return stamp


def encode_cluster_info(record: m.ClusterRecord) -> coordinator_pb2.ClusterInfo:
    """Registry record -> ClusterInfo; capacity falls back to the hello before any summary."""
    s = record.summary
    info = coordinator_pb2.ClusterInfo(
        cluster_id=record.cluster_id,
        endpoint=record.hello.endpoint,
        capacity=encode_resources(s.capacity if s else record.hello.capacity),
        usage=encode_resources(s.usage if s else m.Capacity()),
        connected=record.state is m.ClusterState.CONNECTED,
        last_seen=_timestamp(record.last_seen_unix_ns),
        node_count=(
            s.health.nodes_total if s and s.health.nodes_total else record.hello.node_count
        ),
        vm_count=len(s.movable_vms) if s else 0,
    )
    if s is not None:
        h = s.health
        info.health.CopyFrom(
            grid_pb2.ClusterHealth(
                state=HEALTH_TO_WIRE[h.state],
                nodes_total=h.nodes_total,
                nodes_lost=h.nodes_lost,
                nodes_overloaded=h.nodes_overloaded,
                message=h.message,
            )  # fmt: skip
        )
    return info


def encode_topology(
    topology: Topology, records: dict[str, m.ClusterRecord]
) -> coordinator_pb2.Topology:
    """Every topology cluster (registered or not) and every link with its measured use."""
    clusters = [
        encode_cluster_info(records[c])
        if c in records
        else coordinator_pb2.ClusterInfo(cluster_id=c, connected=False)
        for c in topology.clusters()
    ]
    links = []
    for u, v in topology.links():
        data = topology.graph.edges[u, v]
        bandwidth_bps = int(data["bandwidth_mbps"]) * 1_000_000
        links.append(
            coordinator_pb2.WanLink(
                cluster_a=u,
                cluster_b=v,
                bandwidth_bps=bandwidth_bps,
                latency_ms=round(float(data["latency_ms"])),
                used_bps=round(bandwidth_bps * float(data.get("utilisation", 0.0))),
            )
        )
    return coordinator_pb2.Topology(clusters=clusters, links=links)


def encode_plan(plan_id: str, plan: GridPlan, created_unix_ns: int) -> coordinator_pb2.GridPlan:
    """A dry-run plan: each move with its path, timing and reason; stats in the summary."""
    moves = [
        coordinator_pb2.GridMove(
            vm_uuid=mv.vm,
            source_cluster_id=mv.src,
            destination_cluster_id=mv.dst,
            path_cluster_ids=list(mv.path),
            estimated_duration_ms=round(mv.est_seconds * 1000),
            start_ms=round(mv.start_s * 1000),
            reason=f"{mv.kind.value}: {mv.reason}",
        )
        for mv in plan.moves
    ]
    st = plan.stats
    summary = (
        f"{len(plan.moves)} moves; {st.overloaded} overloaded, {st.relieved} relieved, "
        f"{st.unrelieved} unrelieved; {st.groups_gathered} groups gathered; "
        f"{st.consolidated} consolidated; makespan {st.makespan_s:.1f} s"
    )
    if st.notes:
        summary += "\n" + "\n".join(st.notes)
    return coordinator_pb2.GridPlan(
        plan_id=plan_id,
        state=common_pb2.PLAN_STATE_PROPOSED,
        moves=moves,
        estimated_duration_ms=round(st.makespan_s * 1000),
        summary=summary,
        created_at=_timestamp(created_unix_ns),
    )


def encode_event(event: m.GridEvent) -> common_pb2.Event:
    return common_pb2.Event(
        sequence=event.sequence,
        at=_timestamp(event.at_unix_ns),
        kind=_EVENT_TO_WIRE[event.kind],
        cluster_id=event.cluster_id,
        message=event.message,
        plan_id=event.plan_id,
        vm_uuid=event.vm_uuid,
        simulated=event.simulated,
    )


def event_kind_from_wire(value: int) -> m.GridEventKind:
    kind = _EVENT_FROM_WIRE.get(value)  # type: ignore[call-overload]
    if kind is None:
        accepted = ", ".join(k.name for k in _EVENT_TO_WIRE)
        raise MalformedMessage("kinds", f"event kind {value} is not one the grid emits: {accepted}")
    return kind


_PLAN_STATUS_TO_WIRE = {
    PlanStatus.RUNNING: common_pb2.PLAN_STATE_RUNNING,
    PlanStatus.SUCCEEDED: common_pb2.PLAN_STATE_SUCCEEDED,
    PlanStatus.FAILED: common_pb2.PLAN_STATE_FAILED,
    PlanStatus.CANCELLED: common_pb2.PLAN_STATE_CANCELLED,
}
_PHASE_TO_WIRE = {
    Phase.PENDING: common_pb2.COMMAND_STATE_UNSPECIFIED,
    Phase.RESERVED: common_pb2.COMMAND_STATE_RUNNING,
    Phase.MIGRATED: common_pb2.COMMAND_STATE_RUNNING,
    Phase.RETURNING: common_pb2.COMMAND_STATE_RUNNING,
    Phase.DONE: common_pb2.COMMAND_STATE_SUCCEEDED,
    Phase.RELEASED: common_pb2.COMMAND_STATE_FAILED,
    Phase.CANCELLED: common_pb2.COMMAND_STATE_FAILED,
    Phase.RETURNED: common_pb2.COMMAND_STATE_FAILED,
}


def encode_applied_plan(
    plan_id: str, status: PlanStatus, moves: list[Move]
) -> coordinator_pb2.GridPlan:
    """A plan being applied: each move with its execution state, step and progress."""
    done = sum(1 for mv in moves if mv.phase.final)
    return coordinator_pb2.GridPlan(
        plan_id=plan_id,
        state=_PLAN_STATUS_TO_WIRE[status],
        moves=[
            coordinator_pb2.GridMove(
                vm_uuid=mv.vm.vm_uuid,
                source_cluster_id=mv.src,
                destination_cluster_id=mv.dst,
                path_cluster_ids=list(mv.path),
                estimated_duration_ms=round((mv.end_s - mv.start_s) * 1000),
                start_ms=round(mv.start_s * 1000),
                reason=mv.reason,
                state=_PHASE_TO_WIRE[mv.phase],
                message=f"{mv.phase.value}: {mv.message}" if mv.message else mv.phase.value,
                progress_fraction=1.0 if mv.phase is Phase.DONE else mv.progress_fraction,
                simulated=mv.simulated,
            )
            for mv in moves
        ],
        summary=f"{done}/{len(moves)} moves finished; {status.value}",
    )
