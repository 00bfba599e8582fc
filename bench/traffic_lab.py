"""`vmgrid-bench traffic --vms linux` (the default): real Debian guests exchanging iperf3
traffic on the lab, placed by the cluster manager's decider with and without the measured
traffic matrix.

**Network.** The lab's hosts are libvirt daemons of one machine: their guests' taps all join
the lab's one guest bridge (`vmgrid.lab.network`), which would make every frame local. The
bench gives each host its own network: a namespace with a bridge ``br0`` and an ``uplink``
veth whose other end is a port of the lab's guest bridge (the switch, where the host's address,
DHCP and the NFS server are). Once a guest runs on a host (booted there or migrated in), the
bench moves its tap into that host's namespace, renames it ``vt<MAC tail>`` and makes it a
port of the host's ``br0``. Frames between guests of one host stay on its bridge; frames
between hosts leave one host on its uplink: the bytes the hosts transmit on their uplinks are
the cross-host traffic, counted by the kernel.

**Traffic.** Each pair's second member runs ``iperf3 -s``; its first sends to it with
``iperf3 -c -u -b RATE`` for ``--seconds``; all pairs at once. Each host's ``TrafficMeter``
(the agent's nftables meter, on the host's namespace) measures the pairs.

**Placement.** As in the namespace variant (`vmgrid.bench.traffic`): a `ClusterState` fed
with the hosts' reports (`--vm-millicores` per guest on 4-core hosts, with or without the
measured matrices) and the manager's decider on the underload trigger; each plan's migrations
are carried out with ``vmgridctl migrate`` (operator migrations through the manager's one
applier), then the streams run again and the uplinks are read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import libvirt
from vmgrid.agents.node.traffic_meter import Nft, TrafficMeter
from vmgrid.agents.traffic import TrafficMatrix
from vmgrid.bench import traffic as plan_side
from vmgrid.bench.lab_cluster import bench_dir, require_hypervisor
from vmgrid.bench.submission import JOB_NAME, USER, SubmissionLab
from vmgrid.lab import Lab, LabHost
from vmgrid.lab.linux import guest_image, mac_addresses, ssh, wait_for_ssh

_BIN = Path(sys.executable).parent
GUESTS_MILLICORES = 100
"""What each guest's job asks of the real lab hosts (the decider's figure is --vm-millicores)."""


def _ip(*args: str) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def tap_of(domain_xml: str) -> str:
    """The tap of a running domain's first NIC (``<interface><target dev=...>``)."""
    target = ET.fromstring(domain_xml).find("./devices/interface/target")
    dev = "" if target is None else target.get("dev", "")
    if not dev:
        raise RuntimeError("the domain's NIC has no tap (<target dev>) in its live XML")
    return dev


def port_name(mac: str) -> str:
    """The name a guest's tap gets in its host's namespace: unique per guest."""
    return "vt" + mac.replace(":", "")[-8:]


class HostNetworks:
    """One namespace per lab host: ``br0`` and an ``uplink`` to the lab's guest bridge."""

    def __init__(self, prefix: str, switch: str, hosts: int) -> None:
        self.prefix, self.switch = prefix, switch
        self.namespaces = [f"{prefix}-h{i}" for i in range(hosts)]
        self._made: list[str] = []

    def start(self) -> None:
        for i, ns in enumerate(self.namespaces):
            _ip("netns", "add", ns)
            self._made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "add", "br0", "type", "bridge")
            _ip("-n", ns, "link", "set", "br0", "up")
            peer = f"{self.prefix}u{i}"
            _ip("link", "add", peer, "type", "veth", "peer", "name", "uplink", "netns", ns)
            _ip("link", "set", peer, "master", self.switch, "up")
            _ip("-n", ns, "link", "set", "uplink", "master", "br0", "up")

    def attach(self, domain: libvirt.virDomain, host: int) -> bool:
        """Make the running guest's tap a port of host `host`'s bridge; False if it was."""
        mac = mac_addresses(domain)[0]
        ns, port = self.namespaces[host], port_name(mac)
        if Path("/run/netns", ns).exists() and port in _ip("-n", ns, "-o", "link", "show"):
            return False
        tap = tap_of(domain.XMLDesc(0))
        _ip("link", "set", tap, "netns", ns)
        _ip("-n", ns, "link", "set", tap, "name", port)
        _ip("-n", ns, "link", "set", port, "master", "br0", "up")
        return True

    def uplink_tx_bytes(self) -> int:
        """Bytes every host sent on its uplink: each cross-host byte once."""
        total = 0
        for ns in self.namespaces:
            out = subprocess.run(
                ["ip", "netns", "exec", ns, "cat", "/sys/class/net/uplink/statistics/tx_bytes"],
                capture_output=True, text=True, timeout=10, check=True,
            )  # fmt: skip
            total += int(out.stdout.strip())
        return total

    def close(self) -> None:
        for i, ns in enumerate(self._made):
            with contextlib.suppress(RuntimeError):
                _ip("link", "del", f"{self.prefix}u{i}")
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self._made.clear()


