"""The unprivileged user that runs the lab's libvirt daemons, and its access to devices.

As root, libvirtd only runs in system mode, so each lab host is a session-mode daemon of an
unprivileged user. That user needs /dev/kvm (else guests fall back to TCG) and /dev/net/tun
(for tap interfaces). Access is granted through the device's group, or an ACL when the
device belongs to root's group; device modes are never changed.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from vmgrid.lab.errors import LabError

DEFAULT_USER = "vmgridlab"
KVM_DEVICE = Path("/dev/kvm")
TUN_DEVICE = Path("/dev/net/tun")
QEMU_BINARY = "qemu-system-x86_64"
_KVM_GET_API_VERSION = 0xAE00
_KVM_CREATE_VM = 0xAE01
_KVM_API_VERSION = 12


@dataclass(frozen=True)
class LabUser:
    """The account the lab daemons run as; `privileged` is False when the lab runs as that
    user itself (not root), in which case no account or device change is attempted."""

    name: str
    uid: int
    gid: int
    privileged: bool


def warn(message: str) -> None:
    print(f"vmgrid-lab: warning: {message}", file=sys.stderr)


def ensure_user(name: str = DEFAULT_USER) -> LabUser:
    """The lab user, created as a system account when missing (root only)."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return LabUser(me.pw_name, me.pw_uid, me.pw_gid, privileged=False)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", name],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        try:
            entry = pwd.getpwnam(name)  # a concurrent start may have created it meanwhile
        except KeyError:
            raise LabError(
                f"cannot create lab user {name!r}: {result.stderr.strip() or 'useradd failed'}"
            ) from None
    return LabUser(entry.pw_name, entry.pw_uid, entry.pw_gid, privileged=True)


def user_can_rw(user: LabUser, path: Path) -> bool:
    """Whether `user` may open `path` read-write, judged from its mode, groups and ACL-free
    permission bits (the kernel's own rule for non-root users)."""
    try:
        st = path.stat()
    except OSError:
        return False
    mode = st.st_mode
    if user.uid == st.st_uid:
        return bool(mode & stat.S_IRUSR and mode & stat.S_IWUSR)
    if st.st_gid in os.getgrouplist(user.name, user.gid) and mode & stat.S_IRGRP:
        return bool(mode & stat.S_IWGRP) or _acl_grants(user, path)
    return bool(mode & stat.S_IROTH and mode & stat.S_IWOTH) or _acl_grants(user, path)


def _acl_grants(user: LabUser, path: Path) -> bool:
    if shutil.which("getfacl") is None:
        return False
    out = subprocess.run(
        ["getfacl", "-cp", str(path)], capture_output=True, text=True, check=False
    ).stdout
    return f"user:{user.name}:rw" in out


def grant_device(user: LabUser, device: Path) -> bool:
    """Give `user` read-write access to `device`; True when it has it afterwards."""
    if not device.exists():
        return False
    if user_can_rw(user, device) or not user.privileged:
        return user_can_rw(user, device)
    st = device.stat()
    if st.st_gid != 0 and st.st_mode & stat.S_IRGRP and st.st_mode & stat.S_IWGRP:
        group = grp.getgrgid(st.st_gid).gr_name
        subprocess.run(["usermod", "-aG", group, user.name], capture_output=True, check=False)
    elif shutil.which("setfacl") is None:
        raise LabError(
            f"{device} belongs to root's group, so user {user.name} needs an ACL on it, and "
            "setfacl is not installed (Debian package acl; `make install` installs it)"
        )
    else:
        subprocess.run(
            ["setfacl", "-m", f"u:{user.name}:rw", str(device)], capture_output=True, check=False
        )
    return user_can_rw(user, device)


def kvm_works() -> bool:
    """Whether this kernel can create a KVM virtual machine (not merely has /dev/kvm)."""
    try:
        fd = os.open(KVM_DEVICE, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if fcntl.ioctl(fd, _KVM_GET_API_VERSION, 0) != _KVM_API_VERSION:
            return False
        os.close(fcntl.ioctl(fd, _KVM_CREATE_VM, 0))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def hypervisor_unavailable_reason() -> str | None:
    """Why no guest can run here at all (neither KVM nor TCG), or None when one can."""
    if shutil.which(QEMU_BINARY) is None:
        return f"{QEMU_BINARY} is not installed (Debian package qemu-system-x86), so neither KVM nor TCG can run"
    if shutil.which("libvirtd") is None and not Path("/usr/sbin/libvirtd").exists():
        return (
            "libvirtd is not installed (Debian packages libvirt-daemon libvirt-daemon-driver-qemu)"
        )
    return None
