"""The chaos run's invariant checks on hand-made placements and models."""

from __future__ import annotations

import time
from pathlib import Path

from vmgrid.agents.cluster.act.journal import ActionState, Journal
from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.bench.chaos_check import Ledger, broken_rules, concurrent_moves, duplicated, missing
from vmgrid.bench.chaos_grid import Placement
from vmgrid.solver.constraints import make
from vmgrid.solver.model import VM, Model, Node
from vmgrid.solver.plan import Action, ActionKind


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


def _migration(action_id: int, vm: str, src: str, dst: str) -> Action:
    return Action(action_id, ActionKind.MIGRATE, vm, src, dst, 0, 1, "test")


def test_concurrent_moves_finds_the_plan_that_moved_two_rule_vms_at_once(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(str(path))
    journal.record_plan(
        "together", [_migration(0, "a", "n1", "n3"), _migration(1, "b", "n2", "n3")]
    )
    journal.record_plan("in-turn", [_migration(0, "c", "n1", "n3"), _migration(1, "d", "n2", "n3")])
    journal.start_action("together", 0, 1)
    journal.start_action("together", 1, 1)  # both running
    journal.finish_action("together", 0, ActionState.SUCCEEDED)
    journal.finish_action("together", 1, ActionState.SUCCEEDED)
    journal.start_action("in-turn", 0, 1)
    journal.finish_action("in-turn", 0, ActionState.SUCCEEDED)
    time.sleep(0.01)
    journal.start_action("in-turn", 1, 1)  # after the first one ended
    journal.finish_action("in-turn", 1, ActionState.SUCCEEDED)
    journal.close()
    assert concurrent_moves(path, ["b", "a"], 0.0) == "together"
    assert concurrent_moves(path, ["c", "d"], 0.0) == ""
    assert concurrent_moves(path, ["a", "c"], 0.0) == ""  # two plans
    assert concurrent_moves(path, ["a", "b"], time.time() + 60) == ""  # too long ago
