"""A migration's job statistics on the node link (CommandResult.migration_job): they travel
both ways, a result without them (any other command, an agent from before) reads as None,
and a bad figure is refused by name."""

from __future__ import annotations

import dataclasses

import pytest
from vmgrid.agents import model as m
from vmgrid.agents.common import node_codec as codec
from vmgrid.agents.common.node_codec.migration_job import MAX_ITERATIONS, MAX_JOB_MS
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.wire_limits import MAX_CAPACITY
from vmgrid.v1 import node_pb2

MIB = 1 << 20
JOB = m.MigrationJob(
    elapsed_ms=5320, memory_processed_bytes=201 * MIB, memory_normal_bytes=199 * MIB,
    downtime_ms=142, iterations=4,
)  # fmt: skip
RESULT = m.CommandResult("c1", m.CommandState.SUCCEEDED, 1.0, "migrated", vm_uuid="u1")


def trip(result: m.CommandResult) -> m.CommandResult:
    wire = codec.encode_command_result(result).SerializeToString()
    return codec.decode_command_result(node_pb2.CommandResult.FromString(wire))


def test_the_job_statistics_travel_with_the_result() -> None:
    sent = dataclasses.replace(RESULT, migration_job=JOB)
    assert trip(sent) == sent


def test_a_result_without_them_reads_as_none() -> None:
    assert trip(RESULT).migration_job is None
    assert not codec.encode_command_result(RESULT).HasField("migration_job")


def test_the_largest_accepted_figures_pass() -> None:
    top = m.MigrationJob(MAX_JOB_MS, MAX_CAPACITY, MAX_CAPACITY, MAX_JOB_MS, MAX_ITERATIONS)
    assert trip(dataclasses.replace(RESULT, migration_job=top)).migration_job == top


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("time_elapsed_ms", -1, "-1 is not in [0, 86400000]"),
        ("time_elapsed_ms", MAX_JOB_MS + 1, "86400001 is not in [0, 86400000]"),
        ("memory_processed_bytes", -5, "-5 is not in [0, "),
        ("memory_processed_bytes", MAX_CAPACITY + 1, f"{MAX_CAPACITY + 1} is not in [0, "),
        ("memory_normal_bytes", -1, "-1 is not in [0, "),
        ("memory_normal_bytes", 202 * MIB, "is more than memory_processed_bytes"),
        ("downtime_ms", 6000, "6000 is not in [0, 5320]"),
        ("downtime_ms", -1, "-1 is not in [0, 5320]"),
        ("memory_iterations", -1, "-1 is not in [0, 1000000]"),
        ("memory_iterations", MAX_ITERATIONS + 1, "1000001 is not in [0, 1000000]"),
    ],
)
def test_a_bad_figure_is_refused_by_name(field: str, value: int, says: str) -> None:
    wire = codec.encode_command_result(dataclasses.replace(RESULT, migration_job=JOB))
    setattr(wire.migration_job, field, value)
    with pytest.raises(MalformedMessage, match=rf"command_result\.migration_job\.{field}: ") as e:
        codec.decode_command_result(wire)
    assert says in str(e.value)
