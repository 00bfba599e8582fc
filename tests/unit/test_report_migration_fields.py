"""VmUsage's migration figures (#16): resident memory, dirty rate and dirty set travel in both
report forms; columns are sent only when some VM was measured, an absent column (an agent
that measures nothing, or one from before) reads as zeros, and a bad one is refused by name."""

from __future__ import annotations

import dataclasses

import pytest
from vmgrid.agents import model as m
from vmgrid.agents.common import node_codec as codec
from vmgrid.agents.common.node_codec.reports import decode_row_report
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.report_rows import ReportRows, new_vm_usage, vm_row
from vmgrid.agents.wire_limits import MAX_CAPACITY
from vmgrid.v1 import node_pb2

MIB = 1 << 20
FIELDS = ("memory_resident_bytes", "memory_dirty_bytes_per_second", "memory_dirty_set_bytes")


def vm(uuid: str, resident: int = 0, dirty: int = 0, dirty_set: int = 0) -> m.VmUsage:
    return m.VmUsage(
        uuid, f"name-{uuid}", m.VmState.RUNNING, 1, 100, 256 * MIB, 256 * MIB,
        memory_resident_bytes=resident, memory_dirty_bytes_per_second=dirty,
        memory_dirty_set_bytes=dirty_set,
    )  # fmt: skip


def report(*vms: m.VmUsage) -> m.NodeReport:
    return m.NodeReport(1_700_000_000_000_000_000, 1, m.HostUsage(100, 2**30, 2**33, 5, 6), vms)


def trip(msg: node_pb2.NodeReport) -> node_pb2.NodeReport:
    return node_pb2.NodeReport.FromString(msg.SerializeToString())


MEASURED = report(vm("a", 201 * MIB, 12 * MIB, 12 * MIB), vm("b"), vm("c", 30 * MIB))


def test_the_figures_survive_every_form_and_the_rows() -> None:
    assert codec.decode_report(trip(codec.columns_of(MEASURED))) == MEASURED
    assert codec.decode_report(trip(codec.columns_of(MEASURED, int_block=False))) == MEASURED
    assert codec.decode_report(trip(codec.encode_report(MEASURED))) == MEASURED
    rows = codec.ReportDecoder().decode(trip(codec.columns_of(MEASURED)))
    assert rows == decode_row_report(trip(codec.encode_report(MEASURED)))
    assert rows == ReportRows.of(MEASURED)
    assert [new_vm_usage(*vm_row(v)) for v in MEASURED.vms] == list(MEASURED.vms)


def test_columns_of_unmeasured_vms_are_not_sent_and_read_as_zeros() -> None:
    unmeasured = report(vm("a"), vm("b"))
    msg = trip(codec.columns_of(unmeasured))
    assert all(not getattr(msg.vm_columns, name) for name in FIELDS)
    decoded = codec.decode_report(msg)
    assert decoded == unmeasured
    assert all(getattr(v, name) == 0 for v in decoded.vms for name in FIELDS)
    assert len(msg.vm_columns.int_block) == 8 * 8 * 2  # the block without them
    # only the dirty rate measured: that column alone is sent (one field per column)
    partly = trip(codec.columns_of(report(vm("a", dirty=MIB), vm("b")), int_block=False))
    assert [len(getattr(partly.vm_columns, name)) for name in FIELDS] == [0, 2, 0]
    # in a block, all three (8 + 3 columns), the others as zeros
    partly = trip(codec.columns_of(report(vm("a", dirty=MIB), vm("b"))))
    assert len(partly.vm_columns.int_block) == 8 * 11 * 2
    assert codec.decode_report(partly).vms[0].memory_dirty_bytes_per_second == MIB


@pytest.mark.parametrize("name", FIELDS)
def test_a_column_of_the_wrong_length_is_refused_by_name(name: str) -> None:
    msg = codec.columns_of(MEASURED, int_block=False)
    getattr(msg.vm_columns, name).append(1)
    with pytest.raises(MalformedMessage, match=f"report.vm_columns.{name}: 4 values for 3 VMs"):
        codec.ReportDecoder().decode(trip(msg))


@pytest.mark.parametrize("name", FIELDS)
@pytest.mark.parametrize("value", [-1, MAX_CAPACITY + 1])
def test_a_value_out_of_range_is_refused_by_name_in_every_form(name: str, value: int) -> None:
    msg = codec.columns_of(MEASURED, int_block=False)
    column = getattr(msg.vm_columns, name)
    column[1] = value
    with pytest.raises(MalformedMessage, match=rf"report.vm_columns.{name}\[1\]"):
        codec.ReportDecoder().decode(trip(msg))
    vms = list(MEASURED.vms)
    vms[1] = dataclasses.replace(vms[1], **{name: value})
    block = codec.columns_of(report(*vms))
    with pytest.raises(MalformedMessage, match=rf"report.vm_columns.int_block.{name}\[1\]"):
        codec.ReportDecoder().decode(trip(block))
    rows = codec.encode_report(MEASURED)
    setattr(rows.vms[2], name, value)
    with pytest.raises(MalformedMessage, match=rf"report.vms\[2\].{name}"):
        decode_row_report(trip(rows))
