from vmgrid.v1 import node_pb2 as _node_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FollowViewRequest(_message.Message):
    __slots__ = ("replica_id",)
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    def __init__(self, replica_id: _Optional[str] = ...) -> None: ...

class WarmNode(_message.Message):
    __slots__ = ("hello", "report", "draining", "lost", "powered_off")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    LOST_FIELD_NUMBER: _ClassVar[int]
    POWERED_OFF_FIELD_NUMBER: _ClassVar[int]
    hello: _node_pb2.NodeHello
    report: _node_pb2.NodeReport
    draining: bool
    lost: bool
    powered_off: bool
    def __init__(self, hello: _Optional[_Union[_node_pb2.NodeHello, _Mapping]] = ..., report: _Optional[_Union[_node_pb2.NodeReport, _Mapping]] = ..., draining: _Optional[bool] = ..., lost: _Optional[bool] = ..., powered_off: _Optional[bool] = ...) -> None: ...

class FollowViewResponse(_message.Message):
    __slots__ = ("term", "nodes", "alive")
    TERM_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    term: int
    nodes: _containers.RepeatedCompositeFieldContainer[WarmNode]
    alive: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, term: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[WarmNode, _Mapping]]] = ..., alive: _Optional[_Iterable[str]] = ...) -> None: ...
