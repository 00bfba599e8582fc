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

class LifecycleEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LIFECYCLE_EVENT_KIND_UNSPECIFIED: _ClassVar[LifecycleEventKind]
    LIFECYCLE_EVENT_KIND_STARTED: _ClassVar[LifecycleEventKind]
    LIFECYCLE_EVENT_KIND_STOPPED: _ClassVar[LifecycleEventKind]
    LIFECYCLE_EVENT_KIND_SUSPENDED: _ClassVar[LifecycleEventKind]
    LIFECYCLE_EVENT_KIND_RESUMED: _ClassVar[LifecycleEventKind]
    LIFECYCLE_EVENT_KIND_MIGRATED: _ClassVar[LifecycleEventKind]
    LIFECYCLE_EVENT_KIND_DEFINED: _ClassVar[LifecycleEventKind]
    LIFECYCLE_EVENT_KIND_UNDEFINED: _ClassVar[LifecycleEventKind]
LIFECYCLE_EVENT_KIND_UNSPECIFIED: LifecycleEventKind
LIFECYCLE_EVENT_KIND_STARTED: LifecycleEventKind
LIFECYCLE_EVENT_KIND_STOPPED: LifecycleEventKind
LIFECYCLE_EVENT_KIND_SUSPENDED: LifecycleEventKind
LIFECYCLE_EVENT_KIND_RESUMED: LifecycleEventKind
LIFECYCLE_EVENT_KIND_MIGRATED: LifecycleEventKind
LIFECYCLE_EVENT_KIND_DEFINED: LifecycleEventKind
LIFECYCLE_EVENT_KIND_UNDEFINED: LifecycleEventKind

