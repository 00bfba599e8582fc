"""A guest's resident memory as a live migration's first pass sends it (#16).

Pre-copy sends every page of guest RAM that is resident and not all zeros; QEMU sends a zero
page, and a page never touched, as a few header bytes. The figure is read from the QEMU
process: its guest-RAM mapping (the anonymous mapping of exactly the guest's memory size in
``/proc/PID/maps``), which of its pages are present (``/proc/PID/pagemap``, one 8-byte entry
per page, read in blocks) and, for a sample of the present pages, their contents
(``/proc/PID/mem``). The share of sampled pages that are all zeros scales the present count:
512 page reads per VM whatever its size (4 ms for a 256 MiB guest here), against 65,536 for a
full scan of a 256 MiB guest. pagemap and mem need the QEMU process's owner (an unprivileged
lab daemon's QEMU runs as the agent's user) or root; when mem cannot be read the present pages
count whole, and when pagemap cannot either the VM has no figure (0: the manager counts its
used memory).

`ResidentMeter` refreshes a few VMs per report, the most overdue first: a steady figure every
minute, a moving one, or one of a VM measured here for less than 3 minutes (a guest booting,
or just arrived by migration), every 10 s, so that a report's cost does not grow with the
node's VMs.
"""

from __future__ import annotations

import io
import math
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import libvirt

PAGE = 4096
_ZERO_PAGE = bytes(PAGE)
_ENTRY = struct.Struct("<Q")
_PRESENT, _SWAPPED = 1 << 63, 1 << 62
_TOP_BYTE = bytes((1 if b & 0xC0 else 0) for b in range(256))
"""Maps a pagemap entry's top byte (little-endian, its 8th) to 1 when present or swapped."""
_BLOCK_PAGES = 8192
"""pagemap entries read at once (64 KiB: 32 MiB of guest RAM), bounding the agent's memory."""
SAMPLE_PAGES = 512
"""Pages whose contents are read per VM, spread evenly over its RAM."""

_MEMORY_ARRIVING = {
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_MIGRATION),
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_STARTING_UP),
    (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_POSTCOPY),
}
"""(state, reason) of a domain whose guest RAM QEMU is still filling (`DomainSample`)."""


def memory_arriving(stats: dict[str, Any]) -> bool:
    """Whether a domain's stats (``state.state`` and ``state.reason``) say its memory is
    still arriving: an incoming migration or a start (`DomainSample.memory_arriving`)."""
    state = (int(stats.get("state.state", -1)), int(stats.get("state.reason", -1)))
    return state in _MEMORY_ARRIVING


