import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from vmgrid.v1 import common_pb2 as _common_pb2
from vmgrid.v1 import node_pb2 as _node_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_STATUS_UNSPECIFIED: _ClassVar[NodeStatus]
    NODE_STATUS_CONNECTED: _ClassVar[NodeStatus]
    NODE_STATUS_LOST: _ClassVar[NodeStatus]
    NODE_STATUS_POWERED_OFF: _ClassVar[NodeStatus]
NODE_STATUS_UNSPECIFIED: NodeStatus
NODE_STATUS_CONNECTED: NodeStatus
NODE_STATUS_LOST: NodeStatus
NODE_STATUS_POWERED_OFF: NodeStatus

class NodeInfo(_message.Message):
    __slots__ = ("node_id", "hostname", "capacity", "migration_uri", "agent_version", "hypervisor_kind", "simulated", "status", "usage", "vm_count", "last_seen", "last_sequence", "draining", "peer_uri", "degraded_reason")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_URI_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    HYPERVISOR_KIND_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    VM_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    PEER_URI_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASON_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    hostname: str
    capacity: _node_pb2.NodeCapacity
    migration_uri: str
    agent_version: str
    hypervisor_kind: str
    simulated: bool
    status: NodeStatus
    usage: _node_pb2.HostUsage
    vm_count: int
    last_seen: _timestamp_pb2.Timestamp
    last_sequence: int
    draining: bool
    peer_uri: str
    degraded_reason: str
    def __init__(self, node_id: _Optional[str] = ..., hostname: _Optional[str] = ..., capacity: _Optional[_Union[_node_pb2.NodeCapacity, _Mapping]] = ..., migration_uri: _Optional[str] = ..., agent_version: _Optional[str] = ..., hypervisor_kind: _Optional[str] = ..., simulated: _Optional[bool] = ..., status: _Optional[_Union[NodeStatus, str]] = ..., usage: _Optional[_Union[_node_pb2.HostUsage, _Mapping]] = ..., vm_count: _Optional[int] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_sequence: _Optional[int] = ..., draining: _Optional[bool] = ..., peer_uri: _Optional[str] = ..., degraded_reason: _Optional[str] = ...) -> None: ...