def iperf_rate(output: str) -> tuple[float, float | None]:
    """(Mbit/s, lost %) of an ``iperf3 --json`` client run; (0, None) when unreadable."""
    try:
        total = json.loads(output)["end"]["sum"]
    except (ValueError, KeyError, TypeError):
        return 0.0, None
    lost = total.get("lost_percent")
    return float(total.get("bits_per_second", 0)) / 1e6, None if lost is None else float(lost)


class GuestTraffic:
    """The guests of one job (a pair's members are ``sub-2k`` and ``sub-2k+1``)."""

    def __init__(self, sub: SubmissionLab, nets: HostNetworks, args: argparse.Namespace) -> None:
        self.sub, self.nets, self.args = sub, nets, args
        self.hosts: list[LabHost] = list(sub.hosts)
        self.names = [f"{JOB_NAME}-{i}" for i in range(2 * args.pairs)]
        self.role = {f"p{k}{m}": f"{JOB_NAME}-{2 * k + i}"
                     for k in range(args.pairs) for i, m in enumerate("ab")}  # fmt: skip
        self.address: dict[str, str] = {}
        self.mac: dict[str, str] = {}
        self.key = sub.workdir / "id_ed25519"
        self.migrations = 0
        self.boot: dict[str, Any] = {}

    def start(self) -> None:
        self.boot = self.sub.submit_and_reach(
            len(self.names),
            self.args.boot_timeout_s,
            overrides={"cpu_millicores": GUESTS_MILLICORES, "placement": None},
            verify=False,
        )
        for check in self.boot["checks"]:
            self.address[check["name"]] = check["address"]
        for name, (_, dom) in self.sub.member_domains(self.names).items():
            self.mac[name] = mac_addresses(dom)[0]
        self.attach()
        self.reachable()
        for k in range(self.args.pairs):
            self.guest(self.role[f"p{k}b"], "iperf3 -s -D >/dev/null 2>&1 </dev/null")

    def reachable(self, timeout_s: float = 180.0) -> None:
        """Wait until every guest answers over SSH (through its host's bridge and uplink)."""
        deadline = time.monotonic() + timeout_s
        for name in self.names:
            wait_for_ssh(self.address[name], USER, self.key, max(1.0, deadline - time.monotonic()))

    def diagnose(self) -> str:
        """The host namespaces' ports and forwarding tables (for a failed run's message)."""
        lines = []
        for ns in self.nets.namespaces:
            for argv in (["ip", "-n", ns, "-br", "link"], ["bridge", "-n", ns, "fdb", "show"]):
                out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
                lines.append(f"$ {' '.join(argv)}\n{out}")
        return "".join(lines)

    def guest(self, name: str, command: str) -> str:
        """`command` on guest `name`; a failed connection (255) is tried again for 60 s."""
        deadline = time.monotonic() + 60
        result = ssh(self.address[name], USER, self.key, command, timeout_s=60)
        while result.returncode == 255 and time.monotonic() < deadline:
            time.sleep(1.0)
            result = ssh(self.address[name], USER, self.key, command, timeout_s=60)
        if result.returncode != 0:
            raise RuntimeError(f"{name}: {command[:60]!r} failed: {result.stderr.strip()}")
        return result.stdout

    def placement(self) -> dict[str, int]:
        """Role -> host index, where each guest runs now (from the hosts' libvirt)."""
        index = {host.name: i for i, host in enumerate(self.hosts)}
        found = self.sub.member_domains(self.names)
        by_name = {name: index[host] for name, (host, _) in found.items()}
        return {role: by_name[name] for role, name in self.role.items()}

    def attach(self) -> None:
        index = {host.name: i for i, host in enumerate(self.hosts)}
        for host, dom in self.sub.member_domains(self.names).values():
            self.nets.attach(dom, index[host])

    def move_to(self, placement: dict[str, int]) -> int:
        """Migrate every guest not where `placement` puts it; the migrations made."""
        made = 0
        for role, host in sorted(placement.items()):
            if self.placement()[role] == host:
                continue
            name, node = self.role[role], self.hosts[host].name
            argv = [str(_BIN / "vmgridctl"), "migrate", name, node, "--cluster",
                    self.sub.cluster.address, "--insecure", "--output", "json", "--timeout",
                    str(int(self.args.migration_timeout_s))]  # fmt: skip
            result = subprocess.run(argv, capture_output=True, text=True, check=False,
                                    timeout=self.args.migration_timeout_s + 30)  # fmt: skip
            if result.returncode != 0:
                raise RuntimeError(f"vmgridctl migrate {name} {node}: "
                                   f"{(result.stdout + result.stderr).strip()[-300:]}")  # fmt: skip
            self.attach()
            made += 1
        if made:
            self.reachable()
        self.migrations += made
        return made

    def streams(self, meters: list[TrafficMeter] | None = None) -> dict[str, Any]:
        """Every pair's iperf3 stream at once; cross-host Mbit/s read on the uplinks over the
        middle of the run (the first and last second left out), and the meters' matrices."""
        seconds = self.args.seconds
        clients = []
        for k in range(self.args.pairs):
            a, b = self.role[f"p{k}a"], self.role[f"p{k}b"]
            command = (f"iperf3 -c {self.address[b]} -u -b {self.args.rate_mbit}M -l 1200 "
                       f"-t {seconds:g} --json")  # fmt: skip
            argv = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
                    "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-i", str(self.key),
                    f"{USER}@{self.address[a]}", command]  # fmt: skip
            clients.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            text=True))  # fmt: skip
        time.sleep(2.0)  # ssh logins and iperf3's control connections
        endpoints = [self.endpoints(h) for h in range(len(self.hosts))]
        if meters is not None:
            for h, meter in enumerate(meters):
                meter.sample(endpoints[h])
        before, started = self.nets.uplink_tx_bytes(), time.monotonic()
        time.sleep(max(1.0, seconds - 3.0))
        after, elapsed = self.nets.uplink_tx_bytes(), time.monotonic() - started
        matrices = [meter.sample(endpoints[h]) for h, meter in enumerate(meters)] if meters else []
        rates = []
        for proc in clients:
            out, err = proc.communicate(timeout=seconds + 120)
            rate, lost = iperf_rate(out)
            rates.append({"mbps": round(rate, 2), "lost_percent": lost,
                          "error": "" if proc.returncode == 0 else (err or out)[-200:]})  # fmt: skip
        return {
            "cross_host_mbps": (after - before) * 8 / 1e6 / elapsed,
            "pairs": rates,
            "matrices": matrices,
        }

    def endpoints(self, host: int) -> dict[str, str]:
        """MAC -> role of the guests on `host` (what a host's agent would map to VMs)."""
        where = self.placement()
        return {self.mac[self.role[r]]: r for r, h in where.items() if h == host}


