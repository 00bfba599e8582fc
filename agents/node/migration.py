"""Pure decisions behind a live migration: which libvirt flags, and how far along it is.

Kept apart from the libvirt calls so that the rules (when VIR_MIGRATE_UNSAFE is justified,
how job statistics become a progress fraction) are unit-tested without a hypervisor.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import libvirt
from vmgrid.agents.model import MigrationJob

_LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1", "[::1]"})
_MIB = 1 << 20


@dataclass(frozen=True)
class MigrationRequest:
    """What the manager asked for, in the agent's terms."""

    destination_uri: str
    migration_uri: str = ""
    bandwidth_cap_bps: int = 0
    live: bool = True
    auto_converge: bool = False
    copy_storage: bool = False
    max_downtime_ms: int = 0
    """QEMU's downtime limit, set on the domain before migrating; 0 keeps QEMU's default."""


@dataclass(frozen=True)
class MigrationPlan:
    """The libvirt call to make: flags, typed parameters, and why UNSAFE is set (if it is)."""

    flags: int
    params: dict[str, str | int]
    unsafe_reason: str = ""


@dataclass(frozen=True)
class MigrationProgress:
    """One reading of a running migration job; bytes are cumulative for the job."""

    data_processed_bytes: int
    data_remaining_bytes: int

    @property
    def fraction(self) -> float:
        """Share done so far; below 1 until the job ends (remaining can grow with dirtying)."""
        total = self.data_processed_bytes + self.data_remaining_bytes
        if total <= 0:
            return 0.0
        return min(0.99, self.data_processed_bytes / total)


@dataclass(frozen=True)
class DiskInfo:
    """One disk of a domain, as its XML describes it."""

    target: str
    source: str
    driver_type: str
    read_only: bool
    shareable: bool

    @property
    def writable_local(self) -> bool:
        """A writable file that libvirt cannot prove shared: migrating it needs care."""
        return bool(self.source) and not (self.read_only or self.shareable)


def disks_of(domain_xml: str) -> tuple[DiskInfo, ...]:
    """The file or block disks of a domain (CD-ROMs and empty drives are left out)."""
    import xml.etree.ElementTree as ET  # here: an agent that runs no command never loads it

    found = []
    for disk in ET.fromstring(domain_xml).iterfind("./devices/disk"):
        if disk.get("device", "disk") != "disk":
            continue
        source = disk.find("source")
        path = "" if source is None else source.get("file") or source.get("dev") or ""
        driver = disk.find("driver")
        target = disk.find("target")
        found.append(
            DiskInfo(
                target="" if target is None else target.get("dev", ""),
                source=path,
                driver_type="raw" if driver is None else driver.get("type", "raw"),
                read_only=disk.find("readonly") is not None,
                shareable=disk.find("shareable") is not None,
            )
        )
    return tuple(found)


def is_same_machine(uri: str) -> bool:
    """True when a libvirt URI reaches a daemon on this machine (unix socket or loopback)."""
    parts = urlsplit(uri)
    transport = parts.scheme.partition("+")[2]
    if transport == "unix":
        return True
    return (parts.hostname or "") in _LOCAL_HOSTS and transport not in ("ssh", "libssh", "libssh2")


def plan_migration(
    request: MigrationRequest, disks: tuple[DiskInfo, ...], persistent: bool = True
) -> MigrationPlan:
    """Flags and parameters for ``migrateToURI3``; a persistent definition moves with the VM.

    VIR_MIGRATE_UNSAFE is set only when a writable disk would otherwise make libvirt refuse
    AND the destination daemon runs on this machine, so that both sides open the very same
    file. On separate machines libvirt's own safety check stays in force (shared storage
    passes it, local storage needs ``copy_storage``).
    """
    flags = libvirt.VIR_MIGRATE_PEER2PEER
    if persistent:  # otherwise the source keeps a shut-off copy the manager would count
        flags |= libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    if request.live:
        flags |= libvirt.VIR_MIGRATE_LIVE
    if request.auto_converge:
        flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
    params: dict[str, str | int] = {}
    if request.migration_uri:
        params[libvirt.VIR_MIGRATE_PARAM_URI] = request.migration_uri
    if request.bandwidth_cap_bps > 0:
        mib_per_s = max(1, request.bandwidth_cap_bps // 8 // _MIB)
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = mib_per_s
    writable = [disk for disk in disks if disk.writable_local]
    if request.copy_storage and writable:
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
        return MigrationPlan(flags, params)
    if writable and is_same_machine(request.destination_uri):
        names = ", ".join(f"{d.target} ({d.source})" for d in writable)
        reason = f"VIR_MIGRATE_UNSAFE: writable disk {names} is the same file on both sides"
        return MigrationPlan(flags | libvirt.VIR_MIGRATE_UNSAFE, params, reason)
    return MigrationPlan(flags, params)


def progress_from_job_stats(stats: dict[str, int]) -> MigrationProgress | None:
    """Read ``virDomainGetJobStats``; None when no job runs (not started yet, or finished)."""
    if int(stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE)) == libvirt.VIR_DOMAIN_JOB_NONE:
        return None
    processed = int(stats.get("data_processed", stats.get("memory_processed", 0)))
    remaining = int(stats.get("data_remaining", stats.get("memory_remaining", 0)))
    return MigrationProgress(processed, remaining)


def job_from_completed_stats(stats: dict[str, int]) -> MigrationJob | None:
    """Read ``virDomainGetJobStats(..., COMPLETED)`` of a finished migration; None when libvirt
    kept no completed migration job (no time elapsed, or a job that was not a success)."""
    kind = int(stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE))
    elapsed = int(stats.get("time_elapsed", 0))
    if kind != libvirt.VIR_DOMAIN_JOB_COMPLETED or elapsed <= 0:
        return None
    return MigrationJob(
        elapsed_ms=elapsed,
        memory_processed_bytes=max(0, int(stats.get("memory_processed", 0))),
        memory_normal_bytes=max(0, int(stats.get("memory_normal_bytes", 0))),
        downtime_ms=max(0, int(stats.get("downtime", 0))),
        iterations=max(0, int(stats.get("memory_iteration", 0))),
    )
