"""Routes between clusters: the widest path (most free bandwidth), then the lowest latency.

Widest first because a migration's duration is memory / bandwidth; latency only breaks ties.
Exact in two passes: a max-min Dijkstra gives each destination's best bottleneck ``W``; a latency
Dijkstra restricted to links with at least ``W`` free then gives the route. Both are cached per
source (and per source and ``W``), so a plan pays a few small Dijkstras per source cluster.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from vmgrid.solver.grid.topology import Topology

Adjacency = dict[str, list[tuple[str, int, float]]]
_UNBOUNDED = 2**62


class PathFinder:
    """Widest-then-lowest-latency routes over one topology snapshot, cached per pair."""

    def __init__(self, topology: Topology) -> None:
        self._adjacency: Adjacency = {node: [] for node in topology.graph.nodes}
        for u, v, data in topology.graph.edges(data=True):
            free = topology.available_mbps(u, v)
            latency = float(data["latency_ms"])
            self._adjacency[u].append((v, free, latency))
            self._adjacency[v].append((u, free, latency))
        self._widths: dict[str, dict[str, int]] = {}
        self._trees: dict[tuple[str, int], dict[str, str]] = {}
        self._paths: dict[tuple[str, str], tuple[tuple[str, ...], int]] = {}

    def widths_from(self, src: str) -> dict[str, int]:
        """Best bottleneck free bandwidth from ``src`` to every node (0 if unreachable)."""
        cached = self._widths.get(src)
        if cached is not None:
            return cached
        best: dict[str, int] = {src: _UNBOUNDED}
        heap: list[tuple[int, str]] = [(-_UNBOUNDED, src)]
        done: set[str] = set()
        while heap:
            neg_width, node = heapq.heappop(heap)
            if node in done:
                continue
            done.add(node)
            for nbr, free, _ in self._adjacency[node]:
                width = min(-neg_width, free)
                if width > best.get(nbr, 0):
                    best[nbr] = width
                    heapq.heappush(heap, (-width, nbr))
        best[src] = 0
        self._widths[src] = best
        return best

    def width_row(self, src: str, clusters: Sequence[str]) -> npt.NDArray[np.int64]:
        widths = self.widths_from(src)
        return np.array([widths.get(c, 0) for c in clusters], dtype=np.int64)

    def path(self, src: str, dst: str) -> tuple[tuple[str, ...], int]:
        """The route from ``src`` to ``dst`` and its bottleneck free bandwidth (Mbit/s)."""
        cached = self._paths.get((src, dst))
        if cached is not None:
            return cached
        width = self.widths_from(src).get(dst, 0)
        if width <= 0:
            raise ValueError(f"no path with free bandwidth from {src!r} to {dst!r}")
        parents = self._latency_tree(src, width)
        hops = [dst]
        while hops[-1] != src:
            hops.append(parents[hops[-1]])
        result = (tuple(reversed(hops)), width)
        self._paths[(src, dst)] = result
        return result

    def _latency_tree(self, src: str, min_free: int) -> dict[str, str]:
        key = (src, min_free)
        cached = self._trees.get(key)
        if cached is not None:
            return cached
        dist: dict[str, float] = {src: 0.0}
        parents: dict[str, str] = {}
        heap: list[tuple[float, str]] = [(0.0, src)]
        done: set[str] = set()
        while heap:
            d, node = heapq.heappop(heap)
            if node in done:
                continue
            done.add(node)
            for nbr, free, latency in self._adjacency[node]:
                if free < min_free:
                    continue
                nd = d + latency
                if nd < dist.get(nbr, math.inf):
                    dist[nbr] = nd
                    parents[nbr] = node
                    heapq.heappush(heap, (nd, nbr))
        self._trees[key] = parents
        return parents


def latency_matrix(topology: Topology, clusters: Sequence[str]) -> npt.NDArray[np.float64]:
    """Lowest latency (ms) between every pair of ``clusters``: what their traffic would see.

    Floyd-Warshall in numpy: the graphs are small (hundreds of nodes), one pass is milliseconds.
    """
    nodes = list(topology.graph.nodes)
    index = {node: i for i, node in enumerate(nodes)}
    dist = np.full((len(nodes), len(nodes)), np.inf)
    np.fill_diagonal(dist, 0.0)
    for u, v, latency in topology.graph.edges(data="latency_ms"):
        i, j = index[u], index[v]
        dist[i, j] = dist[j, i] = min(dist[i, j], float(latency))
    for k in range(len(nodes)):
        np.minimum(dist, dist[:, k, None] + dist[None, k, :], out=dist)
    picks = [index[c] for c in clusters]
    return dist[np.ix_(picks, picks)]