def guest_ram_span(
    pid: int, memory_bytes: int, proc: Path = Path("/proc")
) -> tuple[int, int] | None:
    """[start, end) of process `pid`'s writable mapping of exactly `memory_bytes` (QEMU's
    guest RAM); None when there is none or /proc cannot be read."""
    try:
        maps = (proc / str(pid) / "maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        span, _, rest = line.partition(" ")
        low, _, high = span.partition("-")
        if not rest.startswith("rw-"):  # guest RAM; not TCG's code buffer (rwx)
            continue
        try:
            start, end = int(low, 16), int(high, 16)
        except ValueError:
            continue
        if end - start == memory_bytes:
            return start, end
    return None


def nonzero_resident_bytes(
    pid: int, start: int, end: int, proc: Path = Path("/proc"), sample_pages: int = SAMPLE_PAGES
) -> int | None:
    """Bytes of [start, end) in process `pid` that are resident (present or swapped) and not
    all zeros, the zero share estimated on about `sample_pages` of them (a swapped page counts
    as non-zero, unread). Present pages count whole when their contents cannot be read; None
    when pagemap cannot be read."""
    pages = (end - start) // PAGE
    stride = max(1, pages // max(1, sample_pages))
    present = sampled = nonzero = 0
    base = start // PAGE
    try:
        with open(proc / str(pid) / "pagemap", "rb", buffering=0) as pagemap:
            mem = _open_mem(proc, pid)
            try:
                for first in range(0, pages, _BLOCK_PAGES):
                    count = min(_BLOCK_PAGES, pages - first)
                    pagemap.seek((base + first) * 8)
                    entries = pagemap.read(count * 8)
                    present += entries[7::8].translate(_TOP_BYTE).count(1)
                    if mem is None:
                        continue
                    for index in range(-first % stride, len(entries) // 8, stride):
                        entry = _ENTRY.unpack_from(entries, index * 8)[0]
                        if entry & _PRESENT:
                            mem.seek(start + (first + index) * PAGE)
                            sampled += 1
                            nonzero += mem.read(PAGE) != _ZERO_PAGE
                        elif entry & _SWAPPED:  # not read: that would swap it in
                            sampled += 1
                            nonzero += 1
            finally:
                if mem is not None:
                    mem.close()
    except OSError:
        return None
    if mem is None or sampled == 0:
        return present * PAGE
    return round(present * nonzero / sampled) * PAGE


def _open_mem(proc: Path, pid: int) -> io.FileIO | None:
    try:
        return io.FileIO(proc / str(pid) / "mem", "r")
    except OSError:
        return None


class ResidentMeter:
    """Each VM's resident non-zero memory, refreshed a few VMs per call (`measure`).

    `pid_of` names the VMs' QEMU processes (a VM without one is not measured). A figure that
    moved by more than 1/16 since the VM's previous one, a VM's first, and any figure within
    `settle_s` of a VM's first (a guest booting, or just arrived, whose memory still fills in
    steps below 1/16: a lab guest's figure read 131.5 MiB a minute after boot when it held
    152.9) is measured again after `changing_s`; a steady one after `refresh_s`. Per call at
    most enough VMs are measured that all are within `refresh_s` at the time seen between the
    last two calls (at least one), the most overdue first. VMs no longer listed are forgotten.
    """

    def __init__(
        self,
        pid_of: Callable[[Sequence[str]], dict[str, int]],
        refresh_s: float = 60.0,
        changing_s: float = 10.0,
        settle_s: float = 180.0,
        proc: Path = Path("/proc"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pid_of = pid_of
        self._refresh_s = refresh_s
        self._changing_s = changing_s
        self._settle_s = settle_s
        self._last_call: float | None = None
        self._proc = proc
        self._clock = clock
        self._figures: dict[str, tuple[float, int]] = {}  # uuid -> (next due, bytes)
        self._first: dict[str, float] = {}  # uuid -> when its first figure was read

    def measure(self, vms: Sequence[tuple[str, int]]) -> dict[str, int]:
        """Resident non-zero bytes of the VMs (uuid, memory bytes) measured so far (a VM not
        yet measured, or unreadable, is absent)."""
        now = self._clock()
        period_s = 3.0 if self._last_call is None else max(0.1, now - self._last_call)
        self._last_call = now
        listed = {uuid for uuid, _ in vms}
        for uuid in [u for u in self._figures if u not in listed]:
            del self._figures[uuid]
            self._first.pop(uuid, None)
        figures = self._figures
        due = [
            (figures[uuid][0] if uuid in figures else -math.inf, uuid, memory)
            for uuid, memory in vms
            if uuid not in figures or now >= figures[uuid][0]
        ]
        if due:
            budget = max(1, math.ceil(len(vms) * period_s / max(self._refresh_s, 1e-3)))
            chosen = sorted(due)[:budget]
            pids = self._pid_of([uuid for _, uuid, _ in chosen])
            for _, uuid, memory in chosen:
                figure = self._one(pids.get(uuid), memory) or 0
                before = figures[uuid][1] if uuid in figures else None
                moving = before is None or abs(figure - before) * 16 > figure
                if figure > 0:
                    moving |= now - self._first.setdefault(uuid, now) < self._settle_s
                # a VM with no figure yet (its process not found yet) is tried again after
                # changing_s, one that stays unreadable after refresh_s: not at every report
                again = self._changing_s if moving else self._refresh_s
                figures[uuid] = (now + again, figure)
        return {uuid: b for uuid, (_, b) in figures.items() if b > 0}

    def _one(self, pid: int | None, memory: int) -> int | None:
        if pid is None or memory <= 0:
            return None
        span = guest_ram_span(pid, memory, self._proc)
        if span is None:
            return None
        return nonzero_resident_bytes(pid, span[0], span[1], self._proc)
