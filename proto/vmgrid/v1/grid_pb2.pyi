import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from vmgrid.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClusterHealthState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLUSTER_HEALTH_STATE_UNSPECIFIED: _ClassVar[ClusterHealthState]
    CLUSTER_HEALTH_STATE_HEALTHY: _ClassVar[ClusterHealthState]
    CLUSTER_HEALTH_STATE_DEGRADED: _ClassVar[ClusterHealthState]
    CLUSTER_HEALTH_STATE_OVERLOADED: _ClassVar[ClusterHealthState]
CLUSTER_HEALTH_STATE_UNSPECIFIED: ClusterHealthState
CLUSTER_HEALTH_STATE_HEALTHY: ClusterHealthState
CLUSTER_HEALTH_STATE_DEGRADED: ClusterHealthState
CLUSTER_HEALTH_STATE_OVERLOADED: ClusterHealthState

class GridLinkServiceConnectRequest(_message.Message):
    __slots__ = ("hello", "summary", "command_result")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    COMMAND_RESULT_FIELD_NUMBER: _ClassVar[int]
    hello: ClusterHello
    summary: ClusterSummary
    command_result: GridCommandResult
    def __init__(self, hello: _Optional[_Union[ClusterHello, _Mapping]] = ..., summary: _Optional[_Union[ClusterSummary, _Mapping]] = ..., command_result: _Optional[_Union[GridCommandResult, _Mapping]] = ...) -> None: ...

class GridLinkServiceConnectResponse(_message.Message):
    __slots__ = ("hello_ack", "command", "error")
    HELLO_ACK_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    hello_ack: ClusterHelloAck
    command: GridCommand
    error: GridStreamError
    def __init__(self, hello_ack: _Optional[_Union[ClusterHelloAck, _Mapping]] = ..., command: _Optional[_Union[GridCommand, _Mapping]] = ..., error: _Optional[_Union[GridStreamError, _Mapping]] = ...) -> None: ...

class ClusterHello(_message.Message):
    __slots__ = ("cluster_id", "capacity", "node_count", "endpoint", "manager_version", "migration_uri")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    NODE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    MANAGER_VERSION_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_URI_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    capacity: _common_pb2.Resources
    node_count: int
    endpoint: str
    manager_version: str
    migration_uri: str
    def __init__(self, cluster_id: _Optional[str] = ..., capacity: _Optional[_Union[_common_pb2.Resources, _Mapping]] = ..., node_count: _Optional[int] = ..., endpoint: _Optional[str] = ..., manager_version: _Optional[str] = ..., migration_uri: _Optional[str] = ...) -> None: ...

class ClusterHelloAck(_message.Message):
    __slots__ = ("grid_id", "summary_period_ms", "heartbeat_timeout_ms", "known_cluster", "term")
    GRID_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_PERIOD_MS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    KNOWN_CLUSTER_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    grid_id: str
    summary_period_ms: int
    heartbeat_timeout_ms: int
    known_cluster: bool
    term: int
    def __init__(self, grid_id: _Optional[str] = ..., summary_period_ms: _Optional[int] = ..., heartbeat_timeout_ms: _Optional[int] = ..., known_cluster: _Optional[bool] = ..., term: _Optional[int] = ...) -> None: ...

