"""Compact usage history: a fixed ring of integers per VM instead of a deque of objects.

With 40,000 VMs and a 60-sample window, keeping every VmUsage would hold millions of Python
objects; a ring of int64 costs 60 x 5 x 8 bytes per VM and an append is five item stores.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class VmSample:
    """One past observation of a VM."""

    sent_at_unix_ns: int
    cpu_used_millicores: int
    memory_used_bytes: int
    net_rx_bytes_per_second: int
    net_tx_bytes_per_second: int


_WIDTH = 5


class UsageRing:
    """The last ``window`` samples of one VM, oldest overwritten first."""

    __slots__ = ("_data", "_next", "_count", "_window")

    def __init__(self, window: int) -> None:
        self._data = array("q", bytes(8 * _WIDTH * window))
        self._next = 0
        self._count = 0
        self._window = window

    def append(self, sent_at_unix_ns: int, cpu: int, memory: int, rx: int, tx: int) -> None:
        """Store one sample (hot path: five item stores)."""
        i = self._next * _WIDTH
        data = self._data
        data[i] = sent_at_unix_ns
        data[i + 1] = cpu
        data[i + 2] = memory
        data[i + 3] = rx
        data[i + 4] = tx
        self._next = (self._next + 1) % self._window
        self._count += 1

    def copy(self) -> UsageRing:
        """An independent copy (snapshots keep copies, so later appends do not show)."""
        ring = UsageRing.__new__(UsageRing)
        ring._data = array("q", self._data)
        ring._next, ring._count, ring._window = self._next, self._count, self._window
        return ring

    def samples(self) -> tuple[VmSample, ...]:
        """Samples in time order, oldest first."""
        n = min(self._count, self._window)
        start = (self._next - n) % self._window
        data = self._data
        out = []
        for k in range(n):
            i = ((start + k) % self._window) * _WIDTH
            out.append(VmSample(*data[i : i + _WIDTH]))
        return tuple(out)

    def cpu_newest_first(self) -> list[int]:
        """CPU millicores of the samples, newest first: what decisions read, without
        building a VmSample per sample (a cluster holds tens of thousands of rings)."""
        n = min(self._count, self._window)
        if n == 0:
            return []
        start = (self._next - n) % self._window
        column = self._data[1::_WIDTH]  # cpu of every slot, in slot order
        ordered = (
            column[start:] + column[:start] if n == self._window else column[start : start + n]
        )
        return list(reversed(ordered))

    def __len__(self) -> int:
        return min(self._count, self._window)


def cpu_matrix(
    rings: Sequence[UsageRing | None], cap: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """CPU millicores of many rings at once, newest first, capped at `cap`: one row per ring
    (zeros past its length; a None ring has no samples), and each row's length.

    Decisions over tens of thousands of VMs read every history; doing it ring by ring in
    Python costs most of a second, one pass over all the rings' bytes a tenth of that.
    """
    rows = len(rings)
    width = max((r._window for r in rings if r is not None), default=1)
    data = np.zeros((rows, width, _WIDTH), dtype=np.int64)
    nexts = np.zeros(rows, dtype=np.int64)
    lengths = np.zeros(rows, dtype=np.int64)
    windows = np.ones(rows, dtype=np.int64)
    for i, ring in enumerate(rings):
        if ring is None or ring._count == 0:
            continue
        data[i, : ring._window] = np.frombuffer(ring._data, dtype=np.int64).reshape(-1, _WIDTH)
        nexts[i], windows[i] = ring._next, ring._window
        lengths[i] = min(ring._count, ring._window)
    age = np.arange(width, dtype=np.int64)
    slots = (nexts[:, None] - 1 - age[None, :]) % windows[:, None]
    cpu = np.take_along_axis(data[:, :, 1], slots, axis=1).astype(np.float64)
    cpu[age[None, :] >= lengths[:, None]] = 0.0
    return np.minimum(cpu, float(cap)), lengths
