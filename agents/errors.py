"""Errors of the agents area (node agent and cluster manager).

Every error a caller can cause is a ``VmgridError`` subclass (the one root of every vmgrid
error, defined in ``vmgrid.v1.errors`` and re-exported here) with a one-line message naming
the bad value. Each subclass names the gRPC status it maps to, as a string, so that this
module stays free of grpc; ``vmgrid.agents.rpc_status`` turns it into a ``grpc.StatusCode``.
"""

from __future__ import annotations

from vmgrid.v1.errors import VmgridError

__all__ = [
    "AlreadyExists",
    "CommandFailed",
    "ConfigError",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "MalformedMessage",
    "NotFound",
    "PermissionDenied",
    "Unavailable",
    "Unimplemented",
    "VmgridError",
    "error_for_status",
    "grpc_status_name",
]


class InvalidArgument(VmgridError):
    """A value supplied by a caller or a peer is malformed or out of range."""

    grpc_status = "INVALID_ARGUMENT"


class ConfigError(InvalidArgument):
    """A configuration value (file or flag) is invalid."""


class NotFound(VmgridError):
    """A named node, VM, plan, command or job does not exist."""

    grpc_status = "NOT_FOUND"


class AlreadyExists(VmgridError):
    """An object with that id already exists."""

    grpc_status = "ALREADY_EXISTS"


class FailedPrecondition(VmgridError):
    """The system is not in a state that allows the operation (e.g. node lost)."""

    grpc_status = "FAILED_PRECONDITION"


class Unavailable(VmgridError):
    """A peer cannot be reached right now; retrying later may succeed."""

    grpc_status = "UNAVAILABLE"


class DeadlineExceeded(VmgridError):
    """An operation did not finish in time."""

    grpc_status = "DEADLINE_EXCEEDED"


class PermissionDenied(VmgridError):
    """The caller is not allowed to do this."""

    grpc_status = "PERMISSION_DENIED"


class Unimplemented(VmgridError):
    """The operation belongs to a feature that is not implemented yet."""

    grpc_status = "UNIMPLEMENTED"


class CommandFailed(VmgridError):
    """A node reported that a command failed; the message is the node's."""

    grpc_status = "ABORTED"


_BY_STATUS: dict[str, type[VmgridError]] = {
    cls.grpc_status: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Unavailable,
        DeadlineExceeded,
        PermissionDenied,
        Unimplemented,
        CommandFailed,
    )
}


def grpc_status_name(error: BaseException) -> str:
    """Name of the grpc.StatusCode for an error; unexpected exceptions map to INTERNAL."""
    if isinstance(error, VmgridError):
        return error.grpc_status
    return "INTERNAL"


def error_for_status(status_name: str, message: str) -> VmgridError:
    """The VmgridError matching a gRPC status name, so callers never handle grpc errors."""
    return _BY_STATUS.get(status_name, VmgridError)(message)


class MalformedMessage(InvalidArgument):
    """A peer sent a message that fails validation; ``field`` is the dotted path of the value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
