"""Read a topology from GraphML, so operators can draw it in yEd or Gephi.

Node attribute ``kind`` (cluster, switch or router) and optional ``name`` (used instead of the
GraphML id, since yEd numbers its nodes n0, n1...). Edge attributes ``bandwidth_mbps``,
``latency_ms`` and optional ``utilisation``. Attributes typed as strings or doubles by the editor
are converted here; directed files (yEd's default) are read as undirected.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable
from pathlib import Path

import networkx as nx
from vmgrid.solver.grid.errors import TopologyError
from vmgrid.solver.grid.topology import Topology


def load_topology(path: str | Path, known_clusters: Iterable[str] | None = None) -> Topology:
    """Parse, normalise and validate a GraphML topology; ``TopologyError`` names what is wrong."""
    try:
        raw = nx.read_graphml(path)
    except FileNotFoundError as exc:
        raise TopologyError(f"topology file {str(path)!r} does not exist") from exc
    except (ElementTree.ParseError, nx.NetworkXError, ValueError, KeyError) as exc:
        raise TopologyError(f"topology file {str(path)!r} is not valid GraphML: {exc}") from exc
    return Topology.from_graph(normalise_graph(raw), known_clusters)


def normalise_graph(raw: nx.Graph) -> nx.Graph:
    """An undirected simple graph with string node names and typed link attributes."""
    if raw.is_multigraph():
        for u, v, count in _parallel(raw):
            raise TopologyError(f"link {u!r}-{v!r} appears {count} times; keep one")
    names = {node: str(data.get("name", node)) for node, data in raw.nodes(data=True)}
    if len(set(names.values())) != len(names):
        raise TopologyError("two nodes share the same name; node names must be unique")
    graph = nx.Graph()
    for node, data in raw.nodes(data=True):
        kind = data.get("kind")
        graph.add_node(names[node], kind=str(kind).strip().lower() if kind is not None else None)
    for u, v, data in raw.edges(data=True):
        a, b = names[u], names[v]
        if graph.has_edge(a, b):
            raise TopologyError(f"link {a!r}-{b!r} appears twice; keep one")
        graph.add_edge(a, b, **_link_attributes(a, b, data))
    return graph


def _parallel(raw: nx.Graph) -> list[tuple[str, str, int]]:
    counts: dict[tuple[str, str], int] = {}
    for u, v in raw.edges():
        key = (min(str(u), str(v)), max(str(u), str(v)))
        counts[key] = counts.get(key, 0) + 1
    return [(u, v, n) for (u, v), n in sorted(counts.items()) if n > 1]


def _link_attributes(u: str, v: str, data: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    if "bandwidth_mbps" in data:
        out["bandwidth_mbps"] = _as_int(u, v, "bandwidth_mbps", data["bandwidth_mbps"])
    for name in ("latency_ms", "utilisation"):
        if name in data:
            out[name] = _as_float(u, v, name, data[name])
    return out


def _as_float(u: str, v: str, name: str, value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TopologyError(f"link {u!r}-{v!r}: {name} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise TopologyError(f"link {u!r}-{v!r}: {name} {value!r} is not a finite number")
    return number


def _as_int(u: str, v: str, name: str, value: object) -> int:
    number = _as_float(u, v, name, value)
    if number != int(number):
        raise TopologyError(f"link {u!r}-{v!r}: {name} {value!r} must be a whole number (Mbit/s)")
    return int(number)
