"""The real-guest traffic bench's pure parts: taps, iperf3's output, the meters' pairs, and
the decider's two answers in its scenario (3 pairs of 800-millicore guests on 3 hosts)."""

from __future__ import annotations

import argparse
import json

import pytest
from vmgrid.agents.traffic import TrafficEndpoint, TrafficFlow, TrafficMatrix
from vmgrid.bench import traffic as bench
from vmgrid.bench.traffic_lab import iperf_rate, measured_pairs, port_name, tap_of

XML = (
    "<domain><devices><interface type='bridge'><mac address='52:54:00:2f:2a:a5'/>"
    "<target dev='tap3'/></interface></devices></domain>"
)


def test_the_tap_is_the_first_nics_target_and_its_port_name_fits_an_interface() -> None:
    assert tap_of(XML) == "tap3"
    assert port_name("52:54:00:2f:2a:a5") == "vt002f2aa5"
    assert len(port_name("52:54:00:2f:2a:a5")) <= 15
    with pytest.raises(RuntimeError, match="no tap"):
        tap_of("<domain><devices><interface type='bridge'/></devices></domain>")


def test_iperf3_client_json_gives_its_rate_and_loss() -> None:
    out = json.dumps({"end": {"sum": {"bits_per_second": 7_950_000.0, "lost_percent": 0.5}}})
    assert iperf_rate(out) == (7.95, 0.5)
    assert iperf_rate("iperf3: error - unable to connect") == (0.0, None)


def test_pairs_keep_each_directions_larger_view_and_add_both_directions() -> None:
    a, b = "52:54:00:00:00:0a", "52:54:00:00:00:0b"
    host0 = TrafficMatrix(
        True, "", 10_000, (TrafficEndpoint("p0a", a),),
        (TrafficFlow(a, b, 1_000_000), TrafficFlow(b, a, 10_000)),
    )  # fmt: skip
    host1 = TrafficMatrix(
        True, "", 10_000, (TrafficEndpoint("p0b", b),),
        (TrafficFlow(a, b, 990_000), TrafficFlow(b, a, 12_500), TrafficFlow(b, "2a:af:6a:ce:b4:83", 9)),
    )  # fmt: skip
    off = TrafficMatrix.unavailable("metering is off")
    assert measured_pairs([host0, host1, off]) == {"p0a-p0b": 8.1}


def test_each_variant_has_its_defaults_and_given_values_stay() -> None:
    given = argparse.Namespace(vms="linux", pairs=None, seconds=12.0, vm_millicores=None,
                               scenarios=None)  # fmt: skip
    linux = bench.with_defaults(given)
    assert (linux.pairs, linux.seconds, linux.vm_millicores) == (3, 12.0, 800)
    netns = bench.with_defaults(argparse.Namespace(**{**vars(given), "vms": "netns"}))
    assert (netns.pairs, netns.vm_millicores, netns.scenarios) == (6, 450, 5)


def _measured(start: dict[str, int], pairs: int) -> list[TrafficMatrix]:
    mac = {vm: f"52:54:00:00:01:{i:02x}" for i, vm in enumerate(sorted(start))}
    matrices = []
    for h in range(3):
        local = [vm for vm, at in start.items() if at == h]
        flows = tuple(
            TrafficFlow(mac[f"p{p}a"], mac[f"p{p}b"], 1_000_000)
            for p in range(pairs)
            if f"p{p}a" in local or f"p{p}b" in local
        )
        ends = tuple(TrafficEndpoint(vm, mac[vm]) for vm in local)
        matrices.append(TrafficMatrix(True, "", 5000, ends, flows))
    return matrices


def _crossing(placement: dict[str, int]) -> int:
    return sum(placement[f"p{p}a"] != placement[f"p{p}b"] for p in range(3))


@pytest.mark.parametrize("decider", ["solver", "vmgrid"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_real_guest_scenario_aware_joins_a_pair_blind_does_not(seed: int, decider: str) -> None:
    start = bench.initial_placement(3, 3, seed)
    assert _crossing(start) == 3
    blind = bench.place(bench.cluster_state(start, 3, None, 800), decider)
    aware = bench.place(bench.cluster_state(start, 3, _measured(start, 3), 800), decider)
    blind_at, aware_at = bench.placement_after(start, blind), bench.placement_after(start, aware)
    assert aware.migrations == blind.migrations == 2
    assert len(set(aware_at.values())) == len(set(blind_at.values())) == 2
    assert _crossing(aware_at) == 1  # the pair left split on the two kept hosts
    assert _crossing(blind_at) >= _crossing(aware_at)
