"""The root of every vmgrid error (the one hand-written module beside the generated code).

It lives in the lowest layer, the wire API that every other layer imports, so that the
solver's, the agents', the coordinator's, the lab's and the tools' errors all derive from the
one class: ``except VmgridError`` catches any error vmgrid raises on purpose, and anything else
is a bug. Not in the solver: the node agent imports nothing of the solver (it would load
OR-Tools on every compute node). The root names the gRPC status its errors map to, as a
string, so this module imports nothing. Subclasses keep their older second bases
(``ValueError``, ``RuntimeError``) so that callers catching those keep working.
"""

from __future__ import annotations

from typing import ClassVar


class VmgridError(Exception):
    """Root of every error raised on purpose by vmgrid, with a one-line message."""

    grpc_status: ClassVar[str] = "INTERNAL"
    """Name of the gRPC status this error maps to on the wire (a string: no grpc here)."""
