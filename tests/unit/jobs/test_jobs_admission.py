"""HA admission control: a group is refused when F failures would leave no room to restart."""

from __future__ import annotations

import pytest
from jobs_builders import cluster
from vmgrid.solver import VM, VMState
from vmgrid.solver.admission import HA_PRIORITY, admit, restart_order
from vmgrid.solver.model import ModelError


def new(name: str, mem: int, host: str | None = None, priority: int = 0) -> VM:
    state = VMState.READY if host is None else VMState.RUNNING
    return VM(name, {"cpu": 500, "mem": mem, "net": 10}, state, host, {HA_PRIORITY: priority})


@pytest.mark.parametrize(
    ("nodes", "running", "group", "failures", "admitted"),
    [
        (3, [], [new("a", 2048), new("b", 2048)], 1, True),
        (3, [("x", "n0", 3072), ("y", "n1", 3072)], [new("a", 2048)], 1, False),
        (3, [("x", "n0", 2048)], [new("a", 2048, "n1")], 1, True),
        (3, [("x", "n0", 2048)], [new("a", 2048, "n1"), new("b", 2048, "n2")], 1, True),
        (3, [("x", "n0", 3072)], [new("a", 3072, "n1"), new("b", 3072, "n2")], 1, False),
        (3, [], [new("a", 1024)], 2, True),
        (3, [("x", "n0", 2048)], [new("a", 2560)], 2, False),
        (2, [], [new("a", 1024)], 2, False),
        (2, [("x", "n0", 4096)], [new("a", 4096, "n1")], 0, True),
    ],
)
def test_admission_keeps_room_for_f_failures(
    nodes: int,
    running: list[tuple[str, str, int]],
    group: list[VM],
    failures: int,
    admitted: bool,
) -> None:
    decision = admit(cluster(nodes, mem=4096, vms=running), group, failures)
    assert decision.admitted is admitted, decision.reason
    assert decision.reason


def test_a_refusal_names_the_lost_nodes_and_the_short_resource() -> None:
    model = cluster(3, mem=4096, vms=[("x", "n0", 3072), ("y", "n1", 3072)])
    decision = admit(model, [new("a", 3072)], 1)
    assert not decision.admitted
    assert "mem" in decision.reason and "MiB" in decision.reason


def test_fragmentation_is_caught_when_the_aggregate_fits() -> None:
    model = cluster(3, mem=4096, vms=[("x", "n1", 2560), ("y", "n2", 2560)])
    decision = admit(model, [new("big", 3072, "n0")], 1)
    assert not decision.admitted
    assert decision.lost_nodes == ("n0",) and decision.stranded == ("big",)


def test_restart_order_is_priority_first_then_size() -> None:
    vms = [new("low-big", 4096), new("high-small", 256, priority=9), new("low-small", 256)]
    assert [v.name for v in restart_order(vms)] == ["high-small", "low-big", "low-small"]


def test_bad_inputs_are_errors() -> None:
    model = cluster(2, vms=[("x", "n0", 512)])
    with pytest.raises(ModelError, match="failures to tolerate: -1"):
        admit(model, [], -1)
    with pytest.raises(ModelError, match="'x' already exists"):
        admit(model, [new("x", 512)], 1)
