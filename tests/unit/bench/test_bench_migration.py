"""The migration bench's measuring parts: the stream's gaps, libvirt's statistics, the
summary, the learned fixed cost and the bench's argument checks (no lab needed)."""

from __future__ import annotations

import ctypes
import mmap
import os
import socket
import struct
import time

import libvirt
import pytest
from vmgrid.agents.cluster.state.migration_estimate import MigrationFixedCost, MigrationLink
from vmgrid.agents.node.migration import job_from_completed_stats
from vmgrid.bench.migration import running_plans, working_sets
from vmgrid.bench.migration_lost import fdb_ports, queue_status
from vmgrid.bench.migration_probe import (
    MIB,
    PAGE,
    HostPinger,
    JobFigures,
    Migration,
    StreamReceiver,
    dirty_rate_mib_s,
    echo_reply_ident,
    guest_ram_mapping,
    guest_ram_resident_mib,
    guest_sender_command,
    icmp_echo_request,
    longest_gap,
    nonzero_pages_mib,
    percentile,
    summary,
)


def test_the_longest_gap_is_taken_over_the_window_only() -> None:
    arrivals = [0.0, 0.01, 0.02, 0.5, 0.51, 2.0, 2.01, 2.02]
    assert longest_gap(arrivals, 0.3, 0.45) == pytest.approx(0.48)
    assert longest_gap(arrivals, 0.6, 1.0) == pytest.approx(1.49)  # spans the whole window
    assert longest_gap(arrivals, 2.005, 2.015) == pytest.approx(0.01)


def test_a_stream_that_never_came_back_has_no_gap() -> None:
    assert longest_gap([0.0, 0.01], 0.0, 1.0) is None
    assert longest_gap([], 0.0, 1.0) is None


def test_the_receiver_records_datagrams_and_their_pause() -> None:
    receiver = StreamReceiver("127.0.0.1")
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(3):
            sender.sendto(b"x", ("127.0.0.1", receiver.port))
            time.sleep(0.01)
        start = time.monotonic()
        time.sleep(0.3)
        end = time.monotonic()
        sender.sendto(b"x", ("127.0.0.1", receiver.port))
        deadline = time.monotonic() + 5
        while len(receiver.arrivals()) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        gap = longest_gap(receiver.arrivals(), start, end)
    finally:
        sender.close()
        receiver.close()
    assert gap is not None and gap >= 0.3


def test_the_guest_sender_targets_the_receiver() -> None:
    command = guest_sender_command("10.213.4.1", 40123)
    assert "('10.213.4.1',40123)" in command
    assert command.endswith("&")


def test_completed_job_statistics_become_figures() -> None:
    stats = {
        "type": 3,
        "time_elapsed": 4250,
        "downtime": 37,
        "memory_processed": 96 * MIB,
        "memory_normal_bytes": 90 * MIB,
        "memory_iteration": 3,
        "memory_dirty_rate": 1200,
        "memory_bps": 48 * MIB,
        "setup_time": 12,
    }
    job = JobFigures.from_stats(stats)
    assert job.elapsed_s == 4.25
    assert job.downtime_ms == 37
    assert job.transferred_mib == 96
    assert job.normal_mib == 90
    assert job.iterations == 3
    assert job.throughput_mib_s == 48
    assert job.setup_s == 0.012


def test_a_dirty_rate_counts_only_once_measured() -> None:
    measured = {"dirtyrate.calc_status": 2, "dirtyrate.megabytes_per_second": 12}
    assert dirty_rate_mib_s(measured) == 12.0
    assert dirty_rate_mib_s({"dirtyrate.calc_status": 1}) is None  # still measuring
    assert dirty_rate_mib_s({}) is None


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([3, 1, 2], 50) == 2
    assert percentile([0, 10], 99) == pytest.approx(9.9)
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="q = 101"):
        percentile([1], 101)


