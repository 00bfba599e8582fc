"""The libvirt calls behind migrate, snapshot and save/restore, on one domain or connection.

``LibvirtHypervisor`` looks domains up and turns libvirt errors into one-line
``HypervisorError``s; these functions hold what each action does and refuse early, with a
reason, what libvirt would refuse late or do wrongly. All of them block.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import libvirt
from vmgrid.agents.model import MigrationJob
from vmgrid.agents.node.hypervisor import HypervisorError, SnapshotNotFound
from vmgrid.agents.node.migration import (
    MigrationProgress,
    MigrationRequest,
    disks_of,
    job_from_completed_stats,
    plan_migration,
    progress_from_job_stats,
)

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

_XML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"})


def xml_text(text: str) -> str:
    """`text` escaped for an XML element or attribute (what html.escape does, without importing
    html and its entity tables, 0.3 MB, into every node agent)."""
    return text.translate(_XML_ESCAPES)


def parse_xml(text: str) -> Element:
    """The root element of an XML document libvirt gave (ElementTree is imported here, at the
    first command that needs it: an agent that only reports never loads it, 0.5 MB)."""
    import xml.etree.ElementTree as ET

    return ET.fromstring(text)


def migrate(dom: libvirt.virDomain, request: MigrationRequest) -> str:
    """Live-migrate peer to peer and return a note on any flag worth telling the operator."""
    plan = plan_migration(request, disks_of(dom.XMLDesc(0)), persistent=dom.isPersistent() == 1)
    if request.max_downtime_ms > 0:  # QEMU's downtime-limit: kept until the migration starts
        dom.migrateSetMaxDowntime(request.max_downtime_ms, 0)
    dom.migrateToURI3(request.destination_uri, plan.params, plan.flags)
    return plan.unsafe_reason


def migration_progress(dom: libvirt.virDomain) -> MigrationProgress | None:
    """The running job's progress, or None when no job runs."""
    return progress_from_job_stats(dom.jobStats())


def abort_migration(dom: libvirt.virDomain) -> bool:
    """Abort the running job; False when there was none to abort."""
    try:
        dom.abortJob()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID:
            return False  # "no job is active on the domain"
        raise
    return True


def completed_migration(uri: str, vm_uuid: str) -> MigrationJob | None:
    """The VM's completed migration job as the destination's libvirt at ``uri`` kept it (the
    source's went with the domain); None when it kept none. The statistics stay for other
    readers (``KEEP_COMPLETED``)."""
    conn = libvirt.open(uri)
    try:
        dom = conn.lookupByUUIDString(vm_uuid)
        flags = libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED | libvirt.VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED
        return job_from_completed_stats(dom.jobStats(flags))
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()


def is_running_at(uri: str, vm_uuid: str) -> bool:
    """Whether the VM is active on the hypervisor at ``uri`` (a short-lived connection)."""
    conn = libvirt.open(uri)
    try:
        try:
            dom = conn.lookupByUUIDString(vm_uuid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False
            raise
        return bool(dom.isActive())
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()


def internal_snapshot_refusal(domain_xml: str) -> str:
    """Why an internal snapshot cannot hold this domain; empty when it can.

    QEMU keeps internal snapshots (disk state and memory) inside qcow2 images, so every
    writable disk must be qcow2 and one qcow2 disk must exist to receive the memory.
    """
    disks = disks_of(domain_xml)
    if domain_xml and parse_xml(domain_xml).get("type") == "test":
        return ""  # the test driver keeps snapshots in memory
    writable_raw = [d for d in disks if d.writable_local and d.driver_type != "qcow2"]
    if writable_raw:
        names = ", ".join(f"{d.target} ({d.driver_type})" for d in writable_raw)
        return f"writable disk {names} is not qcow2"
    if not any(d.driver_type == "qcow2" for d in disks):
        return "it has no qcow2 disk (raw disks cannot hold internal snapshots)"
    return ""


def create_snapshot(dom: libvirt.virDomain, name: str, description: str) -> bool:
    """Take an internal snapshot; False when one of that name exists already."""
    if name in dom.snapshotListNames(0):
        return False
    refusal = internal_snapshot_refusal(dom.XMLDesc(0))
    if refusal:
        raise HypervisorError(
            f"cannot snapshot VM {dom.name()}: {refusal}; external memory+disk snapshots are "
            f"not taken because libvirt {_version()} cannot revert or delete them"
        )
    xml = (
        f"<domainsnapshot><name>{xml_text(name)}</name>"
        f"<description>{xml_text(description)}</description></domainsnapshot>"
    )
    dom.snapshotCreateXML(xml, 0)
    return True


def list_snapshots(dom: libvirt.virDomain) -> tuple[str, ...]:
    """Snapshot names, oldest first (parents before children within one second)."""
    snapshots = dom.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL)
    dated = sorted(snapshots, key=_creation_time)  # stable: keeps the topological order
    return tuple(snap.getName() for snap in dated)


def revert_snapshot(dom: libvirt.virDomain, name: str) -> None:
    """Revert to a snapshot; reverting to the current one again is allowed and harmless."""
    dom.revertToSnapshot(_snapshot(dom, name), 0)


def delete_snapshot(dom: libvirt.virDomain, name: str) -> bool:
    """Delete one snapshot (its children are kept); False when it does not exist."""
    try:
        snapshot = _snapshot(dom, name)
    except SnapshotNotFound:
        return False
    snapshot.delete(0)
    return True


def saved_vm_uuid(conn: libvirt.virConnect, path: str) -> str:
    """UUID of the domain a save image holds (read from the image's header)."""
    root = parse_xml(conn.saveImageGetXMLDesc(path, 0))
    return root.findtext("uuid", "").strip()


def _snapshot(dom: libvirt.virDomain, name: str) -> libvirt.virDomainSnapshot:
    try:
        return dom.snapshotLookupByName(name, 0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
            known = ", ".join(dom.snapshotListNames(0)) or "none"
            raise SnapshotNotFound(
                f"VM {dom.name()} has no snapshot {name!r}; it has: {known}"
            ) from exc
        raise


def _creation_time(snapshot: libvirt.virDomainSnapshot) -> int:
    text = parse_xml(snapshot.getXMLDesc(0)).findtext("creationTime", "0")
    return int(text)


def _version() -> str:
    version = libvirt.getVersion()
    return f"{version // 1_000_000}.{version // 1000 % 1000}.{version % 1000}"
