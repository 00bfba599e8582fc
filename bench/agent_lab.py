"""The real-host node for `vmgrid-bench agent --driver kvm`: a one-host lab with idle guests.

On a real host the agent talks to libvirtd over its socket, so the hypervisor's state (domains,
capabilities, QEMU monitors) lives in the daemon and in QEMU, not in the agent. `lab_node`
starts one lab host (the lab's own `Lab.start`, a session-mode libvirtd of the lab user), defines
and starts `vms` tiny guests that halt at once (deploy/lab/guests.py's `idle` mode, `cli; hlt`,
a 1 MiB raw disk) and yields the host; on exit, even on error, `Lab.stop` destroys the guests
and ends the daemon and any QEMU it left (by pid), and the lab directory is removed.

`OPEN_PROGRAM` measures, in a bare Python process, what opening a libvirt URI and reading every
domain's stats once adds to RSS: the cost a driver puts into the process that opens it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import libvirt
from vmgrid.lab import Lab, LabHost, create_boot_disk, hypervisor_unavailable_reason
from vmgrid.lab.guests import make_guest_xml

GUEST_MEMORY_MIB = 4
"""Each guest's memory: the least that boots. SeaBIOS reaches the boot sector with 4 MiB (a
`count` guest's counter runs at 4, 8 and 16 MiB alike), and an idle guest touches little of it."""

GUEST_PREFIX = "idle"
"""Guests are idle0, idle1...: short, since QEMU's monitor socket path, which names the guest and
the lab's directory, must stay under 108 bytes."""


@contextlib.contextmanager
def lab_node(vms: int, parent: str | None = None) -> Iterator[tuple[LabHost, str]]:
    """(host, domain type: 'kvm', or 'qemu' for TCG) of a one-host lab running `vms` idle
    guests, in a new directory under `parent` (default /tmp); everything is stopped and removed
    on exit."""
    reason = hypervisor_unavailable_reason()
    if reason is not None:
        raise ValueError(f"--driver kvm needs the lab, and there is no KVM and no TCG: {reason}")
    base = Path(tempfile.mkdtemp(prefix="vmgrid-agentlab-", dir=parent or "/tmp"))
    base.chmod(0o755)  # the lab user must reach the lab's directory
    lab = Lab(base)
    try:
        print(f"starting a one-host lab in {base} with {vms} idle guests", file=sys.stderr)
        (host,) = lab.start(1)
        with contextlib.closing(host.connect()) as conn:
            for index in range(vms):
                name = f"{GUEST_PREFIX}{index}"
                disk = create_boot_disk(lab.guest_dir / f"{name}.raw", "idle")
                xml = make_guest_xml(
                    name, mode="idle", memory_mib=GUEST_MEMORY_MIB, disk=disk, kvm=lab.kvm
                )
                try:
                    conn.defineXML(xml).create()
                except libvirt.libvirtError as error:
                    raise ValueError(f"cannot start guest {name} on the lab: {error}") from error
        yield host, host.domain_type
    finally:
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)


OPEN_PROGRAM = """
import json, sys
def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
import libvirt
imported = rss_kib()
conn = libvirt.open(sys.argv[1])
opened = rss_kib()
stats = conn.getAllDomainStats()
read = rss_kib()
print(json.dumps({"import_kib": imported, "open_kib": opened - imported,
                  "stats_kib": read - opened, "domains": len(stats)}))
"""
"""Prints RSS after `import libvirt`, and what `libvirt.open(uri)` then one getAllDomainStats
add to it, in KiB."""


def libvirt_open_cost(uri: str) -> dict[str, float]:
    """OPEN_PROGRAM's figures for `uri`, in MiB: RSS after importing libvirt, added by opening
    the URI, added by reading all domains' stats once; and the domains read."""
    result = subprocess.run(
        [sys.executable, "-c", OPEN_PROGRAM, uri],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise ValueError(f"libvirt.open({uri!r}) failed: {result.stderr.strip()[-300:]}")
    raw = json.loads(result.stdout.strip().splitlines()[-1])
    return {
        "import_mb": round(raw["import_kib"] / 1024, 1),
        "open_mb": round(raw["open_kib"] / 1024, 1),
        "stats_mb": round(raw["stats_kib"] / 1024, 1),
        "domains": raw["domains"],
    }
