"""The rule store (kept in SQLite across restarts) and the checks the applier and deciders use."""

from __future__ import annotations

from pathlib import Path

import pytest
from vmgrid.agents.cluster.rules.check import (
    arrival_refusal,
    involving,
    move_refusal,
    moves_keeping_rules,
    violations,
)
from vmgrid.agents.cluster.rules.store import RuleStore, build_constraint
from vmgrid.agents.errors import AlreadyExists, InvalidArgument, NotFound
from vmgrid.solver.constraints import Ban, Gather, Spread
from vmgrid.solver.model import CPU, MEMORY, VM, Model, Node, NodeState, VMState


def model(placement: dict[str, str], nodes: tuple[str, ...] = ("n1", "n2", "n3")) -> Model:
    return Model.of(
        [Node(n, {CPU: 4000, MEMORY: 4096}, NodeState.ONLINE) for n in nodes],
        [VM(v, {CPU: 100, MEMORY: 256}, VMState.RUNNING, h) for v, h in placement.items()],
    )


def test_rules_survive_a_restart_with_their_origin(tmp_path: Path) -> None:
    path = str(tmp_path / "rules.sqlite")
    store = RuleStore(path)
    store.add("web-apart", Spread(("a", "b")))
    store.add("job-7-gather", Gather(("c", "d")), origin="job:7")
    store.close()
    again = RuleStore(path)
    assert [(r.rule_id, r.origin, r.constraint) for r in again.rules()] == [
        ("web-apart", "operator", Spread(("a", "b"))),
        ("job-7-gather", "job:7", Gather(("c", "d"))),
    ]
    assert [r.rule_id for r in again.delete_origin("job:7")] == ["job-7-gather"]
    again.close()
    assert [r.rule_id for r in RuleStore(path).rules()] == ["web-apart"]


def test_a_taken_id_an_unknown_id_and_a_bad_kind_are_refused_naming_them() -> None:
    store = RuleStore()
    store.add("r1", Spread(("a", "b")))
    assert store.add("r1", Spread(("a", "b"))).rule_id == "r1"  # the same request again
    with pytest.raises(AlreadyExists, match="'r1'"):
        store.add("r1", Ban(("a",), ("n1",)))
    with pytest.raises(NotFound, match="'nope'"):
        store.delete("nope")
    with pytest.raises(InvalidArgument, match="'spreed'"):
        build_constraint("spreed", {"vms": ["a"]})
    assert build_constraint("ban", {"vms": ["a"], "nodes": ["n1"]}) == Ban(("a",), ("n1",))


def test_impossible_rules_are_left_out_of_the_kept_ones_until_they_hold_again() -> None:
    store = RuleStore()
    store.add("r1", Spread(("a", "b")))
    assert store.mark_impossible("r1", "no node left") and not store.mark_impossible(
        "r1", "no node left"
    )
    assert store.kept() == () and store.impossible == {"r1": "no node left"}
    assert store.mark_possible("r1") and [r.rule_id for r in store.kept()] == ["r1"]


def test_a_move_that_breaks_a_holding_rule_is_refused_naming_the_rule() -> None:
    store = RuleStore()
    store.add("apart", Spread(("a", "b")))
    store.add("not-n3", Ban(("a",), ("n3",)))
    m = model({"a": "n1", "b": "n2"})
    rules = store.rules()
    assert "apart" in move_refusal(rules, m, "a", "n2")
    assert "not-n3" in move_refusal(rules, m, "a", "n3")
    assert move_refusal(rules, m, "b", "n3") == ""
    arriving = VM("c", {CPU: 1, MEMORY: 1}, VMState.READY, None)
    assert arrival_refusal(rules, m, arriving, "n1") == ""


def test_moves_are_checked_in_order_on_the_placement_they_leave() -> None:
    rules = RuleStore()
    rules.add("apart", Spread(("a", "b")))
    m = model({"a": "n1", "b": "n2"})
    kept, dropped = moves_keeping_rules(rules.rules(), m, [("b", "n3"), ("a", "n2"), ("a", "n3")])
    assert kept == [("b", "n3"), ("a", "n2")]
    assert len(dropped) == 1 and "apart" in dropped[0]


def test_violations_name_the_rule_and_where_its_vms_are() -> None:
    rules = RuleStore()
    rules.add("apart", Spread(("a", "b")))
    rules.add("ok", Spread(("a", "c")))
    (found,) = violations(rules.rules(), model({"a": "n1", "b": "n1", "c": "n2"}))
    assert found.rule.rule_id == "apart" and "a on n1" in found.reason


def test_involving_finds_rules_by_vm_node_or_cluster_wide_scope() -> None:
    store = RuleStore()
    store.add("by-vm", Spread(("a", "b")))
    store.add("by-node", Ban(("x",), ("n2",)))
    assert [r.rule_id for r in involving(store.rules(), ["a"], ["n9"])] == ["by-vm"]
    assert [r.rule_id for r in involving(store.rules(), ["z"], ["n2"])] == ["by-node"]
