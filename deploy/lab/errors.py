"""The one exception type of the lab, so callers catch lab failures without catching bugs."""

from __future__ import annotations

from vmgrid.v1.errors import VmgridError


class LabError(VmgridError):
    """A lab operation failed for a reason the operator can act on; the message says which."""