def crossing(placement: dict[str, int], pairs: int) -> int:
    return sum(placement[f"p{k}a"] != placement[f"p{k}b"] for k in range(pairs))


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.pairs * 2 > 4 * args.hosts:
        raise ValueError(f"--pairs {args.pairs}: at most {2 * args.hosts} on {args.hosts} hosts")
    require_hypervisor()
    guest_image()
    base = bench_dir(args.dir, "vmgrid-traffic-")
    lab = Lab(base / "lab")
    sub: SubmissionLab | None = None
    nets: HostNetworks | None = None
    meters: list[TrafficMeter] = []
    started = time.monotonic()
    guests: GuestTraffic | None = None
    try:
        hosts = lab.start(args.hosts)
        sub = SubmissionLab(lab, hosts, base, ("--migration-bandwidth-mbit=400",))
        sub.start()
        nets = HostNetworks(f"vgt{os.getpid() % 100000}", sub.net.bridge, args.hosts)
        nets.start()
        guests = GuestTraffic(sub, nets, args)
        guests.start()
        booted = time.monotonic()
        meters = [TrafficMeter(window_s=3600, nft=Nft(netns=ns)) for ns in nets.namespaces]
        start = plan_side.initial_placement(args.hosts, args.pairs, args.seed)
        guests.move_to(start)
        before = guests.streams(meters)
        matrices: list[TrafficMatrix] = before["matrices"]
        state = plan_side.cluster_state
        blind = plan_side.place(state(start, args.hosts, None, args.vm_millicores), args.decider)
        aware = plan_side.place(
            state(start, args.hosts, matrices, args.vm_millicores), args.decider
        )
        blind_at = plan_side.placement_after(start, blind)
        aware_at = plan_side.placement_after(start, aware)
        guests.move_to(blind_at)
        blind_run = guests.streams()
        guests.move_to(aware_at)
        aware_run = guests.streams()
    except Exception:
        if guests is not None:
            print(guests.diagnose(), file=sys.stderr)
        raise
    finally:
        for meter in meters:
            meter.remove()
        if sub is not None:
            sub.stop()
        if nets is not None:
            nets.close()
        lab.stop()
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    blind_mbps, aware_mbps = blind_run["cross_host_mbps"], aware_run["cross_host_mbps"]
    return {
        "cross_host_mbps_blind": round(blind_mbps, 2),
        "cross_host_mbps_aware": round(aware_mbps, 2),
        "reduction": round(1 - aware_mbps / blind_mbps, 3) if blind_mbps > 0 else 0.0,
        "migrations": aware.migrations,
        "migrations_blind": blind.migrations,
        "same_packing": len(set(blind_at.values())) == len(set(aware_at.values())),
        "hosts_used": len(set(aware_at.values())),
        "cross_host_mbps_before": round(before["cross_host_mbps"], 2),
        "pairs_crossing": {
            "before": crossing(start, args.pairs),
            "blind": crossing(blind_at, args.pairs),
            "aware": crossing(aware_at, args.pairs),
        },  # fmt: skip
        "iperf3_mbps": {
            "before": before["pairs"],
            "blind": blind_run["pairs"],
            "aware": aware_run["pairs"],
        },  # fmt: skip
        "measured_pair_mbps": measured_pairs(matrices),
        "placements": {"before": start, "blind": blind_at, "aware": aware_at},
        "hosts": args.hosts,
        "pairs": args.pairs,
        "rate_mbit": args.rate_mbit,
        "seconds": args.seconds,
        "vm_millicores": args.vm_millicores,
        "decider": plan_side.DECIDERS[args.decider],
        "vms": f"Debian guests ({sub.domain_type if sub else '?'}), iperf3 UDP",
        "boot_s": guests.boot.get("ready_s"),
        "placement_migrations": guests.migrations,
        "setup_s": round(booted - started, 1),
        "run_s": round(time.monotonic() - started, 1),
    }


def measured_pairs(matrices: list[TrafficMatrix]) -> dict[str, float]:
    """Mbit/s per pair of guests as the meters measured it: each direction the larger of the
    two hosts' views (as the manager keeps it), both directions added; flows with an end that
    is no guest (a bridge's own address) are left out."""
    available = [m for m in matrices if m.available]
    role = {end.mac: end.vm_uuid for m in available for end in m.endpoints}
    directed: dict[tuple[str, str], int] = {}
    for matrix in available:
        for flow in matrix.flows:
            ends = (role.get(flow.src_mac, flow.src_mac), role.get(flow.dst_mac, flow.dst_mac))
            directed[ends] = max(directed.get(ends, 0), flow.bytes_per_second)
    pairs: dict[str, float] = {}
    roles = set(role.values())
    for (src, dst), rate in directed.items():
        if src not in roles or dst not in roles:
            continue  # a bridge's own or another machine's address: not a pair of guests
        key = "-".join(sorted((src, dst)))
        pairs[key] = pairs.get(key, 0.0) + rate * 8 / 1e6
    return {key: round(mbps, 2) for key, mbps in sorted(pairs.items())}
