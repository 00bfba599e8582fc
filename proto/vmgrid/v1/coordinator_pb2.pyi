import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from vmgrid.v1 import common_pb2 as _common_pb2
from vmgrid.v1 import grid_pb2 as _grid_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClusterInfo(_message.Message):
    __slots__ = ("cluster_id", "endpoint", "capacity", "usage", "health", "connected", "last_seen", "node_count", "vm_count")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    NODE_COUNT_FIELD_NUMBER: _ClassVar[int]
    VM_COUNT_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    endpoint: str
    capacity: _common_pb2.Resources
    usage: _common_pb2.Resources
    health: _grid_pb2.ClusterHealth
    connected: bool
    last_seen: _timestamp_pb2.Timestamp
    node_count: int
    vm_count: int
    def __init__(self, cluster_id: _Optional[str] = ..., endpoint: _Optional[str] = ..., capacity: _Optional[_Union[_common_pb2.Resources, _Mapping]] = ..., usage: _Optional[_Union[_common_pb2.Resources, _Mapping]] = ..., health: _Optional[_Union[_grid_pb2.ClusterHealth, _Mapping]] = ..., connected: _Optional[bool] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., node_count: _Optional[int] = ..., vm_count: _Optional[int] = ...) -> None: ...

class WanLink(_message.Message):
    __slots__ = ("cluster_a", "cluster_b", "bandwidth_bps", "latency_ms", "used_bps")
    CLUSTER_A_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_B_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_BPS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    USED_BPS_FIELD_NUMBER: _ClassVar[int]
    cluster_a: str
    cluster_b: str
    bandwidth_bps: int
    latency_ms: int
    used_bps: int
    def __init__(self, cluster_a: _Optional[str] = ..., cluster_b: _Optional[str] = ..., bandwidth_bps: _Optional[int] = ..., latency_ms: _Optional[int] = ..., used_bps: _Optional[int] = ...) -> None: ...

class Topology(_message.Message):
    __slots__ = ("clusters", "links")
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    clusters: _containers.RepeatedCompositeFieldContainer[ClusterInfo]
    links: _containers.RepeatedCompositeFieldContainer[WanLink]
    def __init__(self, clusters: _Optional[_Iterable[_Union[ClusterInfo, _Mapping]]] = ..., links: _Optional[_Iterable[_Union[WanLink, _Mapping]]] = ...) -> None: ...

class GridMove(_message.Message):
    __slots__ = ("vm_uuid", "source_cluster_id", "destination_cluster_id", "path_cluster_ids", "estimated_duration_ms", "start_ms", "reason", "state", "message", "progress_fraction", "simulated")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_CLUSTER_IDS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    source_cluster_id: str
    destination_cluster_id: str
    path_cluster_ids: _containers.RepeatedScalarFieldContainer[str]
    estimated_duration_ms: int
    start_ms: int
    reason: str
    state: _common_pb2.CommandState
    message: str
    progress_fraction: float
    simulated: bool
    def __init__(self, vm_uuid: _Optional[str] = ..., source_cluster_id: _Optional[str] = ..., destination_cluster_id: _Optional[str] = ..., path_cluster_ids: _Optional[_Iterable[str]] = ..., estimated_duration_ms: _Optional[int] = ..., start_ms: _Optional[int] = ..., reason: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.CommandState, str]] = ..., message: _Optional[str] = ..., progress_fraction: _Optional[float] = ..., simulated: _Optional[bool] = ...) -> None: ...

class GridPlan(_message.Message):
    __slots__ = ("plan_id", "state", "moves", "estimated_duration_ms", "summary", "created_at")
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MOVES_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    state: _common_pb2.PlanState
    moves: _containers.RepeatedCompositeFieldContainer[GridMove]
    estimated_duration_ms: int
    summary: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, plan_id: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.PlanState, str]] = ..., moves: _Optional[_Iterable[_Union[GridMove, _Mapping]]] = ..., estimated_duration_ms: _Optional[int] = ..., summary: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListClustersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListClustersResponse(_message.Message):
    __slots__ = ("clusters",)
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    clusters: _containers.RepeatedCompositeFieldContainer[ClusterInfo]
    def __init__(self, clusters: _Optional[_Iterable[_Union[ClusterInfo, _Mapping]]] = ...) -> None: ...

class GetTopologyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTopologyResponse(_message.Message):
    __slots__ = ("topology",)
    TOPOLOGY_FIELD_NUMBER: _ClassVar[int]
    topology: Topology
    def __init__(self, topology: _Optional[_Union[Topology, _Mapping]] = ...) -> None: ...

class PlanGridRequest(_message.Message):
    __slots__ = ("time_limit_ms",)
    TIME_LIMIT_MS_FIELD_NUMBER: _ClassVar[int]
    time_limit_ms: int
    def __init__(self, time_limit_ms: _Optional[int] = ...) -> None: ...

class PlanGridResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: GridPlan
    def __init__(self, plan: _Optional[_Union[GridPlan, _Mapping]] = ...) -> None: ...

class ApplyGridPlanRequest(_message.Message):
    __slots__ = ("plan_id", "copy_storage")
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    COPY_STORAGE_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    copy_storage: bool
    def __init__(self, plan_id: _Optional[str] = ..., copy_storage: _Optional[bool] = ...) -> None: ...

class ApplyGridPlanResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: GridPlan
    def __init__(self, plan: _Optional[_Union[GridPlan, _Mapping]] = ...) -> None: ...

class MigrateVmToClusterRequest(_message.Message):
    __slots__ = ("vm_uuid", "destination_cluster_id", "bandwidth_cap_bps", "command_id", "copy_storage")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_CAP_BPS_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    COPY_STORAGE_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    destination_cluster_id: str
    bandwidth_cap_bps: int
    command_id: str
    copy_storage: bool
    def __init__(self, vm_uuid: _Optional[str] = ..., destination_cluster_id: _Optional[str] = ..., bandwidth_cap_bps: _Optional[int] = ..., command_id: _Optional[str] = ..., copy_storage: _Optional[bool] = ...) -> None: ...

class MigrateVmToClusterResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: GridPlan
    def __init__(self, plan: _Optional[_Union[GridPlan, _Mapping]] = ...) -> None: ...

class GetGridPlanRequest(_message.Message):
    __slots__ = ("plan_id",)
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    def __init__(self, plan_id: _Optional[str] = ...) -> None: ...

class GetGridPlanResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: GridPlan
    def __init__(self, plan: _Optional[_Union[GridPlan, _Mapping]] = ...) -> None: ...

class CancelGridPlanRequest(_message.Message):
    __slots__ = ("plan_id",)
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    def __init__(self, plan_id: _Optional[str] = ...) -> None: ...

class CancelGridPlanResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: GridPlan
    def __init__(self, plan: _Optional[_Union[GridPlan, _Mapping]] = ...) -> None: ...

class CoordinatorServiceSubmitJobRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: _common_pb2.JobSpec
    def __init__(self, spec: _Optional[_Union[_common_pb2.JobSpec, _Mapping]] = ...) -> None: ...

class CoordinatorServiceSubmitJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _common_pb2.Job
    def __init__(self, job: _Optional[_Union[_common_pb2.Job, _Mapping]] = ...) -> None: ...

class CoordinatorServiceGetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CoordinatorServiceGetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _common_pb2.Job
    def __init__(self, job: _Optional[_Union[_common_pb2.Job, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("cluster_id", "states")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    states: _containers.RepeatedScalarFieldContainer[_common_pb2.JobState]
    def __init__(self, cluster_id: _Optional[str] = ..., states: _Optional[_Iterable[_Union[_common_pb2.JobState, str]]] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_common_pb2.Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[_common_pb2.Job, _Mapping]]] = ...) -> None: ...

class CoordinatorServiceWatchEventsRequest(_message.Message):
    __slots__ = ("kinds", "cluster_id")
    KINDS_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[_common_pb2.EventKind]
    cluster_id: str
    def __init__(self, kinds: _Optional[_Iterable[_Union[_common_pb2.EventKind, str]]] = ..., cluster_id: _Optional[str] = ...) -> None: ...

class CoordinatorServiceWatchEventsResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.Event
    def __init__(self, event: _Optional[_Union[_common_pb2.Event, _Mapping]] = ...) -> None: ...

class ForgetClusterRequest(_message.Message):
    __slots__ = ("cluster_id",)
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    def __init__(self, cluster_id: _Optional[str] = ...) -> None: ...

class ForgetClusterResponse(_message.Message):
    __slots__ = ("cluster_id", "failed_move_ids")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    FAILED_MOVE_IDS_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    failed_move_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cluster_id: _Optional[str] = ..., failed_move_ids: _Optional[_Iterable[str]] = ...) -> None: ...
