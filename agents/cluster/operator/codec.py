"""ClusterService views on the wire: events, nodes, VMs, ingest statistics, plans and rules."""

from __future__ import annotations

import json
import math
from typing import Any

from vmgrid.agents import model as m
from vmgrid.agents.cluster.act.journal import ActionState
from vmgrid.agents.cluster.decide.operator_policy import SETTABLE, OperatorPolicy
from vmgrid.agents.cluster.link.stats import IngestStats
from vmgrid.agents.cluster.operator.plan_views import PlanStatus, PlanView
from vmgrid.agents.cluster.rules.check import Violation
from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.agents.cluster.rules.validate import RuleRequest, rule_parts
from vmgrid.agents.cluster.state.events import ClusterEvent, EventKind
from vmgrid.agents.cluster.state.state import NodeStatus, NodeView
from vmgrid.agents.cluster.state.trend import UsageHistory
from vmgrid.agents.common.node_codec import (
    encode_host_usage,
    encode_pressure,
    encode_vm_usage,
    set_timestamp_ns,
    vm_state_to_wire,
)
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.wire_limits import parse_json
from vmgrid.solver.plan import Action, ActionKind
from vmgrid.v1 import cluster_pb2, common_pb2, node_pb2

_EVENT_KIND_TO_WIRE: dict[EventKind, Any] = {
    kind: common_pb2.EventKind.Value(f"EVENT_KIND_{kind.name}") for kind in EventKind
}
_EVENT_KIND_FROM_WIRE = {wire: kind for kind, wire in _EVENT_KIND_TO_WIRE.items()}


def event_kind_from_wire(value: int) -> EventKind:
    """Domain event kind of a wire enum value (filters in WatchEvents)."""
    kind = _EVENT_KIND_FROM_WIRE.get(value)
    if kind is None:
        accepted = ", ".join(common_pb2.EventKind.Name(w) for w in _EVENT_KIND_FROM_WIRE)
        raise MalformedMessage("kinds", f"unknown event kind {value}; accepted: {accepted}")
    return kind


def _wire_state(state: m.VmState) -> Any:
    return vm_state_to_wire(state)


def encode_event(event: ClusterEvent) -> common_pb2.Event:
    """Convert a bus event."""
    msg = common_pb2.Event(
        sequence=event.sequence,
        kind=_EVENT_KIND_TO_WIRE[event.kind],
        cluster_id=event.cluster_id,
        node_id=event.node_id,
        vm_uuid=event.vm_uuid,
        message=event.message,
        simulated=event.simulated,
        command_id=event.command_id,
        plan_id=event.plan_id,
    )
    if event.vm_state is not None:
        msg.vm_state = _wire_state(event.vm_state)
    if event.previous_vm_state is not None:
        msg.previous_vm_state = _wire_state(event.previous_vm_state)
    set_timestamp_ns(msg.at, event.at_unix_ns)
    return msg


_NODE_STATUS_TO_WIRE = {
    NodeStatus.CONNECTED: cluster_pb2.NODE_STATUS_CONNECTED,
    NodeStatus.LOST: cluster_pb2.NODE_STATUS_LOST,
    NodeStatus.POWERED_OFF: cluster_pb2.NODE_STATUS_POWERED_OFF,
}


def encode_node_info(view: NodeView) -> cluster_pb2.NodeInfo:
    """Convert a node view for ListNodes/GetNode."""
    ident, cap = view.identity, view.capacity
    msg = cluster_pb2.NodeInfo(
        node_id=ident.node_id,
        hostname=ident.hostname,
        capacity=node_pb2.NodeCapacity(
            cpu_millicores=cap.cpu_millicores,
            memory_bytes=cap.memory_bytes,
            nic_bandwidth_bps=cap.nic_bandwidth_bps,
        ),
        migration_uri=ident.migration_uri,
        agent_version=ident.agent_version,
        hypervisor_kind=ident.hypervisor_kind,
        simulated=ident.simulated,
        peer_uri=ident.peer_uri,
        status=_NODE_STATUS_TO_WIRE[view.status],
        vm_count=len(view.vms),
        last_sequence=view.last_sequence,
        draining=view.draining,
        degraded_reason=view.degraded_reason,
    )
    if view.usage is not None:
        msg.usage.CopyFrom(encode_host_usage(view.usage))
    if view.last_seen_unix_ns:
        set_timestamp_ns(msg.last_seen, view.last_seen_unix_ns)
    return msg


