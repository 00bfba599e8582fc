import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VmState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VM_STATE_UNSPECIFIED: _ClassVar[VmState]
    VM_STATE_RUNNING: _ClassVar[VmState]
    VM_STATE_BLOCKED: _ClassVar[VmState]
    VM_STATE_PAUSED: _ClassVar[VmState]
    VM_STATE_SHUTTING_DOWN: _ClassVar[VmState]
    VM_STATE_SHUT_OFF: _ClassVar[VmState]
    VM_STATE_CRASHED: _ClassVar[VmState]
    VM_STATE_PM_SUSPENDED: _ClassVar[VmState]
    VM_STATE_DEFINED: _ClassVar[VmState]
    VM_STATE_MIGRATING: _ClassVar[VmState]

class CommandState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMMAND_STATE_UNSPECIFIED: _ClassVar[CommandState]
    COMMAND_STATE_ACCEPTED: _ClassVar[CommandState]
    COMMAND_STATE_RUNNING: _ClassVar[CommandState]
    COMMAND_STATE_SUCCEEDED: _ClassVar[CommandState]
    COMMAND_STATE_FAILED: _ClassVar[CommandState]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_NODE_JOINED: _ClassVar[EventKind]
    EVENT_KIND_NODE_LOST: _ClassVar[EventKind]
    EVENT_KIND_NODE_RETURNED: _ClassVar[EventKind]
    EVENT_KIND_VM_APPEARED: _ClassVar[EventKind]
    EVENT_KIND_VM_DISAPPEARED: _ClassVar[EventKind]
    EVENT_KIND_VM_STATE_CHANGED: _ClassVar[EventKind]
    EVENT_KIND_VM_LIFECYCLE: _ClassVar[EventKind]
    EVENT_KIND_COMMAND_RESULT: _ClassVar[EventKind]
    EVENT_KIND_PLAN_CHANGED: _ClassVar[EventKind]
    EVENT_KIND_CLUSTER_JOINED: _ClassVar[EventKind]
    EVENT_KIND_CLUSTER_LOST: _ClassVar[EventKind]
    EVENT_KIND_CLUSTER_RETURNED: _ClassVar[EventKind]
    EVENT_KIND_JOB_CHANGED: _ClassVar[EventKind]
    EVENT_KIND_NODE_DRAIN_CHANGED: _ClassVar[EventKind]
    EVENT_KIND_NODE_DEGRADED_CHANGED: _ClassVar[EventKind]
    EVENT_KIND_NODE_POWER_CHANGED: _ClassVar[EventKind]
    EVENT_KIND_RULE_CHANGED: _ClassVar[EventKind]
    EVENT_KIND_NODE_FORGOTTEN: _ClassVar[EventKind]
    EVENT_KIND_CLUSTER_FORGOTTEN: _ClassVar[EventKind]
    EVENT_KIND_VM_CONFLICT: _ClassVar[EventKind]
    EVENT_KIND_POLICY_CHANGED: _ClassVar[EventKind]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_PENDING: _ClassVar[JobState]
    JOB_STATE_PLACING: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
    JOB_STATE_STARTING: _ClassVar[JobState]

class PlanActionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLAN_ACTION_KIND_UNSPECIFIED: _ClassVar[PlanActionKind]
    PLAN_ACTION_KIND_MIGRATE: _ClassVar[PlanActionKind]
    PLAN_ACTION_KIND_BOOT: _ClassVar[PlanActionKind]
    PLAN_ACTION_KIND_SUSPEND: _ClassVar[PlanActionKind]
    PLAN_ACTION_KIND_RESUME: _ClassVar[PlanActionKind]
    PLAN_ACTION_KIND_SHUTDOWN_VM: _ClassVar[PlanActionKind]
    PLAN_ACTION_KIND_SHUTDOWN_NODE: _ClassVar[PlanActionKind]
    PLAN_ACTION_KIND_BOOT_NODE: _ClassVar[PlanActionKind]
    PLAN_ACTION_KIND_MIGRATE_TO_CLUSTER: _ClassVar[PlanActionKind]

