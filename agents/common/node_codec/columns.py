"""Reports in columns (``NodeReport.vm_columns``, #17): the agent's encoder, the manager's
decoder, one of each per stream.

A report's VMs travel as one packed column per VmUsage field, so the manager decodes them
with a few calls per column (a list of the column, its minimum and maximum), never a dozen
field reads per VM: at 2,000 reports of 20 VMs a second that per-VM work was the largest part
of the manager's CPU. The VMs' uuids and names are listed once per stream and again only when
they change (``same_vms``): both ends keep the last list, and an unchanged list is the same
tuple on the manager, which the state compares by identity first.

Every bound of the per-VM form applies here too (wire_limits: counts, id lengths, values in
[0, 2**50], known states, unique uuids), and a refusal names the column and the VM's index,
e.g. ``report.vm_columns.cpu_used_millicores[3]``.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from itertools import chain
from operator import attrgetter, itemgetter
from typing import cast

from vmgrid.agents import model as m
from vmgrid.agents.common.node_codec.pressure import encode_vm_pressure
from vmgrid.agents.common.node_codec.report_errors import (
    BLOCK_FIELDS,
    VM_INT_FIELDS,
    VM_MIGRATION_FIELDS,
    column_error,
    duplicate_column_vm,
)
from vmgrid.agents.common.node_codec.reports import (
    _ACCEPTED_VM_STATES,
    _VM_STATE_FROM_WIRE,
    _VM_STATE_TO_WIRE,
    _ns,
    decode_host,
    decode_report_extras,
    decode_row_report,
    encode_host_usage,
    set_timestamp_ns,
)
from vmgrid.agents.common.node_codec.traffic import encode_traffic
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.report_rows import ReportRows, VmRows, interleaved, new_vm_usage
from vmgrid.agents.wire_limits import MAX_CAPACITY, MAX_ID_CHARS, MAX_ITEMS
from vmgrid.v1 import node_pb2

INT_COLUMNS = VM_INT_FIELDS
"""The integer columns, in VmUsage's (and so VmRow's) order, between state and simulated."""

_INT_COLUMNS_OF = attrgetter(*INT_COLUMNS)
MIGRATION_COLUMNS = VM_MIGRATION_FIELDS
"""The integer columns after simulated (#16), in VmUsage's order; each is empty (no VM
measured: zeros) or has one value per VM."""
_MIGRATION_COLUMNS_OF = attrgetter(*MIGRATION_COLUMNS)
_ALL = itemgetter(slice(None))  # a column's values as a list (faster than list(column))

VmList = tuple[tuple[str, ...], tuple[str, ...]]
"""The VMs a stream last listed: (uuids, names)."""

_PATH = "report.vm_columns"


class ReportDecoder:
    """Decodes one stream's reports, in either form, into ReportRows (the manager's ingest hot
    path). Keeps the VM list the stream last sent; a refused report forgets it, so that a
    ``same_vms`` report after a refusal is refused too, saying so, until one lists its VMs."""

    __slots__ = ("_listed", "_states")

    def __init__(self) -> None:
        self._listed: VmList | None = None
        self._states: tuple[Sequence[int], tuple[m.VmState, ...]] = ((), ())
        """The last states decoded, wire and domain: unchanged states decode to the same
        tuple (which the state compares by identity first)."""

    def decode(self, msg: node_pb2.NodeReport) -> ReportRows:
        """Validate and convert a report; MalformedMessage names the bad field."""
        if not msg.HasField("vm_columns"):
            return decode_row_report(msg)
        listed, self._listed = self._listed, None
        if msg.vms:
            raise MalformedMessage(
                "report.vms", "sent with vm_columns; a report carries one or the other"
            )
        columns = msg.vm_columns
        if columns.same_vms:
            if listed is None:
                raise MalformedMessage(
                    f"{_PATH}.same_vms",
                    "no VM list to reuse: no report on this stream listed its VMs, or the last "
                    "one was refused; list uuids and names",
                )
            if columns.uuids or columns.names:
                raise MalformedMessage(
                    f"{_PATH}.uuids", "listed with same_vms set; send one or the other"
                )
        else:
            listed = _vm_list(columns)
        wire_states = columns.states[:]
        last_wire, states = self._states
        if wire_states != last_wire:
            states = _states(columns, wire_states, len(listed[0]))
            self._states = (wire_states, states)
        if columns.int_block:
            rows = _block_rows(msg, columns, listed, states)
        else:
            rows = _rows(msg, columns, listed, states)
        self._listed = listed
        return rows


def _column_error(columns: node_pb2.VmColumns, n: int) -> MalformedMessage:
    return column_error(_PATH, columns, n, _VM_STATE_FROM_WIRE, _ACCEPTED_VM_STATES)


def _vm_list(columns: node_pb2.VmColumns) -> VmList:
    uuids, names = tuple(columns.uuids), tuple(columns.names)
    n = len(uuids)
    if n > MAX_ITEMS:
        raise MalformedMessage(f"{_PATH}.uuids", f"{n} VMs; at most {MAX_ITEMS}")
    if len(names) != n:
        raise MalformedMessage(f"{_PATH}.names", f"{len(names)} names for {n} uuids")
    if n:
        shortest, longest = min(map(len, uuids)), max(map(len, uuids))
        if not shortest or longest > MAX_ID_CHARS or max(map(len, names)) > MAX_ID_CHARS:
            raise _column_error(columns, n)
        if len(set(uuids)) != n:
            raise duplicate_column_vm(_PATH, uuids)
    return uuids, names


def _states(
    columns: node_pb2.VmColumns, wire_states: Sequence[int], n: int
) -> tuple[m.VmState, ...]:
    states = tuple(map(_VM_STATE_FROM_WIRE.get, wire_states))
    if len(states) != n or None in states:
        raise _column_error(columns, n)
    return cast(tuple[m.VmState, ...], states)


def _rows(
    msg: node_pb2.NodeReport,
    columns: node_pb2.VmColumns,
    listed: VmList,
    states: tuple[m.VmState, ...],
) -> ReportRows:
    """The report's ReportRows: its samples interleaved from the columns and its rows left
    to be zipped from them when read (VmRows), in C loops; the bounds of all the integer
    columns are checked with one min and one max."""
    host = decode_host(msg.host)
    sent = _ns(msg.sent_at, "report.sent_at")
    uuids, names = listed
    n = len(uuids)
    ints = list(map(_ALL, _INT_COLUMNS_OF(columns)))
    simulated = columns.simulated[:]
    if len(states) != n or len(simulated) != n or any(len(c) != n for c in ints):
        raise _column_error(columns, n)
    if n:
        values = list(chain.from_iterable(ints))
        if min(values) < 0 or max(values) > MAX_CAPACITY:
            raise _column_error(columns, n)
    vcpus, cpu, mem_used, mem_alloc, rx, tx, rd, wr = ints
    migration = _migration_columns(columns, n)
    rows = VmRows((uuids, names, states, *ints, simulated, *migration), n)
    samples = interleaved(sent, cpu, mem_used, rx, tx)
    extras = decode_report_extras(msg)
    return ReportRows(sent, msg.sequence, host, uuids, states, rows, samples, *extras)


def _block_rows(
    msg: node_pb2.NodeReport,
    columns: node_pb2.VmColumns,
    listed: VmList,
    states: tuple[m.VmState, ...],
) -> ReportRows:
    """As `_rows`, for a report whose integers come as one block (``int_block``): checked with
    a few byte and array operations, its sampled columns handed to the history as a view,
    converted to rows only when they are read. Its module needs numpy, which the agent (the
    encoder's user) never loads: imported here, at the manager's first block."""
    from vmgrid.agents.common.node_codec import int_block as block

    host = decode_host(msg.host)
    sent = _ns(msg.sent_at, "report.sent_at")
    uuids, names = listed
    n = len(uuids)
    simulated = columns.simulated[:]
    if len(states) != n or len(simulated) != n:
        raise _column_error(columns, n)
    for field, _ in columns.ListFields():
        if field.number in _PER_FIELD_INTS:
            raise MalformedMessage(
                f"{_PATH}.{field.name}",
                "sent with int_block; a report carries its integers in one or the other",
            )
    values = block.decode(columns.int_block, n, f"{_PATH}.int_block")

    def row_columns() -> list[Sequence[object]]:
        ints, migration = block.rows_columns(values)
        return [uuids, names, states, *ints, simulated, *migration]

    def one(index: int) -> list[int] | None:
        return block.row_column(values, index)

    rows = VmRows(row_columns, n, one)
    samples, extras = block.sampled(values), decode_report_extras(msg)
    return ReportRows(sent, msg.sequence, host, uuids, states, rows, samples, *extras)


_PER_FIELD_INTS = frozenset(
    node_pb2.VmColumns.DESCRIPTOR.fields_by_name[name].number
    for name in (*INT_COLUMNS, *MIGRATION_COLUMNS)
)


def _migration_columns(columns: node_pb2.VmColumns, n: int) -> list[Sequence[int]]:
    """The migration columns, an absent one (an agent that measures nothing, or one from
    before #16) as zeros; bounds checked as the other integer columns'."""
    out: list[Sequence[int]] = []
    zeros: Sequence[int] | None = None
    for column in _MIGRATION_COLUMNS_OF(columns):
        if not column:
            zeros = zeros or (0,) * n
            out.append(zeros)
            continue
        values = column[:]
        if len(values) != n or min(values) < 0 or max(values) > MAX_CAPACITY:
            raise _column_error(columns, n)
        out.append(values)
    return out


def decode_report_rows(msg: node_pb2.NodeReport) -> ReportRows:
    """A report, either form, decoded as its stream's first (tests, tools; the manager keeps
    one ReportDecoder per stream)."""
    return ReportDecoder().decode(msg)


def decode_report(msg: node_pb2.NodeReport) -> m.NodeReport:
    """Validate and convert a report (as `decode_report_rows`, with VmUsage objects)."""
    rows = decode_report_rows(msg)
    vms = tuple(new_vm_usage(*row) for row in rows.rows)
    return m.NodeReport(
        rows.sent_at_unix_ns, rows.sequence, rows.host, vms, rows.vm_pressure, rows.traffic
    )


class ReportEncoder:
    """Encodes one stream's reports in columns (the agent's side): the VMs are listed in the
    stream's first report and whenever they change; ``forget`` (after the manager refused a
    report) makes the next report list them again."""

    __slots__ = ("_listed", "_block")

    def __init__(self, int_block: bool = True) -> None:
        self._listed: VmList | None = None
        self._block = int_block
        """Integers as one block (``int_block``); False: one field per column, the form of
        agents before the block, which managers still decode."""

    def forget(self) -> None:
        self._listed = None

    def encode(self, report: m.NodeReport) -> node_pb2.NodeReport:
        """The wire form of `report` (the inverse of ReportDecoder.decode)."""
        msg = node_pb2.NodeReport(sequence=report.sequence, host=encode_host_usage(report.host))
        vms = report.vms
        listed = (tuple(vm.uuid for vm in vms), tuple(vm.name for vm in vms))
        columns = msg.vm_columns
        if listed == self._listed:
            columns.same_vms = True
        else:
            columns.uuids.extend(listed[0])
            columns.names.extend(listed[1])
            self._listed = listed
        columns.states.extend([_VM_STATE_TO_WIRE[vm.state] for vm in vms])
        ints = [[getattr(vm, name) for vm in vms] for name in INT_COLUMNS]
        columns.simulated.extend([vm.simulated for vm in vms])
        migration = [[getattr(vm, name) for vm in vms] for name in MIGRATION_COLUMNS]
        if self._block:
            by_name = dict(zip((*INT_COLUMNS, *MIGRATION_COLUMNS), ints + migration, strict=True))
            # the migration columns only when some VM was measured
            names = BLOCK_FIELDS if any(map(any, migration)) else BLOCK_FIELDS[: len(ints)]
            columns.int_block = encode_int_block([by_name[name] for name in names])
        else:
            for name, column in zip(INT_COLUMNS, ints, strict=True):
                getattr(columns, name).extend(column)
            for name, column in zip(MIGRATION_COLUMNS, migration, strict=True):
                if any(column):  # sent only when some VM was measured
                    getattr(columns, name).extend(column)
        encode_vm_pressure(report.vm_pressure, msg.vm_pressure)
        if report.traffic is not None:
            encode_traffic(report.traffic, msg.traffic)
        set_timestamp_ns(msg.sent_at, report.sent_at_unix_ns)
        return msg


def encode_int_block(columns: Sequence[Sequence[int]]) -> bytes:
    """``VmColumns.int_block`` of `columns` (each one value per VM, in BLOCK_FIELDS order):
    little-endian int64 whatever the machine, written without numpy (the agent's side)."""
    flat = array("q")
    for column in columns:
        flat.extend(column)
    if sys.byteorder != "little":
        flat.byteswap()
    return flat.tobytes()


def columns_of(report: m.NodeReport, int_block: bool = True) -> node_pb2.NodeReport:
    """`report` in columns, listing its VMs (a stream's first report); `int_block` False: its
    integers one field per column."""
    return ReportEncoder(int_block).encode(report)
