"""Map vmgrid.agents errors to and from gRPC status codes (the only grpc-aware error code)."""

from __future__ import annotations

from typing import NoReturn

import grpc
import grpc.aio
from vmgrid.agents.errors import VmgridError, error_for_status, grpc_status_name


def status_code(error: BaseException) -> grpc.StatusCode:
    """The grpc.StatusCode for an error (INTERNAL for anything unexpected)."""
    return grpc.StatusCode[grpc_status_name(error)]


async def abort_with(context: grpc.aio.ServicerContext, error: BaseException) -> NoReturn:
    """Abort an RPC with the status and one-line message of ``error``."""
    await context.abort(status_code(error), str(error))
    raise AssertionError("context.abort returned")  # pragma: no cover


def from_rpc_error(error: grpc.RpcError) -> VmgridError:
    """Wrap a transport error so callers only ever see VmgridError subclasses."""
    # grpc.Call (sync stubs) and grpc.aio's AioRpcError both answer code() and details()
    call = error if callable(getattr(error, "code", None)) else None
    code = call.code() if call is not None else grpc.StatusCode.UNKNOWN  # type: ignore[attr-defined]
    details = call.details() if call is not None else str(error)  # type: ignore[attr-defined]
    return error_for_status(code.name, details or code.name)
