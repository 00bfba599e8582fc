"""Validation of operator rules: every bad rule gets an error naming the bad element, and the
store is left as it was; good rules of each kind are built and survive a store reopen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from vmgrid.agents.cluster.operator import codec as view_codec
from vmgrid.agents.cluster.rules.feasibility import contradiction, impossible
from vmgrid.agents.cluster.rules.store import RuleStore
from vmgrid.agents.cluster.rules.validate import (
    OPERATOR_KINDS,
    Known,
    RuleRequest,
    rule_parts,
    validate,
)
from vmgrid.agents.errors import AlreadyExists, InvalidArgument, NotFound, VmgridError
from vmgrid.solver.constraints import Ban, Fence, Gather, Spread
from vmgrid.solver.model import VM, Model, Node
from vmgrid.v1 import cluster_pb2 as pb

KNOWN = Known(
    vms={"u-a", "u-b", "u-c", "u-d"},
    nodes={"n1", "n2", "n3"},
    vm_names={"web-a": ("u-a",), "web-b": ("u-b",), "twin": ("u-c", "u-d")},
)


def _store() -> RuleStore:
    store = RuleStore()
    store.add("keep-apart", Spread(("u-a", "u-b")))
    store.add("together", Gather(("u-c", "u-d")))
    store.add("not-n1", Ban(("u-c",), ("n1",)))
    return store


def _req(
    rule_id: str, kind: str, vms: tuple[str, ...] = (), nodes: tuple[str, ...] = (), **p: Any
) -> RuleRequest:
    return RuleRequest(rule_id, kind, vms, nodes, p)


BAD: list[tuple[RuleRequest, type[VmgridError], list[str]]] = [
    # (request, error type, words the message must name)
    (_req("", "spread", ("u-a", "u-c")), InvalidArgument, ["rule id is empty"]),
    (_req("bad id!", "spread", ("u-a", "u-c")), InvalidArgument, ["'bad id!'"]),
    (_req("keep-apart", "spread", ("u-c", "u-d")), AlreadyExists, ["'keep-apart'", "spread"]),
    (_req("r", "scatter", ("u-a", "u-b")), InvalidArgument, ["'scatter'", "spread"]),
    (_req("r", "offline", nodes=("n1",)), InvalidArgument, ["'offline'"]),
    (_req("r", "spread", ("u-a", "u-zz")), NotFound, ["VM 'u-zz'", "u-a"]),
    (_req("r", "ban", ("u-a",), ("n9",)), NotFound, ["node 'n9'", "n1"]),
    (_req("r", "fence", ("u-a",), ()), InvalidArgument, ["fence", "nodes is empty"]),
    (_req("r", "spread", ()), InvalidArgument, ["spread", "VM"]),
    (_req("r", "spread", ("u-a",)), InvalidArgument, ["two VMs", "'u-a'"]),
    (_req("r", "spread", ("u-a", "web-a")), InvalidArgument, ["'u-a'", "twice"]),
    (_req("r", "spread", ("twin", "u-a")), InvalidArgument, ["'twin'", "ambiguous", "u-c"]),
    (_req("r", "quarantine", ("u-a",), ("n1",)), InvalidArgument, ["quarantine", "u-a"]),
    (_req("r", "spread", ("u-a", "u-c"), weight=3), InvalidArgument, ["'weight'"]),
    (
        RuleRequest("r", "spread", ("u-a", "u-c"), (), {"vms": ["u-b"]}),
        InvalidArgument,
        ["'vms'", "--vms"],
    ),
    (_req("r", "maxOnline", nodes=("n1", "n2")), InvalidArgument, ["maxOnline", "amount"]),
    (_req("r", "maxOnline", nodes=("n1",), amount="two"), InvalidArgument, ["amount", "'two'"]),
    (_req("r", "maxOnline", nodes=("n1",), amount=-1), InvalidArgument, ["amount", "-1"]),
    (_req("r", "maxOnline", nodes=("n1",), amount=True), InvalidArgument, ["amount", "True"]),
    (
        _req("r", "resourceCapacity", nodes=("n1",), rc="disk", amount=1),
        InvalidArgument,
        ["'disk'", "cpu"],
    ),
    (
        _req("r", "spread", ("u-a", "u-c"), continuous="yes"),
        InvalidArgument,
        ["continuous", "'yes'"],
    ),
    (_req("r", "among", ("u-a",), parts=[["n1"]]), InvalidArgument, ["parts", "two lists"]),
    (_req("r", "among", ("u-a",), parts=[["n1"], "n2"]), InvalidArgument, ["parts", "'n2'"]),
    (_req("r", "among", ("u-a",), parts=[["n1"], ["n7"]]), NotFound, ["node 'n7'"]),
    (_req("r", "among", ("u-a",), parts=[["n1"], ["n1"]]), InvalidArgument, ["'n1'", "two parts"]),
    (_req("r", "split", groups=[["u-a"], ["u-x"]]), NotFound, ["VM 'u-x'"]),
    (_req("r", "networkAffinity", pairs=[["u-a", "u-b"]]), InvalidArgument, ["pair", "u-b"]),
    (_req("r", "networkAffinity", pairs=[["u-a", "u-b", -5]]), InvalidArgument, ["-5"]),
    # contradictions with the stored rules
    (_req("r", "gather", ("u-a", "u-b")), InvalidArgument, ["keep-apart", "u-a, u-b"]),
    (_req("r", "spread", ("u-c", "u-d", "u-a")), InvalidArgument, ["together", "u-c, u-d"]),
    (_req("r", "fence", ("u-c",), ("n1",)), InvalidArgument, ["VM u-c", "not-n1", "n1"]),
    (_req("r", "ban", ("u-c",), ("n2", "n3")), InvalidArgument, ["VM u-c", "not-n1", "r"]),
    (_req("r", "ban", ("u-a", "u-b"), ("n1", "n2")), InvalidArgument, ["keep-apart", "u-a, u-b"]),
    (_req("r", "fence", ("u-d",), ("n1",)), InvalidArgument, ["together", "u-c, u-d"]),
    (_req("r", "split", groups=[["u-c"], ["u-d"]]), InvalidArgument, ["together", "u-c, u-d"]),
    (_req("r", "lonely", ("u-c",)), InvalidArgument, ["together", "u-c", "u-d"]),
]


@pytest.mark.parametrize(
    ("request_", "error", "words"), BAD, ids=[f"{r.kind}-{i}" for i, (r, _, _) in enumerate(BAD)]
)
def test_bad_rule_is_refused_naming_the_element_and_nothing_is_stored(
    request_: RuleRequest, error: type[VmgridError], words: list[str]
) -> None:
    store = _store()
    before = store.rules()
    with pytest.raises(error) as info:
        validate(request_, KNOWN, store.rules())
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert store.rules() == before


GOOD: list[tuple[RuleRequest, str]] = [
    (_req("s", "spread", ("web-a", "u-c")), "spread(u-a,u-c)"),
    (_req("g", "gather", ("u-a", "u-c")), "gather(u-a,u-c)"),
    (_req("b", "ban", ("u-a",), ("n1",)), "ban(u-a; nodes n1)"),
    (_req("f", "fence", ("u-c",), ("n2", "n3")), "fence(u-c; nodes n2,n3)"),
    (_req("am", "among", ("u-a",), parts=[["n1", "n2"], ["n3"]]), "among(u-a; nodes n1,n2,n3)"),
    (_req("l", "lonely", ("u-a",)), "lonely(u-a)"),
    (_req("sp", "split", groups=[["u-a"], ["u-c"]]), "split(u-a,u-c)"),
    (_req("q", "quarantine", nodes=("n3",)), "quarantine(n3)"),
    (_req("rt", "root", ("u-b",)), "root(u-b)"),
    (_req("mo", "maxOnline", nodes=("n1", "n2"), amount=1), "maxOnline(n1,n2: <= 1)"),
    (_req("rc", "runningCapacity", nodes=("n1",), amount=4), "runningCapacity(n1: <= 4)"),
    (
        _req("res", "resourceCapacity", nodes=("n1",), rc="cpu", amount=8000),
        "resourceCapacity(n1: cpu <= 8000)",
    ),
    (
        _req("na", "networkAffinity", pairs=[["u-a", "u-c", 200]], max_crossing_mbit=None),
        "networkAffinity(u-a,u-c)",
    ),
]


@pytest.mark.parametrize(("request_", "label"), GOOD, ids=[r.kind for r, _ in GOOD])
def test_good_rule_of_each_kind_is_built_and_survives_a_reopen(
    request_: RuleRequest, label: str, tmp_path: Path
) -> None:
    path = str(tmp_path / "rules.sqlite")
    store = RuleStore(path)
    constraint = validate(request_, KNOWN, store.rules())
    assert constraint.kind == request_.kind
    assert constraint.label() == label
    store.add(request_.rule_id, constraint)
    store.close()
    again = RuleStore(path).get(request_.rule_id)
    assert again.constraint == constraint
    vms, nodes, parameters = rule_parts(again)
    rebuilt = RuleRequest(request_.rule_id + "-copy", request_.kind, vms, nodes, parameters)
    assert validate(rebuilt, KNOWN, []) == constraint


def test_every_operator_kind_has_a_good_example() -> None:
    assert {r.kind for r, _ in GOOD} == set(OPERATOR_KINDS)


def test_contradiction_only_blames_the_new_rule() -> None:
    # Two stored rules that already clash (a job's rules, say) do not block an unrelated rule.
    store = RuleStore()
    store.add("s", Spread(("u-a", "u-b")))
    store.add("g", Gather(("u-a", "u-b")), origin="job:j1")
    assert contradiction("new", Ban(("u-c",), ("n1",)), store.rules(), KNOWN.nodes) == ""


def _model(hosts: dict[str, str], nodes: tuple[str, ...]) -> Model:
    return Model.of(
        nodes=[Node(n, {"cpu": 4000, "mem": 4096}) for n in nodes],
        vms=[VM(v, {"cpu": 100, "mem": 256}, host=h) for v, h in hosts.items()],
    )


def test_impossible_names_a_spread_with_more_vms_than_nodes_and_a_fence_to_gone_nodes() -> None:
    store = RuleStore()
    store.add("wide", Spread(("a", "b", "c")))
    store.add("fenced", Fence(("d",), ("n9",)))
    store.add("fine", Spread(("a", "d")))
    model = _model({"a": "n1", "b": "n2", "c": "n2", "d": "n1"}, ("n1", "n2"))
    found = {v.rule.rule_id: v.reason for v in impossible(store.rules(), model)}
    assert set(found) == {"wide", "fenced"}
    assert "3 distinct nodes" in found["wide"] and "n1, n2" in found["wide"]
    assert "VM d would have no node" in found["fenced"] and "n9" in found["fenced"]


@pytest.mark.parametrize(("request_", "label"), GOOD, ids=[r.kind for r, _ in GOOD])
def test_rule_of_each_kind_round_trips_through_the_wire(request_: RuleRequest, label: str) -> None:
    store = RuleStore()
    rule = store.add(request_.rule_id, validate(request_, KNOWN, []), origin="job:j-7")
    wire = pb.Rule.FromString(view_codec.encode_rule(rule).SerializeToString())
    assert (wire.rule_id, wire.kind, wire.origin, wire.label) == (
        rule.rule_id,
        rule.constraint.kind,
        "job:j-7",
        label,
    )
    assert abs(wire.created_at.ToNanoseconds() / 1e9 - rule.created_unix_s) < 1e-3
    again = view_codec.decode_rule_request(wire)
    assert validate(again, KNOWN, []) == rule.constraint


@pytest.mark.parametrize("text", ["{", "[1, 2]", '"amount"'])
def test_parameters_that_are_not_a_json_object_are_refused_naming_the_field(text: str) -> None:
    wire = pb.Rule(rule_id="r", kind="maxOnline", node_ids=["n1"], parameters_json=text)
    with pytest.raises(InvalidArgument, match="rule.parameters_json") as info:
        view_codec.decode_rule_request(wire)
    assert text in str(info.value)
