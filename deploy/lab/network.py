"""The lab's guest network: a host bridge with an address, DHCP on it, and bridge ports for
guests of the unprivileged libvirt daemons.

- **Bridge.** `vmglb<hash>` with `10.213.N.1/24`, both chosen from a hash of the lab
  directory (N skips subnets already on this machine), so two labs do not collide. Nothing
  is routed or NATed: the guests reach the host's address on the bridge and each other only.
  The bridge gets a MAC address of its own (`02:...` from the same hash). Without one, Linux
  gives a bridge the lowest MAC of its ports, so the host's MAC on the guest network changed
  whenever a guest's tap came or went: at every live migration (the destination's tap joins,
  the source's leaves). Each change flushed the host's ARP table, and the host had to
  resolve the guest again (the guest learning the host's new MAC from that request), in
  about half of the migrations just after the switchover, which it lengthened.
- **DHCP.** `dnsmasq` (no DNS, no router option) on the bridge only; leases in
  `<dir>/network/leases` (MAC -> address), which is how tests find a guest's address.
- **Guest ports.** A session-mode libvirtd attaches `<interface type='bridge'>` through
  `qemu-bridge-helper`. The lab keeps its own copy of the helper with the file capability
  `cap_net_admin` (the Debian one has none) and names it in each host's `qemu.conf`; the helper
  only serves bridges listed in `/etc/qemu/bridge.conf`, where the lab adds (and on stop
  removes) one `allow <bridge>` line. Every QEMU gets its own tap, so guests on a bridge can
  migrate between lab hosts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmgrid.lab import procs
from vmgrid.lab.errors import LabError

BRIDGE_CONF = Path("/etc/qemu/bridge.conf")
HELPER_SOURCE = Path("/usr/lib/qemu/qemu-bridge-helper")
SUBNET_PREFIX = "10.213"
STATE_FILE = "network.json"


def network_dir(lab_dir: Path) -> Path:
    return lab_dir / "network"


def helper_path(lab_dir: Path) -> Path:
    """The lab's qemu-bridge-helper (named in every host's qemu.conf)."""
    return network_dir(lab_dir) / "qemu-bridge-helper"


NET_ADDR_SET = 3
"""`addr_assign_type` of an address set by the user: the bridge keeps it whatever its ports."""


def bridge_mac(bridge: str) -> str:
    """The bridge's own MAC: locally administered, unicast, from its name (its lab's hash)."""
    digest = hashlib.sha256(bridge.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


@dataclass(frozen=True)
class GuestNetwork:
    """The bridge, its subnet and where its DHCP leases are."""

    bridge: str
    subnet: str
    dir: str

    @property
    def host_address(self) -> str:
        """The host's address on the bridge: the gateway guests reach the NFS server at."""
        return str(next(ipaddress.IPv4Network(self.subnet).hosts()))

    @property
    def leases_file(self) -> Path:
        return Path(self.dir) / "leases"

    @property
    def domain_network(self) -> str:
        """What `vmgrid-cluster --network` takes so that job members join this bridge."""
        return f"bridge:{self.bridge}"

    def to_json(self) -> dict[str, Any]:
        return {
            "bridge": self.bridge,
            "subnet": self.subnet,
            "host_address": self.host_address,
            "leases": str(self.leases_file),
        }

    def leases(self) -> dict[str, str]:
        """MAC address (lower case) -> IPv4 address, from dnsmasq's lease file."""
        try:
            lines = self.leases_file.read_text().splitlines()
        except OSError:
            return {}
        found: dict[str, str] = {}
        for line in lines:
            fields = line.split()
            if len(fields) >= 3:
                found[fields[1].lower()] = fields[2]
        return found


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def _used_subnets() -> set[str]:
    result = _ip("-4", "-o", "addr", "show")
    used = set()
    for line in result.stdout.splitlines():
        fields = line.split()
        if "inet" in fields:
            address = fields[fields.index("inet") + 1]
            used.add(str(ipaddress.IPv4Interface(address).network))
    return used


def _choose(lab_dir: Path) -> GuestNetwork:
    digest = hashlib.sha256(str(lab_dir).encode()).hexdigest()
    used = _used_subnets()
    first = int(digest[:8], 16) % 250
    for step in range(250):
        subnet = f"{SUBNET_PREFIX}.{(first + step) % 250 + 1}.0/24"
        if subnet not in used:
            return GuestNetwork(f"vmglb{digest[:8]}", subnet, str(network_dir(lab_dir)))
    raise LabError(f"no free subnet left in {SUBNET_PREFIX}.0.0/16 for the lab's bridge")


