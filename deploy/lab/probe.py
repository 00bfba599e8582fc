"""Measure live migration on a running lab, so the figure in docs/lab.md can be reproduced.

A spinning guest (the worst case: its one vCPU keeps running during the copy) is bounced
between host1 and host2; each leg is timed around migrateToURI3.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from typing import Any

import libvirt
from vmgrid.lab.errors import LabError
from vmgrid.lab.guests import create_boot_disk, define_and_start, make_guest_xml
from vmgrid.lab.lab import Lab

PROBE_GUEST = "vmgrid-lab-probe"
FLAGS = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER


def measure_migration(
    lab: Lab, rounds: int = 3, memory_mib: int = 64, bandwidth_mib_s: int = 0
) -> dict[str, Any]:
    """Seconds per live migration of one `memory_mib` guest between host1 and host2
    (`bandwidth_mib_s` 0 means uncapped)."""
    if rounds < 1:
        raise LabError(f"--rounds {rounds} is invalid; accepted: 1 or more")
    hosts = lab.hosts()
    if len(hosts) < 2:
        raise LabError(f"lab {lab.path} runs {len(hosts)} host(s); start at least 2")
    source, target = hosts[0], hosts[1]
    disk = create_boot_disk(lab.guest_dir / f"{PROBE_GUEST}.raw", "spin")
    xml = make_guest_xml(PROBE_GUEST, "spin", memory_mib, disk=disk, kvm=lab.kvm)
    domain = define_and_start(source, xml)
    params: dict[str, Any] = {libvirt.VIR_MIGRATE_PARAM_URI: source.migration_uri}
    if bandwidth_mib_s > 0:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = bandwidth_mib_s
    seconds = []
    try:
        for leg in range(rounds):
            began = time.monotonic()
            domain.migrateToURI3(target.uri, params, FLAGS)
            seconds.append(round(time.monotonic() - began, 3))
            print(f"leg {leg + 1}: {source.name} -> {target.name} {seconds[-1]} s", file=sys.stderr)
            source, target = target, source
            with contextlib.closing(source.connect()) as conn:
                domain = conn.lookupByName(PROBE_GUEST)
    finally:
        _remove_probe(lab)
    return {
        "memory_mib": memory_mib,
        "bandwidth_mib_s": bandwidth_mib_s,
        "domain_type": hosts[0].domain_type,
        "seconds": seconds,
        "median_s": statistics.median(seconds),
    }


def _remove_probe(lab: Lab) -> None:
    for host in lab.hosts():
        with contextlib.closing(host.connect()) as conn:
            try:
                domain = conn.lookupByName(PROBE_GUEST)
            except libvirt.libvirtError:
                continue
            with contextlib.suppress(libvirt.libvirtError):
                if domain.isActive():
                    domain.destroy()
            with contextlib.suppress(libvirt.libvirtError):
                domain.undefine()
