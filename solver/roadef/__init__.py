"""Google's machine-reassignment problem (ROADEF/EURO challenge 2012) in vmgrid's terms.

Pipeline: `instance` reads the challenge's files into arrays; `solve` improves the initial
assignment with `local` search and CP-SAT large-neighbourhood search (`lns`) over an
incrementally maintained `state`; `checker` re-checks any assignment independently.
"""

from vmgrid.solver.roadef.checker import CheckReport, CostBreakdown, check
from vmgrid.solver.roadef.instance import (
    RoadefError,
    RoadefInstance,
    format_assignment,
    parse_assignment,
    parse_model,
)
from vmgrid.solver.roadef.solve import RoadefOptions, RoadefResult, solve_roadef

__all__ = [
    "CheckReport",
    "CostBreakdown",
    "RoadefError",
    "RoadefInstance",
    "RoadefOptions",
    "RoadefResult",
    "check",
    "format_assignment",
    "parse_assignment",
    "parse_model",
    "solve_roadef",
]