def test_the_summary_counts_aborted_migrations_apart() -> None:
    migrations = [
        Migration(duration_s=4.0, downtime_ms=40, predicted_s=4.4, naive_s=8.0, plan_s=1.0),
        Migration(duration_s=5.0, downtime_ms=80, predicted_s=4.5, naive_s=8.0),
        Migration(duration_s=200.0, downtime_ms=None, predicted_s=5, naive_s=8, aborted=True),
    ]
    result = summary(migrations)
    assert result["migrations"] == 2
    assert result["aborted"] == 1
    assert result["probe_lost"] == 0
    lost = summary([Migration(duration_s=4.0, downtime_ms=None, predicted_s=4, naive_s=8)])
    assert lost["probe_lost"] == 1 and lost["downtime_ms_p99"] is None
    assert result["duration_s_max"] == 5.0
    assert result["downtime_ms_p50"] == 60.0
    # the headline is the manager's plan, over the one migration whose plan is known
    assert result["prediction_error_p50"] == pytest.approx(0.75)
    assert result["prediction_error_max"] == pytest.approx(0.75)
    assert result["planned"] == 1
    assert result["model_prediction_error_p50"] == pytest.approx(0.1)
    assert result["model_prediction_error_max"] == pytest.approx(0.1)
    assert result["naive_prediction_error_max"] == pytest.approx(1.0)
    unplanned = summary([Migration(duration_s=4.0, downtime_ms=40, predicted_s=4, naive_s=8)])
    assert unplanned["prediction_error_max"] is None and unplanned["planned"] == 0


LINK_32 = MigrationLink(32 * MIB * 8)  # libvirt gets 32 MiB/s


def _completed(elapsed_s: float, sent_mib: int = 64) -> dict[str, int]:
    """libvirt's completed job statistics of a migration, as the bench reads them."""
    return {
        "type": libvirt.VIR_DOMAIN_JOB_COMPLETED,
        "time_elapsed": round(elapsed_s * 1000),
        "memory_processed": sent_mib * MIB,
        "memory_normal_bytes": 60 * MIB,
    }


def _learned(fixed: MigrationFixedCost, elapsed_s: float) -> None:
    """What the bench does with each completed migration's statistics."""
    job = job_from_completed_stats(_completed(elapsed_s))
    assert job is not None
    fixed.learn(job, LINK_32)


def test_the_fixed_cost_is_the_median_of_what_memory_does_not_explain() -> None:
    fixed = MigrationFixedCost(default_s=1.0)
    assert fixed.seconds() == 1.0
    for elapsed in (3.0, 5.0, 4.0):
        _learned(fixed, elapsed)
    assert fixed.seconds() == 2.0  # elapsed - 64 / 32 = 1, 3, 2


def test_the_fixed_cost_follows_the_latest_migrations() -> None:
    fixed = MigrationFixedCost(default_s=1.0, window=3)
    for elapsed in (2.2, 2.3, 2.2, 2.3, 3.5, 3.9):  # the guest starts dirtying memory
        _learned(fixed, elapsed)
    assert fixed.seconds() == pytest.approx(1.5)  # of 0.3, 1.5, 1.9; not 0.3 over all six


@pytest.mark.parametrize("text", ["", "4,x", "-1", "200"])
def test_bad_working_sets_are_named(text: str) -> None:
    with pytest.raises(ValueError, match="--working-sets-mib"):
        working_sets(text)


SMAPS = """\
55d0c0a00000-55d0c0c00000 r-xp 00000000 08:01 123 /usr/bin/qemu-system-x86_64
Size:               2048 kB
Rss:                1024 kB
7f1a00000000-7f1a10000000 rw-p 00000000 00:00 0
Size:             262144 kB
KernelPageSize:        4 kB
Rss:              204800 kB
Pss:              204800 kB
7f1b00000000-7f1b40000000 rwxp 00000000 00:00 0
Size:            1048576 kB
Rss:               65536 kB
"""


def test_the_guest_ram_mapping_is_found_by_its_size() -> None:
    assert guest_ram_resident_mib(SMAPS, 256) == 200.0
    assert guest_ram_resident_mib(SMAPS, 512) is None


