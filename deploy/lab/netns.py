"""Network namespaces standing in for hosts and VMs, for the traffic meter (#16).

Linux guests run under TCG here (KVM is PVM), too slow to exchange traffic for a test or a
bench in minutes; namespaces give the traffic meter the same path as guests on their taps:
frames from a VM's MAC enter a bridge port of its host and are counted by that host's
nftables table.

Each host is a namespace with a bridge ``br0`` and an uplink (a veth) to a switch namespace;
each VM is a namespace whose ``eth0`` is a veth with its other end a port of its host's bridge.
Bytes a host sends on its uplink are bytes that crossed hosts. Every namespace's name starts
with `prefix`; `close` deletes them all (which deletes the veths and bridges).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


@dataclass(frozen=True)
class NsVm:
    name: str
    netns: str
    mac: str
    ip: str
    port: str
    host: int


@dataclass
class NamespaceLab:
    """Hosts (a bridge each, uplinked to a switch) and VMs (a namespace each)."""

    prefix: str
    hosts: list[str] = field(default_factory=list)
    vms: dict[str, NsVm] = field(default_factory=dict)
    _made: list[str] = field(default_factory=list)

    def _netns(self, name: str) -> str:
        _ip("netns", "add", name)
        self._made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")
        return name

    def start(self, hosts: int) -> None:
        switch = self._netns(f"{self.prefix}-sw")
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        for i in range(hosts):
            host = self._netns(f"{self.prefix}-h{i}")
            _ip("-n", host, "link", "add", "br0", "type", "bridge")
            _ip("-n", host, "link", "set", "br0", "up")
            _ip("-n", host, "link", "add", "uplink", "type", "veth", "peer", "name", f"h{i}")
            _ip("-n", host, "link", "set", f"h{i}", "netns", switch)
            _ip("-n", host, "link", "set", "uplink", "master", "br0", "up")
            _ip("-n", switch, "link", "set", f"h{i}", "master", "br0", "up")
            self.hosts.append(host)

    def add_vm(self, name: str, host: int, mac: str = "") -> NsVm:
        """A VM namespace on `host`; `mac` (default: one made from its index) lets it stand in
        for a libvirt domain whose NIC has that MAC."""
        index = len(self.vms) + 1
        netns = self._netns(f"{self.prefix}-{name}")
        mac = mac or f"52:54:00:7e:{index >> 8:02x}:{index & 0xFF:02x}"
        ip = f"10.231.{index >> 8}.{index & 0xFF}"
        port = f"vp{index}"
        _ip("-n", netns, "link", "add", "eth0", "type", "veth", "peer", "name", port)
        _ip("-n", netns, "link", "set", port, "netns", self.hosts[host])
        _ip("-n", netns, "link", "set", "eth0", "address", mac)
        _ip("-n", netns, "addr", "add", f"{ip}/16", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", self.hosts[host], "link", "set", port, "master", "br0", "up")
        vm = NsVm(name, netns, mac, ip, port, host)
        self.vms[name] = vm
        return vm

    def move_vm(self, name: str, host: int) -> NsVm:
        """Move a VM's port to another host's bridge (a migration, as the network sees it)."""
        vm = self.vms[name]
        if vm.host == host:
            return vm
        _ip("-n", self.hosts[vm.host], "link", "set", vm.port, "netns", self.hosts[host])
        _ip("-n", self.hosts[host], "link", "set", vm.port, "master", "br0", "up")
        moved = NsVm(vm.name, vm.netns, vm.mac, vm.ip, vm.port, host)
        self.vms[name] = moved
        return moved

    def _counter(self, netns: str, dev: str, name: str) -> int:
        out = subprocess.run(
            ["ip", "netns", "exec", netns, "cat", f"/sys/class/net/{dev}/statistics/{name}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return int(out.stdout.strip())

    def uplink_tx_bytes(self) -> int:
        """Bytes every host sent on its uplink since start: each cross-host byte once."""
        return sum(self._counter(host, "uplink", "tx_bytes") for host in self.hosts)

    def port_tx_bytes(self, name: str) -> int:
        """Bytes the host's bridge delivered to VM `name` (its port's transmit counter)."""
        vm = self.vms[name]
        return self._counter(self.hosts[vm.host], vm.port, "tx_bytes")

    def close(self) -> None:
        for netns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        self._made.clear()


class Sender:
    """Streams bytes between two namespaced VMs at a set rate, over UDP, for `seconds`.

    The sender runs in the source VM's namespace (``ip netns exec``); nothing listens on
    the destination's port 9 (discard), which only answers with ICMP, counted separately."""

    def __init__(self, src: NsVm, dst: NsVm, rate_bytes_s: int, seconds: float) -> None:
        self.cmd = [
            "ip", "netns", "exec", src.netns, "python3", "-c", _BLAST,
            dst.ip, str(rate_bytes_s), str(seconds),
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait(self) -> int:
        """Bytes of UDP payload the sender wrote."""
        assert self.proc is not None
        out, err = self.proc.communicate(timeout=120)
        if self.proc.returncode != 0:
            raise RuntimeError(f"sender failed: {err.decode().strip()}")
        return int(out.decode().strip())


_BLAST = """
import socket, sys, time
dst, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
chunk = b"x" * 1400
sent, start = 0, time.monotonic()
while True:
    now = time.monotonic() - start
    if now >= seconds:
        break
    if sent < rate * now:
        sent += s.sendto(chunk, (dst, 9))
    else:
        time.sleep(0.002)
print(sent)
"""
