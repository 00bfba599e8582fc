"""First-boot configuration of a member VM: a cloud-init NoCloud seed ISO and its libvirt XML.

The seed is an ISO 9660 volume labelled ``cidata`` holding ``user-data`` (the user, its SSH key,
the NFS mounts and the hostname) and ``meta-data`` (instance id, hostname). ISO 9660 alone would
mangle those names to ``USER_DAT.;1``; Joliet and Rock Ridge carry the real names, which is what
cloud-init looks up. ``user-data`` is written as JSON after the ``#cloud-config`` line: JSON is
YAML, so cloud-init reads it, and we need no YAML library to write or to check it.

`domain_xml` builds the domain for a member: a qcow2 overlay on the image's backing file, the seed
as a read-only CD-ROM, and either ``kvm``/``qemu`` or the libvirt ``test`` driver's domain type.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException
from vmgrid.agents.jobmodel.errors import SeedError
from vmgrid.agents.jobmodel.spec import JobSpec

VOLUME_ID = "cidata"
USER_DATA = "user-data"
META_DATA = "meta-data"
_ISO_NAMES = {USER_DATA: "/USERDATA.;1", META_DATA: "/METADATA.;1"}
DOMAIN_TYPES = ("kvm", "qemu", "test")


@dataclass(frozen=True)
class SeedContent:
    """What a seed ISO holds, as read back: its volume id and its files by Rock Ridge name."""

    volume_id: str
    files: dict[str, str]

    def cloud_config(self) -> dict[str, Any]:
        """The parsed ``user-data`` (after its ``#cloud-config`` header line)."""
        header, _, body = self.files[USER_DATA].partition("\n")
        if header.strip() != "#cloud-config":
            raise SeedError(f"user-data starts with {header!r}; expected '#cloud-config'")
        parsed: dict[str, Any] = json.loads(body)
        return parsed


def user_data(spec: JobSpec, hostname: str) -> str:
    """The ``#cloud-config`` for one member of `spec`."""
    config: dict[str, Any] = {
        "hostname": hostname,
        "preserve_hostname": False,
        "users": [
            {
                "name": spec.user,
                "shell": "/bin/bash",
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "lock_passwd": True,
                "ssh_authorized_keys": [spec.ssh_key],
            }
        ],
        "ssh_pwauth": False,
    }
    if spec.nfs:
        config["packages"] = ["nfs-common"]
        config["package_update"] = True
        config["mounts"] = [[m.source, m.mountpoint, "nfs", m.options, "0", "0"] for m in spec.nfs]
    return "#cloud-config\n" + json.dumps(config, indent=2, sort_keys=True) + "\n"


def meta_data(instance_id: str, hostname: str) -> str:
    """NoCloud meta-data; a new `instance_id` makes cloud-init run its first-boot modules again."""
    return f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n"


def seed_iso_bytes(spec: JobSpec, hostname: str, instance_id: str) -> bytes:
    """The seed ISO of one member, in memory (the coordinator ships it to the node's agent)."""
    files = {USER_DATA: user_data(spec, hostname), META_DATA: meta_data(instance_id, hostname)}
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=VOLUME_ID)
    for name, text in files.items():
        data = text.encode("utf-8")
        iso.add_fp(
            io.BytesIO(data),
            len(data),
            iso_path=_ISO_NAMES[name],
            rr_name=name,
            joliet_path=f"/{name}",
        )
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


def write_seed_iso(spec: JobSpec, hostname: str, instance_id: str, path: str | Path) -> Path:
    """Write the seed ISO of one member to `path` (atomically: temp file, then rename)."""
    dest = Path(path)
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        tmp.write_bytes(seed_iso_bytes(spec, hostname, instance_id))
        tmp.replace(dest)
    except OSError as exc:
        raise SeedError(f"cannot write seed ISO {str(dest)!r}: {exc.strerror}") from None
    return dest


def read_seed_iso(source: str | Path | bytes) -> SeedContent:
    """Read a seed ISO (a path or its bytes) back: volume id and files by Rock Ridge name."""
    data = source if isinstance(source, bytes) else _read(Path(source))
    iso = pycdlib.PyCdlib()
    try:
        iso.open_fp(io.BytesIO(data))
        volume = iso.pvd.volume_identifier.decode("ascii", "replace").strip()
        files: dict[str, str] = {}
        for child in iso.list_children(rr_path="/"):
            if child.is_dir() or child.rock_ridge is None:
                continue
            name = child.rock_ridge.name().decode("utf-8")
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, rr_path=f"/{name}")
            files[name] = out.getvalue().decode("utf-8")
        iso.close()
    except PyCdlibException as exc:
        raise SeedError(f"not a readable seed ISO: {exc}") from None
    return SeedContent(volume, files)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SeedError(f"cannot read seed ISO {str(path)!r}: {exc.strerror}") from None


