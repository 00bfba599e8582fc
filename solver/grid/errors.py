"""Errors of the grid planner area: one root type, so callers catch ``GridError`` only."""

from __future__ import annotations

from vmgrid.v1.errors import VmgridError


class GridError(VmgridError):
    """Root of every error raised by ``vmgrid.solver.grid``."""


class TopologyError(GridError):
    """The topology (GraphML file or graph) is malformed; the message names the bad element."""


class GridInputError(GridError):
    """Cluster summaries or planner settings are inconsistent; the message names the bad value."""
