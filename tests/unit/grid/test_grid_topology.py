"""Loading, validating and updating the grid topology; routing over it."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest
from grid_builders import star
from vmgrid.solver.grid import Topology, TopologyError, load_topology, update_link_usage
from vmgrid.solver.grid.paths import PathFinder, latency_matrix

EXAMPLE = Path(__file__).parents[3] / "deploy" / "examples" / "topology-example.graphml"
CLUSTERS = ["paris", "lyon", "berlin", "madrid"]

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key id="kind" for="node" attr.name="kind" attr.type="string"/>
  <key id="name" for="node" attr.name="name" attr.type="string"/>
  <key id="bw" for="edge" attr.name="bandwidth_mbps" attr.type="string"/>
  <key id="lat" for="edge" attr.name="latency_ms" attr.type="double"/>
  <graph id="g" edgedefault="{edgedefault}">
"""


def write_graphml(
    tmp_path: Path,
    nodes: dict[str, str],
    edges: list[tuple[str, str, str | None, float]],
    edgedefault: str = "undirected",
) -> Path:
    body = [HEADER.format(edgedefault=edgedefault)]
    for node, kind in nodes.items():
        body.append(f'<node id="{node}"><data key="kind">{kind}</data></node>')
    for u, v, bandwidth, latency in edges:
        bw = f'<data key="bw">{bandwidth}</data>' if bandwidth is not None else ""
        body.append(f'<edge source="{u}" target="{v}">{bw}<data key="lat">{latency}</data></edge>')
    body.append("</graph></graphml>")
    path = tmp_path / "topology.graphml"
    path.write_text("\n".join(body))
    return path


def test_example_file_loads_with_typed_attributes() -> None:
    topology = load_topology(EXAMPLE, CLUSTERS)
    assert topology.clusters() == sorted(CLUSTERS)
    assert topology.graph.edges["fr-core", "de-core"]["bandwidth_mbps"] == 100_000
    assert topology.available_mbps("fr-core", "de-core") == 65_000


def test_unknown_cluster_is_named(tmp_path: Path) -> None:
    path = write_graphml(tmp_path, {"a": "cluster", "x": "cluster"}, [("a", "x", "1000", 1.0)])
    with pytest.raises(TopologyError, match=r"unknown cluster 'x' in topology; known clusters: a"):
        load_topology(path, ["a"])


def test_known_cluster_missing_from_topology_is_named(tmp_path: Path) -> None:
    path = write_graphml(tmp_path, {"a": "cluster", "r": "router"}, [("a", "r", "1000", 1.0)])
    with pytest.raises(TopologyError, match=r"cluster 'b' is not in the topology"):
        load_topology(path, ["a", "b"])


def test_missing_bandwidth_names_the_link(tmp_path: Path) -> None:
    path = write_graphml(tmp_path, {"a": "cluster", "r": "router"}, [("a", "r", None, 1.0)])
    with pytest.raises(TopologyError, match=r"link 'a'-'r': missing bandwidth_mbps"):
        load_topology(path)


def test_fractional_bandwidth_is_rejected(tmp_path: Path) -> None:
    path = write_graphml(tmp_path, {"a": "cluster", "r": "router"}, [("a", "r", "10.5", 1.0)])
    with pytest.raises(TopologyError, match=r"bandwidth_mbps '10.5' must be a whole number"):
        load_topology(path)


def test_disconnected_graph_names_an_unreachable_node(tmp_path: Path) -> None:
    nodes = {"a": "cluster", "b": "cluster", "r1": "router", "r2": "router"}
    path = write_graphml(tmp_path, nodes, [("a", "r1", "1000", 1.0), ("b", "r2", "1000", 1.0)])
    with pytest.raises(TopologyError, match=r"topology is disconnected: 'b' cannot reach 'a'"):
        load_topology(path)


def test_bad_kind_lists_accepted_kinds(tmp_path: Path) -> None:
    path = write_graphml(tmp_path, {"a": "cluster", "h": "hub"}, [("a", "h", "1000", 1.0)])
    with pytest.raises(TopologyError, match=r"node 'h': kind 'hub' is not one of cluster, switch"):
        load_topology(path)


def test_missing_and_malformed_files_are_topology_errors(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="does not exist"):
        load_topology(tmp_path / "nope.graphml")
    broken = tmp_path / "broken.graphml"
    broken.write_text("<graphml><graph")
    with pytest.raises(TopologyError, match="is not valid GraphML"):
        load_topology(broken)


def test_directed_yed_file_is_read_as_undirected(tmp_path: Path) -> None:
    path = write_graphml(
        tmp_path, {"a": "cluster", "b": "cluster"}, [("a", "b", "1000", 1.0)], "directed"
    )
    topology = load_topology(path, ["a", "b"])
    assert not topology.graph.is_directed()
    assert topology.graph.has_edge("b", "a")


def test_measured_usage_updates_a_copy_and_rejects_unknown_links() -> None:
    topology = star(["a", "b"], bandwidth_mbps=1000)
    updated = update_link_usage(topology, {("core", "a"): 250.0, ("b", "core"): 5000.0})
    assert updated.available_mbps("a", "core") == 750
    assert updated.available_mbps("b", "core") == 0
    assert topology.available_mbps("a", "core") == 1000
    with pytest.raises(TopologyError, match=r"unknown link 'a'-'b'"):
        update_link_usage(topology, {("a", "b"): 1.0})


def diamond() -> Topology:
    """a-x-b is narrow but fast, a-y-b wide but slow, a-z-b as wide as a-y-b and faster."""
    graph = nx.Graph()
    for node in ("a", "b"):
        graph.add_node(node, kind="cluster")
    for node in ("x", "y", "z"):
        graph.add_node(node, kind="router")
    for mid, bw, lat in (("x", 1000, 1.0), ("y", 10_000, 30.0), ("z", 10_000, 5.0)):
        graph.add_edge("a", mid, bandwidth_mbps=bw, latency_ms=lat)
        graph.add_edge(mid, "b", bandwidth_mbps=bw, latency_ms=lat)
    return Topology.from_graph(graph)


def test_path_is_widest_then_lowest_latency() -> None:
    finder = PathFinder(diamond())
    assert finder.path("a", "b") == (("a", "z", "b"), 10_000)


def test_utilisation_narrows_paths() -> None:
    busy = update_link_usage(diamond(), {("a", "z"): 9500.0})
    assert PathFinder(busy).path("a", "b") == (("a", "y", "b"), 10_000)


def test_latency_matrix_uses_the_lowest_latency_route() -> None:
    matrix = latency_matrix(diamond(), ["a", "b"])
    assert matrix[0, 1] == pytest.approx(2.0)
    assert matrix[0, 0] == 0.0
