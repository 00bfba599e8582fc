"""What the migration bench measures, apart from the lab: the 10 ms probes and their longest
gap, libvirt's job and dirty-rate statistics, and the summary figures.

Downtime: the host pings the guest every 10 ms (`HostPinger`) and keeps each reply's arrival
time. While the guest is paused for the stop-and-copy, and until its replies leave through the
destination's tap, no reply arrives: the longest gap between replies that overlaps a migration
is its downtime as the network sees it (an upper bound: it includes up to one 10 ms period).
The guest also sends a UDP datagram every 10 ms (`StreamReceiver`): that stream's gap is what
a timer-driven process inside the guest sees, recorded beside it.
"""

from __future__ import annotations

import contextlib
import math
import socket
import struct
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 1 << 20
PERIOD_S = 0.01

GUEST_SENDER = (
    "import socket,time\n"
    "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
    "i=0\n"
    "t=time.monotonic()\n"
    "while True:\n"
    "    s.sendto(str(i).encode(),('{host}',{port}))\n"
    "    i+=1\n"
    "    t+={period}\n"
    "    d=t-time.monotonic()\n"
    "    if d>0: time.sleep(min(d,{period}))\n"
    "    elif d<-0.1: t=time.monotonic()\n"
)


def guest_sender_command(host: str, port: int, period_s: float = PERIOD_S) -> str:
    """A shell command that starts the guest's timestamp stream in the background."""
    code = GUEST_SENDER.format(host=host, port=port, period=period_s)
    return f'nohup python3 -c "{code}" >/dev/null 2>&1 </dev/null &'


class StreamReceiver:
    """Arrival times (time.monotonic) of the guest's datagrams, kept by a daemon thread."""

    def __init__(self, address: str, port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((address, port))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._arrivals: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="stream-receiver", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                self._sock.recv(64)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._arrivals.append(time.monotonic())

    def arrivals(self) -> list[float]:
        with self._lock:
            return list(self._arrivals)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


def icmp_echo_request(ident: int, seq: int) -> bytes:
    """An ICMP echo request (type 8) with its checksum."""
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    payload = b"vmgrid-probe"
    checksum = _inet_checksum(header + payload)
    return struct.pack("!BBHHH", 8, 0, checksum, ident, seq) + payload


def _inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_reply_ident(packet: bytes) -> int | None:
    """The identifier of an ICMP echo reply (type 0) in a raw IPv4 packet, else None."""
    if len(packet) < 20:
        return None
    header = (packet[0] & 0x0F) * 4
    icmp = packet[header : header + 8]
    if len(icmp) < 8 or icmp[0] != 0:
        return None
    return int(struct.unpack("!H", icmp[4:6])[0])


class HostPinger:
    """ICMP echo to the guest every `period_s` from the host (a raw socket: root); keeps the
    arrival time of each reply. The guest's kernel answers in its network stack, so the probe
    does not depend on the guest's clock or scheduler (under TCG a migrated guest's TSC clock
    can stand still for seconds, which silences a guest-side timer loop)."""

    def __init__(self, address: str, period_s: float = PERIOD_S) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self._sock.settimeout(0.2)
        self._address, self._period = address, period_s
        self._ident = threading.get_native_id() & 0xFFFF
        self._arrivals: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send, name="pinger-send", daemon=True),
            threading.Thread(target=self._receive, name="pinger-receive", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _send(self) -> None:
        seq, due = 0, time.monotonic()
        while not self._stop.is_set():
            with contextlib.suppress(OSError):  # no route for an instant: a lost probe
                self._sock.sendto(icmp_echo_request(self._ident, seq), (self._address, 0))
            seq = (seq + 1) & 0xFFFF
            due += self._period
            time.sleep(max(0.0, due - time.monotonic()))

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                packet, (source, _) = self._sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            if source == self._address and echo_reply_ident(packet) == self._ident:
                with self._lock:
                    self._arrivals.append(time.monotonic())

    def arrivals(self) -> list[float]:
        with self._lock:
            return list(self._arrivals)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self._sock.close()


def longest_gap(arrivals: Sequence[float], start: float, end: float) -> float | None:
    """Longest interval between consecutive arrivals that overlaps [start, end], in seconds;
    None when no arrival follows `end` (the stream never came back)."""
    if not arrivals or arrivals[-1] < end:
        return None
    longest = 0.0
    for before, after in zip(arrivals, arrivals[1:], strict=False):
        if after >= start and before <= end:
            longest = max(longest, after - before)
    return longest


def gaps_over(
    arrivals: Sequence[float], start: float, end: float, threshold_s: float
) -> list[tuple[float, float]]:
    """Gaps longer than `threshold_s` that overlap [start, end]: (begin - start, length)."""
    return [
        (round(before - start, 3), round(after - before, 3))
        for before, after in zip(arrivals, arrivals[1:], strict=False)
        if after >= start and before <= end and after - before > threshold_s
    ]


@dataclass(frozen=True, slots=True)
class JobFigures:
    """A completed migration job, from ``virDomainGetJobStats(..., COMPLETED)``."""

    elapsed_s: float
    downtime_ms: float
    transferred_mib: float
    normal_mib: float
    """Non-zero pages sent (all rounds)."""
    iterations: int
    dirty_pages_s: float
    throughput_mib_s: float
    setup_s: float

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any]) -> JobFigures:
        return cls(
            elapsed_s=int(stats.get("time_elapsed", 0)) / 1000,
            downtime_ms=float(stats.get("downtime", 0)),
            transferred_mib=int(stats.get("memory_processed", 0)) / MIB,
            normal_mib=int(stats.get("memory_normal_bytes", 0)) / MIB,
            iterations=int(stats.get("memory_iteration", 0)),
            dirty_pages_s=float(stats.get("memory_dirty_rate", 0)),
            throughput_mib_s=int(stats.get("memory_bps", 0)) / MIB,
            setup_s=int(stats.get("setup_time", 0)) / 1000,
        )


