"""Compact usage history: per node, one time-major block of integers for all its VMs.

With 40,000 VMs and a 60-sample window, keeping every VmUsage would hold millions of Python
objects; a block of int64 costs 60 x 5 x 8 bytes per VM and a sample is five item stores.

The block is time-major (row = one report, one slot per VM in the row) rather than one ring
per VM, because a report then writes one contiguous row: a page or two per node instead of a
page per VM. That matters when the decision process is forked (forked.py): until it exits,
every page the manager writes is copied first, and one second of reports from 2,000 nodes
touched 40,000 pages with one ring per VM.
"""

from __future__ import annotations

import struct
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
"""Values per sample: sent_at, cpu, memory, rx, tx."""


_PACKERS: dict[int, struct.Struct] = {}


def _packer(count: int) -> struct.Struct:
    """Packs `count` int64 (one per length seen: at most five per VM count)."""
    packer = _PACKERS.get(count)
    if packer is None:
        packer = _PACKERS[count] = struct.Struct(f"{count}q")
    return packer


class NodeHistory:
    """The last ``window`` samples of every VM of one node.

    A VM holds a slot from ``add`` to ``remove``; each report writes the current row (all
    its VMs at once with ``write_row``, or ``write`` per VM) and then ``advance``\\ s. A slot
    holds the samples written since it was taken (a reused slot starts again from zero).
    """

    __slots__ = (
        "_data",
        "_block",
        "_slots",
        "_free",
        "_starts",
        "_ended",
        "_window",
        "_width",
        "_next",
        "_order_uuids",
        "_order",
    )

    def __init__(self, window: int, slots: int = 8) -> None:
        self._window = window
        self._width = max(1, slots)
        self._set_data(array("q", bytes(8 * _WIDTH * self._width * window)))
        self._slots: dict[str, int] = {}
        self._free: list[int] = list(range(self._width - 1, -1, -1))
        self._starts = array("q", bytes(8 * self._width))
        """Per slot, the number of rows ended when it was taken: its samples are the rows
        ended since (so ending a row is one increment, not one per VM)."""
        self._ended = 0
        self._next = 0
        self._order_uuids: tuple[str, ...] | None = None
        self._order: npt.NDArray[np.int64] | None = None
        """Slots of ``_order_uuids`` in order (None: they are 0, 1, 2...): the layout of the
        last row written by write_row, reused while the node's VMs stay the same."""

    def _set_data(self, data: array[int]) -> None:
        self._data = data
        self._block = np.frombuffer(data, dtype=np.int64).reshape(self._window, -1, _WIDTH)

    def add(self, uuid: str) -> int:
        """A slot for a new VM (the block doubles when it is full)."""
        slot = self._slots.get(uuid)
        if slot is not None:
            return slot
        if not self._free:
            self._grow()
        slot = self._free.pop()
        self._slots[uuid] = slot
        self._starts[slot] = self._ended
        self._order_uuids = None
        return slot

    def remove(self, uuid: str) -> None:
        slot = self._slots.pop(uuid, None)
        if slot is not None:
            self._free.append(slot)
            self._order_uuids = None

    def reserve(self, vms: int) -> None:
        """Make room for `vms` VMs at once (a report's count), rather than by doublings."""
        if vms > len(self._slots) + len(self._free):
            self._grow(vms)

    def _grow(self, width: int = 0) -> None:
        """Widen every row: to `width` slots, or double (all slots are taken)."""
        old = self._width
        width = max(width, old * 2 if not self._free else old)
        grown = np.zeros((self._window, width, _WIDTH), dtype=np.int64)
        grown[:, :old] = self._block
        self._width = width
        self._set_data(array("q", grown.tobytes()))
        self._starts.extend([0] * (width - old))
        self._free[:0] = range(width - 1, old - 1, -1)  # lowest slots are taken first
        self._order_uuids = None

    def write(
        self, slot: int, sent_at_unix_ns: int, cpu: int, memory: int, rx: int, tx: int
    ) -> None:
        """Store a VM's sample in the current row (hot path: five item stores)."""
        i = (self._next * self._width + slot) * _WIDTH
        data = self._data
        data[i] = sent_at_unix_ns
        data[i + 1] = cpu
        data[i + 2] = memory
        data[i + 3] = rx
        data[i + 4] = tx

    def write_row(
        self,
        uuids: tuple[str, ...],
        samples: Sequence[int] | npt.NDArray[np.int64],
        sent_at_unix_ns: int = 0,
    ) -> None:
        """Store the samples of all of a report's VMs in the current row: ``samples`` holds
        five integers per VM of ``uuids`` (sent_at, cpu, memory, rx, tx), in that order; or
        it is an int64 array of cpu, memory, rx and tx x VMs (a report's integer block), whose
        time is `sent_at_unix_ns`. A VM without a slot gets one. While the node's VMs stay
        the same, this is one block copy."""
        if uuids != self._order_uuids:
            self.reserve(len(uuids))
            slots = [self.add(uuid) for uuid in uuids]
            contiguous = slots == list(range(len(slots)))
            self._order = None if contiguous else np.array(slots, dtype=np.int64)
            self._order_uuids = uuids
        if not len(samples):
            return
        if isinstance(samples, np.ndarray):
            where = slice(0, samples.shape[1]) if self._order is None else self._order
            row = self._block[self._next]
            row[where, 0] = sent_at_unix_ns
            row[where, 1:] = samples.T
            return
        packed = _packer(len(samples)).pack(*samples)  # array("q", list) takes 3x as long
        if self._order is None:
            start = self._next * self._width * _WIDTH
            self._data[start : start + len(samples)] = array("q", packed)
        else:
            values = np.frombuffer(packed, dtype=np.int64).reshape(-1, _WIDTH)
            self._block[self._next, self._order] = values

    def advance(self) -> None:
        """End the current row: every VM holding a slot has one more sample."""
        self._ended += 1
        self._next = (self._next + 1) % self._window

    def _count(self, slot: int) -> int:
        return min(self._ended - self._starts[slot], self._window)

    def copy(self) -> NodeHistory:
        """An independent copy (snapshots keep copies, so later reports do not show)."""
        other = NodeHistory.__new__(NodeHistory)
        other._window, other._width, other._next = self._window, self._width, self._next
        other._set_data(array("q", self._data))
        other._slots = dict(self._slots)
        other._free = list(self._free)
        other._starts = array("q", self._starts)
        other._ended = self._ended
        other._order_uuids, other._order = self._order_uuids, self._order
        return other

    def samples(self, uuid: str) -> tuple[VmSample, ...]:
        """A VM's samples in time order, oldest first (empty for an unknown uuid)."""
        slot = self._slots.get(uuid)
        if slot is None:
            return ()
        data = self._data
        out = []
        for row in reversed(self._rows(slot)):
            i = (row * self._width + slot) * _WIDTH
            out.append(VmSample(*data[i : i + _WIDTH]))
        return tuple(out)

    def _rows(self, slot: int) -> list[int]:
        """Rows holding the slot's samples, newest first."""
        n = self._count(slot)
        return [(self._next - 1 - k) % self._window for k in range(n)]

    @property
    def window(self) -> int:
        """Rows kept: the most samples a slot can hold."""
        return self._window

    @property
    def slots(self) -> dict[str, int]:
        """uuid -> slot of every VM holding one (read only)."""
        return self._slots

    def totals(
        self, rows: int, skip: int = 0
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Over the `rows` rows before the `skip` most recent ones (rows + skip <= window):
        (samples per slot, sums of cpu, memory, rx, tx per slot: slots x 4). A reused slot
        counts only its current VM's rows. One numpy pass over the block (the long-term
        history folds rows in with it, off the hot path)."""
        rows = min(rows, self._window - skip)
        block = self._block
        end = (self._next - skip) % self._window
        start = (end - rows) % self._window
        if start + rows <= self._window:  # oldest first, a view when the rows do not wrap
            recent = block[start : start + rows, :, 1:]
        else:
            recent = np.concatenate((block[start:, :, 1:], block[:end, :, 1:]))
        held = self._lengths(rows + skip)
        if skip:
            held = np.maximum(held - skip, 0)
        if held.min(initial=rows) >= rows:  # every slot holds all the rows: no mask
            return held, recent.sum(axis=0).astype(np.float64)
        valid = np.arange(rows - 1, -1, -1)[:, None] < held[None, :]  # row age < rows held
        return held, (recent * valid[:, :, None]).sum(axis=0).astype(np.float64)

    def cpu_block(self) -> tuple[npt.NDArray[np.int64], dict[str, int], npt.NDArray[np.int64]]:
        """(CPU of every slot newest first: slots x window, uuid -> slot, samples per slot)."""
        order = (self._next - 1 - np.arange(self._window)) % self._window
        cpu = self._block[order, :, 1].T
        return cpu, self._slots, self._lengths(self._window)

    def _lengths(self, cap: int) -> npt.NDArray[np.int64]:
        """Samples each slot holds (its VM's rows ended since it took the slot), at most
        `cap`; 0 for a free slot (its last VM's rows are not anyone's)."""
        starts = np.frombuffer(self._starts, dtype=np.int64)
        lengths = np.minimum(self._ended - starts, cap)
        if self._free:
            lengths[np.array(self._free, dtype=np.int64)] = 0
        return lengths


def cpu_matrix(
    histories: Sequence[NodeHistory | None], uuids: Sequence[str], cap: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """CPU millicores of many VMs at once, newest first, capped at `cap`: one row per VM
    (`histories[i]` holds `uuids[i]`; zeros past its length; None: no samples), and each
    row's length. One pass per node, not a Python loop per sample."""
    rows = len(uuids)
    width = max((h._window for h in histories if h is not None), default=1)
    matrix = np.zeros((rows, width), dtype=np.float64)
    lengths = np.zeros(rows, dtype=np.int64)
    by_node: dict[int, tuple[NodeHistory, list[int]]] = {}
    for i, history in enumerate(histories):
        if history is not None:
            by_node.setdefault(id(history), (history, []))[1].append(i)
    for history, members in by_node.values():
        cpu, slots, counts = history.cpu_block()
        picked = [slots.get(uuids[i], -1) for i in members]
        keep = [k for k, s in enumerate(picked) if s >= 0]
        if not keep:
            continue
        where = np.array([members[k] for k in keep], dtype=np.int64)
        slot = np.array([picked[k] for k in keep], dtype=np.int64)
        matrix[where, : cpu.shape[1]] = cpu[slot]
        lengths[where] = counts[slot]
    age = np.arange(width, dtype=np.int64)
    matrix[age[None, :] >= lengths[:, None]] = 0.0
    return np.minimum(matrix, float(cap)), lengths