class VmInfo(_message.Message):
    __slots__ = ("node_id", "usage", "observed_at", "pressure")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_FIELD_NUMBER: _ClassVar[int]
    PRESSURE_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    usage: _node_pb2.VmUsage
    observed_at: _timestamp_pb2.Timestamp
    pressure: _node_pb2.Pressure
    def __init__(self, node_id: _Optional[str] = ..., usage: _Optional[_Union[_node_pb2.VmUsage, _Mapping]] = ..., observed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pressure: _Optional[_Union[_node_pb2.Pressure, _Mapping]] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListNodesResponse(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ...) -> None: ...

class GetNodeRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class GetNodeResponse(_message.Message):
    __slots__ = ("node", "vms")
    NODE_FIELD_NUMBER: _ClassVar[int]
    VMS_FIELD_NUMBER: _ClassVar[int]
    node: NodeInfo
    vms: _containers.RepeatedCompositeFieldContainer[VmInfo]
    def __init__(self, node: _Optional[_Union[NodeInfo, _Mapping]] = ..., vms: _Optional[_Iterable[_Union[VmInfo, _Mapping]]] = ...) -> None: ...

class ListVmsRequest(_message.Message):
    __slots__ = ("node_id", "states", "name_prefix")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    NAME_PREFIX_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    states: _containers.RepeatedScalarFieldContainer[_common_pb2.VmState]
    name_prefix: str
    def __init__(self, node_id: _Optional[str] = ..., states: _Optional[_Iterable[_Union[_common_pb2.VmState, str]]] = ..., name_prefix: _Optional[str] = ...) -> None: ...

class ListVmsResponse(_message.Message):
    __slots__ = ("vms",)
    VMS_FIELD_NUMBER: _ClassVar[int]
    vms: _containers.RepeatedCompositeFieldContainer[VmInfo]
    def __init__(self, vms: _Optional[_Iterable[_Union[VmInfo, _Mapping]]] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("kinds", "node_id")
    KINDS_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[_common_pb2.EventKind]
    node_id: str
    def __init__(self, kinds: _Optional[_Iterable[_Union[_common_pb2.EventKind, str]]] = ..., node_id: _Optional[str] = ...) -> None: ...

class WatchEventsResponse(_message.Message):
    __slots__ = ("event", "plan_progress_fraction", "plan_state")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PLAN_PROGRESS_FRACTION_FIELD_NUMBER: _ClassVar[int]
    PLAN_STATE_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.Event
    plan_progress_fraction: float
    plan_state: _common_pb2.PlanState
    def __init__(self, event: _Optional[_Union[_common_pb2.Event, _Mapping]] = ..., plan_progress_fraction: _Optional[float] = ..., plan_state: _Optional[_Union[_common_pb2.PlanState, str]] = ...) -> None: ...

class PlanReconfigurationRequest(_message.Message):
    __slots__ = ("time_limit_ms", "drain_node_ids", "objective")
    TIME_LIMIT_MS_FIELD_NUMBER: _ClassVar[int]
    DRAIN_NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    time_limit_ms: int
    drain_node_ids: _containers.RepeatedScalarFieldContainer[str]
    objective: str
    def __init__(self, time_limit_ms: _Optional[int] = ..., drain_node_ids: _Optional[_Iterable[str]] = ..., objective: _Optional[str] = ...) -> None: ...

class PlanReconfigurationResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: _common_pb2.Plan
    def __init__(self, plan: _Optional[_Union[_common_pb2.Plan, _Mapping]] = ...) -> None: ...

class ListPlansRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListPlansResponse(_message.Message):
    __slots__ = ("plans",)
    PLANS_FIELD_NUMBER: _ClassVar[int]
    plans: _containers.RepeatedCompositeFieldContainer[_common_pb2.Plan]
    def __init__(self, plans: _Optional[_Iterable[_Union[_common_pb2.Plan, _Mapping]]] = ...) -> None: ...

class ApplyPlanRequest(_message.Message):
    __slots__ = ("plan_id",)
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    def __init__(self, plan_id: _Optional[str] = ...) -> None: ...

class ApplyPlanResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: _common_pb2.Plan
    def __init__(self, plan: _Optional[_Union[_common_pb2.Plan, _Mapping]] = ...) -> None: ...

class CancelPlanRequest(_message.Message):
    __slots__ = ("plan_id",)
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    def __init__(self, plan_id: _Optional[str] = ...) -> None: ...

class CancelPlanResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: _common_pb2.Plan
    def __init__(self, plan: _Optional[_Union[_common_pb2.Plan, _Mapping]] = ...) -> None: ...

class ApprovePlanRequest(_message.Message):
    __slots__ = ("plan_id",)
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    def __init__(self, plan_id: _Optional[str] = ...) -> None: ...

class ApprovePlanResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: _common_pb2.Plan
    def __init__(self, plan: _Optional[_Union[_common_pb2.Plan, _Mapping]] = ...) -> None: ...

class RejectPlanRequest(_message.Message):
    __slots__ = ("plan_id", "reason")
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    reason: str
    def __init__(self, plan_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RejectPlanResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: _common_pb2.Plan
    def __init__(self, plan: _Optional[_Union[_common_pb2.Plan, _Mapping]] = ...) -> None: ...

class MigrateVmRequest(_message.Message):
    __slots__ = ("vm_uuid", "destination_node_id", "bandwidth_cap_bps", "live", "command_id")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_CAP_BPS_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    destination_node_id: str
    bandwidth_cap_bps: int
    live: bool
    command_id: str
    def __init__(self, vm_uuid: _Optional[str] = ..., destination_node_id: _Optional[str] = ..., bandwidth_cap_bps: _Optional[int] = ..., live: _Optional[bool] = ..., command_id: _Optional[str] = ...) -> None: ...

class MigrateVmResponse(_message.Message):
    __slots__ = ("result", "plan")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    result: _node_pb2.CommandResult
    plan: _common_pb2.Plan
    def __init__(self, result: _Optional[_Union[_node_pb2.CommandResult, _Mapping]] = ..., plan: _Optional[_Union[_common_pb2.Plan, _Mapping]] = ...) -> None: ...

class SuspendVmRequest(_message.Message):
    __slots__ = ("vm_uuid", "command_id")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    command_id: str
    def __init__(self, vm_uuid: _Optional[str] = ..., command_id: _Optional[str] = ...) -> None: ...

class SuspendVmResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _node_pb2.CommandResult
    def __init__(self, result: _Optional[_Union[_node_pb2.CommandResult, _Mapping]] = ...) -> None: ...

class ResumeVmRequest(_message.Message):
    __slots__ = ("vm_uuid", "command_id")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    command_id: str
    def __init__(self, vm_uuid: _Optional[str] = ..., command_id: _Optional[str] = ...) -> None: ...

class ResumeVmResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _node_pb2.CommandResult
    def __init__(self, result: _Optional[_Union[_node_pb2.CommandResult, _Mapping]] = ...) -> None: ...

class CreateSnapshotRequest(_message.Message):
    __slots__ = ("vm_uuid", "snapshot_name", "description", "command_id")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    snapshot_name: str
    description: str
    command_id: str
    def __init__(self, vm_uuid: _Optional[str] = ..., snapshot_name: _Optional[str] = ..., description: _Optional[str] = ..., command_id: _Optional[str] = ...) -> None: ...

class CreateSnapshotResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _node_pb2.CommandResult
    def __init__(self, result: _Optional[_Union[_node_pb2.CommandResult, _Mapping]] = ...) -> None: ...

class ListSnapshotsRequest(_message.Message):
    __slots__ = ("vm_uuid",)
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    def __init__(self, vm_uuid: _Optional[str] = ...) -> None: ...

class ListSnapshotsResponse(_message.Message):
    __slots__ = ("snapshot_names",)
    SNAPSHOT_NAMES_FIELD_NUMBER: _ClassVar[int]
    snapshot_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, snapshot_names: _Optional[_Iterable[str]] = ...) -> None: ...

class RevertSnapshotRequest(_message.Message):
    __slots__ = ("vm_uuid", "snapshot_name", "command_id")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_NAME_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    snapshot_name: str
    command_id: str
    def __init__(self, vm_uuid: _Optional[str] = ..., snapshot_name: _Optional[str] = ..., command_id: _Optional[str] = ...) -> None: ...

class RevertSnapshotResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _node_pb2.CommandResult
    def __init__(self, result: _Optional[_Union[_node_pb2.CommandResult, _Mapping]] = ...) -> None: ...

class DeleteSnapshotRequest(_message.Message):
    __slots__ = ("vm_uuid", "snapshot_name", "command_id")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_NAME_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    snapshot_name: str
    command_id: str
    def __init__(self, vm_uuid: _Optional[str] = ..., snapshot_name: _Optional[str] = ..., command_id: _Optional[str] = ...) -> None: ...

class DeleteSnapshotResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _node_pb2.CommandResult
    def __init__(self, result: _Optional[_Union[_node_pb2.CommandResult, _Mapping]] = ...) -> None: ...

class DrainNodeRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class DrainNodeResponse(_message.Message):
    __slots__ = ("node", "plan")
    NODE_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    node: NodeInfo
    plan: _common_pb2.Plan
    def __init__(self, node: _Optional[_Union[NodeInfo, _Mapping]] = ..., plan: _Optional[_Union[_common_pb2.Plan, _Mapping]] = ...) -> None: ...

class UndrainNodeRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class UndrainNodeResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: NodeInfo
    def __init__(self, node: _Optional[_Union[NodeInfo, _Mapping]] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: _common_pb2.JobSpec
    def __init__(self, spec: _Optional[_Union[_common_pb2.JobSpec, _Mapping]] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _common_pb2.Job
    def __init__(self, job: _Optional[_Union[_common_pb2.Job, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _common_pb2.Job
    def __init__(self, job: _Optional[_Union[_common_pb2.Job, _Mapping]] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("job_id", "name", "taken_at")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TAKEN_AT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    name: str
    taken_at: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., name: _Optional[str] = ..., taken_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListCheckpointsRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListCheckpointsResponse(_message.Message):
    __slots__ = ("checkpoints",)
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    checkpoints: _containers.RepeatedCompositeFieldContainer[Checkpoint]
    def __init__(self, checkpoints: _Optional[_Iterable[_Union[Checkpoint, _Mapping]]] = ...) -> None: ...

class TakeCheckpointRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class TakeCheckpointResponse(_message.Message):
    __slots__ = ("checkpoint",)
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: Checkpoint
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ...) -> None: ...

class RevertCheckpointRequest(_message.Message):
    __slots__ = ("job_id", "name")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    name: str
    def __init__(self, job_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class RevertCheckpointResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteCheckpointRequest(_message.Message):
    __slots__ = ("job_id", "name")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    name: str
    def __init__(self, job_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class DeleteCheckpointResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetIngestStatsRequest(_message.Message):
    __slots__ = ("reset",)
    RESET_FIELD_NUMBER: _ClassVar[int]
    reset: bool
    def __init__(self, reset: _Optional[bool] = ...) -> None: ...

class GetIngestStatsResponse(_message.Message):
    __slots__ = ("reports_total", "vm_samples_total", "rejected_total", "latency_p50_ms", "latency_p99_ms", "latency_max_ms", "latency_samples", "connected_nodes")
    REPORTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    VM_SAMPLES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    REJECTED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P99_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MAX_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_NODES_FIELD_NUMBER: _ClassVar[int]
    reports_total: int
    vm_samples_total: int
    rejected_total: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    latency_samples: int
    connected_nodes: int
    def __init__(self, reports_total: _Optional[int] = ..., vm_samples_total: _Optional[int] = ..., rejected_total: _Optional[int] = ..., latency_p50_ms: _Optional[float] = ..., latency_p99_ms: _Optional[float] = ..., latency_max_ms: _Optional[float] = ..., latency_samples: _Optional[int] = ..., connected_nodes: _Optional[int] = ...) -> None: ...

class Rule(_message.Message):
    __slots__ = ("rule_id", "kind", "origin", "vm_uuids", "node_ids", "parameters_json", "created_at", "label")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    VM_UUIDS_FIELD_NUMBER: _ClassVar[int]
    NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    kind: str
    origin: str
    vm_uuids: _containers.RepeatedScalarFieldContainer[str]
    node_ids: _containers.RepeatedScalarFieldContainer[str]
    parameters_json: str
    created_at: _timestamp_pb2.Timestamp
    label: str
    def __init__(self, rule_id: _Optional[str] = ..., kind: _Optional[str] = ..., origin: _Optional[str] = ..., vm_uuids: _Optional[_Iterable[str]] = ..., node_ids: _Optional[_Iterable[str]] = ..., parameters_json: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., label: _Optional[str] = ...) -> None: ...

class RuleViolation(_message.Message):
    __slots__ = ("rule", "reason")
    RULE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    rule: Rule
    reason: str
    def __init__(self, rule: _Optional[_Union[Rule, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class ListRulesRequest(_message.Message):
    __slots__ = ("origin",)
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    origin: str
    def __init__(self, origin: _Optional[str] = ...) -> None: ...

class ListRulesResponse(_message.Message):
    __slots__ = ("rules",)
    RULES_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[Rule]
    def __init__(self, rules: _Optional[_Iterable[_Union[Rule, _Mapping]]] = ...) -> None: ...

class AddRuleRequest(_message.Message):
    __slots__ = ("rule",)
    RULE_FIELD_NUMBER: _ClassVar[int]
    rule: Rule
    def __init__(self, rule: _Optional[_Union[Rule, _Mapping]] = ...) -> None: ...

class AddRuleResponse(_message.Message):
    __slots__ = ("rule",)
    RULE_FIELD_NUMBER: _ClassVar[int]
    rule: Rule
    def __init__(self, rule: _Optional[_Union[Rule, _Mapping]] = ...) -> None: ...

class DeleteRuleRequest(_message.Message):
    __slots__ = ("rule_id",)
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    def __init__(self, rule_id: _Optional[str] = ...) -> None: ...

class DeleteRuleResponse(_message.Message):
    __slots__ = ("rule",)
    RULE_FIELD_NUMBER: _ClassVar[int]
    rule: Rule
    def __init__(self, rule: _Optional[_Union[Rule, _Mapping]] = ...) -> None: ...

class CheckRulesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckRulesResponse(_message.Message):
    __slots__ = ("violations", "impossible", "rules_checked")
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    IMPOSSIBLE_FIELD_NUMBER: _ClassVar[int]
    RULES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    violations: _containers.RepeatedCompositeFieldContainer[RuleViolation]
    impossible: _containers.RepeatedCompositeFieldContainer[RuleViolation]
    rules_checked: int
    def __init__(self, violations: _Optional[_Iterable[_Union[RuleViolation, _Mapping]]] = ..., impossible: _Optional[_Iterable[_Union[RuleViolation, _Mapping]]] = ..., rules_checked: _Optional[int] = ...) -> None: ...

class ForgetNodeRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class ForgetNodeResponse(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class OperatorPolicy(_message.Message):
    __slots__ = ("aggressiveness", "cpu_low", "cpu_high", "memory_low", "memory_high", "migrations_per_cycle", "migrations_per_hour", "migrations_per_node_hour", "min_move_interval_s", "return_after_s", "explicit")
    AGGRESSIVENESS_FIELD_NUMBER: _ClassVar[int]
    CPU_LOW_FIELD_NUMBER: _ClassVar[int]
    CPU_HIGH_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LOW_FIELD_NUMBER: _ClassVar[int]
    MEMORY_HIGH_FIELD_NUMBER: _ClassVar[int]
    MIGRATIONS_PER_CYCLE_FIELD_NUMBER: _ClassVar[int]
    MIGRATIONS_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    MIGRATIONS_PER_NODE_HOUR_FIELD_NUMBER: _ClassVar[int]
    MIN_MOVE_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    RETURN_AFTER_S_FIELD_NUMBER: _ClassVar[int]
    EXPLICIT_FIELD_NUMBER: _ClassVar[int]
    aggressiveness: str
    cpu_low: float
    cpu_high: float
    memory_low: float
    memory_high: float
    migrations_per_cycle: int
    migrations_per_hour: int
    migrations_per_node_hour: int
    min_move_interval_s: float
    return_after_s: float
    explicit: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, aggressiveness: _Optional[str] = ..., cpu_low: _Optional[float] = ..., cpu_high: _Optional[float] = ..., memory_low: _Optional[float] = ..., memory_high: _Optional[float] = ..., migrations_per_cycle: _Optional[int] = ..., migrations_per_hour: _Optional[int] = ..., migrations_per_node_hour: _Optional[int] = ..., min_move_interval_s: _Optional[float] = ..., return_after_s: _Optional[float] = ..., explicit: _Optional[_Iterable[str]] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: OperatorPolicy
    def __init__(self, policy: _Optional[_Union[OperatorPolicy, _Mapping]] = ...) -> None: ...

class SetPolicyRequest(_message.Message):
    __slots__ = ("values",)
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.ScalarMap[str, str]
    def __init__(self, values: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SetPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: OperatorPolicy
    def __init__(self, policy: _Optional[_Union[OperatorPolicy, _Mapping]] = ...) -> None: ...

class ExplainVmRequest(_message.Message):
    __slots__ = ("vm_uuid",)
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    def __init__(self, vm_uuid: _Optional[str] = ...) -> None: ...

class VmLastAction(_message.Message):
    __slots__ = ("plan_id", "action", "at", "origin")
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    action: _common_pb2.PlanAction
    at: _timestamp_pb2.Timestamp
    origin: str
    def __init__(self, plan_id: _Optional[str] = ..., action: _Optional[_Union[_common_pb2.PlanAction, _Mapping]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., origin: _Optional[str] = ...) -> None: ...

class ExplainVmResponse(_message.Message):
    __slots__ = ("vm_uuid", "vm_name", "node_id", "text", "last_action", "rules", "next")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    VM_NAME_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTION_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    vm_name: str
    node_id: str
    text: str
    last_action: VmLastAction
    rules: _containers.RepeatedCompositeFieldContainer[RuleViolation]
    next: str
    def __init__(self, vm_uuid: _Optional[str] = ..., vm_name: _Optional[str] = ..., node_id: _Optional[str] = ..., text: _Optional[str] = ..., last_action: _Optional[_Union[VmLastAction, _Mapping]] = ..., rules: _Optional[_Iterable[_Union[RuleViolation, _Mapping]]] = ..., next: _Optional[str] = ...) -> None: ...

class GetNPlusOneRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeLossCheck(_message.Message):
    __slots__ = ("node_id", "ok", "vms", "unplaced_vm_uuids", "reason")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    VMS_FIELD_NUMBER: _ClassVar[int]
    UNPLACED_VM_UUIDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    ok: bool
    vms: int
    unplaced_vm_uuids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, node_id: _Optional[str] = ..., ok: _Optional[bool] = ..., vms: _Optional[int] = ..., unplaced_vm_uuids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class GetNPlusOneResponse(_message.Message):
    __slots__ = ("ok", "nodes")
    OK_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    nodes: _containers.RepeatedCompositeFieldContainer[NodeLossCheck]
    def __init__(self, ok: _Optional[bool] = ..., nodes: _Optional[_Iterable[_Union[NodeLossCheck, _Mapping]]] = ...) -> None: ...

class GetHistoryRequest(_message.Message):
    __slots__ = ("node_id", "vm_uuid", "minutes")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    MINUTES_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    vm_uuid: str
    minutes: int
    def __init__(self, node_id: _Optional[str] = ..., vm_uuid: _Optional[str] = ..., minutes: _Optional[int] = ...) -> None: ...

class HistorySeries(_message.Message):
    __slots__ = ("name", "values")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    name: str
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, name: _Optional[str] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class GetHistoryResponse(_message.Message):
    __slots__ = ("bucket_s", "buckets", "times_unix_ms", "series")
    BUCKET_S_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    TIMES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    bucket_s: int
    buckets: int
    times_unix_ms: _containers.RepeatedScalarFieldContainer[int]
    series: _containers.RepeatedCompositeFieldContainer[HistorySeries]
    def __init__(self, bucket_s: _Optional[int] = ..., buckets: _Optional[int] = ..., times_unix_ms: _Optional[_Iterable[int]] = ..., series: _Optional[_Iterable[_Union[HistorySeries, _Mapping]]] = ...) -> None: ...
