"""What the lab shows when a migrated guest stops answering the probe: evidence kept in the
migration's record (`Record.lost`), so that a lost guest can be told apart afterwards:

- the network: the bridge's MAC and whether it is its own (`addr_assign_type` 3), its ports,
  which port the bridge forwards the guest's MAC to, and the host's ARP entry for the guest;
- the guest: QEMU's run state, the ring indices of the virtio-net queues (a receive queue
  without buffers drops every frame), the vCPU's instruction pointer sampled three times (a
  guest that hangs spinning shows the same few addresses, a halted one `hlt`), and what the
  serial console prints after a newline (a getty prompt from a live userland, kernel
  messages from a hung one), then the kernel's backtrace of its CPUs (SysRq `l`).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import libvirt
import libvirt_qemu

_RIP = re.compile(r"RIP=([0-9a-f]+)")


NET_BACKEND = "/machine/peripheral/net0/virtio-backend"
_QUEUE_FIELDS = ("inuse", "used_idx", "last_avail_idx", "shadow_avail_idx")


def queue_status(text: str) -> dict[str, int]:
    """The ring indices of QEMU's `info virtio-queue-status`: a receive queue whose
    `used_idx` has reached `last_avail_idx` holds no buffer from the guest, so the device
    drops every frame for it."""
    found = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key in _QUEUE_FIELDS and value.strip().isdigit():
            found[key] = int(value)
    return found


def fdb_ports(fdb: str, mac: str) -> list[str]:
    """The ports `bridge fdb show` forwards `mac` to (none: the bridge floods it)."""
    return [
        line.split()[2]
        for line in fdb.splitlines()
        if line.lower().startswith(mac.lower() + " ") and line.split()[1:2] == ["dev"]
    ]


def _run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
    return (result.stdout + result.stderr).strip()


def _hmp(dom: libvirt.virDomain, command: str) -> str:
    try:
        return str(
            libvirt_qemu.qemuMonitorCommand(
                dom, command, libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP
            )
        ).strip()
    except libvirt.libvirtError as exc:
        return f"error: {exc}"


def _console(dom: libvirt.virDomain, wait_s: float = 4.0, send: bytes = b"\r\n") -> str:
    """What the serial console prints within `wait_s` after `send` (a newline)."""
    stream = dom.connect().newStream(0)
    got = bytearray()
    try:
        dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        if send:
            stream.send(send)

        def read() -> None:
            with contextlib.suppress(libvirt.libvirtError):
                while chunk := stream.recv(4096):
                    if isinstance(chunk, int):  # -2: would block
                        return
                    got.extend(chunk)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(wait_s)
    except libvirt.libvirtError as exc:
        return f"error: {exc}"
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
    return got.decode(errors="replace")[-2000:]


def lost_guest_evidence(
    bridge: str, mac: str, address: str, dom: libvirt.virDomain
) -> dict[str, Any]:
    """The network's and the guest's state once the guest stopped answering."""
    sysfs = Path("/sys/class/net", bridge)
    rips = []
    for _ in range(3):
        rips += _RIP.findall(_hmp(dom, "info registers"))[:1]
        time.sleep(0.5)
    return {
        "bridge_mac": (sysfs / "address").read_text().strip(),
        "bridge_mac_own": (sysfs / "addr_assign_type").read_text().strip() == "3",
        "ports": sorted(p.name for p in (sysfs / "brif").iterdir()),
        "guest_mac_port": fdb_ports(_run("bridge", "fdb", "show", "br", bridge), mac),
        "host_arp": _run("ip", "neigh", "show", address, "dev", bridge),
        "qemu_status": _hmp(dom, "info status"),
        "virtio_net_queues": [
            queue_status(_hmp(dom, f"info virtio-queue-status {NET_BACKEND} {queue}"))
            for queue in (0, 1)  # receive, transmit
        ],
        "vcpu_rip": rips,
        "console": _console(dom),
        "backtrace": _backtrace(dom),
    }


def _backtrace(dom: libvirt.virDomain) -> str:
    """The guest kernel's backtrace of its CPUs: SysRq `l` typed on QEMU's keyboard, printed
    on the serial console (the bench enables SysRq and console messages at boot) and kept by
    the console's pty until it is read."""
    _hmp(dom, "sendkey alt-sysrq-l")
    return _console(dom, 6.0, b"")
