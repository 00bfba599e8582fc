"""The traffic meter against real kernel counters: namespaces with veths into bridges stand
in for VMs on their taps, real UDP traffic between them, nftables counting per MAC pair."""

from __future__ import annotations

import os
import shutil
from argparse import ArgumentParser

import pytest
from vmgrid.agents.node.libvirt_hypervisor import LibvirtHypervisor
from vmgrid.agents.node.traffic_meter import Nft, TrafficMeter, node_traffic
from vmgrid.bench import traffic as bench
from vmgrid.lab.netns import NamespaceLab, Sender

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("ip") is None,
        reason="needs root, nft (nftables) and ip (iproute2)",
    ),
]

RATE_AB = 2_000_000
RATE_AC = 1_000_000
SECONDS = 4.0


@pytest.fixture
def netlab():
    lab = NamespaceLab(f"vgt{os.getpid() % 100000}")
    try:
        lab.start(2)
        yield lab
    finally:
        lab.close()


def _rates(matrix, lab):
    by_mac = {vm.mac: name for name, vm in lab.vms.items()}
    return {
        (by_mac.get(f.src_mac, f.src_mac), by_mac.get(f.dst_mac, f.dst_mac)): f.bytes_per_second
        for f in matrix.flows
    }


def test_meter_measures_each_pair_within_ten_percent_of_the_kernel_counters(
    netlab: NamespaceLab,
) -> None:
    """Reference: the bridge ports' and uplink's own byte counters (what reached b, c and
    crossed hosts); on a loaded machine veths drop some of what the senders write, so the
    senders' figures are an upper bound only."""
    a, b, c = netlab.add_vm("a", 0), netlab.add_vm("b", 0), netlab.add_vm("c", 1)
    meters = [TrafficMeter(window_s=60, nft=Nft(netns=h)) for h in netlab.hosts]
    local = [{a.mac: "uuid-a", b.mac: "uuid-b"}, {c.mac: "uuid-c"}]
    for meter, ends in zip(meters, local, strict=True):
        assert meter.sample(ends).available is False  # the first window is not complete
    to_b, to_c, crossed = (
        netlab.port_tx_bytes("b"),
        netlab.port_tx_bytes("c"),
        netlab.uplink_tx_bytes(),
    )
    senders = [Sender(a, b, RATE_AB, SECONDS), Sender(a, c, RATE_AC, SECONDS)]
    for s in senders:
        s.start()
    sent_ab, sent_ac = (s.wait() for s in senders)
    to_b = netlab.port_tx_bytes("b") - to_b
    to_c = netlab.port_tx_bytes("c") - to_c
    crossed = netlab.uplink_tx_bytes() - crossed
    host0, host1 = (m.sample(e) for m, e in zip(meters, local, strict=True))
    assert host0.available and host1.available

    rates0, rates1 = _rates(host0, netlab), _rates(host1, netlab)
    measured_ab = rates0[("a", "b")] * host0.window_ms / 1000
    measured_ac = rates0[("a", "c")] * host0.window_ms / 1000
    assert to_b * 0.9 <= measured_ab <= min(to_b, sent_ab) * 1.1, (to_b, sent_ab, measured_ab)
    assert crossed * 0.9 <= measured_ac <= min(crossed, sent_ac) * 1.1, (crossed, measured_ac)
    # host1 sees the cross-host flow arrive at its VM, and nothing of a -> b
    measured_ac1 = rates1[("a", "c")] * host1.window_ms / 1000
    assert to_c * 0.9 <= measured_ac1 <= to_c * 1.1, (to_c, measured_ac1)
    assert ("a", "b") not in rates1
    # the heavier pair is the heavier in the matrix (the sender's rates differ by 2x)
    assert measured_ab > measured_ac
    # endpoints name the node's VMs with the address learned from their frames
    assert {(e.vm_uuid, e.ip) for e in host0.endpoints} == {("uuid-a", a.ip), ("uuid-b", b.ip)}
    assert {f.dst_ip for f in host0.flows if f.dst_mac == c.mac} == {c.ip}


def test_bench_runs_on_namespaces_and_reports_its_figures() -> None:
    parser = ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(
        ["--vms", "netns", "--hosts", "3", "--pairs", "6", "--rate-mbit", "4", "--seconds",
         "1.5", "--seed", "1", "--scenarios", "1", "--decider", "vmgrid"]
    )  # fmt: skip
    out = bench.run(args)
    assert set(out) >= {"cross_host_mbps_blind", "cross_host_mbps_aware", "reduction", "migrations"}
    assert out["same_packing"] and out["migrations"] <= out["migrations_blind"]
    [one] = out["scenarios"]
    assert one["measured_flows"] >= 6  # every pair measured (by both hosts when it crosses)
    assert out["cross_host_mbps_before"] > 0


def test_a_libvirt_domains_nic_is_found_by_the_mac_in_its_xml(netlab: NamespaceLab) -> None:
    """The agent's path: a domain read through libvirt as on a real host (the test driver's
    default domain, NIC aa:bb:cc:dd:ee:ff), its MAC matched to frames metered on a bridge
    (a namespace with that MAC stands in for its tap)."""
    hypervisor = LibvirtHypervisor("test:///default", simulated=False)
    hypervisor.connect()
    try:
        sample = hypervisor.sample()
    finally:
        hypervisor.close()
    [domain] = sample.domains
    guest = netlab.add_vm("guest", 0, mac=domain.macs[0])
    peer = netlab.add_vm("peer", 1)
    meter = TrafficMeter(window_s=60, nft=Nft(netns=netlab.hosts[0]))
    assert not node_traffic(meter, sample, simulated=False).available  # first window
    sender = Sender(guest, peer, 500_000, 2.0)
    sender.start()
    sender.wait()
    matrix = node_traffic(meter, sample, simulated=False)
    assert [(e.vm_uuid, e.mac, e.ip) for e in matrix.endpoints] == [
        (domain.uuid, "aa:bb:cc:dd:ee:ff", guest.ip)
    ]
    [flow] = [f for f in matrix.flows if f.dst_mac == peer.mac]
    assert flow.src_mac == "aa:bb:cc:dd:ee:ff" and flow.dst_ip == peer.ip
    assert flow.bytes_per_second > 0
