"""Guests' dirty rates from libvirt's dirty-rate calculation (#16), started now and then.

``virDomainStartDirtyRateCalc`` (QEMU's ``calc-dirty-rate``, page sampling: 512 pages per
GiB hashed at the start and the end of a window) measures the distinct guest memory written
over a window of whole seconds; the domain's ``VIR_DOMAIN_STATS_DIRTYRATE`` stats give the
result once it is measured (``dirtyrate.calc_status`` 2). The hypervisor starts one
calculation for all its running guests every `every_s`, alternating the window between a
short and a longer one, and asks for the stats only in the first sample after the window
ended: between calculations a report costs nothing more.

Two figures per guest come out of it. The **rate** (MiB/s) is the latest short window's: a
pre-copy round after the first lasts about a second or less, and a load that rewrites a few
MiB over and over reads as that much per second, not less. The **dirty set** is the most any
recent window saw written (rate x window): at least the working set a round re-sends. A load
that rewrites the same pages reads about the same set in either window; one that keeps
writing new pages reads more in the longer window, which lifts the bound.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import libvirt

log = logging.getLogger(__name__)
MIB = 1 << 20
_UNSUPPORTED = (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED)
MEASURED = 2
"""``dirtyrate.calc_status`` of a finished calculation (VIR_DOMAIN_DIRTYRATE_MEASURED)."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One finished calculation of one guest."""

    mib_s: float
    window_s: int
    at: float


@dataclass(frozen=True, slots=True)
class DirtyFigures:
    """What the agent reports of a guest's dirtying (bytes)."""

    bytes_per_second: int
    set_bytes: int


NOT_MEASURED = DirtyFigures(0, 0)


def reading_of(stats: Mapping[str, Any], at: float) -> Reading | None:
    """The finished calculation in a domain's stats; None while one runs, or with none."""
    if int(stats.get("dirtyrate.calc_status", -1)) != MEASURED:
        return None
    window = int(stats.get("dirtyrate.calc_period", 0))
    rate = float(stats.get("dirtyrate.megabytes_per_second", 0))
    if window <= 0 or rate < 0:
        return None
    return Reading(rate, window, at)


class DirtyRates:
    """When to start a calculation and when to read it, and each guest's recent readings."""

    def __init__(
        self,
        every_s: float = 15.0,
        windows_s: Sequence[int] = (1, 4),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not windows_s or min(windows_s) < 1 or every_s <= max(windows_s):
            raise ValueError(
                f"dirty-rate windows {tuple(windows_s)} s every {every_s} s: windows must be "
                "whole seconds >= 1, shorter than the period"
            )
        self._every_s = every_s
        self._windows = tuple(windows_s)
        self._clock = clock
        self._next_window = 0
        self._last_start = -float("inf")
        self._running: tuple[int, float] | None = None  # (window, started at)
        self._readings: dict[str, dict[int, Reading]] = {}
        self._asked = False
        self.enabled = True
        """False once the hypervisor said it cannot calculate (an older QEMU or libvirt)."""

    @property
    def read_due(self) -> bool:
        """A calculation started and its window (plus a margin) has passed: ask for stats."""
        running = self._running
        return running is not None and self._clock() >= running[1] + running[0] + 0.5

    def start_due(self) -> int | None:
        """The window to start a calculation with now, or None."""
        if not self.enabled or self._running is not None:
            return None
        if self._clock() - self._last_start < self._every_s:
            return None
        return self._windows[self._next_window % len(self._windows)]

    def started(self, window_s: int, running: bool = True) -> None:
        """A calculation of `window_s` was started (`running`: on at least one guest; else
        the next is due a period later all the same)."""
        now = self._clock()
        self._running = (window_s, now) if running else None
        self._last_start = now
        self._next_window += 1

    def stats_wanted(self) -> int:
        """The stats flag to add to this sample's ``getAllDomainStats``: the dirty rate's
        when a calculation's window has ended (then pass the records to `sampled`)."""
        self._asked = self.read_due
        return libvirt.VIR_DOMAIN_STATS_DIRTYRATE if self._asked else 0

    def sampled(self, records: Sequence[tuple[libvirt.virDomain, dict[str, Any]]]) -> None:
        """A sample's records: read the calculations if `stats_wanted` asked for them, then
        start the next one on the running guests if it is due."""
        if self._asked:
            self.read({dom.UUIDString(): stats for dom, stats in records})
            self._asked = False
        running = libvirt.VIR_DOMAIN_RUNNING
        self.start(dom for dom, stats in records if stats.get("state.state") == running)

    def start(self, domains: Iterable[libvirt.virDomain]) -> None:
        """Start a calculation on the running `domains` if one is due. A guest that refuses
        (not running any more, migrating) is skipped; a hypervisor that cannot calculate at
        all turns the calculations off."""
        window = self.start_due()
        if window is None:
            return
        running = False
        for dom in domains:
            try:
                dom.startDirtyRateCalc(window, 0)
                running = True
            except libvirt.libvirtError as exc:
                if exc.get_error_code() in _UNSUPPORTED:
                    log.info("no dirty-rate calculation here: %s", exc.get_error_message())
                    self.enabled = False
                    break
                log.debug("dirty-rate calculation not started: %s", exc.get_error_message())
        self.started(window, running)

    def read(self, stats_by_uuid: Mapping[str, Mapping[str, Any]]) -> None:
        """The stats asked for when `read_due`: keep each guest's reading, forget the guests
        no longer listed."""
        now = self._clock()
        self._running = None
        for uuid in [u for u in self._readings if u not in stats_by_uuid]:
            del self._readings[uuid]
        for uuid, stats in stats_by_uuid.items():
            reading = reading_of(stats, now)
            if reading is not None:
                self._readings.setdefault(uuid, {})[reading.window_s] = reading

    def figures(self, uuid: str) -> DirtyFigures | None:
        """The guest's rate (the shortest recent window's) and dirty set (the most any
        recent window saw); None without a reading younger than a few periods."""
        oldest = self._clock() - self._every_s * (len(self._windows) + 2)
        recent = [r for r in self._readings.get(uuid, {}).values() if r.at >= oldest]
        if not recent:
            return None
        shortest = min(recent, key=lambda r: (r.window_s, -r.at))
        dirty_set = max(r.mib_s * r.window_s for r in recent)
        return DirtyFigures(round(shortest.mib_s * MIB), round(dirty_set * MIB))
