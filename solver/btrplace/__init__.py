"""BtrPlace instances: read their JSON into vmgrid values and write plans back with their ids."""

from vmgrid.solver.btrplace.instance import (
    Among,
    BtrInstance,
    Constraint,
    Offline,
    Online,
    Preserve,
    ResourceCapacity,
    Running,
    Spread,
)
from vmgrid.solver.btrplace.reader import BtrPlaceError, load_instance, parse_instance, read_json

__all__ = [
    "Among",
    "BtrInstance",
    "BtrPlaceError",
    "Constraint",
    "Offline",
    "Online",
    "Preserve",
    "ResourceCapacity",
    "Running",
    "Spread",
    "load_instance",
    "parse_instance",
    "read_json",
]
