"""Reports in columns (NodeReport.vm_columns): the same values as the per-VM form, the VM list
sent once per stream, and every bound of the per-VM form, refused naming the column."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from vmgrid.agents import model as m
from vmgrid.agents.common import node_codec as codec
from vmgrid.agents.common.node_codec.reports import decode_row_report
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.report_rows import column_of
from vmgrid.agents.wire_limits import MAX_CAPACITY, MAX_ID_CHARS, MAX_ITEMS
from vmgrid.v1 import common_pb2, node_pb2


def vm(uuid: str, cpu: int = 250, state: m.VmState = m.VmState.RUNNING) -> m.VmUsage:
    return m.VmUsage(uuid, f"name-{uuid}", state, 2, cpu, 2**28, 2**29, 10, 20, 30, 40, True)


def report(sequence: int, *vms: m.VmUsage) -> m.NodeReport:
    host = m.HostUsage(100, 2**30, 2**33, 5, 6)
    return m.NodeReport(1_700_000_000_000_000_000 + sequence, sequence, host, vms)


def trip(msg: node_pb2.NodeReport) -> node_pb2.NodeReport:
    return node_pb2.NodeReport.FromString(msg.SerializeToString())


@pytest.mark.parametrize("int_block", [True, False])
def test_columns_decode_to_the_same_rows_as_the_per_vm_form(int_block: bool) -> None:
    r = report(3, vm("a", 100), vm("b", 200, m.VmState.PAUSED), vm("c", 0, m.VmState.SHUT_OFF))
    msg = trip(codec.ReportEncoder(int_block).encode(r))
    assert bool(msg.vm_columns.int_block) is int_block
    assert bool(msg.vm_columns.cpu_used_millicores) is not int_block
    columns = codec.ReportDecoder().decode(msg)
    assert columns == decode_row_report(trip(codec.encode_report(r)))
    assert codec.decode_report(trip(codec.columns_of(r, int_block))) == r


def test_an_unchanged_vm_list_is_sent_once_per_stream_and_reused_as_the_same_tuple() -> None:
    encoder, decoder = codec.ReportEncoder(), codec.ReportDecoder()
    first = trip(encoder.encode(report(1, vm("a"), vm("b"))))
    second = trip(encoder.encode(report(2, vm("a", 900), vm("b"))))
    assert list(first.vm_columns.uuids) == ["a", "b"] and not first.vm_columns.same_vms
    assert second.vm_columns.same_vms and not second.vm_columns.uuids
    assert len(second.SerializeToString()) < len(first.SerializeToString())
    one, two = decoder.decode(first), decoder.decode(second)
    assert two.uuids is one.uuids
    assert [row[4] for row in two.rows] == [900, 250]


def test_a_changed_vm_list_is_listed_again() -> None:
    encoder, decoder = codec.ReportEncoder(), codec.ReportDecoder()
    decoder.decode(trip(encoder.encode(report(1, vm("a"), vm("b")))))
    changed = trip(encoder.encode(report(2, vm("b"), vm("c"))))
    assert list(changed.vm_columns.uuids) == ["b", "c"]
    assert decoder.decode(changed).uuids == ("b", "c")


def test_same_vms_on_a_stream_that_listed_none_is_refused() -> None:
    msg = codec.ReportEncoder().encode(report(1, vm("a")))
    msg.vm_columns.same_vms = True
    msg.vm_columns.ClearField("uuids")
    msg.vm_columns.ClearField("names")
    with pytest.raises(MalformedMessage) as refused:
        codec.ReportDecoder().decode(trip(msg))
    assert refused.value.field == "report.vm_columns.same_vms"


def test_a_refused_report_forgets_the_list_until_one_lists_the_vms_again() -> None:
    encoder, decoder = codec.ReportEncoder(), codec.ReportDecoder()
    decoder.decode(trip(encoder.encode(report(1, vm("a"), vm("b")))))
    bad = trip(codec.columns_of(report(2, vm("a"), vm("b", -5))))
    with pytest.raises(MalformedMessage) as refused:
        decoder.decode(bad)
    assert refused.value.field == "report.vm_columns.int_block.cpu_used_millicores[1]"
    assert "negative value -5" in str(refused.value)
    with pytest.raises(MalformedMessage) as again:
        decoder.decode(trip(encoder.encode(report(3, vm("a"), vm("b")))))  # same_vms
    assert again.value.field == "report.vm_columns.same_vms"
    encoder.forget()  # what the agent does on a StreamError about a report
    assert decoder.decode(trip(encoder.encode(report(4, vm("a"), vm("b"))))).sequence == 4


def _set(name: str, value: object) -> Callable[[node_pb2.VmColumns], None]:
    def change(columns: node_pb2.VmColumns) -> None:
        field = getattr(columns, name)
        field[1] = value

    return change


def _drop(name: str) -> Callable[[node_pb2.VmColumns], None]:
    return lambda columns: getattr(columns, name).pop()


def _append(name: str, value: object) -> Callable[[node_pb2.VmColumns], None]:
    return lambda columns: getattr(columns, name).append(value)


BAD_COLUMNS = [
    (_set("memory_used_bytes", MAX_CAPACITY + 1), "report.vm_columns.memory_used_bytes[1]"),
    (_set("vcpus", -1), "report.vm_columns.vcpus[1]"),
    (_set("states", common_pb2.VM_STATE_UNSPECIFIED), "report.vm_columns.states[1]"),
    (_set("states", 99), "report.vm_columns.states[1]"),
    (_set("uuids", ""), "report.vm_columns.uuids[1]"),
    (_set("uuids", "a"), "report.vm_columns.uuids[1]"),
    (_set("uuids", "u" * (MAX_ID_CHARS + 1)), "report.vm_columns.uuids[1]"),
    (_set("names", "n" * (MAX_ID_CHARS + 1)), "report.vm_columns.names[1]"),
    (_drop("names"), "report.vm_columns.names"),
    (_drop("disk_write_bytes_per_second"), "report.vm_columns.disk_write_bytes_per_second"),
    (_drop("simulated"), "report.vm_columns.simulated"),
    (_append("states", common_pb2.VM_STATE_RUNNING), "report.vm_columns.states"),
    (lambda c: setattr(c, "same_vms", True), "report.vm_columns.same_vms"),
]


@pytest.mark.parametrize(("change", "field"), BAD_COLUMNS)
def test_bad_columns_are_refused_naming_the_column_and_the_vm(
    change: Callable[[node_pb2.VmColumns], None], field: str
) -> None:
    msg = codec.columns_of(report(1, vm("a", 1), vm("b", 2)), int_block=False)
    change(msg.vm_columns)
    with pytest.raises(MalformedMessage) as refused:
        codec.ReportDecoder().decode(trip(msg))
    assert refused.value.field == field


def _block(change: Callable[[bytes], bytes]) -> Callable[[node_pb2.VmColumns], None]:
    def edit(columns: node_pb2.VmColumns) -> None:
        columns.int_block = change(columns.int_block)

    return edit


def _value(column: int, vm: int, value: int) -> Callable[[bytes], bytes]:
    """Put `value` at `column` (BLOCK_FIELDS order) of VM `vm` of a two-VM block."""
    at = 8 * (2 * column + vm)
    return lambda block: block[:at] + value.to_bytes(8, "little", signed=True) + block[at + 8 :]


_BLOCK = "report.vm_columns.int_block"
BAD_BLOCKS = [
    *[
        (change, field)
        for change, field in BAD_COLUMNS
        if "bytes" not in field and "vcpus" not in field
    ],
    (_block(lambda b: b[:-8]), _BLOCK),
    (_block(lambda b: b + bytes(8)), _BLOCK),
    (_block(_value(0, 1, -1)), f"{_BLOCK}.cpu_used_millicores[1]"),
    (_block(_value(1, 0, MAX_CAPACITY + 1)), f"{_BLOCK}.memory_used_bytes[0]"),
    (_block(_value(4, 1, -(2**63))), f"{_BLOCK}.vcpus[1]"),
    (_block(_value(7, 1, 2**62)), f"{_BLOCK}.disk_write_bytes_per_second[1]"),
    (_append("cpu_used_millicores", 5), "report.vm_columns.cpu_used_millicores"),
    (_append("memory_dirty_set_bytes", 5), "report.vm_columns.memory_dirty_set_bytes"),
]


@pytest.mark.parametrize(("change", "field"), BAD_BLOCKS)
def test_bad_columns_with_an_integer_block_are_refused_naming_the_column_and_the_vm(
    change: Callable[[node_pb2.VmColumns], None], field: str
) -> None:
    msg = codec.columns_of(report(1, vm("a", 1), vm("b", 2)))
    assert msg.vm_columns.int_block
    change(msg.vm_columns)
    with pytest.raises(MalformedMessage) as refused:
        codec.ReportDecoder().decode(trip(msg))
    assert refused.value.field == field


@pytest.mark.parametrize("value", [0, 2**48 - 1, 2**48, 3 * 2**48 + 12345, MAX_CAPACITY])
def test_every_value_in_bounds_is_accepted_in_a_block_up_to_the_largest(value: int) -> None:
    r = report(1, vm("a", value), vm("b", 7))
    rows = codec.ReportDecoder().decode(trip(codec.columns_of(r)))
    assert [row[4] for row in rows.rows] == [value, 7]
    assert codec.decode_report(trip(codec.columns_of(r))) == r


def test_same_vms_with_a_list_is_refused() -> None:
    encoder, decoder = codec.ReportEncoder(), codec.ReportDecoder()
    decoder.decode(trip(encoder.encode(report(1, vm("a")))))
    msg = encoder.encode(report(2, vm("a")))
    msg.vm_columns.uuids.append("a")
    msg.vm_columns.names.append("a")
    with pytest.raises(MalformedMessage) as refused:
        decoder.decode(trip(msg))
    assert refused.value.field == "report.vm_columns.uuids"


def test_a_report_with_both_forms_is_refused() -> None:
    msg = codec.columns_of(report(1, vm("a")))
    msg.vms.append(codec.encode_vm_usage(vm("b")))
    with pytest.raises(MalformedMessage) as refused:
        codec.ReportDecoder().decode(trip(msg))
    assert refused.value.field == "report.vms"


def test_more_vms_than_the_wire_limit_are_refused() -> None:
    msg = node_pb2.NodeReport()
    msg.vm_columns.uuids.extend(f"vm{i}" for i in range(MAX_ITEMS + 1))
    with pytest.raises(MalformedMessage) as refused:
        codec.ReportDecoder().decode(msg)
    assert refused.value.field == "report.vm_columns.uuids"
    assert f"at most {MAX_ITEMS}" in str(refused.value)


def test_a_report_without_vms_decodes_in_columns() -> None:
    encoder, decoder = codec.ReportEncoder(), codec.ReportDecoder()
    assert decoder.decode(trip(encoder.encode(report(1)))).rows == ()
    assert decoder.decode(trip(encoder.encode(report(2)))).uuids == ()


def test_rows_of_a_columns_report_are_built_when_read_and_equal_the_per_vm_rows() -> None:
    r = report(1, vm("a", 1), vm("b", 2, m.VmState.PAUSED))
    rows = codec.ReportDecoder().decode(trip(codec.columns_of(r))).rows
    assert len(rows) == 2
    expected = decode_row_report(trip(codec.encode_report(r))).rows
    assert rows == expected and rows[1] == expected[1] and list(rows) == list(expected)


@pytest.mark.parametrize("measured", [False, True])
def test_each_field_of_an_integer_block_reads_as_the_built_rows_column(measured: bool) -> None:
    """`column_of` on a block's rows not yet built (an integer field comes from its column of
    the block alone) gives what the built rows give, migration columns included or absent."""
    extra = (5, 6, 7) if measured else ()
    vms = (
        m.VmUsage("a", "na", m.VmState.RUNNING, 2, 100, 2**28, 2**29, 10, 20, 30, 40, True, *extra),
        m.VmUsage("b", "nb", m.VmState.PAUSED, 4, 200, 2**27, 2**30, 11, 21, 31, 41, False),
    )
    msg = trip(codec.ReportEncoder().encode(report(1, *vms)))
    assert msg.vm_columns.int_block
    expected = decode_row_report(trip(codec.encode_report(report(1, *vms)))).rows
    for index, field in enumerate(m.VmUsage.__dataclass_fields__):
        rows = codec.ReportDecoder().decode(msg).rows
        assert list(column_of(rows, field)) == [row[index] for row in expected], field
        assert rows == expected


def test_unchanged_states_decode_to_the_same_tuple_and_a_change_shows() -> None:
    encoder, decoder = codec.ReportEncoder(), codec.ReportDecoder()
    one = decoder.decode(trip(encoder.encode(report(1, vm("a"), vm("b")))))
    two = decoder.decode(trip(encoder.encode(report(2, vm("a", 5), vm("b")))))
    paused = report(3, vm("a"), vm("b", state=m.VmState.PAUSED))
    three = decoder.decode(trip(encoder.encode(paused)))
    assert two.states is one.states
    assert three.states == (m.VmState.RUNNING, m.VmState.PAUSED)
