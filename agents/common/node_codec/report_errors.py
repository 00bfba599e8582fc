"""Errors of the node link's report decoding: which field of a refused row or column is bad.

The decoders check each VM row, or each column, with one combined test (the ingest hot path);
only when that fails do these helpers find and name the offending field.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence

from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.wire_limits import MAX_CAPACITY, MAX_ID_CHARS, shown
from vmgrid.v1 import common_pb2, node_pb2

VM_INT_FIELDS = (
    "vcpus",
    "cpu_used_millicores",
    "memory_used_bytes",
    "memory_allocated_bytes",
    "net_rx_bytes_per_second",
    "net_tx_bytes_per_second",
    "disk_read_bytes_per_second",
    "disk_write_bytes_per_second",
)
VM_MIGRATION_FIELDS = (
    "memory_resident_bytes",
    "memory_dirty_bytes_per_second",
    "memory_dirty_set_bytes",
)
"""VmUsage's fields after ``simulated`` (#16): optional columns, empty when no VM is measured."""
VM_SAMPLED_FIELDS = (
    "cpu_used_millicores",
    "memory_used_bytes",
    "net_rx_bytes_per_second",
    "net_tx_bytes_per_second",
)
"""The VM fields the manager's history keeps, in its order (after the report's time)."""
BLOCK_FIELDS = (
    *VM_SAMPLED_FIELDS,
    *(name for name in VM_INT_FIELDS if name not in VM_SAMPLED_FIELDS),
    *VM_MIGRATION_FIELDS,
)
"""The columns of ``VmColumns.int_block``, in its order: the history's first, so that they are
one contiguous part of the block; the migration ones last, and only when some VM was measured."""
HOST_INT_FIELDS = (
    "cpu_used_millicores",
    "memory_used_bytes",
    "memory_total_bytes",
    "net_rx_bytes_per_second",
    "net_tx_bytes_per_second",
)


def out_of_range(path: str, message: object, names: Iterable[str]) -> MalformedMessage:
    """The error for the first field of ``names`` below 0 or above MAX_CAPACITY."""
    for name in names:
        value = getattr(message, name)
        if value < 0:
            return MalformedMessage(f"{path}.{name}", f"negative value {value}; must be >= 0")
        if value > MAX_CAPACITY:
            return MalformedMessage(
                f"{path}.{name}", f"{value} is above the largest accepted, {MAX_CAPACITY} (2**50)"
            )
    return MalformedMessage(path, "value out of range")  # pragma: no cover


def bad_vm(
    i: int, v: node_pb2.VmUsage, states: Container[int], accepted_states: str
) -> MalformedMessage:
    """The error for VM row i, which failed the one-line check in decode_row_report."""
    if v.state not in states:
        known = v.state in common_pb2.VmState.values()
        named = f"{common_pb2.VmState.Name(v.state)} is not accepted: " if known else ""
        return MalformedMessage(
            f"report.vms[{i}].state",
            f"{named}unknown VM state {v.state} for VM {v.uuid!r}; accepted: {accepted_states}",
        )
    if not v.uuid:
        return MalformedMessage(f"report.vms[{i}].uuid", "missing uuid; each VM needs one")
    if len(v.uuid) > MAX_ID_CHARS or len(v.name) > MAX_ID_CHARS:
        name = "uuid" if len(v.uuid) > MAX_ID_CHARS else "name"
        value = getattr(v, name)
        return MalformedMessage(
            f"report.vms[{i}].{name}", f"{shown(value)} is longer than {MAX_ID_CHARS}"
        )
    return out_of_range(f"report.vms[{i}]", v, (*VM_INT_FIELDS, *VM_MIGRATION_FIELDS))


def duplicate_vm(uuids: list[str]) -> MalformedMessage:
    seen: set[str] = set()
    for i, uuid in enumerate(uuids):
        if uuid in seen:
            return MalformedMessage(
                f"report.vms[{i}].uuid", f"duplicate uuid {uuid!r}; each VM needs a unique one"
            )
        seen.add(uuid)
    return MalformedMessage("report.vms", "duplicate uuid")  # pragma: no cover


def duplicate_column_vm(path: str, uuids: Sequence[str]) -> MalformedMessage:
    seen: set[str] = set()
    for i, uuid in enumerate(uuids):
        if uuid in seen:
            return MalformedMessage(
                f"{path}.uuids[{i}]", f"duplicate uuid {uuid!r}; each VM needs a unique one"
            )
        seen.add(uuid)
    return MalformedMessage(f"{path}.uuids", "duplicate uuid")  # pragma: no cover


def column_error(
    path: str, columns: node_pb2.VmColumns, n: int, states: Container[int], accepted_states: str
) -> MalformedMessage:
    """The error for VM columns (of `n` VMs) that failed the decoder's combined checks: the
    first id out of bounds, column of the wrong length, unknown state or value out of range."""
    for name in ("uuids", "names"):
        for i, value in enumerate(getattr(columns, name)):
            if name == "uuids" and not value:
                return MalformedMessage(f"{path}.uuids[{i}]", "missing uuid; each VM needs one")
            if len(value) > MAX_ID_CHARS:
                return MalformedMessage(
                    f"{path}.{name}[{i}]", f"{shown(value)} is longer than {MAX_ID_CHARS}"
                )
    int_fields = () if columns.int_block else VM_INT_FIELDS  # the block is checked on its own
    for name in ("states", *int_fields, "simulated"):
        if len(getattr(columns, name)) != n:
            return MalformedMessage(
                f"{path}.{name}", f"{len(getattr(columns, name))} values for {n} VMs"
            )
    for i, state in enumerate(columns.states):
        if state not in states:
            known = state in common_pb2.VmState.values()
            named = f"{common_pb2.VmState.Name(state)} is not accepted: " if known else ""
            return MalformedMessage(
                f"{path}.states[{i}]",
                f"{named}unknown VM state {state}; accepted: {accepted_states}",
            )
    for name in VM_MIGRATION_FIELDS:
        if len(getattr(columns, name)) not in (0, n):
            return MalformedMessage(
                f"{path}.{name}", f"{len(getattr(columns, name))} values for {n} VMs; give 0 or {n}"
            )
    for name in (*VM_INT_FIELDS, *VM_MIGRATION_FIELDS):
        for i, value in enumerate(getattr(columns, name)):
            if value < 0:
                return MalformedMessage(
                    f"{path}.{name}[{i}]", f"negative value {value}; must be >= 0"
                )
            if value > MAX_CAPACITY:
                return MalformedMessage(
                    f"{path}.{name}[{i}]",
                    f"{value} is above the largest accepted, {MAX_CAPACITY} (2**50)",
                )
    return MalformedMessage(path, "value out of range")  # pragma: no cover
