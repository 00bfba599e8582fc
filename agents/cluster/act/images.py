"""How particular VMs start and stop: the table the driver reads for BOOT_VM and SHUTDOWN_VM.

A boot is a cold start unless a memory file is set for the VM (it is restored from that file,
`RestoreCommand`); a stop is a guest shutdown unless a stop mode is set (its memory saved to
a file, `SaveCommand`, or powered off at once, `DestroyCommand`). Whoever plans such a boot or
stop (memory checkpoints, in the jobs layer) fills the table around its plan; the service
runtime gives the same table to the driver, which only reads it. The action stays a BOOT_VM or
SHUTDOWN_VM plan through the applier either way: checked, journaled and holding its VMs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class StopHow(enum.Enum):
    SHUTDOWN = "shutdown"
    """The guest shuts down (ACPI): the default."""
    SAVE = "save"
    """The memory is written to a file and the domain stops (libvirt's save)."""
    DESTROY = "destroy"
    """Powered off at once: its memory is about to be replaced (a rollback to a checkpoint)."""


@dataclass(frozen=True, slots=True)
class StopMode:
    how: StopHow = StopHow.SHUTDOWN
    path: str = ""
    """The memory file of a SAVE."""


SHUTDOWN = StopMode()


class VmImages:
    """vm uuid -> the memory file its next boot restores, and how its next stop is done."""

    def __init__(self) -> None:
        self._boot: dict[str, str] = {}
        self._stop: dict[str, StopMode] = {}

    def boot_image(self, vm_uuid: str) -> str:
        """The memory file the VM's next boot restores; '' for a cold start."""
        return self._boot.get(vm_uuid, "")

    def set_boot_image(self, vm_uuid: str, memory_path: str) -> None:
        """Empty `memory_path`: a cold start again."""
        if memory_path:
            self._boot[vm_uuid] = memory_path
        else:
            self._boot.pop(vm_uuid, None)

    def stop_mode(self, vm_uuid: str) -> StopMode:
        return self._stop.get(vm_uuid, SHUTDOWN)

    def set_stop_mode(self, vm_uuid: str, mode: StopMode) -> None:
        """`SHUTDOWN`: the default again."""
        if mode.how is StopHow.SAVE and not mode.path:
            raise ValueError(f"a save of VM {vm_uuid} needs the path of its memory file")
        if mode == SHUTDOWN:
            self._stop.pop(vm_uuid, None)
        else:
            self._stop[vm_uuid] = mode
