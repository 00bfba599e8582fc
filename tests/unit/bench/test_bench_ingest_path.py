"""The in-process ingest benchmark: every report it times reaches the manager's state through
the wire's codec, as the simulated agents send it; bad sizes are refused naming them."""

from __future__ import annotations

import argparse
import gc
from itertools import pairwise

import pytest
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.model import VmState
from vmgrid.bench.ingest_path import ingest, run


def args(**overrides: object) -> argparse.Namespace:
    values: dict[str, object] = dict(agents=6, vms_per_agent=4, rounds=3, warmup=1, period=1.0)
    values.update(overrides)
    return argparse.Namespace(**values)


def test_every_round_reaches_each_node_as_its_agent_sent_it() -> None:
    manager, result = ingest(args())
    assert result["reports"] == 6 * 3 and manager.ingest.reports_total == 6 * 4
    views = manager.state.views()
    assert [v.node_id for v in views] == [f"bench-{i:05d}" for i in range(6)]
    for view in views:
        assert view.status is NodeStatus.CONNECTED and view.last_sequence == 4
        # the first round listed the VMs, the later ones said "the same VMs" (same_vms)
        assert [vm.name for vm in view.vms] == [f"{view.node_id}-vm{j:03d}" for j in range(4)]
        assert all(vm.state is VmState.RUNNING for vm in view.vms)
        assert [vm.cpu_used_millicores for vm in view.vms] == [500, 501, 502, 503]
    # one period between rounds, each agent at its own phase of it
    first, last = views[0].last_seen_unix_ns, views[-1].last_seen_unix_ns
    assert 0 < last - first < 10**9
    history = manager.state.node_usage_history(views[0].node_id, 0)
    samples = history.times_unix_ms[history.buckets :]
    assert [b - a for a, b in pairwise(samples)] == [1000, 1000, 1000]


def test_the_collector_settings_are_given_back() -> None:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        run(args())
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_the_figures_add_up() -> None:
    result = run(args(agents=10, rounds=2))
    stages = [result[f"{s}_us_per_report"] for s in ("parse", "decode", "apply")]
    assert all(t > 0 for t in stages) and result["us_per_report"] > 0
    assert result["cores_at_period"] == pytest.approx(result["us_per_report"] * 10 / 1e6, rel=0.01)
    halved = run(args(agents=10, rounds=2, period=2.0))
    assert halved["cores_at_period"] == pytest.approx(halved["us_per_report"] * 5 / 1e6, rel=0.01)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"agents": 0}, "--agents 0"),
        ({"vms_per_agent": 0}, "--vms-per-agent 0"),
        ({"rounds": 0}, "--rounds 0"),
        ({"warmup": 0}, "--warmup 0"),
        ({"period": 0.0}, "--period 0.0"),
    ],
)
def test_bad_sizes_are_refused_naming_them(overrides: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        run(args(**overrides))
