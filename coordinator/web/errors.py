"""The web area's one error type: what the API answers as ``{"error": {message, field}}``."""

from __future__ import annotations

from vmgrid.v1.errors import VmgridError


class ApiError(VmgridError):
    """An error a client caused (or a state conflict), carrying its HTTP status and field."""

    def __init__(self, status: int, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def body(self) -> dict[str, dict[str, str]]:
        """The JSON error body every failing request returns."""
        return {"error": {"message": self.message, "field": self.field}}


def bad_request(message: str, field: str = "") -> ApiError:
    return ApiError(400, message, field)


def not_found(message: str, field: str = "") -> ApiError:
    return ApiError(404, message, field)


def conflict(message: str, field: str = "") -> ApiError:
    return ApiError(409, message, field)
