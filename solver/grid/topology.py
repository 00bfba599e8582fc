"""The grid's network: clusters, switches and routers joined by links with bandwidth and latency.

A ``Topology`` wraps an undirected ``nx.Graph`` whose nodes carry ``kind`` and whose edges carry
``bandwidth_mbps`` (int), ``latency_ms`` (float) and ``utilisation`` (fraction of bandwidth
already in use, 0..1). It is treated as immutable: ``update_link_usage`` returns a new one.
A cluster node stands for the cluster's border router, so paths may transit through it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import networkx as nx
from vmgrid.solver.grid.errors import TopologyError

LinkKey = tuple[str, str]


class NodeKind(enum.Enum):
    CLUSTER = "cluster"
    SWITCH = "switch"
    ROUTER = "router"


def link_key(u: str, v: str) -> LinkKey:
    """The canonical (sorted) name of the undirected link between ``u`` and ``v``."""
    return (u, v) if u <= v else (v, u)


@dataclass(frozen=True)
class Topology:
    """A validated network graph; build it with ``Topology.from_graph`` or ``load_topology``."""

    graph: nx.Graph

    @classmethod
    def from_graph(cls, graph: nx.Graph, known_clusters: Iterable[str] | None = None) -> Topology:
        """Check ``graph`` (kinds, link attributes, connectivity, cluster names) and wrap it."""
        validate_graph(graph, known_clusters)
        return cls(graph)

    def clusters(self) -> list[str]:
        return sorted(n for n, kind in self.graph.nodes(data="kind") if kind == "cluster")

    def kind(self, node: str) -> NodeKind:
        return NodeKind(self.graph.nodes[node]["kind"])

    def available_mbps(self, u: str, v: str) -> int:
        """Free bandwidth of a link: what measured traffic leaves for migrations."""
        data = self.graph.edges[u, v]
        return math.floor(data["bandwidth_mbps"] * (1.0 - data.get("utilisation", 0.0)))

    def links(self) -> list[LinkKey]:
        return sorted(link_key(u, v) for u, v in self.graph.edges)


def validate_graph(graph: nx.Graph, known_clusters: Iterable[str] | None = None) -> None:
    """Raise ``TopologyError`` naming the first bad node, link or cluster."""
    if graph.is_directed() or graph.is_multigraph():
        raise TopologyError("topology must be a simple undirected graph (no parallel links)")
    if graph.number_of_nodes() == 0:
        raise TopologyError("topology is empty: it needs at least one cluster node")
    accepted = ", ".join(k.value for k in NodeKind)
    for node, kind in graph.nodes(data="kind"):
        if kind is None:
            raise TopologyError(f"node {node!r}: missing kind (one of {accepted})")
        if kind not in {k.value for k in NodeKind}:
            raise TopologyError(f"node {node!r}: kind {kind!r} is not one of {accepted}")
    for u, v, data in graph.edges(data=True):
        _validate_link(u, v, data)
    _validate_clusters(graph, known_clusters)
    _validate_connected(graph)


def _validate_link(u: str, v: str, data: Mapping[str, object]) -> None:
    name = f"link {u!r}-{v!r}"
    if u == v:
        raise TopologyError(f"{name}: a link must join two different nodes")
    bandwidth = data.get("bandwidth_mbps")
    if bandwidth is None:
        raise TopologyError(f"{name}: missing bandwidth_mbps (a positive integer, Mbit/s)")
    if not isinstance(bandwidth, int) or isinstance(bandwidth, bool) or bandwidth <= 0:
        raise TopologyError(
            f"{name}: bandwidth_mbps {bandwidth!r} must be a positive integer (Mbit/s)"
        )
    latency = data.get("latency_ms")
    if latency is None:
        raise TopologyError(f"{name}: missing latency_ms (a number >= 0, milliseconds)")
    if not isinstance(latency, int | float) or not math.isfinite(latency) or latency < 0:
        raise TopologyError(f"{name}: latency_ms {latency!r} must be a number >= 0")
    utilisation = data.get("utilisation", 0.0)
    if not isinstance(utilisation, int | float) or not 0.0 <= utilisation <= 1.0:
        raise TopologyError(f"{name}: utilisation {utilisation!r} must be a fraction in [0, 1]")


def _validate_clusters(graph: nx.Graph, known_clusters: Iterable[str] | None) -> None:
    clusters = {n for n, kind in graph.nodes(data="kind") if kind == "cluster"}
    if not clusters:
        raise TopologyError("topology has no node of kind 'cluster'")
    if known_clusters is None:
        return
    known = set(known_clusters)
    for node in sorted(clusters - known):
        raise TopologyError(
            f"unknown cluster {node!r} in topology; known clusters: {_names(known)}"
        )
    for name in sorted(known - clusters):
        raise TopologyError(f"cluster {name!r} is not in the topology as a node of kind 'cluster'")


def _validate_connected(graph: nx.Graph) -> None:
    components = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: c[0])
    if len(components) > 1:
        first, second = components[0], components[1]
        raise TopologyError(
            f"topology is disconnected: {second[0]!r} cannot reach {first[0]!r} "
            f"({len(components)} components)"
        )


def _names(names: Iterable[str], limit: int = 8) -> str:
    ordered = sorted(names)
    shown = ", ".join(ordered[:limit])
    return shown + (f", ... ({len(ordered)} in all)" if len(ordered) > limit else "") or "(none)"


def update_link_usage(topology: Topology, used_mbps: Mapping[tuple[str, str], float]) -> Topology:
    """A copy of ``topology`` whose utilisation reflects measured traffic on the given links.

    Links not in ``used_mbps`` keep their utilisation; usage above bandwidth is clamped to 1.
    """
    graph = topology.graph.copy()
    for (u, v), used in used_mbps.items():
        if not graph.has_edge(u, v):
            raise TopologyError(f"measured usage for unknown link {u!r}-{v!r}")
        if not math.isfinite(used) or used < 0:
            raise TopologyError(f"link {u!r}-{v!r}: measured usage {used!r} must be >= 0 Mbit/s")
        bandwidth = graph.edges[u, v]["bandwidth_mbps"]
        graph.edges[u, v]["utilisation"] = min(1.0, used / bandwidth)
    return Topology(graph)
