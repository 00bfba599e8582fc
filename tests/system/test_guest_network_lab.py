"""The lab's guest network and NFS server, on a lab of its own (no guest needed).

The bridge gets its address, dnsmasq serves DHCP on it, the lab's qemu-bridge-helper has
cap_net_admin and the bridge is allowed in /etc/qemu/bridge.conf; NFS-Ganesha listens on the
bridge's address only and exports to its subnet only; `stop` removes all of it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from vmgrid.lab import Lab, hypervisor_unavailable_reason, network
from vmgrid.lab.host import HostLayout

pytestmark = [pytest.mark.system]


@pytest.fixture
def own_lab() -> Iterator[Lab]:
    reason = hypervisor_unavailable_reason()
    if reason is not None:
        pytest.skip(f"no KVM and no TCG here: {reason}")
    directory = Path(tempfile.mkdtemp(prefix="vmgrid-lab-net-", dir="/tmp"))
    directory.chmod(0o755)
    lab = Lab(directory)
    try:
        yield lab
    finally:
        lab.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _listeners(port: int) -> list[str]:
    out = subprocess.run(["ss", "-Htln"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if line.split()[3].endswith(f":{port}")]


def test_network_and_nfs_serve_the_bridge_only_and_stop_removes_them(own_lab: Lab) -> None:
    own_lab.start(1)
    server = own_lab.start_nfs()
    net = own_lab.guest_network()
    assert net is not None
    assert server.source == f"{net.host_address}:/export"
    addresses = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "dev", net.bridge],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"{net.host_address}/24" in addresses
    # NFS on the bridge's address only, nowhere else.
    listeners = _listeners(2049)
    ours = [a for a in listeners if net.host_address in a]
    assert ours, listeners
    assert not any(a.startswith(("0.0.0.0:", "*:", "[::]:")) for a in listeners)
    conf = (own_lab.path / "nfs" / "ganesha.conf").read_text()
    assert f"Clients = {net.subnet};" in conf
    # DHCP on the bridge, and guests' ports through the lab's capable helper.
    dhcp = subprocess.run(["ss", "-Hulnp"], capture_output=True, text=True, check=True).stdout
    assert any("dnsmasq" in line and ":67" in line for line in dhcp.splitlines())
    helper = network.helper_path(own_lab.path)
    caps = subprocess.run(["getcap", str(helper)], capture_output=True, text=True, check=True)
    assert "cap_net_admin" in caps.stdout
    assert f"allow {net.bridge}" in network.BRIDGE_CONF.read_text().splitlines()
    qemu_conf = (HostLayout(own_lab.path / "host1").config / "libvirt" / "qemu.conf").read_text()
    assert f'bridge_helper = "{helper}"' in qemu_conf
    # Files written in the export are the host's view of the share.
    assert server.export_dir.stat().st_mode & 0o1777 == 0o1777
    # Again: kept, not doubled.
    assert own_lab.start_nfs().pid == server.pid
    result = own_lab.stop()
    assert result["nfs"] is True and result["network"] is True
    assert not Path("/sys/class/net", net.bridge).exists()
    assert f"allow {net.bridge}" not in network.BRIDGE_CONF.read_text().splitlines()
    assert not [a for a in _listeners(2049) if net.host_address in a]
    assert own_lab.stop()["network"] is False  # idempotent


def _mac(device: str) -> str:
    return Path("/sys/class/net", device, "address").read_text().strip()


def test_the_hosts_mac_on_the_bridge_stays_when_guest_ports_come_and_go(own_lab: Lab) -> None:
    """A live migration adds the destination's tap to the bridge and removes the source's.
    Linux gives a bridge without an address of its own the lowest MAC of its ports, so the
    host's MAC on the guest network changed at each migration (and the host flushed its ARP
    table while the guest just resumed). The lab's bridge keeps one MAC."""
    net = own_lab.start_network()
    fixed = _mac(net.bridge)
    assert fixed == network.bridge_mac(net.bridge)
    tag = net.bridge[-6:]
    ports = {f"vmgl{tag}s": "00:00:00:00:00:01", f"vmgl{tag}d": "fe:ff:ff:ff:ff:fe"}
    for name, mac in ports.items():  # the source's tap (lowest MAC), then the destination's
        own_lab.create_tap(name)
        subprocess.run(["ip", "link", "set", name, "address", mac, "master", net.bridge],
                       check=True)  # fmt: skip
        assert _mac(net.bridge) == fixed
    subprocess.run(["ip", "link", "del", f"vmgl{tag}s"], check=True)  # the source QEMU exits
    assert _mac(net.bridge) == fixed
    own_lab.start_network()  # kept on a second start
    assert _mac(net.bridge) == fixed
