"""Node-local disks of a submitted VM: its qcow2 overlay and its cloud-init seed ISO.

Used when the cluster has no storage shared by its nodes: the manager builds the seed (it owns
the job spec) and sends its bytes; the agent only runs qemu-img and writes a file, so it needs
no knowledge of jobs or cloud-init. Idempotent by effect: an overlay already there is kept (it
may hold the VM's writes since an earlier boot), the seed is rewritten atomically only when its
bytes differ. Every failure is a HypervisorError with one line naming the path and the reason.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from vmgrid.agents.model import PrepareDisksCommand
from vmgrid.agents.node.hypervisor import HypervisorError

QEMU_IMG_TIMEOUT_S = 60.0


def overlay_command(backing_file: str, overlay_path: str | Path) -> list[str]:
    """The ``qemu-img`` argv that creates a member's qcow2 overlay on its image."""
    return [
        "qemu-img",
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        "qcow2",
        "-b",
        backing_file,
        str(overlay_path),
    ]


def prepare_disks(command: PrepareDisksCommand) -> str:
    """Create the overlay and write the seed; returns what was done, for the result message."""
    for name in ("overlay_path", "backing_file", "seed_path"):
        path = getattr(command, name)
        if not os.path.isabs(path):
            raise HypervisorError(f"{name} {path!r} is not absolute; give an absolute path")
    if not command.seed_iso:
        raise HypervisorError(f"seed_iso for {command.seed_path!r} is empty; send the ISO bytes")
    overlay, seed = Path(command.overlay_path), Path(command.seed_path)
    try:
        created = _overlay(overlay, command.backing_file)
        written = _seed(seed, command.seed_iso)
    except OSError as exc:
        raise HypervisorError(f"{exc.filename or overlay.parent}: {exc.strerror}") from None
    return (
        f"overlay {overlay} {'created' if created else 'kept'}, "
        f"seed {seed} {'written' if written else 'unchanged'}"
    )


def _overlay(overlay: Path, backing_file: str) -> bool:
    """Create the overlay unless it exists; via a temporary name so a crash leaves no half."""
    if overlay.exists():
        return False
    if not os.path.isfile(backing_file):
        raise HypervisorError(f"backing file {backing_file!r} is not a file on this node")
    overlay.parent.mkdir(parents=True, exist_ok=True)
    tmp = overlay.with_name(overlay.name + ".tmp")
    argv = overlay_command(backing_file, tmp)
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True, timeout=QEMU_IMG_TIMEOUT_S)
    except FileNotFoundError:
        raise HypervisorError("qemu-img is not installed on this node") from None
    except subprocess.CalledProcessError as exc:
        reason = (exc.stderr or "").strip().splitlines()[-1:] or [f"exit {exc.returncode}"]
        raise HypervisorError(f"qemu-img create {overlay}: {reason[0]}") from None
    except subprocess.TimeoutExpired:
        raise HypervisorError(
            f"qemu-img create {overlay}: no answer in {QEMU_IMG_TIMEOUT_S:g} s"
        ) from None
    tmp.replace(overlay)
    _own_like_parent(overlay)
    return True


def _seed(seed: Path, data: bytes) -> bool:
    """Write the seed ISO unless the same bytes are there already."""
    if seed.is_file() and seed.read_bytes() == data:
        return False
    seed.parent.mkdir(parents=True, exist_ok=True)
    tmp = seed.with_name(seed.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(seed)
    _own_like_parent(seed)
    return True


def _own_like_parent(path: Path) -> None:
    """As root, give a file its directory's owner (QEMU may run as that user)."""
    if os.geteuid() != 0:
        return
    st = path.parent.stat()
    os.chown(path, st.st_uid, st.st_gid)