def load(lab_dir: Path) -> GuestNetwork | None:
    """The network of the lab in `lab_dir` when it was started, else None."""
    try:
        data = json.loads((network_dir(lab_dir) / STATE_FILE).read_text())
        return GuestNetwork(str(data["bridge"]), str(data["subnet"]), str(data["dir"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def start(lab_dir: Path) -> GuestNetwork:
    """Bridge, helper and DHCP of the lab in `lab_dir`; what already runs is kept."""
    for program in ("dnsmasq", "setcap"):
        if shutil.which(program, path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
            raise LabError(
                f"{program} not found; install the Debian packages dnsmasq-base libcap2-bin "
                "(make system-deps)"
            )
    if not HELPER_SOURCE.exists():
        raise LabError(f"{HELPER_SOURCE} not found; install the Debian package qemu-system-x86")
    net = load(lab_dir)
    if net is None or not Path("/sys/class/net", net.bridge).exists():
        net = _choose(lab_dir)
    directory = Path(net.dir)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    _bridge_up(net)
    _install_helper(lab_dir)
    _allow_bridge(net.bridge)
    _start_dnsmasq(net)
    (directory / STATE_FILE).write_text(json.dumps(net.to_json() | {"dir": net.dir}) + "\n")
    return net


def _bridge_up(net: GuestNetwork) -> None:
    if not Path("/sys/class/net", net.bridge).exists():
        result = _ip("link", "add", net.bridge, "type", "bridge")
        if result.returncode != 0:
            raise LabError(f"cannot create bridge {net.bridge}: {result.stderr.strip()}")
    sysfs = Path("/sys/class/net", net.bridge)
    if (sysfs / "addr_assign_type").read_text().strip() != str(NET_ADDR_SET):
        result = _ip("link", "set", net.bridge, "address", bridge_mac(net.bridge))
        if result.returncode != 0:
            raise LabError(f"cannot set the MAC of bridge {net.bridge}: {result.stderr.strip()}")
    prefix = ipaddress.IPv4Network(net.subnet).prefixlen
    address = f"{net.host_address}/{prefix}"
    if address not in _ip("-4", "-o", "addr", "show", "dev", net.bridge).stdout:
        result = _ip("addr", "add", address, "dev", net.bridge)
        if result.returncode != 0:
            raise LabError(f"cannot address bridge {net.bridge}: {result.stderr.strip()}")
    _ip("link", "set", net.bridge, "up")


def _install_helper(lab_dir: Path) -> None:
    target = helper_path(lab_dir)
    if not target.exists():
        shutil.copy2(HELPER_SOURCE, target)
    target.chmod(0o755)
    result = subprocess.run(
        ["setcap", "cap_net_admin+ep", str(target)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise LabError(f"cannot give {target} cap_net_admin: {result.stderr.strip()}")


@contextlib.contextmanager
def _bridge_conf_locked() -> Any:
    BRIDGE_CONF.parent.mkdir(parents=True, exist_ok=True)
    with BRIDGE_CONF.open("a+") as conf:
        fcntl.flock(conf, fcntl.LOCK_EX)
        try:
            conf.seek(0)
            yield conf
        finally:
            fcntl.flock(conf, fcntl.LOCK_UN)


def _allow_bridge(bridge: str) -> None:
    line = f"allow {bridge}"
    with _bridge_conf_locked() as conf:
        if line not in conf.read().splitlines():
            conf.write(line + "\n")


def _disallow_bridge(bridge: str) -> None:
    line = f"allow {bridge}"
    if not BRIDGE_CONF.exists():
        return
    with _bridge_conf_locked() as conf:
        kept = [kept for kept in conf.read().splitlines() if kept != line]
        conf.seek(0)
        conf.truncate()
        conf.write("".join(f"{kept}\n" for kept in kept))


def _start_dnsmasq(net: GuestNetwork) -> None:
    pid_file = Path(net.dir) / "dnsmasq.pid"
    record = procs.read_pid_file(pid_file)
    if record is not None and procs.is_alive(record):
        return
    hosts = list(ipaddress.IPv4Network(net.subnet).hosts())
    command = [
        "dnsmasq",
        "--conf-file=/dev/null",
        "--keep-in-foreground",
        f"--interface={net.bridge}",
        "--bind-interfaces",
        "--except-interface=lo",
        "--port=0",
        f"--dhcp-range={hosts[9]},{hosts[-5]},255.255.255.0,12h",
        f"--dhcp-leasefile={net.leases_file}",
        "--dhcp-authoritative",
        "--dhcp-option=3",
        "--dhcp-option=6",
        "--user=root",
        "--group=root",
        f"--log-facility={Path(net.dir) / 'dnsmasq.log'}",
        "--log-dhcp",
    ]
    child = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(Path(net.dir) / "dnsmasq.err").open("ab"),
        start_new_session=True,
    )
    started = procs.record_of(child.pid)
    if started is None or child.poll() is not None:
        raise LabError(f"dnsmasq exited at once; see {Path(net.dir) / 'dnsmasq.err'}")
    procs.write_pid_file(pid_file, started)


def stop(lab_dir: Path) -> bool:
    """End DHCP, remove the bridge and its helper permission; False when none was there."""
    net = load(lab_dir)
    if net is None:
        return False
    record = procs.read_pid_file(Path(net.dir) / "dnsmasq.pid")
    if record is not None and procs.is_alive(record):
        procs.terminate(record)
    if Path("/sys/class/net", net.bridge).exists():
        _ip("link", "del", net.bridge)
    _disallow_bridge(net.bridge)
    (Path(net.dir) / STATE_FILE).unlink(missing_ok=True)
    return True
