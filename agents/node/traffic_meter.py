"""Per-pair traffic on the host's bridges, counted by the kernel with nftables (#16).

One table in the ``bridge`` family counts every bridged frame into a dynamic set keyed by
(source MAC, destination MAC), each element with its own counter, and learns each MAC's IPv4
source address into a second set. Frames to and from the host's own address on a bridge are
counted too (input and output hooks). Nothing is copied to user space per packet: the meter
reads the sets (``nft -j list set``) once per report and turns cumulative bytes into rates over
a sliding window. The kernel keeps elements for `ELEMENT_TIMEOUT_S` after their last frame; an
element that expired and came back restarts from zero, which the window handles.

The table is shared by every agent of one network namespace (lab hosts share the machine's),
is created when missing and is never deleted by an agent; `remove` is for tests and benches.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from vmgrid.agents.node.hypervisor import HostSample
from vmgrid.agents.traffic import TrafficEndpoint, TrafficFlow, TrafficMatrix
from vmgrid.v1.errors import VmgridError

DEFAULT_TABLE = "vmgrid_traffic"
ELEMENT_TIMEOUT_S = 600
SET_SIZE = 65_536
NFT_TIMEOUT_S = 10.0
RETRY_S = 60.0
"""After a failed install (no nft, no privilege), the meter says why without retrying for so long."""

MAX_CACHED_DOMAINS = 40_000
"""Domains whose MACs the hypervisor keeps before it forgets them all (and re-reads)."""

Counters = dict[tuple[str, str], int]


def domain_macs(domain_xml: str) -> tuple[str, ...]:
    """MACs (lower case) of a domain XML's ``<devices><interface><mac address=.../>``, in order.
    Read with the bare expat parser: ElementTree would add 0.3 MB to every real host's agent
    for this one walk (the test driver's reports read no MACs)."""
    from xml.parsers import expat

    path: list[str] = []
    found: list[str] = []

    def start(name: str, attributes: dict[str, str]) -> None:
        path.append(name)
        if path[1:] == ["devices", "interface", "mac"] and attributes.get("address"):
            found.append(attributes["address"].lower())

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    parser.EndElementHandler = lambda _name: path.pop()
    parser.Parse(domain_xml, True)
    return tuple(found)


def node_traffic(meter: TrafficMeter | None, sample: HostSample, simulated: bool) -> TrafficMatrix:
    """The traffic part of a node's report: unavailable on the libvirt test driver (no
    frames flow there) and when metering is off, never zeros in their place."""
    if simulated:
        return TrafficMatrix.unavailable("the libvirt test driver carries no traffic")
    if meter is None:
        return TrafficMatrix.unavailable("traffic metering is off (traffic_window_s = 0)")
    macs = {mac: dom.uuid for dom in sample.domains for mac in dom.macs}
    return meter.sample(macs)


def table_script(table: str) -> str:
    """The nftables table that counts bytes per (source MAC, destination MAC)."""
    update = (
        "update @pairs { ether saddr . ether daddr }\n"
        "    ether type ip update @addrs { ether saddr . ip saddr }"
    )
    chains = "\n".join(
        f"  chain count_{hook} {{\n"
        f"    type filter hook {hook} priority -200; policy accept;\n"
        f"    {update}\n  }}"
        for hook in ("forward", "input", "output")
    )
    return (
        f"table bridge {table} {{\n"
        f"  set pairs {{ type ether_addr . ether_addr; flags dynamic,timeout; "
        f"timeout {ELEMENT_TIMEOUT_S}s; size {SET_SIZE}; counter; }}\n"
        f"  set addrs {{ type ether_addr . ipv4_addr; flags dynamic,timeout; "
        f"timeout {ELEMENT_TIMEOUT_S}s; size {SET_SIZE}; }}\n"
        f"{chains}\n}}\n"
    )


def is_group_mac(mac: str) -> bool:
    """Broadcast and multicast destinations are not a pair of VMs."""
    return int(mac[:2], 16) & 1 == 1


class NftError(VmgridError):
    """nft failed: its message, one line."""


@dataclass(frozen=True)
class Nft:
    """Runs ``nft`` in this network namespace, or in `netns` (``ip netns exec``)."""

    netns: str = ""
    binary: str = "nft"

    def available(self) -> str:
        """Empty when nft can run here, else why not."""
        import shutil  # only where the meter runs: the agent keeps shutil out of its imports

        if shutil.which(self.binary) is None:
            return f"{self.binary!r} not found (Debian package nftables)"
        return ""

    def run(self, args: list[str], stdin: str | None = None) -> str:
        cmd = [self.binary, *args]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        proc = subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, timeout=NFT_TIMEOUT_S, check=False
        )
        if proc.returncode != 0:
            message = (proc.stderr.strip().splitlines() or ["no message"])[0]
            raise NftError(f"nft {' '.join(args[:4])}: {message}")
        return proc.stdout


