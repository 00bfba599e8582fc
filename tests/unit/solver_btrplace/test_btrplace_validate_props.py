"""Property tests: random valid plans pass the validator; each kind of corruption is caught."""

from __future__ import annotations

from dataclasses import dataclass, replace

from btrplace_docs import Doc
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from vmgrid.solver.btrplace import parse_instance
from vmgrid.solver.plan import Action, ActionKind
from vmgrid.solver.validate import validate

RESOURCES = ("cpu", "mem")


@dataclass
class Scenario:
    """A random instance, a valid sequential plan on it, and where everything ends."""

    doc: Doc
    actions: list[Action]
    caps: dict[int, dict[str, int]]
    demand: dict[int, dict[str, int]]
    migrate_s: dict[int, int]
    hosts: dict[int, int]
    end: int

    def load(self, node: int, rc: str) -> int:
        return sum(self.demand[v][rc] for v, n in self.hosts.items() if n == node)

    def rules(self, actions: list[Action] | None = None) -> set[str]:
        inst = parse_instance(self.doc.build())
        got = validate(inst.source, actions or self.actions, inst.constraints, inst.demands)
        return {v.rule for v in got}


def _fits(s: Scenario, vm: int, node: int) -> bool:
    return all(s.load(node, rc) + s.demand[vm][rc] <= s.caps[node][rc] for rc in RESOURCES)


def _move(vm: int, src: int, dst: int, start: int, end: int) -> Action:
    return Action(0, ActionKind.MIGRATE, str(vm), str(src), str(dst), start, end, "generated")


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    doc = Doc()
    caps: dict[int, dict[str, int]] = {}
    for n in range(draw(st.integers(2, 4))):
        caps[n] = {rc: draw(st.integers(4, 10)) for rc in RESOURCES}
        doc.node(n, cpu=caps[n]["cpu"], mem=caps[n]["mem"])
    s = Scenario(doc, [], caps, {}, {}, {}, 0)
    for vm in range(100, 100 + draw(st.integers(1, 7))):
        s.demand[vm] = {rc: draw(st.integers(1, 3)) for rc in RESOURCES}
        node = draw(st.sampled_from(sorted(caps)))
        if not _fits(s, vm, node):
            del s.demand[vm]
            continue
        s.migrate_s[vm] = draw(st.integers(1, 3))
        s.hosts[vm] = node
        doc.vm(vm, node, s.demand[vm]["cpu"], s.demand[vm]["mem"], migrate=s.migrate_s[vm])
    assume(s.hosts)
    for _ in range(draw(st.integers(0, 5))):
        vm = draw(st.sampled_from(sorted(s.hosts)))
        dst = draw(st.sampled_from(sorted(caps)))
        if dst == s.hosts[vm] or not _fits(s, vm, dst):
            continue
        end = s.end + s.migrate_s[vm] + draw(st.integers(0, 2))
        s.actions.append(_move(vm, s.hosts[vm], dst, s.end, end))
        s.hosts[vm] = dst
        s.end = end
    return s


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_valid_sequential_plans_pass(s: Scenario) -> None:
    assert s.rules() == set()


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.data())
def test_migration_from_wrong_host_is_rejected(s: Scenario, data: st.DataObject) -> None:
    assume(s.actions)
    i = data.draw(st.integers(0, len(s.actions) - 1))
    wrong = data.draw(st.sampled_from([n for n in s.caps if str(n) != s.actions[i].src]))
    s.actions[i] = replace(s.actions[i], src=str(wrong))
    assert "source" in s.rules()


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.data())
def test_too_short_action_is_rejected(s: Scenario, data: st.DataObject) -> None:
    assume(s.actions)
    i = data.draw(st.integers(0, len(s.actions) - 1))
    a = s.actions[i]
    s.actions[i] = replace(a, end_s=a.start_s + s.migrate_s[int(a.subject)] - 1)
    assert "duration" in s.rules()


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.data())
def test_shutdown_of_non_empty_node_is_rejected(s: Scenario, data: st.DataObject) -> None:
    node = data.draw(st.sampled_from(sorted(set(s.hosts.values()))))
    halt = Action(0, ActionKind.SHUTDOWN_NODE, str(node), None, None, s.end, s.end + 1, "bad")
    assert "shutdown-non-empty" in s.rules([*s.actions, halt])


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.data())
def test_overlapping_capacity_is_rejected(s: Scenario, data: st.DataObject) -> None:
    full = [(v, n) for v in s.hosts for n in s.caps if n != s.hosts[v] and not _fits(s, v, n)]
    assume(full)
    vm, node = data.draw(st.sampled_from(full))
    extra = _move(vm, s.hosts[vm], node, s.end, s.end + s.migrate_s[vm])
    assert "capacity" in s.rules([*s.actions, extra])


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.data())
def test_spread_violation_is_rejected(s: Scenario, data: st.DataObject) -> None:
    pairs = [(a, b) for a in s.hosts for b in s.hosts if s.hosts[a] != s.hosts[b]]
    assume(pairs)
    a, b = data.draw(st.sampled_from(pairs))
    s.doc.constraint("spread", vms=[a, b], continuous=True)
    extra = _move(a, s.hosts[a], s.hosts[b], s.end, s.end + s.migrate_s[a])
    got = s.rules([*s.actions, extra])
    assert {"continuous-spread", "spread"} <= got