class PlanState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLAN_STATE_UNSPECIFIED: _ClassVar[PlanState]
    PLAN_STATE_PROPOSED: _ClassVar[PlanState]
    PLAN_STATE_AWAITING_APPROVAL: _ClassVar[PlanState]
    PLAN_STATE_APPROVED: _ClassVar[PlanState]
    PLAN_STATE_REJECTED: _ClassVar[PlanState]
    PLAN_STATE_RUNNING: _ClassVar[PlanState]
    PLAN_STATE_SUCCEEDED: _ClassVar[PlanState]
    PLAN_STATE_FAILED: _ClassVar[PlanState]
    PLAN_STATE_CANCELLED: _ClassVar[PlanState]
VM_STATE_UNSPECIFIED: VmState
VM_STATE_RUNNING: VmState
VM_STATE_BLOCKED: VmState
VM_STATE_PAUSED: VmState
VM_STATE_SHUTTING_DOWN: VmState
VM_STATE_SHUT_OFF: VmState
VM_STATE_CRASHED: VmState
VM_STATE_PM_SUSPENDED: VmState
VM_STATE_DEFINED: VmState
VM_STATE_MIGRATING: VmState
COMMAND_STATE_UNSPECIFIED: CommandState
COMMAND_STATE_ACCEPTED: CommandState
COMMAND_STATE_RUNNING: CommandState
COMMAND_STATE_SUCCEEDED: CommandState
COMMAND_STATE_FAILED: CommandState
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_NODE_JOINED: EventKind
EVENT_KIND_NODE_LOST: EventKind
EVENT_KIND_NODE_RETURNED: EventKind
EVENT_KIND_VM_APPEARED: EventKind
EVENT_KIND_VM_DISAPPEARED: EventKind
EVENT_KIND_VM_STATE_CHANGED: EventKind
EVENT_KIND_VM_LIFECYCLE: EventKind
EVENT_KIND_COMMAND_RESULT: EventKind
EVENT_KIND_PLAN_CHANGED: EventKind
EVENT_KIND_CLUSTER_JOINED: EventKind
EVENT_KIND_CLUSTER_LOST: EventKind
EVENT_KIND_CLUSTER_RETURNED: EventKind
EVENT_KIND_JOB_CHANGED: EventKind
EVENT_KIND_NODE_DRAIN_CHANGED: EventKind
EVENT_KIND_NODE_DEGRADED_CHANGED: EventKind
EVENT_KIND_NODE_POWER_CHANGED: EventKind
EVENT_KIND_RULE_CHANGED: EventKind
EVENT_KIND_NODE_FORGOTTEN: EventKind
EVENT_KIND_CLUSTER_FORGOTTEN: EventKind
EVENT_KIND_VM_CONFLICT: EventKind
EVENT_KIND_POLICY_CHANGED: EventKind
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_PENDING: JobState
JOB_STATE_PLACING: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
JOB_STATE_STARTING: JobState
PLAN_ACTION_KIND_UNSPECIFIED: PlanActionKind
PLAN_ACTION_KIND_MIGRATE: PlanActionKind
PLAN_ACTION_KIND_BOOT: PlanActionKind
PLAN_ACTION_KIND_SUSPEND: PlanActionKind
PLAN_ACTION_KIND_RESUME: PlanActionKind
PLAN_ACTION_KIND_SHUTDOWN_VM: PlanActionKind
PLAN_ACTION_KIND_SHUTDOWN_NODE: PlanActionKind
PLAN_ACTION_KIND_BOOT_NODE: PlanActionKind
PLAN_ACTION_KIND_MIGRATE_TO_CLUSTER: PlanActionKind
PLAN_STATE_UNSPECIFIED: PlanState
PLAN_STATE_PROPOSED: PlanState
PLAN_STATE_AWAITING_APPROVAL: PlanState
PLAN_STATE_APPROVED: PlanState
PLAN_STATE_REJECTED: PlanState
PLAN_STATE_RUNNING: PlanState
PLAN_STATE_SUCCEEDED: PlanState
PLAN_STATE_FAILED: PlanState
PLAN_STATE_CANCELLED: PlanState

