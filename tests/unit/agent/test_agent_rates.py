"""Counters to rates: the arithmetic the collector relies on."""

from __future__ import annotations

from vmgrid.agents.model import VmState
from vmgrid.agents.node.hypervisor import (
    DomainSample,
    HostCounters,
    HostSample,
    InterfaceCounters,
)
from vmgrid.agents.node.rates import (
    RateTracker,
    counter_rate_per_second,
    cpu_millicores,
    domain_rates,
    host_busy_millicores,
)

SECOND = 1_000_000_000


def dom(cpu_ns: int | None, rx: int = 0, tx: int = 0, nic: str = "vnet0") -> DomainSample:
    nics = (InterfaceCounters(nic, rx, tx),)
    return DomainSample("u1", "vm1", VmState.RUNNING, 2, 512, cpu_ns, nics)


def test_rate_is_bytes_per_second_between_two_samples() -> None:
    assert counter_rate_per_second(1_000, 4_000, 2 * SECOND) == 1_500


def test_counter_reset_counts_from_zero() -> None:
    assert counter_rate_per_second(10_000, 3_000, SECOND) == 3_000


def test_zero_interval_gives_zero_rate() -> None:
    assert counter_rate_per_second(0, 10, 0) == 0


def test_cpu_time_becomes_millicores() -> None:
    # 1.5 s of CPU over 1 s of wall clock = one and a half CPUs.
    assert cpu_millicores(0, 3 * SECOND // 2, SECOND) == 1_500


def test_host_busy_scales_to_cpu_count() -> None:
    before = HostCounters(cpu_busy_ns=0, cpu_total_ns=0, memory_total_mib=1, memory_free_mib=1)
    after = HostCounters(25, 100, 1, 1)
    assert host_busy_millicores(before, after, cpu_count=8) == 2_000


def test_domain_rates_sum_matching_interfaces() -> None:
    rates = domain_rates(dom(0, 0, 0), dom(SECOND // 4, 2_000, 500), SECOND)
    assert (rates.cpu_millicores, rates.net_rx_bytes_per_second, rates.net_tx_bytes_per_second) == (
        250,
        2_000,
        500,
    )


def test_new_interface_starts_at_zero() -> None:
    rates = domain_rates(dom(0, 0, 0, nic="a"), dom(0, 9_999, 9_999, nic="b"), SECOND)
    assert rates.net_rx_bytes_per_second == 0


def test_first_sample_has_no_cpu_rate_and_no_cpu_when_unaccounted() -> None:
    assert domain_rates(None, dom(5), SECOND).cpu_millicores is None
    assert domain_rates(dom(None), dom(None), SECOND).cpu_millicores is None


def test_tracker_pairs_each_vm_with_its_previous_sample() -> None:
    host = HostCounters(0, 0, 1, 1)
    tracker = RateTracker()
    _, first = tracker.update(HostSample(0, host, (dom(0, rx=0),)))
    previous, second = tracker.update(HostSample(2 * SECOND, host, (dom(SECOND, rx=4_000),)))
    assert first["u1"].cpu_millicores is None
    assert previous is not None and previous.monotonic_ns == 0
    assert second["u1"].cpu_millicores == 500
    assert second["u1"].net_rx_bytes_per_second == 2_000


def test_collector_caps_a_vm_at_its_vcpus() -> None:
    from vmgrid.agents.node.collector import Collector
    from vmgrid.agents.node.hypervisor import HostInfo

    info = HostInfo("h", "qemu:///system", "QEMU", 8, 2000, 16384)
    collector = Collector(info, None, simulated=False)
    host = HostCounters(0, 0, 16384, 8192)
    collector.report(HostSample(0, host, (dom(0),)))
    # QEMU start-up: 3 s of CPU in 1 s for a 2-vCPU guest (emulator threads included)
    (vm,) = collector.report(HostSample(SECOND, host, (dom(3 * SECOND),))).vms
    assert vm.cpu_used_millicores == 2000
    (vm,) = collector.report(HostSample(2 * SECOND, host, (dom(int(4.5 * SECOND)),))).vms
    assert vm.cpu_used_millicores == 1500