class NodeLinkServiceConnectRequest(_message.Message):
    __slots__ = ("hello", "report", "heartbeat", "lifecycle", "command_result")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_RESULT_FIELD_NUMBER: _ClassVar[int]
    hello: NodeHello
    report: NodeReport
    heartbeat: Heartbeat
    lifecycle: LifecycleEvent
    command_result: CommandResult
    def __init__(self, hello: _Optional[_Union[NodeHello, _Mapping]] = ..., report: _Optional[_Union[NodeReport, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., lifecycle: _Optional[_Union[LifecycleEvent, _Mapping]] = ..., command_result: _Optional[_Union[CommandResult, _Mapping]] = ...) -> None: ...

class NodeLinkServiceConnectResponse(_message.Message):
    __slots__ = ("hello_ack", "command", "error")
    HELLO_ACK_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    hello_ack: HelloAck
    command: NodeCommand
    error: StreamError
    def __init__(self, hello_ack: _Optional[_Union[HelloAck, _Mapping]] = ..., command: _Optional[_Union[NodeCommand, _Mapping]] = ..., error: _Optional[_Union[StreamError, _Mapping]] = ...) -> None: ...

class NodeCapacity(_message.Message):
    __slots__ = ("cpu_millicores", "memory_bytes", "nic_bandwidth_bps")
    CPU_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    NIC_BANDWIDTH_BPS_FIELD_NUMBER: _ClassVar[int]
    cpu_millicores: int
    memory_bytes: int
    nic_bandwidth_bps: int
    def __init__(self, cpu_millicores: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., nic_bandwidth_bps: _Optional[int] = ...) -> None: ...

class NodeHello(_message.Message):
    __slots__ = ("node_id", "hostname", "capacity", "migration_uri", "agent_version", "hypervisor_kind", "simulated", "started_at", "report_period_ms", "peer_uri")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_URI_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    HYPERVISOR_KIND_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    REPORT_PERIOD_MS_FIELD_NUMBER: _ClassVar[int]
    PEER_URI_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    hostname: str
    capacity: NodeCapacity
    migration_uri: str
    agent_version: str
    hypervisor_kind: str
    simulated: bool
    started_at: _timestamp_pb2.Timestamp
    report_period_ms: int
    peer_uri: str
    def __init__(self, node_id: _Optional[str] = ..., hostname: _Optional[str] = ..., capacity: _Optional[_Union[NodeCapacity, _Mapping]] = ..., migration_uri: _Optional[str] = ..., agent_version: _Optional[str] = ..., hypervisor_kind: _Optional[str] = ..., simulated: _Optional[bool] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., report_period_ms: _Optional[int] = ..., peer_uri: _Optional[str] = ...) -> None: ...

class HelloAck(_message.Message):
    __slots__ = ("cluster_id", "manager_version", "report_period_ms", "heartbeat_timeout_ms", "known_node", "term")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    MANAGER_VERSION_FIELD_NUMBER: _ClassVar[int]
    REPORT_PERIOD_MS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    KNOWN_NODE_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    manager_version: str
    report_period_ms: int
    heartbeat_timeout_ms: int
    known_node: bool
    term: int
    def __init__(self, cluster_id: _Optional[str] = ..., manager_version: _Optional[str] = ..., report_period_ms: _Optional[int] = ..., heartbeat_timeout_ms: _Optional[int] = ..., known_node: _Optional[bool] = ..., term: _Optional[int] = ...) -> None: ...

class StreamError(_message.Message):
    __slots__ = ("message", "field", "sequence")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    message: str
    field: str
    sequence: int
    def __init__(self, message: _Optional[str] = ..., field: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...

class HostUsage(_message.Message):
    __slots__ = ("cpu_used_millicores", "memory_used_bytes", "memory_total_bytes", "net_rx_bytes_per_second", "net_tx_bytes_per_second", "pressure")
    CPU_USED_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    NET_RX_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    NET_TX_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    PRESSURE_FIELD_NUMBER: _ClassVar[int]
    cpu_used_millicores: int
    memory_used_bytes: int
    memory_total_bytes: int
    net_rx_bytes_per_second: int
    net_tx_bytes_per_second: int
    pressure: Pressure
    def __init__(self, cpu_used_millicores: _Optional[int] = ..., memory_used_bytes: _Optional[int] = ..., memory_total_bytes: _Optional[int] = ..., net_rx_bytes_per_second: _Optional[int] = ..., net_tx_bytes_per_second: _Optional[int] = ..., pressure: _Optional[_Union[Pressure, _Mapping]] = ...) -> None: ...

class PressureStall(_message.Message):
    __slots__ = ("available", "some_avg10", "full_avg10", "some_total_us", "full_total_us")
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    SOME_AVG10_FIELD_NUMBER: _ClassVar[int]
    FULL_AVG10_FIELD_NUMBER: _ClassVar[int]
    SOME_TOTAL_US_FIELD_NUMBER: _ClassVar[int]
    FULL_TOTAL_US_FIELD_NUMBER: _ClassVar[int]
    available: bool
    some_avg10: float
    full_avg10: float
    some_total_us: int
    full_total_us: int
    def __init__(self, available: _Optional[bool] = ..., some_avg10: _Optional[float] = ..., full_avg10: _Optional[float] = ..., some_total_us: _Optional[int] = ..., full_total_us: _Optional[int] = ...) -> None: ...

class Pressure(_message.Message):
    __slots__ = ("cpu", "memory", "io")
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    IO_FIELD_NUMBER: _ClassVar[int]
    cpu: PressureStall
    memory: PressureStall
    io: PressureStall
    def __init__(self, cpu: _Optional[_Union[PressureStall, _Mapping]] = ..., memory: _Optional[_Union[PressureStall, _Mapping]] = ..., io: _Optional[_Union[PressureStall, _Mapping]] = ...) -> None: ...

class VmPressure(_message.Message):
    __slots__ = ("uuid", "pressure")
    UUID_FIELD_NUMBER: _ClassVar[int]
    PRESSURE_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    pressure: Pressure
    def __init__(self, uuid: _Optional[str] = ..., pressure: _Optional[_Union[Pressure, _Mapping]] = ...) -> None: ...

class VmUsage(_message.Message):
    __slots__ = ("uuid", "name", "state", "vcpus", "cpu_used_millicores", "memory_used_bytes", "memory_allocated_bytes", "net_rx_bytes_per_second", "net_tx_bytes_per_second", "disk_read_bytes_per_second", "disk_write_bytes_per_second", "simulated", "memory_resident_bytes", "memory_dirty_bytes_per_second", "memory_dirty_set_bytes")
    UUID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    CPU_USED_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ALLOCATED_BYTES_FIELD_NUMBER: _ClassVar[int]
    NET_RX_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    NET_TX_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    DISK_READ_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    DISK_WRITE_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    MEMORY_RESIDENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_DIRTY_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    MEMORY_DIRTY_SET_BYTES_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    name: str
    state: _common_pb2.VmState
    vcpus: int
    cpu_used_millicores: int
    memory_used_bytes: int
    memory_allocated_bytes: int
    net_rx_bytes_per_second: int
    net_tx_bytes_per_second: int
    disk_read_bytes_per_second: int
    disk_write_bytes_per_second: int
    simulated: bool
    memory_resident_bytes: int
    memory_dirty_bytes_per_second: int
    memory_dirty_set_bytes: int
    def __init__(self, uuid: _Optional[str] = ..., name: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.VmState, str]] = ..., vcpus: _Optional[int] = ..., cpu_used_millicores: _Optional[int] = ..., memory_used_bytes: _Optional[int] = ..., memory_allocated_bytes: _Optional[int] = ..., net_rx_bytes_per_second: _Optional[int] = ..., net_tx_bytes_per_second: _Optional[int] = ..., disk_read_bytes_per_second: _Optional[int] = ..., disk_write_bytes_per_second: _Optional[int] = ..., simulated: _Optional[bool] = ..., memory_resident_bytes: _Optional[int] = ..., memory_dirty_bytes_per_second: _Optional[int] = ..., memory_dirty_set_bytes: _Optional[int] = ...) -> None: ...

class NodeReport(_message.Message):
    __slots__ = ("sent_at", "sequence", "host", "vms", "vm_pressure", "traffic", "vm_columns")
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    VMS_FIELD_NUMBER: _ClassVar[int]
    VM_PRESSURE_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_FIELD_NUMBER: _ClassVar[int]
    VM_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    sent_at: _timestamp_pb2.Timestamp
    sequence: int
    host: HostUsage
    vms: _containers.RepeatedCompositeFieldContainer[VmUsage]
    vm_pressure: _containers.RepeatedCompositeFieldContainer[VmPressure]
    traffic: TrafficMatrix
    vm_columns: VmColumns
    def __init__(self, sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sequence: _Optional[int] = ..., host: _Optional[_Union[HostUsage, _Mapping]] = ..., vms: _Optional[_Iterable[_Union[VmUsage, _Mapping]]] = ..., vm_pressure: _Optional[_Iterable[_Union[VmPressure, _Mapping]]] = ..., traffic: _Optional[_Union[TrafficMatrix, _Mapping]] = ..., vm_columns: _Optional[_Union[VmColumns, _Mapping]] = ...) -> None: ...

class VmColumns(_message.Message):
    __slots__ = ("uuids", "names", "same_vms", "states", "vcpus", "cpu_used_millicores", "memory_used_bytes", "memory_allocated_bytes", "net_rx_bytes_per_second", "net_tx_bytes_per_second", "disk_read_bytes_per_second", "disk_write_bytes_per_second", "simulated", "memory_resident_bytes", "memory_dirty_bytes_per_second", "memory_dirty_set_bytes", "int_block")
    UUIDS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    SAME_VMS_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    CPU_USED_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ALLOCATED_BYTES_FIELD_NUMBER: _ClassVar[int]
    NET_RX_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    NET_TX_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    DISK_READ_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    DISK_WRITE_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    MEMORY_RESIDENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_DIRTY_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    MEMORY_DIRTY_SET_BYTES_FIELD_NUMBER: _ClassVar[int]
    INT_BLOCK_FIELD_NUMBER: _ClassVar[int]
    uuids: _containers.RepeatedScalarFieldContainer[str]
    names: _containers.RepeatedScalarFieldContainer[str]
    same_vms: bool
    states: _containers.RepeatedScalarFieldContainer[_common_pb2.VmState]
    vcpus: _containers.RepeatedScalarFieldContainer[int]
    cpu_used_millicores: _containers.RepeatedScalarFieldContainer[int]
    memory_used_bytes: _containers.RepeatedScalarFieldContainer[int]
    memory_allocated_bytes: _containers.RepeatedScalarFieldContainer[int]
    net_rx_bytes_per_second: _containers.RepeatedScalarFieldContainer[int]
    net_tx_bytes_per_second: _containers.RepeatedScalarFieldContainer[int]
    disk_read_bytes_per_second: _containers.RepeatedScalarFieldContainer[int]
    disk_write_bytes_per_second: _containers.RepeatedScalarFieldContainer[int]
    simulated: _containers.RepeatedScalarFieldContainer[bool]
    memory_resident_bytes: _containers.RepeatedScalarFieldContainer[int]
    memory_dirty_bytes_per_second: _containers.RepeatedScalarFieldContainer[int]
    memory_dirty_set_bytes: _containers.RepeatedScalarFieldContainer[int]
    int_block: bytes
    def __init__(self, uuids: _Optional[_Iterable[str]] = ..., names: _Optional[_Iterable[str]] = ..., same_vms: _Optional[bool] = ..., states: _Optional[_Iterable[_Union[_common_pb2.VmState, str]]] = ..., vcpus: _Optional[_Iterable[int]] = ..., cpu_used_millicores: _Optional[_Iterable[int]] = ..., memory_used_bytes: _Optional[_Iterable[int]] = ..., memory_allocated_bytes: _Optional[_Iterable[int]] = ..., net_rx_bytes_per_second: _Optional[_Iterable[int]] = ..., net_tx_bytes_per_second: _Optional[_Iterable[int]] = ..., disk_read_bytes_per_second: _Optional[_Iterable[int]] = ..., disk_write_bytes_per_second: _Optional[_Iterable[int]] = ..., simulated: _Optional[_Iterable[bool]] = ..., memory_resident_bytes: _Optional[_Iterable[int]] = ..., memory_dirty_bytes_per_second: _Optional[_Iterable[int]] = ..., memory_dirty_set_bytes: _Optional[_Iterable[int]] = ..., int_block: _Optional[bytes] = ...) -> None: ...

class TrafficMatrix(_message.Message):
    __slots__ = ("available", "unavailable_reason", "window_ms", "endpoints", "flows")
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    available: bool
    unavailable_reason: str
    window_ms: int
    endpoints: _containers.RepeatedCompositeFieldContainer[TrafficEndpoint]
    flows: _containers.RepeatedCompositeFieldContainer[TrafficFlow]
    def __init__(self, available: _Optional[bool] = ..., unavailable_reason: _Optional[str] = ..., window_ms: _Optional[int] = ..., endpoints: _Optional[_Iterable[_Union[TrafficEndpoint, _Mapping]]] = ..., flows: _Optional[_Iterable[_Union[TrafficFlow, _Mapping]]] = ...) -> None: ...

class TrafficEndpoint(_message.Message):
    __slots__ = ("vm_uuid", "mac", "ip")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    mac: str
    ip: str
    def __init__(self, vm_uuid: _Optional[str] = ..., mac: _Optional[str] = ..., ip: _Optional[str] = ...) -> None: ...

class TrafficFlow(_message.Message):
    __slots__ = ("src_mac", "dst_mac", "src_ip", "dst_ip", "bytes_per_second")
    SRC_MAC_FIELD_NUMBER: _ClassVar[int]
    DST_MAC_FIELD_NUMBER: _ClassVar[int]
    SRC_IP_FIELD_NUMBER: _ClassVar[int]
    DST_IP_FIELD_NUMBER: _ClassVar[int]
    BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    src_mac: str
    dst_mac: str
    src_ip: str
    dst_ip: str
    bytes_per_second: int
    def __init__(self, src_mac: _Optional[str] = ..., dst_mac: _Optional[str] = ..., src_ip: _Optional[str] = ..., dst_ip: _Optional[str] = ..., bytes_per_second: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("sent_at", "sequence", "degraded_reason")
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASON_FIELD_NUMBER: _ClassVar[int]
    sent_at: _timestamp_pb2.Timestamp
    sequence: int
    degraded_reason: str
    def __init__(self, sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sequence: _Optional[int] = ..., degraded_reason: _Optional[str] = ...) -> None: ...

class LifecycleEvent(_message.Message):
    __slots__ = ("at", "kind", "vm_uuid", "vm_name", "detail", "simulated")
    AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    VM_NAME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    kind: LifecycleEventKind
    vm_uuid: str
    vm_name: str
    detail: str
    simulated: bool
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[_Union[LifecycleEventKind, str]] = ..., vm_uuid: _Optional[str] = ..., vm_name: _Optional[str] = ..., detail: _Optional[str] = ..., simulated: _Optional[bool] = ...) -> None: ...

class NodeCommand(_message.Message):
    __slots__ = ("command_id", "term", "migrate", "abort_migration", "suspend", "resume", "create_snapshot", "revert_snapshot", "delete_snapshot", "list_snapshots", "save", "restore", "define", "start", "shutdown", "destroy", "undefine", "prepare_disks")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    MIGRATE_FIELD_NUMBER: _ClassVar[int]
    ABORT_MIGRATION_FIELD_NUMBER: _ClassVar[int]
    SUSPEND_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    CREATE_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    REVERT_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    DELETE_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    LIST_SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    SAVE_FIELD_NUMBER: _ClassVar[int]
    RESTORE_FIELD_NUMBER: _ClassVar[int]
    DEFINE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_FIELD_NUMBER: _ClassVar[int]
    DESTROY_FIELD_NUMBER: _ClassVar[int]
    UNDEFINE_FIELD_NUMBER: _ClassVar[int]
    PREPARE_DISKS_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    term: int
    migrate: MigrateCommand
    abort_migration: AbortMigrationCommand
    suspend: SuspendCommand
    resume: ResumeCommand
    create_snapshot: CreateSnapshotCommand
    revert_snapshot: RevertSnapshotCommand
    delete_snapshot: DeleteSnapshotCommand
    list_snapshots: ListSnapshotsCommand
    save: SaveCommand
    restore: RestoreCommand
    define: DefineCommand
    start: StartCommand
    shutdown: ShutdownCommand
    destroy: DestroyCommand
    undefine: UndefineCommand
    prepare_disks: PrepareDisksCommand
    def __init__(self, command_id: _Optional[str] = ..., term: _Optional[int] = ..., migrate: _Optional[_Union[MigrateCommand, _Mapping]] = ..., abort_migration: _Optional[_Union[AbortMigrationCommand, _Mapping]] = ..., suspend: _Optional[_Union[SuspendCommand, _Mapping]] = ..., resume: _Optional[_Union[ResumeCommand, _Mapping]] = ..., create_snapshot: _Optional[_Union[CreateSnapshotCommand, _Mapping]] = ..., revert_snapshot: _Optional[_Union[RevertSnapshotCommand, _Mapping]] = ..., delete_snapshot: _Optional[_Union[DeleteSnapshotCommand, _Mapping]] = ..., list_snapshots: _Optional[_Union[ListSnapshotsCommand, _Mapping]] = ..., save: _Optional[_Union[SaveCommand, _Mapping]] = ..., restore: _Optional[_Union[RestoreCommand, _Mapping]] = ..., define: _Optional[_Union[DefineCommand, _Mapping]] = ..., start: _Optional[_Union[StartCommand, _Mapping]] = ..., shutdown: _Optional[_Union[ShutdownCommand, _Mapping]] = ..., destroy: _Optional[_Union[DestroyCommand, _Mapping]] = ..., undefine: _Optional[_Union[UndefineCommand, _Mapping]] = ..., prepare_disks: _Optional[_Union[PrepareDisksCommand, _Mapping]] = ...) -> None: ...

class MigrateCommand(_message.Message):
    __slots__ = ("vm_uuid", "destination_uri", "bandwidth_cap_bps", "live", "auto_converge", "copy_storage", "migration_uri", "max_downtime_ms")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_URI_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_CAP_BPS_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    AUTO_CONVERGE_FIELD_NUMBER: _ClassVar[int]
    COPY_STORAGE_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_URI_FIELD_NUMBER: _ClassVar[int]
    MAX_DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    destination_uri: str
    bandwidth_cap_bps: int
    live: bool
    auto_converge: bool
    copy_storage: bool
    migration_uri: str
    max_downtime_ms: int
    def __init__(self, vm_uuid: _Optional[str] = ..., destination_uri: _Optional[str] = ..., bandwidth_cap_bps: _Optional[int] = ..., live: _Optional[bool] = ..., auto_converge: _Optional[bool] = ..., copy_storage: _Optional[bool] = ..., migration_uri: _Optional[str] = ..., max_downtime_ms: _Optional[int] = ...) -> None: ...

class AbortMigrationCommand(_message.Message):
    __slots__ = ("vm_uuid",)
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    def __init__(self, vm_uuid: _Optional[str] = ...) -> None: ...

class SuspendCommand(_message.Message):
    __slots__ = ("vm_uuid",)
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    def __init__(self, vm_uuid: _Optional[str] = ...) -> None: ...

class ResumeCommand(_message.Message):
    __slots__ = ("vm_uuid",)
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    def __init__(self, vm_uuid: _Optional[str] = ...) -> None: ...

class CreateSnapshotCommand(_message.Message):
    __slots__ = ("vm_uuid", "snapshot_name", "description")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    snapshot_name: str
    description: str
    def __init__(self, vm_uuid: _Optional[str] = ..., snapshot_name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class RevertSnapshotCommand(_message.Message):
    __slots__ = ("vm_uuid", "snapshot_name")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_NAME_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    snapshot_name: str
    def __init__(self, vm_uuid: _Optional[str] = ..., snapshot_name: _Optional[str] = ...) -> None: ...

class DeleteSnapshotCommand(_message.Message):
    __slots__ = ("vm_uuid", "snapshot_name")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_NAME_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    snapshot_name: str
    def __init__(self, vm_uuid: _Optional[str] = ..., snapshot_name: _Optional[str] = ...) -> None: ...

class ListSnapshotsCommand(_message.Message):
    __slots__ = ("vm_uuid",)
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    def __init__(self, vm_uuid: _Optional[str] = ...) -> None: ...

class SaveCommand(_message.Message):
    __slots__ = ("vm_uuid", "path")
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    path: str
    def __init__(self, vm_uuid: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class RestoreCommand(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class DefineCommand(_message.Message):
    __slots__ = ("domain_xml",)
    DOMAIN_XML_FIELD_NUMBER: _ClassVar[int]
    domain_xml: str
    def __init__(self, domain_xml: _Optional[str] = ...) -> None: ...

class StartCommand(_message.Message):
    __slots__ = ("vm_uuid",)
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    def __init__(self, vm_uuid: _Optional[str] = ...) -> None: ...

class ShutdownCommand(_message.Message):
    __slots__ = ("vm_uuid",)
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    def __init__(self, vm_uuid: _Optional[str] = ...) -> None: ...

class DestroyCommand(_message.Message):
    __slots__ = ("vm_uuid",)
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    def __init__(self, vm_uuid: _Optional[str] = ...) -> None: ...

class UndefineCommand(_message.Message):
    __slots__ = ("vm_uuid",)
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    vm_uuid: str
    def __init__(self, vm_uuid: _Optional[str] = ...) -> None: ...

class PrepareDisksCommand(_message.Message):
    __slots__ = ("overlay_path", "backing_file", "seed_path", "seed_iso")
    OVERLAY_PATH_FIELD_NUMBER: _ClassVar[int]
    BACKING_FILE_FIELD_NUMBER: _ClassVar[int]
    SEED_PATH_FIELD_NUMBER: _ClassVar[int]
    SEED_ISO_FIELD_NUMBER: _ClassVar[int]
    overlay_path: str
    backing_file: str
    seed_path: str
    seed_iso: bytes
    def __init__(self, overlay_path: _Optional[str] = ..., backing_file: _Optional[str] = ..., seed_path: _Optional[str] = ..., seed_iso: _Optional[bytes] = ...) -> None: ...

class CommandResult(_message.Message):
    __slots__ = ("command_id", "state", "progress_fraction", "message", "simulated", "data_processed_bytes", "data_remaining_bytes", "snapshot_names", "vm_uuid", "updated_at", "migration_job")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FRACTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    DATA_PROCESSED_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_REMAINING_BYTES_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_NAMES_FIELD_NUMBER: _ClassVar[int]
    VM_UUID_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_JOB_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    state: _common_pb2.CommandState
    progress_fraction: float
    message: str
    simulated: bool
    data_processed_bytes: int
    data_remaining_bytes: int
    snapshot_names: _containers.RepeatedScalarFieldContainer[str]
    vm_uuid: str
    updated_at: _timestamp_pb2.Timestamp
    migration_job: MigrationJobStats
    def __init__(self, command_id: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.CommandState, str]] = ..., progress_fraction: _Optional[float] = ..., message: _Optional[str] = ..., simulated: _Optional[bool] = ..., data_processed_bytes: _Optional[int] = ..., data_remaining_bytes: _Optional[int] = ..., snapshot_names: _Optional[_Iterable[str]] = ..., vm_uuid: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., migration_job: _Optional[_Union[MigrationJobStats, _Mapping]] = ...) -> None: ...

class MigrationJobStats(_message.Message):
    __slots__ = ("time_elapsed_ms", "memory_processed_bytes", "memory_normal_bytes", "downtime_ms", "memory_iterations")
    TIME_ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_PROCESSED_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_NORMAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    time_elapsed_ms: int
    memory_processed_bytes: int
    memory_normal_bytes: int
    downtime_ms: int
    memory_iterations: int
    def __init__(self, time_elapsed_ms: _Optional[int] = ..., memory_processed_bytes: _Optional[int] = ..., memory_normal_bytes: _Optional[int] = ..., downtime_ms: _Optional[int] = ..., memory_iterations: _Optional[int] = ...) -> None: ...
