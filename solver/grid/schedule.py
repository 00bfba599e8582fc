"""When each move runs: earliest start such that no link carries more than its free bandwidth.

Every move reserves its ``rate_mbps`` on every link of its path for ``[start, end)``. Links keep
a piecewise-constant profile of reserved bandwidth; a move is tried at the first instant each
of its links has room (cached per link and rate: reservations only add load) and, whenever a
segment of some link in its window is too full, retried at the end of that segment (no earlier
start can avoid it). The last segment of every profile is empty and a rate never exceeds the
path's free bandwidth, so every move finds a start. ``find_oversubscriptions`` re-checks a
finished plan from scratch with an event sweep and shares no code with the scheduler.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from vmgrid.solver.grid.model import GridMove
from vmgrid.solver.grid.topology import LinkKey, Topology, link_key


class LinkProfile:
    """Reserved Mbit/s over time on one link: ``levels[i]`` holds on ``[times[i], times[i+1])``.

    The last segment is always empty and open-ended. Kept in numpy so that finding a window
    among thousands of reservations is a few vector operations, not a Python loop.
    """

    def __init__(self, capacity_mbps: int) -> None:
        self.capacity_mbps = capacity_mbps
        self._times: npt.NDArray[np.float64] = np.zeros(64)
        self._levels: npt.NDArray[np.int64] = np.zeros(64, dtype=np.int64)
        self._size = 1
        self._frontier: dict[int, float] = {}

    @property
    def times(self) -> npt.NDArray[np.float64]:
        return self._times[: self._size]

    @property
    def levels(self) -> npt.NDArray[np.int64]:
        return self._levels[: self._size]

    def earliest_fit(self, earliest: float, duration_s: float, rate_mbps: int) -> float:
        """First start >= ``earliest`` whose window ``[start, start + duration)`` has room."""
        frontier = self._frontier.get(rate_mbps, 0.0)
        lower = max(earliest, frontier)
        all_times = self.times
        first = int(all_times.searchsorted(lower, side="right")) - 1
        times, levels = all_times[first:], self.levels[first:]
        blocked = levels > self.capacity_mbps - rate_mbps
        starts = times.copy()
        starts[0] = lower
        if earliest <= frontier:
            # reservations only add load, so no start before this instant will ever have room
            self._frontier[rate_mbps] = float(starts[int(blocked.argmin())])
        if not blocked.any():
            return float(lower)
        block_starts = np.where(blocked, times, np.inf)
        next_block = np.minimum.accumulate(block_starts[::-1])[::-1]
        fits = ~blocked & (next_block >= starts + duration_s)
        return float(starts[int(fits.argmax())])

    def reserve(self, start: float, end: float, rate_mbps: int) -> None:
        first = self._split(start)
        last = self._split(end)
        self._levels[first:last] += rate_mbps

    def _split(self, at: float) -> int:
        size = self._size
        i = int(self._times[:size].searchsorted(at, side="left"))
        if i < size and self._times[i] == at:
            return i
        if size == len(self._times):
            self._times = np.concatenate([self._times, np.zeros(size)])
            self._levels = np.concatenate([self._levels, np.zeros(size, dtype=np.int64)])
        self._times[i + 1 : size + 1] = self._times[i:size]
        self._levels[i + 1 : size + 1] = self._levels[i:size]
        self._times[i] = at
        self._levels[i] = self._levels[i - 1]
        self._size = size + 1
        return i


@dataclass(frozen=True, slots=True)
class Booking:
    """What the scheduler needs of a move: its links, rate and duration."""

    links: tuple[LinkKey, ...]
    rate_mbps: int
    duration_s: float


def path_links(path: Sequence[str]) -> tuple[LinkKey, ...]:
    return tuple(link_key(a, b) for a, b in zip(path, path[1:], strict=False))


class LinkScheduler:
    """Greedy earliest-start list scheduler with per-link interval capacity."""

    def __init__(self, topology: Topology) -> None:
        self._topology = topology
        self._profiles: dict[LinkKey, LinkProfile] = {}

    def _profile(self, key: LinkKey) -> LinkProfile:
        profile = self._profiles.get(key)
        if profile is None:
            profile = LinkProfile(self._topology.available_mbps(*key))
            self._profiles[key] = profile
        return profile

    def book(self, booking: Booking) -> float:
        """Reserve the earliest feasible window for ``booking``; returns its start (seconds)."""
        profiles = [self._profile(key) for key in booking.links]
        for profile in profiles:
            if booking.rate_mbps > profile.capacity_mbps:
                raise ValueError(
                    f"rate {booking.rate_mbps} Mbit/s exceeds a link's free "
                    f"{profile.capacity_mbps} Mbit/s"
                )
        start = 0.0
        settled = 0
        while settled < len(profiles):  # until every link accepts the same start
            for profile in profiles:
                fit = profile.earliest_fit(start, booking.duration_s, booking.rate_mbps)
                settled = settled + 1 if fit == start else 1
                start = fit
                if settled == len(profiles):
                    break
        for profile in profiles:
            profile.reserve(start, start + booking.duration_s, booking.rate_mbps)
        return start


@dataclass(frozen=True, slots=True)
class Oversubscription:
    """A link carrying more than it can at some instant of a plan."""

    link: LinkKey
    at_s: float
    used_mbps: float
    bandwidth_mbps: int


def find_oversubscriptions(moves: Iterable[GridMove], topology: Topology) -> list[Oversubscription]:
    """Independent check: measured use plus concurrent moves never exceed any link's bandwidth.

    Also rejects a move whose path is not a chain of existing links from its source to its
    destination, since its reservations would then be meaningless.
    """
    events: dict[LinkKey, list[tuple[float, int, int]]] = {}
    for move in moves:
        if move.path[0] != move.src or move.path[-1] != move.dst:
            raise ValueError(f"move of {move.vm}: path does not join {move.src} to {move.dst}")
        for a, b in zip(move.path, move.path[1:], strict=False):
            if not topology.graph.has_edge(a, b):
                raise ValueError(f"move of {move.vm}: no link {a}-{b} in the topology")
            key = (a, b) if a <= b else (b, a)
            # ends (0) sort before starts (1) at the same instant: intervals are half-open
            events.setdefault(key, []).append((move.start_s, 1, move.rate_mbps))
            events.setdefault(key, []).append((move.end_s, 0, -move.rate_mbps))
    found = []
    for key, link_events in sorted(events.items()):
        data = topology.graph.edges[key]
        bandwidth = data["bandwidth_mbps"]
        used = bandwidth * data.get("utilisation", 0.0)
        for at, _, delta in sorted(link_events):
            used += delta
            if used > bandwidth + 1e-6:
                found.append(Oversubscription(key, at, used, bandwidth))
                break
    return found
