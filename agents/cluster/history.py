"""Compact usage history: a fixed ring of integers per VM instead of a deque of objects.

With 40,000 VMs and a 60-sample window, keeping every VmUsage would hold millions of Python
objects; a ring of int64 costs 60 x 5 x 8 bytes per VM and an append is five item stores.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass


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
