"""Tiny guests that need no operating system.

A guest is a 1 MiB disk whose boot sector either spins (`jmp $`: one vCPU fully busy, real
CPU time), halts with interrupts off (`cli; hlt`: idle), or counts (`count`: at boot it stores
the TSC at `COUNTER_ADDRESS + 4`, a stamp of that boot, then adds one to the 32-bit counter at
`COUNTER_ADDRESS` at each wake-up from `hlt`, i.e. each BIOS timer tick, 18.2 per second of
guest time; `read_counter` reads both through QEMU's monitor). Base disks are raw and attached
read-only, which libvirt accepts for live migration without shared storage; a writable
qcow2 overlay gives internal snapshots (but, being local writable storage, migrates only
with VIR_MIGRATE_UNSAFE).

Files created here take the owner of their directory, so that images made inside a lab
directory are usable by the lab user that runs QEMU.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from xml.sax.saxutils import quoteattr

import libvirt
from vmgrid.lab.errors import LabError
from vmgrid.lab.host import LabHost

DISK_BYTES = 1024 * 1024
_SECTOR_BYTES = 512
BOOT_CODE: dict[str, bytes] = {
    "spin": b"\xeb\xfe",  # jmp $
    "idle": b"\xfa\xf4\xeb\xfd",  # cli; hlt; jmp back to hlt
    "count": bytes.fromhex(
        "31c0 8ed8"  # xor ax, ax; mov ds, ax
        "0f31 66a3047e"  # rdtsc; mov [0x7e04], eax (the boot's stamp)
        "6631c0 66a3007e"  # xor eax, eax; mov [0x7e00], eax (the counter)
        "fb"  # sti: the BIOS timer (IRQ 0) wakes the hlt below 18.2 times a second
        "f4 66ff06007e ebf8"  # hlt; inc dword [0x7e00]; jmp back to hlt
    ),
}
COUNTER_ADDRESS = 0x7E00
"""Guest-physical address of a `count` guest's counter (its boot stamp follows it)."""
_QCOW2_MAGIC = b"QFI\xfb"


def _check_mode(mode: str) -> None:
    if mode not in BOOT_CODE:
        raise LabError(f"unknown guest mode {mode!r}; accepted: {', '.join(BOOT_CODE)}")


def boot_sector(mode: str) -> bytes:
    """The 512-byte boot sector that makes the guest spin or idle."""
    _check_mode(mode)
    sector = bytearray(_SECTOR_BYTES)
    code = BOOT_CODE[mode]
    sector[: len(code)] = code
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def _own_like_parent(path: Path) -> None:
    parent = path.parent.stat()
    if os.geteuid() == 0:
        os.chown(path, parent.st_uid, parent.st_gid)
    path.chmod(0o664)


def create_boot_disk(path: str | os.PathLike[str], mode: str) -> Path:
    """Write a raw 1 MiB disk that boots into `mode` ('spin' or 'idle')."""
    target = Path(path).absolute()
    sector = boot_sector(mode)
    with target.open("wb") as disk:
        disk.write(sector)
        disk.truncate(DISK_BYTES)
    _own_like_parent(target)
    return target


def create_overlay(base: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """A qcow2 overlay on a raw `base`: a writable disk that can hold internal snapshots."""
    base_path, target = Path(base).absolute(), Path(path).absolute()
    if not base_path.is_file():
        raise LabError(f"overlay base {base_path} does not exist; create it with create_boot_disk")
    result = subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base_path), "-F", "raw",
         str(target)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise LabError(f"qemu-img could not create {target}: {result.stderr.strip()}")
    _own_like_parent(target)
    return target


def disk_format(path: str | os.PathLike[str]) -> str:
    """'qcow2' or 'raw', from the file's magic rather than its name."""
    with Path(path).open("rb") as disk:
        return "qcow2" if disk.read(4) == _QCOW2_MAGIC else "raw"


def make_guest_xml(
    name: str,
    mode: str = "spin",
    memory_mib: int = 64,
    vcpus: int = 1,
    disk: str | os.PathLike[str] | None = None,
    tap: str | None = None,
    kvm: bool = True,
    cpuset: str | None = None,
) -> str:
    """Domain XML of a tiny guest booting `disk` (made with create_boot_disk/create_overlay).

    `mode` is recorded in the description; the behaviour comes from the disk. A raw disk is
    attached read-only (live-migratable), a qcow2 one writable (snapshots). `tap` names an
    existing tap device (create_tap) for real per-VM interface counters. `cpuset` (libvirt
    syntax, e.g. "0") pins the guest to those physical CPUs, so spinning guests load a
    "host" without starving the processes that manage it on the same machine.
    """
    _check_mode(mode)
    if memory_mib < 1 or vcpus < 1:
        raise LabError(f"guest {name!r}: memory_mib={memory_mib} vcpus={vcpus}; both must be >= 1")
    if disk is None:
        raise LabError(f"guest {name!r} needs a disk; create one with create_boot_disk")
    disk_path = Path(disk).absolute()
    fmt = disk_format(disk_path)
    readonly = "<readonly/>" if fmt == "raw" else ""
    interface = ""
    if tap is not None:
        interface = (
            f"<interface type='ethernet'><target dev={quoteattr(tap)} managed='no'/>"
            "<model type='virtio'/></interface>"
        )
    return (
        f"<domain type='{'kvm' if kvm else 'qemu'}'>"
        f"<name>{_text(name)}</name>"
        f"<description>vmgrid lab guest, mode={mode}</description>"
        f"<memory unit='MiB'>{memory_mib}</memory>"
        f"<vcpu{'' if cpuset is None else f' cpuset={quoteattr(cpuset)}'}>{vcpus}</vcpu>"
        "<os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>"
        "<features><acpi/></features>"
        "<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot>"
        "<on_crash>destroy</on_crash>"
        "<devices>"
        f"<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/>"
        f"<source file={quoteattr(str(disk_path))}/><target dev='vda' bus='virtio'/>"
        f"{readonly}</disk>"
        f"{interface}"
        "<memballoon model='none'/>"
        "</devices></domain>"
    )


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def define_and_start(host: LabHost, xml: str) -> libvirt.virDomain:
    """Define the guest persistently on `host` and start it (persistent, so that internal
    snapshots and migration with VIR_MIGRATE_PERSIST_DEST behave as on a real node)."""
    conn = host.connect()
    try:
        domain = conn.defineXML(xml)
        domain.create()
    except libvirt.libvirtError as error:
        raise LabError(f"cannot start guest on {host.name}: {error}") from error
    return domain


def read_counter(dom: libvirt.virDomain) -> tuple[int, int]:
    """(counter, boot stamp) of a running `count` guest, read from its memory through QEMU's
    monitor (a paused guest answers too)."""
    import libvirt_qemu

    command = f"xp /2wx {COUNTER_ADDRESS:#x}"
    out = libvirt_qemu.qemuMonitorCommand(
        dom, command, libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP
    )
    words = out.split(":", 1)[-1].split()
    if len(words) < 2:
        raise LabError(f"{command} on {dom.name()} answered {out.strip()!r}; expected two words")
    return int(words[0], 16), int(words[1], 16)
