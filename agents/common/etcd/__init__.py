"""etcd, vmgrid's replicated store: a small JSON-gateway client and leader election."""

from vmgrid.agents.common.etcd.client import (
    Compare,
    Delete,
    EtcdClient,
    EtcdUnavailable,
    Get,
    KeyValue,
    Put,
    TxnResult,
    WatchCompacted,
    WatchEvent,
)
from vmgrid.agents.common.etcd.election import Election, Leader

__all__ = [
    "Compare",
    "Delete",
    "Election",
    "EtcdClient",
    "EtcdUnavailable",
    "Get",
    "KeyValue",
    "Leader",
    "Put",
    "TxnResult",
    "WatchCompacted",
    "WatchEvent",
]