class Resources(_message.Message):
    __slots__ = ("cpu_millicores", "memory_bytes", "network_bps")
    CPU_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    NETWORK_BPS_FIELD_NUMBER: _ClassVar[int]
    cpu_millicores: int
    memory_bytes: int
    network_bps: int
    def __init__(self, cpu_millicores: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., network_bps: _Optional[int] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("sequence", "at", "kind", "cluster_id", "node_id", "vm_uuid", "vm_state", "previous_vm_state", "message", "simulated", "plan_id", "job_id", "command_id")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    VM_STATE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VM_STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    at: _timestamp_pb2.Timestamp
    kind: EventKind
    cluster_id: str
    node_id: str
    vm_uuid: str
    vm_state: VmState
    previous_vm_state: VmState
    message: str
    simulated: bool
    plan_id: str
    job_id: str
    command_id: str
    def __init__(self, sequence: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[_Union[EventKind, str]] = ..., cluster_id: _Optional[str] = ..., node_id: _Optional[str] = ..., vm_uuid: _Optional[str] = ..., vm_state: _Optional[_Union[VmState, str]] = ..., previous_vm_state: _Optional[_Union[VmState, str]] = ..., message: _Optional[str] = ..., simulated: _Optional[bool] = ..., plan_id: _Optional[str] = ..., job_id: _Optional[str] = ..., command_id: _Optional[str] = ...) -> None: ...

class VmSpec(_message.Message):
    __slots__ = ("name", "vcpus", "memory_bytes", "cpu_demand_millicores", "network_demand_bps", "domain_xml", "image")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPU_DEMAND_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    NETWORK_DEMAND_BPS_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_XML_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    vcpus: int
    memory_bytes: int
    cpu_demand_millicores: int
    network_demand_bps: int
    domain_xml: str
    image: str
    def __init__(self, name: _Optional[str] = ..., vcpus: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., cpu_demand_millicores: _Optional[int] = ..., network_demand_bps: _Optional[int] = ..., domain_xml: _Optional[str] = ..., image: _Optional[str] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("name", "vms", "cluster_id", "document_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VMS_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    vms: _containers.RepeatedCompositeFieldContainer[VmSpec]
    cluster_id: str
    document_json: str
    def __init__(self, name: _Optional[str] = ..., vms: _Optional[_Iterable[_Union[VmSpec, _Mapping]]] = ..., cluster_id: _Optional[str] = ..., document_json: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "spec", "state", "cluster_id", "vm_uuids", "message", "submitted_at", "updated_at")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    VM_UUIDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    spec: JobSpec
    state: JobState
    cluster_id: str
    vm_uuids: _containers.RepeatedScalarFieldContainer[str]
    message: str
    submitted_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., cluster_id: _Optional[str] = ..., vm_uuids: _Optional[_Iterable[str]] = ..., message: _Optional[str] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PlanAction(_message.Message):
    __slots__ = ("action_id", "kind", "vm_uuid", "source_node_id", "destination_node_id", "start_ms", "duration_ms", "depends_on_action_ids", "state", "simulated", "destination_cluster_id", "reason")
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_ACTION_IDS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    kind: PlanActionKind
    vm_uuid: str
    source_node_id: str
    destination_node_id: str
    start_ms: int
    duration_ms: int
    depends_on_action_ids: _containers.RepeatedScalarFieldContainer[str]
    state: PlanState
    simulated: bool
    destination_cluster_id: str
    reason: str
    def __init__(self, action_id: _Optional[str] = ..., kind: _Optional[_Union[PlanActionKind, str]] = ..., vm_uuid: _Optional[str] = ..., source_node_id: _Optional[str] = ..., destination_node_id: _Optional[str] = ..., start_ms: _Optional[int] = ..., duration_ms: _Optional[int] = ..., depends_on_action_ids: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[PlanState, str]] = ..., simulated: _Optional[bool] = ..., destination_cluster_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("plan_id", "state", "actions", "estimated_duration_ms", "summary", "created_at", "active_nodes_before", "active_nodes_after")
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_NODES_BEFORE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_NODES_AFTER_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    state: PlanState
    actions: _containers.RepeatedCompositeFieldContainer[PlanAction]
    estimated_duration_ms: int
    summary: str
    created_at: _timestamp_pb2.Timestamp
    active_nodes_before: int
    active_nodes_after: int
    def __init__(self, plan_id: _Optional[str] = ..., state: _Optional[_Union[PlanState, str]] = ..., actions: _Optional[_Iterable[_Union[PlanAction, _Mapping]]] = ..., estimated_duration_ms: _Optional[int] = ..., summary: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., active_nodes_before: _Optional[int] = ..., active_nodes_after: _Optional[int] = ...) -> None: ...
