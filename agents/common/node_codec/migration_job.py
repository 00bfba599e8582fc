"""A completed migration's job statistics on the node link: node.proto MigrationJobStats <->
model.MigrationJob.

Optional in CommandResult (``migration_job``): an agent from before it sends none, a manager
from before it skips the field. Decoding bounds every figure, so that a wrong reading cannot
teach the manager's migration estimate a fixed cost of years.
"""

from __future__ import annotations

from vmgrid.agents import model as m
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.wire_limits import MAX_CAPACITY, check_range
from vmgrid.v1 import node_pb2

MAX_JOB_MS = 86_400_000
"""Longest migration job accepted: one day (a migration the manager would have aborted)."""
MAX_ITERATIONS = 1_000_000
"""Most pre-copy rounds accepted."""
_PATH = "command_result.migration_job"


def decode_migration_job(msg: node_pb2.CommandResult) -> m.MigrationJob | None:
    """The result's job statistics, None when it carries none; MalformedMessage names a bad
    figure."""
    if not msg.HasField("migration_job"):
        return None
    job = msg.migration_job
    elapsed = check_range(f"{_PATH}.time_elapsed_ms", job.time_elapsed_ms, 0, MAX_JOB_MS)
    for name in ("memory_processed_bytes", "memory_normal_bytes"):
        check_range(f"{_PATH}.{name}", getattr(job, name), 0, MAX_CAPACITY)
    if job.memory_normal_bytes > job.memory_processed_bytes:
        raise MalformedMessage(
            f"{_PATH}.memory_normal_bytes",
            f"{job.memory_normal_bytes} is more than memory_processed_bytes "
            f"{job.memory_processed_bytes}",
        )
    check_range(f"{_PATH}.downtime_ms", job.downtime_ms, 0, elapsed)
    check_range(f"{_PATH}.memory_iterations", job.memory_iterations, 0, MAX_ITERATIONS)
    return m.MigrationJob(
        elapsed_ms=elapsed,
        memory_processed_bytes=job.memory_processed_bytes,
        memory_normal_bytes=job.memory_normal_bytes,
        downtime_ms=job.downtime_ms,
        iterations=job.memory_iterations,
    )


def encode_migration_job(job: m.MigrationJob | None, msg: node_pb2.CommandResult) -> None:
    """Set the result's ``migration_job`` (left absent for None)."""
    if job is None:
        return
    msg.migration_job.CopyFrom(
        node_pb2.MigrationJobStats(
            time_elapsed_ms=job.elapsed_ms,
            memory_processed_bytes=job.memory_processed_bytes,
            memory_normal_bytes=job.memory_normal_bytes,
            downtime_ms=job.downtime_ms,
            memory_iterations=job.iterations,
        )
    )
