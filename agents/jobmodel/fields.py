"""Validators for the primitive fields of a job spec: names, sizes, SSH keys, NFS, durations.

Each takes the field's dotted name so that its error names exactly what the user wrote.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass

from vmgrid.agents.jobmodel.errors import JobSpecError

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_HOST = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9.]{0,251}[A-Za-z0-9])?$")
_DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)


@dataclass(frozen=True, slots=True)
class NfsMount:
    """An NFS export mounted in every guest of the job at first boot."""

    server: str
    export: str
    mountpoint: str
    options: str = "defaults,_netdev"

    @property
    def source(self) -> str:
        return f"{self.server}:{self.export}"


def dns_label(field: str, value: object) -> str:
    """A VM or job name: it becomes the guest's hostname, hence a DNS label."""
    if not isinstance(value, str) or not _DNS_LABEL.match(value):
        raise JobSpecError(field, value, "accepted: a DNS label (a-z, 0-9, '-', at most 63 chars)")
    return value


def user_name(field: str, value: object) -> str:
    if not isinstance(value, str) or not _USER.match(value):
        raise JobSpecError(field, value, "accepted: a POSIX user name such as 'alice'")
    return value


def int_in(field: str, value: object, low: int, high: int, unit: str = "") -> int:
    """An integer in [low, high]; booleans and floats are refused (no silent truncation)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        suffix = f" {unit}" if unit else ""
        raise JobSpecError(field, value, f"accepted: an integer from {low} to {high}{suffix}")
    return value


def ssh_public_key(field: str, value: object) -> str:
    """An OpenSSH public key line whose blob decodes and names the same key type."""
    accepted = f"accepted: an OpenSSH public key line of type {', '.join(SSH_KEY_TYPES)}"
    if not isinstance(value, str):
        raise JobSpecError(field, value, accepted)
    parts = value.strip().split(None, 2)
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise JobSpecError(field, _short(value), accepted)
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise JobSpecError(
            field, _short(value), accepted + " (its key data is not base64)"
        ) from None
    if len(blob) < 4:
        raise JobSpecError(field, _short(value), accepted + " (its key data is truncated)")
    (size,) = struct.unpack(">I", blob[:4])
    if blob[4 : 4 + size] != parts[0].encode():
        raise JobSpecError(field, _short(value), accepted + " (its key data names another type)")
    return " ".join(parts)


def nfs_mount(field: str, value: object) -> NfsMount:
    """``{source = "server:/export", mountpoint = "/mnt/x"}`` or ``"server:/export /mnt/x"``."""
    accepted = "accepted: 'server:/export /mountpoint' or {source='server:/export', mountpoint=...}"
    options: object = "defaults,_netdev"
    source: object
    mountpoint: object
    if isinstance(value, str) and len(value.split()) == 2:
        source, mountpoint = value.split()
    elif isinstance(value, dict) and set(value) <= {"source", "mountpoint", "options"}:
        source, mountpoint = value.get("source"), value.get("mountpoint")
        options = value.get("options", options)
    else:
        raise JobSpecError(field, value, accepted)
    if not isinstance(source, str) or ":" not in source:
        raise JobSpecError(f"{field}.source", source, accepted)
    server, export = source.split(":", 1)
    if not _HOST.match(server) or not export.startswith("/"):
        raise JobSpecError(f"{field}.source", source, "accepted: 'host:/absolute/export'")
    if not isinstance(mountpoint, str) or not _absolute_dir(mountpoint):
        raise JobSpecError(f"{field}.mountpoint", mountpoint, "accepted: an absolute path, not /")
    if not isinstance(options, str) or not options or any(c.isspace() for c in options):
        raise JobSpecError(f"{field}.options", options, "accepted: comma-separated mount options")
    return NfsMount(server, export, mountpoint, options)


def duration_s(field: str, value: object, low_s: int) -> int:
    """Seconds, as an integer or a string such as ``"90s"``, ``"30m"``, ``"6h"``, ``"1d"``."""
    accepted = f"accepted: seconds >= {low_s} as an integer or '30m', '6h', '1d'"
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and (m := _DURATION.match(value.strip())):
        seconds = int(m.group(1)) * _UNIT_S[m.group(2)]
    else:
        raise JobSpecError(field, value, accepted)
    if seconds < low_s:
        raise JobSpecError(field, value, accepted)
    return seconds


def node_names(field: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise JobSpecError(field, value, "accepted: a list of node names")
    return tuple(dict.fromkeys(value))


def _absolute_dir(path: str) -> bool:
    return path.startswith("/") and path.rstrip("/") != "" and not any(c.isspace() for c in path)


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."
