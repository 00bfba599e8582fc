"""The agent's measure of a guest's resident non-zero memory (#16), on this test process's own
anonymous mapping read through /proc, as the agent reads a QEMU process's guest RAM."""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Iterator, Sequence

import pytest
from vmgrid.agents.node.guest_memory import (
    PAGE,
    ResidentMeter,
    guest_ram_span,
    nonzero_resident_bytes,
)

MIB = 1 << 20
SIZE = 64 * MIB + 3 * PAGE  # a size no other mapping of the test process has


@pytest.fixture
def guest_ram() -> Iterator[mmap.mmap]:
    """An anonymous mapping: 12 MiB written with data, 20 MiB written with zeros (resident
    yet zero, as pages a guest touched and cleared), the rest never touched."""
    # shared, so that the kernel does not merge it with a neighbouring private mapping
    ram = mmap.mmap(-1, SIZE, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    for offset in range(0, 12 * MIB, PAGE):
        ram[offset : offset + 8] = b"vmgrid!!"
    for offset in range(12 * MIB, 32 * MIB, PAGE):
        ram[offset] = 0  # a write faults the page in; it stays all zeros
    yield ram
    ram.close()


def test_the_mapping_of_the_guest_size_is_found_and_its_nonzero_pages_measured(
    guest_ram: mmap.mmap,
) -> None:
    span = guest_ram_span(os.getpid(), SIZE)
    assert span is not None and span[1] - span[0] == SIZE
    measured = nonzero_resident_bytes(os.getpid(), *span)
    assert measured is not None
    # 512 of the 16,387 pages are read (every 32nd), so within a few MiB of 12 MiB
    assert 10 * MIB <= measured <= 14 * MIB


def test_a_full_read_counts_every_nonzero_page_exactly(guest_ram: mmap.mmap) -> None:
    span = guest_ram_span(os.getpid(), SIZE)
    assert span is not None
    assert nonzero_resident_bytes(os.getpid(), *span, sample_pages=SIZE // PAGE) == 12 * MIB


def test_no_mapping_of_that_size_and_no_such_process_give_no_figure() -> None:
    assert guest_ram_span(os.getpid(), SIZE + PAGE) is None
    assert guest_ram_span(2**22 + 12345, SIZE) is None  # above the kernel's pid_max
    assert nonzero_resident_bytes(2**22 + 12345, 0, SIZE) is None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_meter_spreads_its_reads_and_refreshes_the_oldest_first(
    guest_ram: mmap.mmap,
) -> None:
    asked: list[list[str]] = []

    def pids(uuids: Sequence[str]) -> dict[str, int]:
        asked.append(list(uuids))
        return {u: os.getpid() for u in uuids if u != "no-process"}

    clock = Clock()
    meter = ResidentMeter(pids, refresh_s=30.0, changing_s=30.0, clock=clock)
    vms = [(f"vm{i}", SIZE) for i in range(20)] + [("no-process", SIZE)]
    figures = meter.measure(vms)  # first call: 21 VMs x 3 s / 30 s -> 3 measured
    assert len(asked[-1]) == 3 and set(figures) == set(asked[-1]) - {"no-process"}
    assert all(10 * MIB <= b <= 14 * MIB for b in figures.values())
    for _ in range(10):
        clock.now += 3.0
        figures = meter.measure(vms)
    assert len(figures) == 20  # every VM measured once in 30 s; no-process has no figure
    assert set(asked[-1]) == set(asked[0])  # 30 s on, the first ones come round again
    clock.now += 3.0
    meter.measure(vms)
    assert set(asked[-1]) == set(asked[1])  # then the next oldest
    figures = meter.measure([("vm1", SIZE)])
    assert set(figures) <= {"vm1"}  # VMs gone from the node are forgotten


def recording_pids(clock: Clock) -> tuple[list[float], Callable[[Sequence[str]], dict[str, int]]]:
    """A process finder that gives this test process for every VM, and the times it was asked."""
    asked: list[float] = []

    def pids(uuids: Sequence[str]) -> dict[str, int]:
        asked.append(clock.now)
        return {u: os.getpid() for u in uuids}

    return asked, pids


def test_a_moving_figure_is_measured_again_sooner_than_a_steady_one(
    guest_ram: mmap.mmap,
) -> None:
    clock = Clock()
    asked, pids = recording_pids(clock)
    meter = ResidentMeter(pids, refresh_s=60.0, changing_s=10.0, settle_s=0.0, clock=clock)

    def run_until(end: float) -> dict[str, int]:
        figures: dict[str, int] = {}
        while clock.now < end:
            clock.now += 1.0
            figures = meter.measure([("vm", SIZE)])
        return figures

    run_until(200.0)  # a first figure is checked again 10 s later; then steady: a minute
    assert [t - 101 for t in asked] == [0, 10, 70]
    for offset in range(32 * MIB, 48 * MIB, PAGE):  # the guest writes 16 MiB more
        guest_ram[offset : offset + 8] = b"more!!!!"
    figures = run_until(300.0)
    assert [t - 101 for t in asked] == [0, 10, 70, 130, 140]  # moved: again after 10 s
    assert 26 * MIB <= figures["vm"] <= 30 * MIB


def test_a_vm_whose_memory_is_not_a_mapping_of_its_process_has_no_figure() -> None:
    meter = ResidentMeter(lambda uuids: {u: os.getpid() for u in uuids}, clock=Clock())
    assert meter.measure([("vm", SIZE + 5 * PAGE)]) == {}


def test_a_vm_without_a_process_yet_is_tried_again_soon_then_every_refresh() -> None:
    asked: list[float] = []
    clock = Clock()

    def pids(uuids: Sequence[str]) -> dict[str, int]:
        asked.append(clock.now)
        return {}  # not found (yet): a QEMU that is starting, or another user's

    meter = ResidentMeter(pids, refresh_s=60.0, changing_s=10.0, clock=clock)
    while clock.now < 200.0:
        clock.now += 1.0
        assert meter.measure([("vm", SIZE)]) == {}
    assert [t - 101 for t in asked] == [0, 10, 70]


def test_a_vm_measured_here_recently_is_measured_again_soon_even_when_steady(
    guest_ram: mmap.mmap,
) -> None:
    """A guest that booted or arrived minutes ago still fills its memory, in steps smaller than
    what counts as moving: it is read every `changing_s` for its first `settle_s`."""
    clock = Clock()
    asked, pids = recording_pids(clock)
    meter = ResidentMeter(pids, refresh_s=60.0, changing_s=10.0, settle_s=30.0, clock=clock)
    while clock.now < 250.0:
        clock.now += 1.0
        meter.measure([("vm", SIZE)])
    # at 101, 111, 121 (within 30 s of the first: again after 10 s), 131, then every minute
    assert [t - 101 for t in asked] == [0, 10, 20, 30, 90]
    meter.measure([])  # the VM left the node: a new arrival settles again
    clock.now += 1.0
    meter.measure([("vm", SIZE)])
    clock.now += 10.0
    meter.measure([("vm", SIZE)])
    assert [t - 101 for t in asked][-2:] == [150, 160]