def parse_elements(listing: str) -> list[tuple[list[str], int]]:
    """(key parts, bytes) of each element of a ``nft -j list set`` output (0 bytes when the
    set has no counters)."""
    import json  # only where the meter runs: the agent keeps json out of its imports

    out = []
    for item in json.loads(listing).get("nftables", []):
        for elem in item.get("set", {}).get("elem", []):
            body = elem.get("elem", elem) if isinstance(elem, dict) else elem
            val = body.get("val", body) if isinstance(body, dict) else body
            parts = val.get("concat", []) if isinstance(val, dict) else [val]
            counter = body.get("counter", {}) if isinstance(body, dict) else {}
            out.append(([str(p) for p in parts], int(counter.get("bytes", 0))))
    return out


class TrafficMeter:
    """Rates of the flows touching this node's VMs, averaged over `window_s`."""

    def __init__(
        self,
        window_s: float = 30.0,
        table: str = DEFAULT_TABLE,
        nft: Nft | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.table = table
        self.nft = nft or Nft()
        self._clock = clock
        self._samples: deque[tuple[float, Counters]] = deque()
        self._installed = False
        self._failed: tuple[float, str] | None = None  # when install last failed, and why

    def install(self) -> str:
        """Create the table when missing; empty when the meter can run, else why not."""
        missing = self.nft.available()
        if missing:
            return missing
        try:
            self.nft.run(["list", "table", "bridge", self.table])
        except (NftError, OSError, subprocess.TimeoutExpired):
            try:
                self.nft.run(["-f", "-"], stdin=table_script(self.table))
            except (NftError, OSError, subprocess.TimeoutExpired) as exc:
                return f"cannot install the nftables table {self.table!r}: {exc}"
        self._installed = True
        return ""

    def remove(self) -> None:
        """Delete the table (tests and benches that own their namespace)."""
        with contextlib.suppress(NftError):
            self.nft.run(["delete", "table", "bridge", self.table])
        self._installed = False

    def read(self) -> tuple[Counters, dict[str, str]]:
        """Cumulative bytes per (src MAC, dst MAC), and the last IPv4 seen from each MAC."""
        listing = self.nft.run(["-j", "list", "set", "bridge", self.table, "pairs"])
        counters: Counters = {}
        for parts, count in parse_elements(listing):
            if len(parts) == 2 and not is_group_mac(parts[1]):
                counters[(parts[0].lower(), parts[1].lower())] = count
        listing = self.nft.run(["-j", "list", "set", "bridge", self.table, "addrs"])
        addresses = {p[0].lower(): p[1] for p, _ in parse_elements(listing) if len(p) == 2}
        return counters, addresses

    def sample(self, endpoints: Mapping[str, str]) -> TrafficMatrix:
        """The matrix now, for the VMs of `endpoints` (MAC -> VM uuid)."""
        if not self._installed:
            failed = self._failed
            if failed is not None and self._clock() - failed[0] < RETRY_S:
                return TrafficMatrix.unavailable(failed[1])
            reason = self.install()
            if reason:
                self._failed = (self._clock(), reason)
                return TrafficMatrix.unavailable(reason)
            self._failed = None
        try:
            counters, addresses = self.read()
        except (NftError, OSError, subprocess.TimeoutExpired, ValueError) as exc:
            self._installed = False
            return TrafficMatrix.unavailable(f"cannot read traffic counters: {exc}")
        now = self._clock()
        self._samples.append((now, counters))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        base_t, base = self._samples[0]
        if now - base_t <= 0:
            return TrafficMatrix.unavailable("measuring: the first window is not complete")
        return build_matrix(base, counters, now - base_t, endpoints, addresses)


def build_matrix(
    base: Counters,
    current: Counters,
    elapsed_s: float,
    endpoints: Mapping[str, str],
    addresses: Mapping[str, str],
) -> TrafficMatrix:
    """Rates between two readings, keeping flows with an end among `endpoints`. A counter
    lower than its base restarted (its element expired): all of it is new."""
    flows = []
    for (src, dst), count in sorted(current.items()):
        if (src not in endpoints and dst not in endpoints) or is_group_mac(dst):
            continue
        before = base.get((src, dst), 0)
        sent = count - before if count >= before else count
        rate = int(sent / elapsed_s)
        if rate > 0:
            flows.append(
                TrafficFlow(src, dst, rate, addresses.get(src, ""), addresses.get(dst, ""))
            )
    ends = tuple(
        TrafficEndpoint(uuid, mac, addresses.get(mac, ""))
        for mac, uuid in sorted(endpoints.items())
    )
    return TrafficMatrix(True, "", max(1, round(elapsed_s * 1000)), ends, tuple(flows))
