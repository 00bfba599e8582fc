"""Linux guests of the lab: the Debian guest image, the domain type it can run under here, and
reaching a guest over the lab's network (its DHCP address, SSH with a key).

The image is built by `deploy/scripts/build-guest-image.sh` (`make guest-image`) into
`build/guest-image/debian-<recipe hash>.qcow2`; `guest_image()` finds the one of the current
recipe and never builds (building takes minutes and needs root).
"""

from __future__ import annotations

import shlex
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
from vmgrid.lab import access
from vmgrid.lab.errors import LabError
from vmgrid.lab.network import GuestNetwork

REPO_ROOT = Path(__file__).absolute().parents[2]
BUILD_SCRIPT = REPO_ROOT / "deploy" / "scripts" / "build-guest-image.sh"
PVM_MODULE = Path("/sys/module/kvm_pvm")
SSH_OPTIONS = (
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
    "-o", "ConnectTimeout=5",
)  # fmt: skip


def guest_image() -> Path:
    """The Debian guest image of the current recipe; LabError when it is not built."""
    result = subprocess.run(
        [str(BUILD_SCRIPT), "--print-path"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise LabError(f"{BUILD_SCRIPT.name} --print-path failed: {result.stderr.strip()}")
    image = Path(result.stdout.strip())
    if not image.is_file():
        raise LabError(f"guest image {image} is not built; run `make guest-image` (as root)")
    return image


def linux_domain_type(lab_kvm: bool) -> str:
    """'kvm' where a stock Debian kernel runs under this machine's KVM, else 'qemu' (TCG).

    This machine's KVM may be PVM (module kvm_pvm), which runs the tiny real-mode guests but
    only PVM-enabled guest kernels, not Debian's; Linux guests then run under TCG.
    """
    if not lab_kvm or PVM_MODULE.exists() or not access.kvm_works():
        return "qemu"
    return "kvm"


def mac_addresses(domain: libvirt.virDomain) -> list[str]:
    """The MAC addresses of a domain's NICs (lower case), from its live XML."""
    root = ET.fromstring(domain.XMLDesc(0))
    macs = [mac.get("address", "").lower() for mac in root.findall("devices/interface/mac")]
    return [mac for mac in macs if mac]


def wait_for_address(net: GuestNetwork, mac: str, timeout_s: float) -> str:
    """The address the lab's DHCP server leased to `mac`, once it has."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        address = net.leases().get(mac.lower())
        if address is not None:
            return address
        time.sleep(0.5)
    raise LabError(f"no DHCP lease for {mac} within {timeout_s:g} s (see {net.leases_file})")


def ssh(
    address: str, user: str, key: Path, command: str, timeout_s: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run `command` as `user` on the guest at `address`, authenticated by the private `key`."""
    argv = ["ssh", *SSH_OPTIONS, "-i", str(key), f"{user}@{address}", command]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 255, "", f"timed out after {timeout_s:g} s")


def wait_for_ssh(
    address: str, user: str, key: Path, timeout_s: float, command: str = "true"
) -> subprocess.CompletedProcess[str]:
    """Retry `command` over SSH until it succeeds; LabError with the last error otherwise."""
    deadline = time.monotonic() + timeout_s
    last = "no attempt"
    while time.monotonic() < deadline:
        result = ssh(address, user, key, command, timeout_s=min(30.0, timeout_s))
        if result.returncode == 0:
            return result
        last = result.stderr.strip() or f"exit {result.returncode}"
        time.sleep(1.0)
    raise LabError(
        f"ssh {user}@{address} {shlex.quote(command)} did not succeed within {timeout_s:g} s: "
        f"{last}"
    )


def make_key(directory: Path, name: str = "id_ed25519") -> tuple[Path, str]:
    """A new ed25519 key pair in `directory`: (private key path, public key line)."""
    private = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vmgrid-lab", "-f", str(private)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return private, private.with_suffix(".pub").read_text().strip()