def encode_vm_info(
    node_id: str, vm: m.VmUsage, observed_at_unix_ns: int, pressure: m.Pressure | None = None
) -> cluster_pb2.VmInfo:
    """Convert one VM for ListVms/GetNode (`pressure`: its cgroup's, when available)."""
    msg = cluster_pb2.VmInfo(node_id=node_id, usage=encode_vm_usage(vm))
    if pressure is not None and pressure.available:
        encode_pressure(pressure, msg.pressure)
    if observed_at_unix_ns:
        set_timestamp_ns(msg.observed_at, observed_at_unix_ns)
    return msg


def encode_ingest_stats(
    stats: IngestStats, connected_nodes: int
) -> cluster_pb2.GetIngestStatsResponse:
    """Convert ingest figures for GetIngestStats."""
    return cluster_pb2.GetIngestStatsResponse(
        reports_total=stats.reports_total,
        vm_samples_total=stats.vm_samples_total,
        rejected_total=stats.rejected_total,
        latency_p50_ms=stats.latency_p50_ms,
        latency_p99_ms=stats.latency_p99_ms,
        latency_max_ms=stats.latency_max_ms,
        latency_samples=stats.latency_samples,
        connected_nodes=connected_nodes,
    )


# ---- operator plans -----------------------------------------------------------------------

_PLAN_STATUS_TO_WIRE = {
    PlanStatus.PROPOSED: common_pb2.PLAN_STATE_PROPOSED,
    PlanStatus.AWAITING_APPROVAL: common_pb2.PLAN_STATE_AWAITING_APPROVAL,
    PlanStatus.RUNNING: common_pb2.PLAN_STATE_RUNNING,
    PlanStatus.SUCCEEDED: common_pb2.PLAN_STATE_SUCCEEDED,
    PlanStatus.FAILED: common_pb2.PLAN_STATE_FAILED,
    PlanStatus.CANCELLED: common_pb2.PLAN_STATE_CANCELLED,
    PlanStatus.REJECTED: common_pb2.PLAN_STATE_REJECTED,
}
_ACTION_STATE_TO_WIRE = {
    None: common_pb2.PLAN_STATE_PROPOSED,
    ActionState.PENDING: common_pb2.PLAN_STATE_APPROVED,
    ActionState.RUNNING: common_pb2.PLAN_STATE_RUNNING,
    ActionState.SUCCEEDED: common_pb2.PLAN_STATE_SUCCEEDED,
    ActionState.FAILED: common_pb2.PLAN_STATE_FAILED,
    ActionState.SKIPPED: common_pb2.PLAN_STATE_CANCELLED,
    ActionState.CANCELLED: common_pb2.PLAN_STATE_CANCELLED,
}
_ACTION_KIND_TO_WIRE = {
    ActionKind.MIGRATE: common_pb2.PLAN_ACTION_KIND_MIGRATE,
    ActionKind.BOOT_VM: common_pb2.PLAN_ACTION_KIND_BOOT,
    ActionKind.SUSPEND: common_pb2.PLAN_ACTION_KIND_SUSPEND,
    ActionKind.RESUME: common_pb2.PLAN_ACTION_KIND_RESUME,
    ActionKind.SHUTDOWN_VM: common_pb2.PLAN_ACTION_KIND_SHUTDOWN_VM,
    ActionKind.SHUTDOWN_NODE: common_pb2.PLAN_ACTION_KIND_SHUTDOWN_NODE,
    ActionKind.BOOT_NODE: common_pb2.PLAN_ACTION_KIND_BOOT_NODE,
}


def plan_status_to_wire(status: PlanStatus | str) -> Any:
    """Wire PlanState of a plan status (or of its value, as events carry it)."""
    if isinstance(status, str):
        if not status:
            return common_pb2.PLAN_STATE_UNSPECIFIED
        status = PlanStatus(status)
    return _PLAN_STATUS_TO_WIRE[status]


def encode_plan(view: PlanView) -> common_pb2.Plan:
    """Convert a plan for the operator API; times are seconds in the domain, ms on the wire."""
    msg = common_pb2.Plan(
        plan_id=view.plan_id,
        state=_PLAN_STATUS_TO_WIRE[view.status],
        estimated_duration_ms=view.estimated_duration_s * 1000,
        summary=view.summary,
        active_nodes_before=view.active_nodes_before,
        active_nodes_after=view.active_nodes_after,
    )
    for item in view.actions:
        msg.actions.append(encode_action(item.action, item.state, item.simulated, item.message))
    set_timestamp_ns(msg.created_at, int(view.created_unix_s * 1e9))
    return msg