def test_an_echo_request_carries_a_valid_checksum_and_a_reply_is_told_apart() -> None:
    request = icmp_echo_request(0x1234, 7)
    assert request[0] == 8
    words = struct.unpack(f"!{len(request) // 2}H", request)
    assert (sum(words) + (sum(words) >> 16)) & 0xFFFF == 0xFFFF  # one's complement sums to ~0
    ip_header = bytes([0x45]) + bytes(19)
    reply = bytes([0]) + request[1:]
    assert echo_reply_ident(ip_header + reply) == 0x1234
    assert echo_reply_ident(ip_header + request) is None  # a request, not a reply
    assert echo_reply_ident(b"\x45") is None


@pytest.mark.skipif(os.geteuid() != 0, reason="a raw ICMP socket needs root")
def test_the_pinger_gets_replies_from_loopback() -> None:
    pinger = HostPinger("127.0.0.1")
    try:
        deadline = time.monotonic() + 5
        while len(pinger.arrivals()) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        replies = pinger.arrivals()
    finally:
        pinger.close()
    assert len(replies) >= 20
    assert replies == sorted(replies)


def test_only_running_plans_are_cancelled() -> None:
    listed = (
        '{"plans": [{"plan_id": "op-1", "state": "PLAN_STATE_RUNNING"},'
        ' {"plan_id": "job-start", "state": "PLAN_STATE_SUCCEEDED"}]}'
    )
    assert running_plans(listed) == ["op-1"]
    assert running_plans("not json") == []
    assert running_plans("[]") == []


def test_only_resident_pages_that_are_not_zero_are_counted() -> None:
    """A guest's RAM as QEMU maps it: pages written with data count, pages written with
    zeros (resident, but sent as a zero-page header) and pages never touched do not."""
    ram = mmap.mmap(-1, 4 * MIB)
    try:
        start = ctypes.addressof(ctypes.c_char.from_buffer(ram))
        for page in range(100):
            ram[page * PAGE] = 1
        for page in range(100, 300):
            ram[page * PAGE + 5] = 0  # touched: resident, yet zero
        assert nonzero_pages_mib(os.getpid(), start, start + 4 * MIB) == 100 * PAGE / MIB
        assert nonzero_pages_mib(os.getpid(), start + 50 * PAGE, start + 4 * MIB) == 50 * PAGE / MIB
    finally:
        ram.close()


def test_the_guest_ram_mapping_gives_its_range() -> None:
    assert guest_ram_mapping(SMAPS, 256) == (0x7F1A00000000, 0x7F1A10000000, 200.0)
    assert nonzero_pages_mib(2**22 + 1, 0, PAGE) is None  # no such process


FDB = """\
33:33:00:00:00:01 dev vmglb1 self permanent
52:54:00:f8:c2:7f dev tap1 master vmglb1
fe:3e:77:4e:4e:40 dev tap1 master vmglb1 permanent
"""


def test_the_port_a_guest_mac_is_forwarded_to_is_read_from_the_fdb() -> None:
    assert fdb_ports(FDB, "52:54:00:F8:C2:7F") == ["tap1"]
    assert fdb_ports(FDB, "52:54:00:00:00:01") == []  # unknown: flooded


QUEUE = """\
/machine/peripheral/net0/virtio-backend:
  device_name:          virtio-net
  queue_index:          0
  inuse:                0
  used_idx:             2764
  signalled_used_valid: false
  last_avail_idx:       2764
  shadow_avail_idx:     2764
  VRing:
    num:          256
"""


def test_a_receive_queue_left_without_buffers_is_read_from_qemu() -> None:
    status = queue_status(QUEUE)
    assert status == {"inuse": 0, "used_idx": 2764, "last_avail_idx": 2764,
                      "shadow_avail_idx": 2764}  # fmt: skip
    assert queue_status("error: domain is not running") == {}
