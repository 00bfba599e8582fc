"""Group placement: one cluster for the whole group, nodes by the real CP-SAT solver,
spread/gather/ban/fence respected, all-or-nothing."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from jobs_builders import cluster, job
from vmgrid.agents.jobmodel import JobSpec, parse_job
from vmgrid.agents.jobmodel.placement import (
    GroupPlacement,
    Rejection,
    choose_clusters,
    place_group,
    place_in_cluster,
    view_of,
)
from vmgrid.solver import Model


def spec(**overrides: Any) -> JobSpec:
    return parse_job(job(image="/img/base.qcow2", **overrides))


def placed(outcome: GroupPlacement | Rejection) -> GroupPlacement:
    assert isinstance(outcome, GroupPlacement), outcome
    return outcome


def test_spread_puts_every_member_on_its_own_node() -> None:
    out = placed(place_in_cluster(spec(placement={"spread": True}), "c1", cluster(4)))
    assert len(set(out.hosts.values())) == 3


def test_gather_puts_every_member_on_one_node() -> None:
    out = placed(place_in_cluster(spec(placement={"gather": True}), "c1", cluster(4)))
    assert len(set(out.hosts.values())) == 1


def test_ban_and_fence_limit_the_nodes() -> None:
    rules = {"fence": ["n0", "n1", "n2"], "ban": ["n1"]}
    out = placed(place_in_cluster(spec(placement=rules), "c1", cluster(4)))
    assert set(out.hosts.values()) <= {"n0", "n2"}


def test_running_vms_are_not_moved_to_make_room() -> None:
    busy = cluster(2, mem=4096, vms=[("old", "n0", 3584)])
    out = place_in_cluster(spec(count=2, memory_mib=2048, placement={"spread": True}), "c1", busy)
    assert isinstance(out, Rejection) and out.stage == "nodes"


def test_a_group_that_cannot_fully_fit_is_rejected_whole_with_conflicts() -> None:
    out = place_in_cluster(
        spec(count=3, placement={"spread": True, "ban": ["n0"]}), "c1", cluster(3)
    )
    assert isinstance(out, Rejection)
    assert out.stage == "nodes" and "spread(mpi-0,mpi-1,mpi-2)" in out.conflicts
    assert "spread" in out.reason


def test_a_name_clash_with_a_running_vm_is_rejected() -> None:
    out = place_in_cluster(spec(count=1), "c1", cluster(2, vms=[("mpi", "n0", 512)]))
    assert isinstance(out, Rejection) and "'mpi' already exists" in out.reason


CLUSTERS = {
    "small": cluster(2, mem=2048, prefix="s"),
    "big": cluster(4, mem=8192, prefix="b"),
    "full": cluster(4, mem=2048, vms=[(f"v{i}", f"f{i}", 2048) for i in range(4)], prefix="f"),
}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"placement": {"spread": True}}, "big"),
        ({"count": 1, "memory_mib": 512, "cluster": "small"}, "small"),
        ({"count": 2, "memory_mib": 512, "placement": {"fence": ["s0", "s1"]}}, "small"),
        ({"placement": {"gather": True}, "memory_mib": 2048}, "big"),
    ],
)
def test_one_cluster_is_chosen_for_the_whole_group(
    overrides: dict[str, Any], expected: str
) -> None:
    out = placed(place_group(spec(**overrides), CLUSTERS))
    assert out.cluster_id == expected
    assert all(h.startswith(expected[0]) for h in out.hosts.values())


def test_filtered_clusters_say_why() -> None:
    views = [view_of(c, m) for c, m in CLUSTERS.items()] + [
        view_of("down", cluster(4), healthy=False)
    ]
    choice = choose_clusters(spec(memory_mib=1024, placement={"spread": True}), views)
    assert not isinstance(choice, Rejection)
    assert choice.ranked == ("big",)
    assert choice.filtered["down"] == "cluster is not healthy"
    assert choice.filtered["small"] == "spread needs 3 nodes, 2 usable"
    assert "memory MiB" in choice.filtered["full"]


def test_no_cluster_at_all_is_a_rejection_naming_each() -> None:
    out = place_group(spec(memory_mib=4096, count=9), CLUSTERS)
    assert isinstance(out, Rejection) and out.stage == "cluster"
    assert set(out.clusters) == set(CLUSTERS)


def test_ha_admission_can_refuse_a_placement_that_fits() -> None:
    two = {"c1": cluster(2, mem=4096)}
    group = spec(count=2, memory_mib=2560)
    assert isinstance(place_group(group, two), GroupPlacement)
    out = place_group(group, two, tolerate_failures=1)
    assert isinstance(out, Rejection) and out.stage == "admission"


def test_nothing_new_lands_on_a_draining_node() -> None:
    base = cluster(3)
    nodes = [
        dataclasses.replace(n, attributes={"draining": n.name != "n2"}) for n in base.nodes.values()
    ]
    placed = place_in_cluster(spec(count=1), "c1", Model.of(nodes, []))
    assert not isinstance(placed, Rejection), placed
    assert set(placed.hosts.values()) == {"n2"}
