"""Reading a PlanetLab day: one file per VM, 288 integer CPU percentages, 300 s apart."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from vmgrid.solver.replay.errors import ReplayError


@dataclass(frozen=True)
class Workload:
    """A day of traces: VM names in sorted file order and their utilisation fractions.

    ``utilisation`` has one row per VM and one column more than the files have lines: CloudSim
    appends a copy of the last sample so that interpolation past the last boundary is defined.
    """

    name: str
    vm_names: tuple[str, ...]
    utilisation: npt.NDArray[np.float64]

    @property
    def vm_count(self) -> int:
        return len(self.vm_names)

    @property
    def steps(self) -> int:
        return int(self.utilisation.shape[1]) - 1


def load_day(directory: str | os.PathLike[str], max_vms: int | None = None) -> Workload:
    """Load every trace file of ``directory`` in Java ``String`` order (= Python ``sorted``)."""
    path = Path(directory)
    if not path.is_dir():
        raise ReplayError(
            f"trace directory {str(path)!r} does not exist; pass a PlanetLab day folder"
        )
    names = sorted(
        p.name
        for p in path.iterdir()
        if p.is_file() and not p.name.startswith(("README", "ATTRIBUTION", "."))
    )
    if max_vms is not None:
        names = names[:max_vms]
    if not names:
        raise ReplayError(f"trace directory {str(path)!r} holds no trace files")
    rows = [_read_trace(path / name) for name in names]
    length = len(rows[0])
    if any(len(r) != length for r in rows):
        raise ReplayError(
            f"trace files in {str(path)!r} differ in length; expected {length} lines each"
        )
    util = np.array(rows, dtype=np.float64) / 100.0
    util = np.concatenate([util, util[:, -1:]], axis=1)
    return Workload(path.name, tuple(names), util)


def _read_trace(file: Path) -> list[int]:
    try:
        values = [int(line) for line in file.read_text().split()]
    except ValueError as exc:
        raise ReplayError(
            f"trace file {str(file)!r} has a non-integer line; expected CPU percentages"
        ) from exc
    if not values:
        raise ReplayError(
            f"trace file {str(file)!r} is empty; expected one CPU percentage per line"
        )
    return values
