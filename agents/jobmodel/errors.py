"""The one root exception of job submission, and its user-facing kinds.

A rejected placement is a value (`vmgrid.agents.jobmodel.placement.Rejection`), not an error:
exceptions here mean bad input or a store misuse.
"""

from __future__ import annotations

from vmgrid.v1.errors import VmgridError


class JobError(VmgridError):
    """Root of every error raised by `vmgrid.agents.jobmodel`; on the wire, a bad argument."""

    grpc_status = "INVALID_ARGUMENT"


class JobSpecError(JobError, ValueError):
    """A submitted job that cannot be right; names the field and the bad value."""

    def __init__(self, field: str, value: object, accepted: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"job field {field!r}: {value!r} is invalid; {accepted}")


class JobStateError(JobError):
    """An illegal state transition, or a job id the store does not know."""


class SeedError(JobError):
    """A cloud-init seed ISO that cannot be written or read."""
