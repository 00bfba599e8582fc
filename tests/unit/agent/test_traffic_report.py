"""The traffic matrix on the node side: rates from counters, the codec's bounds, and
"unavailable" (never zeros) where nothing can be measured."""

from __future__ import annotations

import pytest
from vmgrid.agents import model as m
from vmgrid.agents.common.node_codec import decode_report, encode_report
from vmgrid.agents.common.node_codec.traffic import decode_traffic, encode_traffic
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.node.config import ConfigError, load_config
from vmgrid.agents.node.hypervisor import DomainSample, HostCounters, HostSample
from vmgrid.agents.node.traffic_meter import (
    Nft,
    TrafficMeter,
    build_matrix,
    domain_macs,
    node_traffic,
    parse_elements,
    table_script,
)
from vmgrid.agents.traffic import TrafficEndpoint, TrafficFlow, TrafficMatrix
from vmgrid.v1 import node_pb2

A, B, C, OFF = "52:54:00:00:00:0a", "52:54:00:00:00:0b", "52:54:00:00:00:0c", "52:54:00:00:00:99"


def test_rates_are_bytes_over_the_window_for_flows_touching_local_vms() -> None:
    base = {(A, B): 1_000, (A, OFF): 0, (OFF, C): 0}
    now = {(A, B): 11_000, (A, OFF): 5_000, (OFF, C): 2_000, (A, "33:33:00:00:00:16"): 900}
    matrix = build_matrix(base, now, 2.0, {A: "vm-a", B: "vm-b"}, {A: "10.0.0.10"})
    flows = {(f.src_mac, f.dst_mac): f for f in matrix.flows}
    assert flows[(A, B)].bytes_per_second == 5_000
    assert flows[(A, OFF)].bytes_per_second == 2_500  # the off-host peer is kept, by MAC
    assert (OFF, C) not in flows  # neither end is on this node
    assert all(not d.startswith("33:33") for _, d in flows)  # multicast is no pair
    assert flows[(A, B)].src_ip == "10.0.0.10"
    assert matrix.window_ms == 2000
    assert {e.vm_uuid for e in matrix.endpoints} == {"vm-a", "vm-b"}


def test_a_counter_that_restarted_counts_from_zero() -> None:
    matrix = build_matrix({(A, B): 50_000}, {(A, B): 3_000}, 1.0, {A: "vm-a"}, {})
    assert [f.bytes_per_second for f in matrix.flows] == [3_000]


def test_meter_averages_over_its_window_and_waits_for_a_first_one() -> None:
    readings = iter([{(A, B): 0}, {(A, B): 10_000}, {(A, B): 40_000}, {(A, B): 50_000}])
    clock = iter([0.0, 10.0, 20.0, 30.0])

    class Fixed(TrafficMeter):
        def read(self):  # canned counters, the window logic is under test
            return next(readings), {}

    meter = Fixed(window_s=15.0, clock=lambda: next(clock))
    meter._installed = True
    assert not meter.sample({A: "vm-a"}).available
    assert [f.bytes_per_second for f in meter.sample({A: "vm-a"}).flows] == [1_000]
    assert [f.bytes_per_second for f in meter.sample({A: "vm-a"}).flows] == [2_000]  # 0..20 s
    # the window slides: base is the newest reading at least 15 s old (t=10)
    assert [f.bytes_per_second for f in meter.sample({A: "vm-a"}).flows] == [2_000]


def test_nft_listing_parses_concatenated_keys_and_counters() -> None:
    listing = (
        '{"nftables": [{"metainfo": {}}, {"set": {"name": "pairs", "elem": [{"elem": {"val": '
        '{"concat": ["52:54:00:00:00:0a", "52:54:00:00:00:0b"]}, "counter": {"packets": 3, '
        '"bytes": 4242}}}]}}]}'
    )
    assert parse_elements(listing) == [([A, B], 4242)]
    assert "counter;" in table_script("t") and "hook forward" in table_script("t")


def test_domain_macs_come_from_the_interfaces_of_the_xml() -> None:
    xml = (
        "<domain><devices><interface type='bridge'><mac address='52:54:00:AA:00:01'/>"
        "</interface><interface type='ethernet'><mac address='52:54:00:aa:00:02'/></interface>"
        "<disk/></devices></domain>"
    )
    assert domain_macs(xml) == ("52:54:00:aa:00:01", "52:54:00:aa:00:02")


def test_domain_macs_read_only_interface_macs_under_devices() -> None:
    xml = (
        "<domain type='kvm'><metadata><app><mac address='02:00:00:00:00:01'/></app></metadata>"
        "<mac address='02:00:00:00:00:02'/><devices><mac address='02:00:00:00:00:03'/>"
        "<interface type='network'><source network='default'/></interface>"
        "<interface type='bridge'><target dev='vnet0'/><mac address='52:54:00:0B:0C:0D'/>"
        "<model type='virtio'/></interface><interface type='user'><mac address=''/></interface>"
        "<hostdev><interface><mac address='02:00:00:00:00:04'/></interface></hostdev>"
        "</devices></domain>"
    )
    assert domain_macs(xml) == ("52:54:00:0b:0c:0d",)
    assert domain_macs("<domain><devices/></domain>") == ()