def dirty_rate_mib_s(stats: Mapping[str, Any]) -> float | None:
    """``dirtyrate.megabytes_per_second`` of a finished dirty-rate calculation (MiB/s, as
    QEMU counts), None while it runs or when the domain has none."""
    if int(stats.get("dirtyrate.calc_status", -1)) != 2:  # 2 = VIR_DOMAIN_DIRTYRATE_MEASURED
        return None
    return float(stats.get("dirtyrate.megabytes_per_second", 0))


def guest_ram_mapping(smaps: str, memory_mib: int) -> tuple[int, int, float] | None:
    """(start, end, resident MiB) of a QEMU process's guest-RAM mapping, from its
    /proc/PID/smaps: the mapping of exactly the guest's memory size (None when there is none).
    Under TCG the process's whole RSS would also count QEMU's translation cache."""
    size_kib = memory_mib * 1024
    span: tuple[int, int] | None = None
    for line in smaps.splitlines():
        if not line[:1].isupper() or ":" not in line:  # a mapping's header line
            low, _, high = line.split(" ", 1)[0].partition("-")
            span = (int(low, 16), int(high, 16)) if high else None
            continue
        key, _, value = line.partition(":")
        if key == "Size" and value.split()[0] != str(size_kib):
            span = None
        elif key == "Rss" and span is not None:
            return span[0], span[1], int(value.split()[0]) / 1024
    return None


def guest_ram_resident_mib(smaps: str, memory_mib: int) -> float | None:
    """Resident MiB of a QEMU process's guest-RAM mapping (see `guest_ram_mapping`)."""
    found = guest_ram_mapping(smaps, memory_mib)
    return None if found is None else found[2]


PAGE = 4096
_ZERO_PAGE = bytes(PAGE)
_PRESENT, _SWAPPED = 1 << 63, 1 << 62