def cdrom_disk_xml(iso_path: str | Path, target_dev: str = "hdc", bus: str = "ide") -> str:
    """The ``<disk device='cdrom'>`` that attaches a seed ISO read-only."""
    return ET.tostring(_cdrom(str(iso_path), target_dev, bus), encoding="unicode")


def domain_xml(
    spec: JobSpec,
    vm_name: str,
    *,
    overlay_path: str | Path,
    seed_path: str | Path,
    domain_type: str = "kvm",
    uuid: str = "",
    network: str = "",
    job_id: str = "",
) -> str:
    """Domain XML of member `vm_name` of `spec`.

    `domain_type` ``test`` targets libvirt's test driver (nodes simulated in demos and tests);
    `network` names a libvirt network to attach (none when empty), or ``bridge:NAME`` a host
    bridge (``<interface type='bridge'>``; the lab's guest network is one).
    """
    if domain_type not in DOMAIN_TYPES:
        raise SeedError(f"domain type {domain_type!r} is not supported; accepted: {DOMAIN_TYPES}")
    if vm_name not in spec.members:
        raise SeedError(f"VM {vm_name!r} is not a member of job {spec.name!r}: {spec.members}")
    dom = ET.Element("domain", type=domain_type)
    ET.SubElement(dom, "name").text = vm_name
    if uuid:
        ET.SubElement(dom, "uuid").text = uuid
    ET.SubElement(dom, "description").text = f"vmgrid job {spec.name} {job_id}".strip()
    ET.SubElement(dom, "memory", unit="MiB").text = str(spec.memory_mib)
    ET.SubElement(dom, "currentMemory", unit="MiB").text = str(spec.memory_mib)
    ET.SubElement(dom, "vcpu").text = str(spec.vcpus)
    os_el = ET.SubElement(dom, "os")
    if domain_type == "test":
        ET.SubElement(os_el, "type").text = "hvm"
    else:
        ET.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
        ET.SubElement(os_el, "boot", dev="hd")
        ET.SubElement(ET.SubElement(dom, "features"), "acpi")
    devices = ET.SubElement(dom, "devices")
    devices.append(_overlay_disk(str(overlay_path), spec.backing_file))
    devices.append(_cdrom(str(seed_path), "hdc", "ide"))
    if network:
        devices.append(_nic(network))
    if domain_type != "test":
        serial = ET.SubElement(devices, "serial", type="pty")
        ET.SubElement(serial, "log", file=console_log_path(overlay_path), append="on")
    return ET.tostring(dom, encoding="unicode")


def console_log_path(overlay_path: str | Path) -> str:
    """Where a member's serial console is kept (beside its overlay, on every node that runs
    it): the kernel's and the guest's console messages, appended across boots and migrations,
    for a guest that stops answering."""
    return str(Path(overlay_path).with_suffix(".console.log"))


def _nic(network: str) -> ET.Element:
    kind, sep, bridge = network.partition(":")
    if sep and kind == "bridge":
        if not bridge:
            raise SeedError(f"network {network!r}: accepted: a libvirt network or bridge:NAME")
        nic = ET.Element("interface", type="bridge")
        ET.SubElement(nic, "source", bridge=bridge)
    else:
        nic = ET.Element("interface", type="network")
        ET.SubElement(nic, "source", network=network)
    ET.SubElement(nic, "model", type="virtio")
    return nic


def _overlay_disk(overlay: str, backing: str) -> ET.Element:
    disk = ET.Element("disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="qcow2")
    ET.SubElement(disk, "source", file=overlay)
    store = ET.SubElement(disk, "backingStore", type="file")
    ET.SubElement(store, "format", type="qcow2")
    ET.SubElement(store, "source", file=backing)
    ET.SubElement(disk, "target", dev="vda", bus="virtio")
    return disk


def _cdrom(iso_path: str, target_dev: str, bus: str) -> ET.Element:
    disk = ET.Element("disk", type="file", device="cdrom")
    ET.SubElement(disk, "driver", name="qemu", type="raw")
    ET.SubElement(disk, "source", file=iso_path)
    ET.SubElement(disk, "target", dev=target_dev, bus=bus)
    ET.SubElement(disk, "readonly")
    return disk