def test_domain_macs_refuse_a_document_that_is_not_xml() -> None:
    from xml.parsers.expat import ExpatError

    with pytest.raises(ExpatError):
        domain_macs("<domain><devices>")


def test_test_driver_reports_unavailable_not_zeros() -> None:
    sample = HostSample(0, HostCounters(0, 0, 1024, None), ())
    matrix = node_traffic(TrafficMeter(), sample, simulated=True)
    assert not matrix.available and matrix.flows == ()
    assert "test driver" in matrix.unavailable_reason
    assert not node_traffic(None, sample, simulated=False).available


def test_node_traffic_identifies_vms_by_their_macs() -> None:
    dom = DomainSample("vm-a", "a", m.VmState.RUNNING, 1, 64, None, (), (A,))
    seen = {}

    class Capture(TrafficMeter):
        def sample(self, endpoints):
            seen.update(endpoints)
            return TrafficMatrix.unavailable("captured")

    node_traffic(Capture(), HostSample(0, HostCounters(0, 0, 1, None), (dom,)), simulated=False)
    assert seen == {A: "vm-a"}


MATRIX = TrafficMatrix(
    True,
    "",
    30_000,
    (TrafficEndpoint("vm-a", A, "10.0.0.10"),),
    (TrafficFlow(A, B, 125_000, "10.0.0.10", ""), TrafficFlow(OFF, A, 7, "", "10.0.0.10")),
)


@pytest.mark.parametrize("matrix", [MATRIX, TrafficMatrix.unavailable("no nft")])
def test_matrix_survives_the_report_round_trip(matrix: TrafficMatrix) -> None:
    report = m.NodeReport(1, 2, m.HostUsage(0, 0, 1, 0, 0), traffic=matrix)
    assert decode_report(encode_report(report)).traffic == matrix


def test_a_report_without_a_matrix_decodes_to_none() -> None:
    report = m.NodeReport(1, 2, m.HostUsage(0, 0, 1, 0, 0))
    assert decode_report(encode_report(report)).traffic is None


def _wire(matrix: TrafficMatrix) -> node_pb2.TrafficMatrix:
    msg = node_pb2.TrafficMatrix()
    encode_traffic(matrix, msg)
    return msg


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda w: setattr(w.flows[0], "src_mac", "not-a-mac"), "flows[0].src_mac"),
        (lambda w: setattr(w.flows[0], "bytes_per_second", -1), "flows[0].bytes_per_second"),
        (lambda w: setattr(w.endpoints[0], "ip", "10.0.0.999"), "endpoints[0].ip"),
        (lambda w: setattr(w.endpoints[0], "vm_uuid", ""), "endpoints[0].vm_uuid"),
        (lambda w: setattr(w, "window_ms", 0), "window_ms"),
        (lambda w: [w.flows.add(src_mac=A, dst_mac=B) for _ in range(10_001)], "flows"),
        (lambda w: setattr(w, "available", False), "traffic"),
    ],
)
def test_bad_matrices_are_refused_naming_the_field(mutate, field: str) -> None:
    wire = _wire(MATRIX)
    mutate(wire)
    with pytest.raises(MalformedMessage, match=field.replace("[", r"\[").replace("]", r"\]")):
        decode_traffic("report.traffic", wire)


def test_traffic_window_is_checked_in_the_config() -> None:
    assert load_config(None, {"traffic_window_s": 0, "insecure": True}).traffic_window_s == 0.0
    with pytest.raises(ConfigError, match="traffic_window_s: -1"):
        load_config(None, {"traffic_window_s": -1, "insecure": True})


def test_a_meter_that_cannot_install_says_why_and_waits_before_trying_again() -> None:
    clock = [0.0]
    tries = []

    class Refused(TrafficMeter):
        def install(self) -> str:
            tries.append(clock[0])
            return "cannot install the nftables table: Operation not permitted"

    meter = Refused(clock=lambda: clock[0])
    first = meter.sample({A: "vm-a"})
    assert not first.available and "Operation not permitted" in first.unavailable_reason
    clock[0] = 30.0
    assert meter.sample({A: "vm-a"}) == first and tries == [0.0]
    clock[0] = 61.0
    meter.sample({A: "vm-a"})
    assert tries == [0.0, 61.0]


def test_a_missing_nft_binary_is_reported_unavailable() -> None:
    meter = TrafficMeter(nft=Nft(binary="/nonexistent/nft"))
    matrix = meter.sample({A: "vm-a"})
    assert not matrix.available and "/nonexistent/nft" in matrix.unavailable_reason
