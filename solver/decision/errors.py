"""The decision policy's one root exception."""

from __future__ import annotations

from vmgrid.v1.errors import VmgridError


class DecisionError(VmgridError, ValueError):
    """A snapshot or configuration the policy cannot decide on (bad shapes, bad parameters)."""
