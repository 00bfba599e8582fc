"""A node's last host samples, (sent_at, HostUsage) oldest first, kept in columns (#17).

The decision loop's trigger, the usage trends and the dashboard read a node's recent host
samples as a sequence of (sent_at, HostUsage). Kept as those objects, every report left two
objects behind (the pair and its HostUsage, four more with pressure) that the garbage
collector's young generation found alive: at 5,000 nodes, until every window was full (a
minute after the agents connected, so after every manager start or failover) a young
collection every 10 s held the event loop for 80-160 ms. Here a sample is a row of integers
(its time and HostUsage's counters) and, once a node reports pressure, one of floats, in
rings of arrays that hold no object the collector tracks; a sample's objects are built only
when it is read. A sample those rows cannot hold exactly (a counter that is None or not an
integer, a stall total a float does not hold) is kept as its object, and read back as it came.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import overload

from vmgrid.agents.cluster.state.trend_pressure import UNAVAILABLE, pressure_values
from vmgrid.agents.model import HostUsage
from vmgrid.agents.psi import NO_PRESSURE, Pressure, PressureStall

COUNTERS = tuple(f.name for f in fields(HostUsage) if f.name != "pressure")
"""HostUsage's integer fields, in their order (a row's columns after its time)."""

_WIDTH = 1 + len(COUNTERS)
_ROW = struct.Struct(f"{_WIDTH}q")
_COUNTERS_OF = attrgetter(*COUNTERS)
_CPU = 1 + COUNTERS.index("cpu_used_millicores")
_STALLS = ("cpu", "memory", "io")
_STALL_WIDTH = 5  # read (1.0) or not (0.0), some_avg10, full_avg10, some_total_us, full_total_us
_PRESSURE_WIDTH = len(_STALLS) * _STALL_WIDTH
_PRESSURE_ROW = struct.Struct(f"{_PRESSURE_WIDTH}d")
_NO_STALLS = (0.0,) * _PRESSURE_WIDTH


_KEPT = (
    "cpu_used_millicores",
    "memory_used_bytes",
    "memory_total_bytes",
    "net_rx_bytes_per_second",
    "net_tx_bytes_per_second",
)
"""The counters `HostWindow.add` writes, by name (COUNTERS as this module was written for)."""


def _check_model() -> None:
    """A new HostUsage field must be kept here too (an integer counter or the pressure)."""
    wrong = [f.name for f in fields(HostUsage) if f.name != "pressure" and f.type != "int"]
    if wrong or COUNTERS != _KEPT:
        raise TypeError(
            f"HostUsage's counters are {COUNTERS} ({wrong} not integers); host_window.py keeps "
            f"{_KEPT}, integers: teach HostWindow.add the change"
        )


_check_model()


class HostWindow(Sequence[tuple[int, HostUsage]]):
    """The last `window` (sent_at, HostUsage) of a node, oldest first (a bounded deque's
    reading: a sample added to a full window pushes out the oldest)."""

    __slots__ = ("_rows", "_pressure", "_odd", "_first", "_length", "window")

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError(f"a host window holds at least 1 sample, not {window}")
        self.window = window
        self._rows = array("q", bytes(_ROW.size * window))
        self._pressure: array[float] | None = None
        """Every slot's pressure row, from the node's first sample with pressure on (a sample
        without has a row of zeros: no stall read)."""
        self._odd: dict[int, HostUsage] | None = None
        """Slot -> a sample kept as its object (one the rows cannot hold exactly); None while
        there is none."""
        self._first = 0
        self._length = 0

    def add(self, sent_at: int, usage: HostUsage) -> None:
        """The newest sample (the oldest leaves a full window)."""
        if self._length < self.window:
            slot = (self._first + self._length) % self.window
            self._length += 1
        else:
            slot = self._first
            self._first = (self._first + 1) % self.window
        if self._odd is not None:
            self._odd.pop(slot, None)
            self._odd = self._odd or None
        pressure = usage.pressure
        try:
            _ROW.pack_into(
                self._rows,
                slot * _ROW.size,
                sent_at,
                usage.cpu_used_millicores,
                usage.memory_used_bytes,
                usage.memory_total_bytes,
                usage.net_rx_bytes_per_second,
                usage.net_tx_bytes_per_second,
            )
            if pressure is not NO_PRESSURE:
                self._set_pressure(slot, pressure)
            elif self._pressure is not None:
                _PRESSURE_ROW.pack_into(self._pressure, slot * _PRESSURE_ROW.size, *_NO_STALLS)
        except (struct.error, TypeError, OverflowError, ValueError):
            self._rows[slot * _WIDTH] = sent_at  # its rows are not read while it is odd
            self._odd = self._odd or {}
            self._odd[slot] = usage

    def _set_pressure(self, slot: int, pressure: Pressure) -> None:
        values: list[float] = []
        for name in _STALLS:
            stall: PressureStall | None = getattr(pressure, name)
            if stall is None:
                values += (0.0, 0.0, 0.0, 0.0, 0.0)
                continue
            totals = (stall.some_total_us, stall.full_total_us)
            if any(type(t) is not int or int(float(t)) != t for t in totals):
                raise ValueError(f"stall totals {totals} are not integers a float holds")
            values += (1.0, stall.some_avg10, stall.full_avg10, *totals)
        if self._pressure is None:
            self._pressure = array("d", bytes(_PRESSURE_ROW.size * self.window))
        _PRESSURE_ROW.pack_into(self._pressure, slot * _PRESSURE_ROW.size, *values)

    def copy(self) -> HostWindow:
        """An independent window with the same samples (its arrays copied, no object built)."""
        twin = HostWindow.__new__(HostWindow)
        twin.window, twin._first, twin._length = self.window, self._first, self._length
        twin._rows = array("q", self._rows)
        twin._pressure = None if self._pressure is None else array("d", self._pressure)
        twin._odd = None if self._odd is None else dict(self._odd)
        return twin

    def __len__(self) -> int:
        return self._length

    def _slot(self, index: int) -> int:
        at = index + self._length if index < 0 else index
        if not 0 <= at < self._length:
            raise IndexError(f"host sample {index} of a window of {self._length}")
        return (self._first + at) % self.window

    @overload
    def __getitem__(self, index: int) -> tuple[int, HostUsage]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[int, HostUsage]]: ...
    def __getitem__(
        self, index: int | slice
    ) -> tuple[int, HostUsage] | list[tuple[int, HostUsage]]:
        if isinstance(index, slice):
            return [self._sample(self._slot(i)) for i in range(*index.indices(self._length))]
        return self._sample(self._slot(index))

    def __iter__(self) -> Iterator[tuple[int, HostUsage]]:
        for i in range(self._length):
            yield self._sample((self._first + i) % self.window)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like the deque it replaces

    def __repr__(self) -> str:
        return f"HostWindow({list(self)!r}, window={self.window})"

    def _sample(self, slot: int) -> tuple[int, HostUsage]:
        if self._odd is not None and slot in self._odd:
            return self._rows[slot * _WIDTH], self._odd[slot]
        row = _ROW.unpack_from(self._rows, slot * _ROW.size)
        return row[0], HostUsage(row[1], row[2], row[3], row[4], row[5], self._pressure_at(slot))

    def _pressure_at(self, slot: int) -> Pressure:
        if self._pressure is None:
            return NO_PRESSURE
        values = _PRESSURE_ROW.unpack_from(self._pressure, slot * _PRESSURE_ROW.size)
        stalls: list[PressureStall | None] = []
        for at in range(0, _PRESSURE_WIDTH, _STALL_WIDTH):
            read, some, full, some_total, full_total = values[at : at + _STALL_WIDTH]
            stalls.append(
                PressureStall(some, full, int(some_total), int(full_total)) if read else None
            )
        return NO_PRESSURE if stalls == [None] * len(_STALLS) else Pressure(*stalls)

    def _some_avg10(self, slot: int) -> tuple[float | None, ...]:
        if self._pressure is None:
            return UNAVAILABLE
        base = slot * _PRESSURE_WIDTH
        values = self._pressure
        return tuple(
            values[base + at + 1] if values[base + at] else None
            for at in range(0, _PRESSURE_WIDTH, _STALL_WIDTH)
        )

    def last_time(self) -> int:
        """The newest sample's sent_at (IndexError on an empty window)."""
        return self._rows[self._slot(-1) * _WIDTH]

    def series(self, start: int, end: int) -> list[tuple[float | None, ...]]:
        """Samples ``start`` to ``end`` (indices, oldest first) as their values in the usage
        trends' NODE_SERIES order: HostUsage's counters, then each resource's pressure (some
        avg10; None where not read), without building the samples' objects."""
        if not 0 <= start <= end <= self._length:
            raise IndexError(f"host samples {start}-{end} of a window of {self._length}")
        unpack, rows, odd = _ROW.unpack_from, self._rows, self._odd
        out: list[tuple[float | None, ...]] = []
        for i in range(start, end):
            slot = (self._first + i) % self.window
            if odd is not None and slot in odd:
                usage = odd[slot]
                out.append((*_COUNTERS_OF(usage), *pressure_values(usage.pressure)))
            else:
                out.append(unpack(rows, slot * _ROW.size)[1:] + self._some_avg10(slot))
        return out

    def times(self) -> list[int]:
        """Every sample's sent_at, oldest first."""
        return self._ordered(self._rows[0::_WIDTH])

    def cpu(self) -> list[int]:
        """Every sample's cpu_used_millicores, oldest first."""
        if self._odd:
            return [u.cpu_used_millicores for _, u in self]
        return self._ordered(self._rows[_CPU::_WIDTH])

    def cpu_pressure(self) -> list[float]:
        """Every sample's CPU pressure (some avg10, percent; -1 where the node reported none),
        oldest first: what ``quiet.cpu_pressure`` reads of each sample."""
        if self._odd:
            cpu = (pressure_values(u.pressure)[0] for _, u in self)
            return [-1.0 if some is None else some for some in cpu]
        if self._pressure is None:
            return [-1.0] * self._length
        read = self._ordered(self._pressure[0::_PRESSURE_WIDTH])
        some = self._ordered(self._pressure[1::_PRESSURE_WIDTH])
        return [v if r else -1.0 for r, v in zip(read, some, strict=True)]

    def _ordered(self, column: Sequence[int] | Sequence[float]) -> list:  # type: ignore[type-arg]
        end = self._first + self._length
        if end <= self.window:
            return list(column[self._first : end])
        return list(column[self._first :]) + list(column[: end - self.window])
