"""BtrPlace constraints solved end to end: solver plan, exported file, independent validator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from btrplace_docs import Doc
from vmgrid.solver.api import SolveOptions, SolveResult, solve
from vmgrid.solver.btrplace import BtrInstance, load_instance, parse_instance
from vmgrid.solver.btrplace.bounds import min_migrations
from vmgrid.solver.btrplace.plan_io import plan_to_json
from vmgrid.solver.btrplace.problem import to_problem
from vmgrid.solver.cpsat import CpsatOptions
from vmgrid.solver.validate import validate, validate_btrplace_plan, validate_plan
from vmgrid.solver.validate_rules import as_rules

DATA = Path(__file__).parents[2] / "data" / "btrplace"
QUICK = SolveOptions(cpsat=CpsatOptions(time_limit_s=5, num_workers=2))


def solved(doc: Doc) -> tuple[BtrInstance, SolveResult]:
    inst = parse_instance(doc.build(), "tiny")
    return inst, solve(to_problem(inst), QUICK)


def hosts(result: SolveResult) -> dict[str, str | None]:
    assert result.dst is not None
    return {name: vm.host for name, vm in result.dst.vms.items()}


def three_nodes() -> Doc:
    return Doc().node(1, cpu=10).node(2, cpu=10).node(3, cpu=10)


CASES = [
    ("online boots a node", three_nodes().node(4, online=False).constraint("online", node=4)),
    ("offline empties a node", three_nodes().vm(10, 3).vm(11, 3).constraint("offline", node=3)),
    ("running boots a ready VM", three_nodes().vm(10, None, cpu=4).constraint("running", vm=10)),
    (
        "preserve relieves an overloaded node",
        three_nodes()
        .vm(10, 1, cpu=5)
        .vm(11, 1, cpu=5)
        .constraint("preserve", vm=10, rc="cpu", amount=8),
    ),
    (
        "spread separates co-located VMs",
        three_nodes()
        .vm(10, 1)
        .vm(11, 1)
        .vm(12, 2)
        .constraint("spread", vms=[10, 11, 12], continuous=True),
    ),
    (
        "among gathers VMs into one group",
        three_nodes()
        .vm(10, 1)
        .vm(11, 3)
        .constraint("among", vms=[10, 11], parts=[[1, 2], [3]], continuous=False),
    ),
    (
        "resourceCapacity caps a node",
        three_nodes()
        .vm(10, 1, cpu=4)
        .vm(11, 1, cpu=4)
        .constraint("resourceCapacity", nodes=[1], rc="cpu", amount=5),
    ),
]


@pytest.mark.parametrize("doc", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_each_constraint_alone_gets_a_valid_plan(doc: Doc) -> None:
    inst, result = solved(doc)
    assert result.status in ("optimal", "feasible")
    assert result.plan is not None
    assert validate(inst.source, result.plan.actions, inst.constraints, inst.demands) == []


def test_offline_node_ends_empty_and_off() -> None:
    _, result = solved(three_nodes().vm(10, 3).constraint("offline", node=3))
    assert result.dst is not None
    assert hosts(result)["10"] in ("1", "2")
    assert not result.dst.nodes["3"].online


def test_preserve_moves_the_fewest_vms() -> None:
    doc = (
        three_nodes()
        .vm(10, 1, cpu=5)
        .vm(11, 1, cpu=5)
        .constraint("preserve", vm=10, rc="cpu", amount=8)
    )
    inst, result = solved(doc)
    assert result.plan is not None
    assert result.plan.migrations == min_migrations(inst) == 1


def test_infeasible_spread_is_explained_by_its_constraint() -> None:
    doc = Doc().node(1).node(2).vm(10, 1).vm(11, 1).vm(12, 2)
    doc.constraint("spread", vms=[10, 11, 12], continuous=False)
    _, result = solved(doc)
    assert result.status == "infeasible"
    assert result.plan is None
    assert any(c.startswith("spread(") for c in result.conflicts)


def test_infeasible_capacity_and_running_are_explained() -> None:
    doc = Doc().node(1, cpu=4).vm(10, None, cpu=6).constraint("running", vm=10)
    _, result = solved(doc)
    assert result.status == "infeasible"
    assert result.conflicts


def test_issue_100_heuristic_plan_is_valid_in_its_exported_form(tmp_path: Path) -> None:
    inst = load_instance(DATA / "std-perf-issue-100.json.gz")
    result = solve(to_problem(inst), SolveOptions(use_cpsat=False))
    assert result.plan is not None
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan_to_json(result.plan.actions)))
    assert validate_btrplace_plan(DATA / "std-perf-issue-100.json.gz", plan_file) == []
    assert result.plan.migrations >= min_migrations(inst)


@pytest.mark.slow
def test_issue_100_solved_end_to_end_with_cpsat() -> None:
    inst = load_instance(DATA / "std-perf-issue-100.json.gz")
    result = solve(to_problem(inst), QUICK)
    assert result.status in ("optimal", "feasible")
    assert result.plan is not None
    assert validate(inst.source, result.plan.actions, inst.constraints, inst.demands) == []


def test_solver_plan_checks_against_its_own_plugins() -> None:
    doc = three_nodes().vm(10, 1).vm(11, 1).constraint("spread", vms=[10, 11], continuous=True)
    inst, result = solved(doc)
    assert result.plan is not None
    assert validate_plan(result.plan, to_problem(inst).constraints) == []
    assert as_rules(inst.constraints) == list(to_problem(inst).constraints)
