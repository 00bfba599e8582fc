"""The chaos run's invariant checks on hand-made placements and models."""

from __future__ import annotations

from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.bench.chaos_check import Ledger, broken_rules, duplicated, missing
from vmgrid.bench.chaos_grid import Placement
from vmgrid.solver.constraints import make
from vmgrid.solver.model import VM, Model, Node


def at(cluster: str, node: str, uuid: str, state: str = "running") -> Placement:
    return Placement(cluster, node, uuid, uuid, state)


def model(hosts: dict[str, str]) -> Model:
    nodes = [Node(n, {"cpu": 1000, "memory": 1024}) for n in ("n1", "n2", "n3")]
    return Model.of(nodes, [VM(vm, {"cpu": 10, "memory": 10}, host=h) for vm, h in hosts.items()])


def rule(rule_id: str, kind: str, **fields: object) -> Rule:
    return Rule(rule_id, "operator", make(kind, **fields), 0.0)


def test_a_vm_active_on_two_nodes_of_two_clusters_is_duplicated() -> None:
    seen = [at("c1", "n1", "a"), at("c2", "m1", "a", "paused"), at("c1", "n2", "b")]
    assert duplicated(seen) == {"a": ["c1/n1", "c2/m1"]}


def test_a_shut_off_copy_beside_the_running_one_is_not_a_duplicate() -> None:
    assert duplicated([at("c1", "n1", "a"), at("c1", "n2", "a", "shut_off")]) == {}


def test_an_expected_vm_no_node_reports_is_missing() -> None:
    seen = [at("c1", "n1", "a", "shut_off")]
    assert missing({"a": "web-a", "b": "web-b"}, seen) == {"b": "web-b"}


def test_broken_rules_name_each_rule_the_placement_breaks_unless_reported_impossible() -> None:
    rules = [
        rule("apart", "spread", vms=("a", "b")),
        rule("together", "gather", vms=("a", "c")),
        rule("not-n3", "ban", vms=("c",), nodes=("n3",)),
    ]
    placement = model({"a": "n1", "b": "n1", "c": "n2"})
    assert sorted(broken_rules(rules, placement)) == ["apart", "together"]
    assert sorted(broken_rules(rules, placement, impossible=["apart"])) == ["together"]
    assert broken_rules(rules, model({"a": "n1", "b": "n2", "c": "n1"})) == {}


def test_the_ledger_keeps_the_first_sighting_of_each_broken_invariant() -> None:
    ledger = Ledger()
    assert ledger.note("rule", 3, "apart", "first")
    assert not ledger.note("rule", 9, "apart", "again")
    assert ledger.note("lost", 9, "apart", "another kind")
    assert [(f.kind, f.step) for f in ledger.findings] == [("rule", 3), ("lost", 9)]
    assert ledger.count("rule") == 1
