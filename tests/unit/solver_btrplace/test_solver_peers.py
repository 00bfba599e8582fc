"""`vmgrid-bench solver-peers` without the peers' environments: slicing, the neutral input, the
replay of a peer's steps by vmgrid's validator, and the vmgrid columns of a run."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from btrplace_docs import Doc
from vmgrid.bench.main import main
from vmgrid.bench.peers_io import READY, actions_from_steps, peer_input
from vmgrid.bench.peers_slice import slice_instance
from vmgrid.solver.btrplace import Among, Offline, Spread, parse_instance
from vmgrid.solver.plan import ActionKind
from vmgrid.solver.validate import validate


def _maintenance() -> Doc:
    """Node 1 must go offline; 10 and 11 are spread; 12 waits to boot; 13 is in an among."""
    doc = Doc()
    for n in range(1, 5):
        doc.node(n, cpu=4, mem=4)
    doc.node(5, cpu=4, mem=4, online=False)
    doc.vm(10, 1).vm(11, 2).vm(12, None).vm(13, 3)
    doc.constraint("offline", node=1)
    doc.constraint("online", node=5)
    doc.constraint("running", vm=12)
    doc.constraint("spread", vms=[10, 11], continuous=True)
    doc.constraint("among", vms=[13], parts=[[1, 2], [3, 4, 5]], continuous=True)
    return doc


def test_peer_input_marks_leaving_nodes_vms_to_boot_and_whitelists() -> None:
    inst = parse_instance(_maintenance().build())
    data = peer_input(inst, 5.0)
    nodes = {n["name"]: n for n in data["nodes"]}
    assert nodes["1"]["leaving"] is True and nodes["2"]["leaving"] is False
    assert "5" in nodes  # an offline node that must come online is offered
    hosts = {v["name"]: v["host"] for v in data["vms"]}
    assert hosts == {"10": "1", "11": "2", "12": READY, "13": "3"}
    assert data["allowed"]["13"] == ["3", "4", "5"]
    assert data["spread"] == [["10", "11"]]
    assert data["resources"] == {"memory": "mem", "cpu": "cpu", "other": []}


def test_a_peers_steps_replay_as_a_valid_plan() -> None:
    inst = parse_instance(_maintenance().build())
    steps = [[["10", "1", "3"], ["12", READY, "4"]]]
    actions = actions_from_steps(inst, steps)
    kinds = [a.kind for a in actions]
    assert kinds == [
        ActionKind.BOOT_NODE,
        ActionKind.MIGRATE,
        ActionKind.BOOT_VM,
        ActionKind.SHUTDOWN_NODE,
    ]
    boot_end = actions[0].end_s
    assert all(a.start_s >= boot_end for a in actions[1:])
    assert actions[-1].start_s >= max(a.end_s for a in actions[1:3])
    assert validate(inst.source, actions, inst.constraints, inst.demands) == []


def test_a_peer_breaking_spread_or_leaving_a_vm_behind_is_caught() -> None:
    inst = parse_instance(_maintenance().build())
    onto_partner = actions_from_steps(inst, [[["10", "1", "2"], ["12", READY, "4"]]])
    found = validate(inst.source, onto_partner, inst.constraints, inst.demands)
    assert any("spread" in v.message for v in found)
    not_booted = actions_from_steps(inst, [[["10", "1", "3"]]])
    found = validate(inst.source, not_booted, inst.constraints, inst.demands)
    assert any("running(12)" in v.message for v in found)


def test_a_slice_keeps_spread_ids_and_restricts_every_rule() -> None:
    doc = Doc()
    for n in range(1, 11):
        doc.node(n, cpu=8)
    for n in range(1, 11):
        doc.vm(100 + n, n)
    doc.constraint("offline", node=1)
    doc.constraint("offline", node=2)
    doc.constraint("spread", vms=[101, 102, 104], continuous=True)
    doc.constraint("among", vms=[102, 104, 105], parts=[[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]])
    inst = slice_instance(parse_instance(doc.build()), 5)
    kept = set(inst.source.nodes)
    assert kept == {"2", "4", "6", "8", "10"}
    assert set(inst.source.vms) == {"102", "104", "106", "108", "110"}
    assert inst.of_type(Offline) == [Offline("2")]
    assert inst.of_type(Spread) == [Spread(("102", "104"), True)]
    (among,) = inst.of_type(Among)
    assert among.vms == ("102", "104")
    assert among.parts == (frozenset({"2", "4"}), frozenset({"6", "8", "10"}))


def test_bench_runs_vmgrid_and_the_watcher_like_greedy_on_one_instance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "maintenance.json.gz"
    path.write_bytes(gzip.compress(json.dumps(_maintenance().build()).encode()))
    argv = ["solver-peers", str(path), "--solvers", "vmgrid,watcher-like", "--timeout", "5"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (row,) = out["instances"]
    assert row["vmgrid"]["valid"] is True
    assert row["vmgrid"]["migrations"] == 1  # only the VM on the leaving node moves
    greedy = row["watcher-like"]
    assert greedy["valid"] is True
    assert greedy["migrations_ratio"] == 1.0
    assert "re-implementation" in greedy["note"]


def test_bench_names_an_unknown_solver(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solver-peers", "x.json", "--solvers", "vmgrid,cplex"]) == 2
    assert "--solvers 'vmgrid,cplex'" in capsys.readouterr().err


def test_consolidate_drops_keep_online_rules_and_packs_for_every_solver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = Doc()
    for n in range(1, 5):
        doc.node(n, cpu=4, mem=4)
        doc.constraint("online", node=n)
    doc.vm(10, 1, cpu=2, mem=2).vm(11, 2, cpu=2, mem=2).vm(12, 3, cpu=1, mem=1)
    path = tmp_path / "spare.json"
    path.write_text(json.dumps(doc.build()))
    argv = ["solver-peers", str(path), "--solvers", "vmgrid,watcher-like", "--consolidate"]
    assert main([*argv, "--timeout", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (row,) = out["instances"]
    assert row["instance"].endswith("/consolidate")
    assert row["vmgrid"]["valid"] is True
    assert row["vmgrid"]["nodes_used"] == 2  # 2+2+1 CPU on nodes of 4: two nodes suffice
    assert row["watcher-like"]["nodes_used"] == 3  # the greedy only repairs, it never packs
    assert row["watcher-like"]["nodes_used_ratio"] == 1.5
