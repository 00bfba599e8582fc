"""Tap devices: real per-VM network counters without any bridge or address plan."""

from __future__ import annotations

import subprocess
from pathlib import Path

from vmgrid.lab.errors import LabError

_MAX_IFNAME = 15


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def tap_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def create_tap(name: str, user: str) -> str:
    """Create tap `name` usable by `user` (QEMU opens it unprivileged) and bring it up."""
    if not name or len(name) > _MAX_IFNAME or "/" in name or " " in name:
        raise LabError(
            f"tap name {name!r} is invalid; accepted: 1..{_MAX_IFNAME} characters, no '/' or space"
        )
    if not tap_exists(name):
        result = _ip("tuntap", "add", "dev", name, "mode", "tap", "user", user)
        if result.returncode != 0:
            raise LabError(f"cannot create tap {name}: {result.stderr.strip()}")
    result = _ip("link", "set", name, "up")
    if result.returncode != 0:
        raise LabError(f"cannot bring tap {name} up: {result.stderr.strip()}")
    return name


def delete_tap(name: str) -> None:
    """Remove tap `name`; absent taps are fine (stop is idempotent)."""
    if tap_exists(name):
        _ip("tuntap", "del", "dev", name, "mode", "tap")
