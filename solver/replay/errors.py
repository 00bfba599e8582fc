"""The replay's one root exception: every error a user can cause while replaying a trace."""

from __future__ import annotations

from vmgrid.v1.errors import VmgridError


class ReplayError(VmgridError, ValueError):
    """Bad input to the trace replay (a missing day, an unknown policy, a bad host count)."""