def encode_action(
    action: Action, state: ActionState | None, simulated: bool, message: str = ""
) -> common_pb2.PlanAction:
    """One plan action; its reason carries the outcome's message when there is one."""
    return common_pb2.PlanAction(
        action_id=str(action.id),
        kind=_ACTION_KIND_TO_WIRE[action.kind],
        vm_uuid="" if action.kind.on_node else action.subject,
        source_node_id=action.src or ("" if not action.kind.on_node else action.subject),
        destination_node_id=action.dst or "",
        start_ms=action.start_s * 1000,
        duration_ms=action.duration_s * 1000,
        depends_on_action_ids=[str(d) for d in action.depends_on],
        state=_ACTION_STATE_TO_WIRE[state],
        simulated=simulated,
        reason=action.reason if not message else f"{action.reason} ({message})",
    )


# ---- placement rules ----------------------------------------------------------------------


def encode_rule(rule: Rule) -> cluster_pb2.Rule:
    """Convert a stored rule; the kind's fields other than vms and nodes go as JSON."""
    vms, nodes, parameters = rule_parts(rule)
    msg = cluster_pb2.Rule(
        rule_id=rule.rule_id,
        kind=rule.constraint.kind,
        origin=rule.origin,
        vm_uuids=list(vms),
        node_ids=list(nodes),
        parameters_json=json.dumps(parameters, sort_keys=True) if parameters else "",
        label=rule.constraint.label(),
    )
    set_timestamp_ns(msg.created_at, int(rule.created_unix_s * 1e9))
    return msg


def encode_violation(violation: Violation) -> cluster_pb2.RuleViolation:
    return cluster_pb2.RuleViolation(rule=encode_rule(violation.rule), reason=violation.reason)


def decode_rule_request(msg: cluster_pb2.Rule) -> RuleRequest:
    """The rule an AddRule asks for; MalformedMessage when parameters_json is not an object."""
    parameters: dict[str, Any] = {}
    if msg.parameters_json.strip():
        parameters = parse_json("rule.parameters_json", msg.parameters_json)
        if not isinstance(parameters, dict):
            raise MalformedMessage(
                "rule.parameters_json", f"must be a JSON object (got {msg.parameters_json!r})"
            )
    return RuleRequest(
        rule_id=msg.rule_id,
        kind=msg.kind,
        vms=tuple(msg.vm_uuids),
        nodes=tuple(msg.node_ids),
        parameters=parameters,
    )


def encode_policy(policy: OperatorPolicy) -> cluster_pb2.OperatorPolicy:
    fields: dict[str, Any] = policy.as_dict()
    return cluster_pb2.OperatorPolicy(**fields)


def policy_to_json(msg: cluster_pb2.OperatorPolicy) -> dict[str, Any]:
    """The wire policy as the JSON object ``GET /policy`` and ``vmgridctl policy`` show (the
    keys of ``OperatorPolicy.as_dict``)."""
    out: dict[str, Any] = {key: getattr(msg, key) for key in SETTABLE}
    for key in ("cpu_low", "cpu_high", "memory_low", "memory_high"):
        out[key] = round(out[key], 6)
    out["explicit"] = list(msg.explicit)
    return out


def policy_changes(values: dict[str, object]) -> dict[str, str]:
    """Key -> value as the wire's SetPolicyRequest carries them (text; JSON numbers as
    written, so 5 stays a whole number)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, bool) or value is None or isinstance(value, list | dict):
            out[str(key)] = json.dumps(value)
        else:
            out[str(key)] = str(value)
    return out


def encode_history(history: UsageHistory) -> cluster_pb2.GetHistoryResponse:
    """A usage history on the wire; an unavailable value travels as NaN."""
    return cluster_pb2.GetHistoryResponse(
        bucket_s=history.bucket_s,
        buckets=history.buckets,
        times_unix_ms=history.times_unix_ms,
        series=[
            cluster_pb2.HistorySeries(
                name=name, values=[math.nan if v is None else v for v in values]
            )
            for name, values in history.series.items()
        ],
    )