class GridStreamError(_message.Message):
    __slots__ = ("message", "field")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    message: str
    field: str
    def __init__(self, message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class VmDemand(_message.Message):
    __slots__ = ("vm_uuid", "name", "node_id", "cpu_millicores", "memory_bytes", "network_bps")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    NETWORK_BPS_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    name: str
    node_id: str
    cpu_millicores: int
    memory_bytes: int
    network_bps: int
    def __init__(self, vm_uuid: _Optional[str] = ..., name: _Optional[str] = ..., node_id: _Optional[str] = ..., cpu_millicores: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., network_bps: _Optional[int] = ...) -> None: ...

class InterClusterTraffic(_message.Message):
    __slots__ = ("vm_uuid", "peer_vm_uuid", "peer_cluster_id", "bytes_per_second")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    PEER_VM_UUID_FIELD_NUMBER: _ClassVar[int]
    PEER_CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    peer_vm_uuid: str
    peer_cluster_id: str
    bytes_per_second: int
    def __init__(self, vm_uuid: _Optional[str] = ..., peer_vm_uuid: _Optional[str] = ..., peer_cluster_id: _Optional[str] = ..., bytes_per_second: _Optional[int] = ...) -> None: ...

class ClusterHealth(_message.Message):
    __slots__ = ("state", "nodes_total", "nodes_lost", "nodes_overloaded", "message")
    STATE_FIELD_NUMBER: _ClassVar[int]
    NODES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    NODES_LOST_FIELD_NUMBER: _ClassVar[int]
    NODES_OVERLOADED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    state: ClusterHealthState
    nodes_total: int
    nodes_lost: int
    nodes_overloaded: int
    message: str
    def __init__(self, state: _Optional[_Union[ClusterHealthState, str]] = ..., nodes_total: _Optional[int] = ..., nodes_lost: _Optional[int] = ..., nodes_overloaded: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class ClusterSummary(_message.Message):
    __slots__ = ("sent_at", "sequence", "capacity", "usage", "movable_vms", "inter_cluster_traffic", "health", "external_flows", "vm_addresses", "heavy_pairs")
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    MOVABLE_VMS_FIELD_NUMBER: _ClassVar[int]
    INTER_CLUSTER_TRAFFIC_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_FLOWS_FIELD_NUMBER: _ClassVar[int]
    VM_ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    HEAVY_PAIRS_FIELD_NUMBER: _ClassVar[int]
    sent_at: _timestamp_pb2.Timestamp
    sequence: int
    capacity: _common_pb2.Resources
    usage: _common_pb2.Resources
    movable_vms: _containers.RepeatedCompositeFieldContainer[VmDemand]
    inter_cluster_traffic: _containers.RepeatedCompositeFieldContainer[InterClusterTraffic]
    health: ClusterHealth
    external_flows: _containers.RepeatedCompositeFieldContainer[ExternalFlow]
    vm_addresses: _containers.RepeatedCompositeFieldContainer[VmAddress]
    heavy_pairs: _containers.RepeatedCompositeFieldContainer[VmPairTraffic]
    def __init__(self, sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sequence: _Optional[int] = ..., capacity: _Optional[_Union[_common_pb2.Resources, _Mapping]] = ..., usage: _Optional[_Union[_common_pb2.Resources, _Mapping]] = ..., movable_vms: _Optional[_Iterable[_Union[VmDemand, _Mapping]]] = ..., inter_cluster_traffic: _Optional[_Iterable[_Union[InterClusterTraffic, _Mapping]]] = ..., health: _Optional[_Union[ClusterHealth, _Mapping]] = ..., external_flows: _Optional[_Iterable[_Union[ExternalFlow, _Mapping]]] = ..., vm_addresses: _Optional[_Iterable[_Union[VmAddress, _Mapping]]] = ..., heavy_pairs: _Optional[_Iterable[_Union[VmPairTraffic, _Mapping]]] = ...) -> None: ...

class ExternalFlow(_message.Message):
    __slots__ = ("vm_uuid", "peer_mac", "peer_ip", "bytes_per_second")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    PEER_MAC_FIELD_NUMBER: _ClassVar[int]
    PEER_IP_FIELD_NUMBER: _ClassVar[int]
    BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    peer_mac: str
    peer_ip: str
    bytes_per_second: int
    def __init__(self, vm_uuid: _Optional[str] = ..., peer_mac: _Optional[str] = ..., peer_ip: _Optional[str] = ..., bytes_per_second: _Optional[int] = ...) -> None: ...

class VmAddress(_message.Message):
    __slots__ = ("vm_uuid", "mac", "ip")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    mac: str
    ip: str
    def __init__(self, vm_uuid: _Optional[str] = ..., mac: _Optional[str] = ..., ip: _Optional[str] = ...) -> None: ...

class VmPairTraffic(_message.Message):
    __slots__ = ("vm_a", "vm_b", "bytes_per_second")
    VM_A_FIELD_NUMBER: _ClassVar[int]
    VM_B_FIELD_NUMBER: _ClassVar[int]
    BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    vm_a: str
    vm_b: str
    bytes_per_second: int
    def __init__(self, vm_a: _Optional[str] = ..., vm_b: _Optional[str] = ..., bytes_per_second: _Optional[int] = ...) -> None: ...

class GridCommand(_message.Message):
    __slots__ = ("command_id", "term", "reserve_capacity", "migrate_to_uri", "commit_reservation", "release_reservation", "submit_job")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    RESERVE_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    MIGRATE_TO_URI_FIELD_NUMBER: _ClassVar[int]
    COMMIT_RESERVATION_FIELD_NUMBER: _ClassVar[int]
    RELEASE_RESERVATION_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_JOB_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    term: int
    reserve_capacity: ReserveCapacityCommand
    migrate_to_uri: MigrateToUriCommand
    commit_reservation: CommitReservationCommand
    release_reservation: ReleaseReservationCommand
    submit_job: SubmitJobCommand
    def __init__(self, command_id: _Optional[str] = ..., term: _Optional[int] = ..., reserve_capacity: _Optional[_Union[ReserveCapacityCommand, _Mapping]] = ..., migrate_to_uri: _Optional[_Union[MigrateToUriCommand, _Mapping]] = ..., commit_reservation: _Optional[_Union[CommitReservationCommand, _Mapping]] = ..., release_reservation: _Optional[_Union[ReleaseReservationCommand, _Mapping]] = ..., submit_job: _Optional[_Union[SubmitJobCommand, _Mapping]] = ...) -> None: ...

class ReserveCapacityCommand(_message.Message):
    __slots__ = ("reservation_id", "vm", "ttl_ms")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    VM_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    vm: VmDemand
    ttl_ms: int
    def __init__(self, reservation_id: _Optional[str] = ..., vm: _Optional[_Union[VmDemand, _Mapping]] = ..., ttl_ms: _Optional[int] = ...) -> None: ...

class MigrateToUriCommand(_message.Message):
    __slots__ = ("vm_uuid", "destination_uri", "bandwidth_cap_bps", "live", "reservation_id", "migration_uri", "copy_storage", "simulated_destination", "destination_node_id", "memory_bytes")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_URI_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_CAP_BPS_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_URI_FIELD_NUMBER: _ClassVar[int]
    COPY_STORAGE_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_DESTINATION_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    destination_uri: str
    bandwidth_cap_bps: int
    live: bool
    reservation_id: str
    migration_uri: str
    copy_storage: bool
    simulated_destination: bool
    destination_node_id: str
    memory_bytes: int
    def __init__(self, vm_uuid: _Optional[str] = ..., destination_uri: _Optional[str] = ..., bandwidth_cap_bps: _Optional[int] = ..., live: _Optional[bool] = ..., reservation_id: _Optional[str] = ..., migration_uri: _Optional[str] = ..., copy_storage: _Optional[bool] = ..., simulated_destination: _Optional[bool] = ..., destination_node_id: _Optional[str] = ..., memory_bytes: _Optional[int] = ...) -> None: ...

class CommitReservationCommand(_message.Message):
    __slots__ = ("reservation_id",)
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    def __init__(self, reservation_id: _Optional[str] = ...) -> None: ...

class ReleaseReservationCommand(_message.Message):
    __slots__ = ("reservation_id",)
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    def __init__(self, reservation_id: _Optional[str] = ...) -> None: ...

class SubmitJobCommand(_message.Message):
    __slots__ = ("spec", "job_id")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    spec: _common_pb2.JobSpec
    job_id: str
    def __init__(self, spec: _Optional[_Union[_common_pb2.JobSpec, _Mapping]] = ..., job_id: _Optional[str] = ...) -> None: ...

class GridCommandResult(_message.Message):
    __slots__ = ("command_id", "state", "progress_fraction", "message", "simulated", "data_processed_bytes", "data_remaining_bytes", "reservation_id", "node_id", "destination_uri", "job_id", "updated_at", "migration_uri")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FRACTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    DATA_PROCESSED_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_REMAINING_BYTES_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_URI_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_URI_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    state: _common_pb2.CommandState
    progress_fraction: float
    message: str
    simulated: bool
    data_processed_bytes: int
    data_remaining_bytes: int
    reservation_id: str
    node_id: str
    destination_uri: str
    job_id: str
    updated_at: _timestamp_pb2.Timestamp
    migration_uri: str
    def __init__(self, command_id: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.CommandState, str]] = ..., progress_fraction: _Optional[float] = ..., message: _Optional[str] = ..., simulated: _Optional[bool] = ..., data_processed_bytes: _Optional[int] = ..., data_remaining_bytes: _Optional[int] = ..., reservation_id: _Optional[str] = ..., node_id: _Optional[str] = ..., destination_uri: _Optional[str] = ..., job_id: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., migration_uri: _Optional[str] = ...) -> None: ...