def nonzero_resident_mib(pid: int, memory_mib: int) -> float | None:
    """MiB of the guest's RAM that is resident and not all zeros: what a migration's first
    pass sends in full. Pages the guest touched but left zero are resident yet sent as a
    header only (QEMU detects zero pages), so the resident set over-counts them (28 MiB of
    228 on a freshly booted Debian guest). None when the mapping or /proc cannot be read."""
    try:
        found = guest_ram_mapping(Path(f"/proc/{pid}/smaps").read_text(), memory_mib)
    except OSError:
        return None
    return None if found is None else nonzero_pages_mib(pid, found[0], found[1])


def nonzero_pages_mib(pid: int, start: int, end: int) -> float | None:
    """MiB of process `pid`'s pages in [start, end) that are present and not all zeros:
    present pages from /proc/PID/pagemap, their contents from /proc/PID/mem (root, or the
    process's owner); a swapped page counts as non-zero. None when those cannot be read."""
    pages = 0
    try:
        with open(f"/proc/{pid}/pagemap", "rb") as pagemap, open(f"/proc/{pid}/mem", "rb") as mem:
            pagemap.seek(start // PAGE * 8)
            entries = pagemap.read((end - start) // PAGE * 8)
            for index, (entry,) in enumerate(struct.iter_unpack("<Q", entries)):
                if entry & _SWAPPED:
                    pages += 1
                elif entry & _PRESENT:
                    mem.seek(start + index * PAGE)
                    pages += mem.read(PAGE) != _ZERO_PAGE
    except OSError:
        return None
    return pages * PAGE / MIB


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q = {q}: give 0 to 100")
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def relative_error(predicted: float, measured: float) -> float:
    """|predicted - measured| / measured."""
    if measured <= 0:
        raise ValueError(f"measured duration {measured}: must be > 0")
    return abs(predicted - measured) / measured


@dataclass(frozen=True, slots=True)
class Migration:
    """One measured migration and what was predicted for it."""

    duration_s: float
    downtime_ms: float | None
    predicted_s: float
    naive_s: float
    aborted: bool = False
    plan_s: float | None = None
    """The manager's own estimate (its plan's duration), when known."""


def summary(migrations: Sequence[Migration]) -> dict[str, Any]:
    """The bench's headline figures over the migrations that completed. The prediction
    error is the manager's: its plan's duration against libvirt's (``planned`` says over how
    many migrations a plan's figure was known). The bench's own model (``model_*``: it knows
    the working set it set, and learns the fixed cost from the earlier migrations' job times)
    and the older memory-over-bandwidth estimate (``naive_*``) are given beside it."""
    done = [m for m in migrations if not m.aborted]
    downtimes = [m.downtime_ms for m in done if m.downtime_ms is not None]
    plan = [relative_error(m.plan_s, m.duration_s) for m in done if m.plan_s is not None]
    model = [relative_error(m.predicted_s, m.duration_s) for m in done]
    naive = [relative_error(m.naive_s, m.duration_s) for m in done]

    def fig(values: Sequence[float], q: float, digits: int) -> float | None:
        return round(percentile(values, q), digits) if values else None

    return {
        "migrations": len(done),
        "duration_s_p50": fig([m.duration_s for m in done], 50, 2),
        "duration_s_max": fig([m.duration_s for m in done], 100, 2),
        "downtime_ms_p50": fig(downtimes, 50, 1),
        "downtime_ms_p99": fig(downtimes, 99, 1),
        "prediction_error_p50": fig(plan, 50, 3),
        "prediction_error_max": fig(plan, 100, 3),
        "aborted": len(migrations) - len(done),
        "probe_lost": sum(1 for m in done if m.downtime_ms is None),
        "planned": len(plan),
        "model_prediction_error_p50": fig(model, 50, 3),
        "model_prediction_error_max": fig(model, 100, 3),
        "naive_prediction_error_p50": fig(naive, 50, 3),
        "naive_prediction_error_max": fig(naive, 100, 3),
    }
