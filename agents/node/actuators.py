"""Commands from the manager, executed on the hypervisor, each exactly once per command id.

A command is idempotent twice over. By id: a re-sent id (after a reconnect) is answered
from the result cache, or with RUNNING while it is still executing, and never executed
again. By effect: starting a running VM, or destroying a stopped one, succeeds as a no-op,
because the manager asks for a state, not for a transition. A failure of any kind becomes
a FAILED result with a one-line message; the agent never dies of a command.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from vmgrid.agents import model
from vmgrid.agents.node.disks import prepare_disks
from vmgrid.agents.node.hypervisor import DomainNotFound, Hypervisor, HypervisorError
from vmgrid.agents.node.migrating import migrate
from vmgrid.agents.node.migration import MigrationProgress

log = logging.getLogger(__name__)

T = TypeVar("T")
RunBlocking = Callable[[Callable[[], Any]], Awaitable[Any]]
_SnapshotCommand = (
    model.CreateSnapshotCommand
    | model.RevertSnapshotCommand
    | model.DeleteSnapshotCommand
    | model.ListSnapshotsCommand
)
_SNAPSHOT_COMMANDS = (
    model.CreateSnapshotCommand,
    model.RevertSnapshotCommand,
    model.DeleteSnapshotCommand,
    model.ListSnapshotsCommand,
)
_LEAVE_VM_STATES = (
    model.AbortMigrationCommand,
    model.CreateSnapshotCommand,
    model.DeleteSnapshotCommand,
    model.ListSnapshotsCommand,
    model.PrepareDisksCommand,
)
"""Commands after which no VM's state or placement differs, so no report need precede the result."""
_KIND_NAMES: dict[type[Any], str] = {
    model.MigrateCommand: "migration",
    model.AbortMigrationCommand: "abort",
    model.CreateSnapshotCommand: "snapshot",
    model.RevertSnapshotCommand: "snapshot revert",
    model.DeleteSnapshotCommand: "snapshot delete",
    model.ListSnapshotsCommand: "snapshot list",
    model.SaveCommand: "save",
    model.RestoreCommand: "restore",
    model.PrepareDisksCommand: "disk preparation",
}


@dataclass(frozen=True)
class Outcome:
    """What a succeeded command reports besides its state."""

    message: str
    vm_uuid: str = ""
    snapshot_names: tuple[str, ...] = ()
    migration_job: model.MigrationJob | None = None


async def _in_thread(call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call)


class Actuators:
    """Dispatches commands to the hypervisor and remembers final results by command id."""

    def __init__(
        self,
        hypervisor: Hypervisor,
        publish: Callable[[model.CommandResult], None],
        run_blocking: RunBlocking = _in_thread,
        cache_size: int = 1024,
        report_first: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`report_first`, when given, is awaited after a command that may change VMs' states
        and before its final result is published: the agent queues a fresh report there, so the
        manager's state shows the command's effect by the time it reads the result."""
        self._hypervisor = hypervisor
        self._publish = publish
        self._report_first = report_first
        self._run_blocking = run_blocking
        self._cache_size = cache_size
        self._done: OrderedDict[str, model.CommandResult] = OrderedDict()
        self._running: dict[str, asyncio.Task[None]] = {}
        self.done_listeners: list[Callable[[model.Command, model.CommandResult], None]] = []
        """Called with each command and its final result (metrics)."""

    def submit(self, command: model.Command) -> model.CommandResult:
        """Start a new command, or answer for a known id; the final result is published."""
        cached = self._done.get(command.command_id)
        if cached is not None:
            return cached
        if command.command_id in self._running:
            return self._result(command, model.CommandState.RUNNING, "already running")
        task = asyncio.get_running_loop().create_task(self._execute(command))
        self._running[command.command_id] = task
        task.add_done_callback(lambda _t: self._running.pop(command.command_id, None))
        return self._result(command, model.CommandState.ACCEPTED, "")

    def cached(self, command_id: str) -> model.CommandResult | None:
        return self._done.get(command_id)

    async def drain(self) -> None:
        """Wait for commands in flight, e.g. before a clean shutdown."""
        if self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _execute(self, command: model.Command) -> None:
        try:
            outcome = await self._apply(command)
            result = self._result(command, model.CommandState.SUCCEEDED, outcome.message)
            result = dataclasses.replace(
                result,
                vm_uuid=outcome.vm_uuid or result.vm_uuid,
                snapshot_names=outcome.snapshot_names,
                migration_job=outcome.migration_job,
            )
        except HypervisorError as exc:
            result = self._result(command, model.CommandState.FAILED, _failure(command, exc))
        except Exception as exc:  # a bug must cost one command, not the agent
            log.exception("command %s crashed", command.command_id)
            result = self._result(command, model.CommandState.FAILED, f"internal error: {exc}")
        if self._report_first is not None and not isinstance(command, _LEAVE_VM_STATES):
            try:  # before the result is cached too: a re-sent id meanwhile gets RUNNING
                await self._report_first()
            except Exception:  # the result matters more than the report before it
                log.exception("report before the result of %s failed", command.command_id)
        self._done[command.command_id] = result
        while len(self._done) > self._cache_size:
            self._done.popitem(last=False)
        self._publish(result)
        for listener in self.done_listeners:
            listener(command, result)

    async def _apply(self, command: model.Command) -> Outcome:
        """Run one command and say what it did."""
        hv = self._hypervisor
        if isinstance(command, model.DefineCommand):
            uuid = await self._call(lambda: hv.define(command.domain_xml))
            return Outcome(f"defined {uuid}", str(uuid))
        if isinstance(command, model.RestoreCommand):
            return await self._restore(command.path)
        if isinstance(command, model.PrepareDisksCommand):
            return Outcome(await self._call(lambda: prepare_disks(command)))
        vm = command.vm_uuid
        if isinstance(command, model.UndefineCommand):
            return await self._undefine(vm)
        if isinstance(command, model.MigrateCommand):
            message, job = await migrate(hv, command, self._call, self._progress(command))
            return Outcome(message, migration_job=job)
        if isinstance(command, model.AbortMigrationCommand):
            aborted = await self._call(lambda: hv.abort_migration(vm))
            return Outcome("migration aborted" if aborted else "no migration was running")
        if isinstance(command, _SNAPSHOT_COMMANDS):
            return await self._snapshot(command)
        state = await self._call(lambda: hv.domain_state(vm))
        if isinstance(command, model.StartCommand):
            return await self._transition(
                state in model.RUNNING_STATES, "running", lambda: hv.start(vm)
            )
        if isinstance(command, model.ShutdownCommand | model.DestroyCommand):
            stop = hv.shutdown if isinstance(command, model.ShutdownCommand) else hv.destroy
            return await self._transition(
                state is model.VmState.SHUT_OFF, "shut off", lambda: stop(vm)
            )
        if isinstance(command, model.SaveCommand):
            return await self._save(vm, command.path, state)
        if state not in model.RUNNING_STATES | {model.VmState.PAUSED}:
            verb = "suspend" if isinstance(command, model.SuspendCommand) else "resume"
            raise HypervisorError(f"VM {vm} is {state.value}; only a running VM can {verb}")
        if isinstance(command, model.SuspendCommand):
            return await self._transition(
                state is model.VmState.PAUSED, "paused", lambda: hv.suspend(vm)
            )
        return await self._transition(
            state in model.RUNNING_STATES, "running", lambda: hv.resume(vm)
        )

    async def _undefine(self, vm: str) -> Outcome:
        hv = self._hypervisor
        try:
            state = await self._call(lambda: hv.domain_state(vm))
        except DomainNotFound:
            return Outcome("already undefined")
        if state is not model.VmState.SHUT_OFF:
            raise HypervisorError(f"VM {vm} is {state.value}; destroy or shut it down first")
        await self._call(lambda: hv.undefine(vm))
        return Outcome("undefined")

    async def _snapshot(self, command: _SnapshotCommand) -> Outcome:
        hv, vm = self._hypervisor, command.vm_uuid
        if isinstance(command, model.ListSnapshotsCommand):
            names = await self._call(lambda: hv.list_snapshots(vm))
            return Outcome(f"{len(names)} snapshot(s)", snapshot_names=names)
        name = command.snapshot_name
        if not name:
            raise HypervisorError("snapshot_name is empty; name the snapshot")
        if isinstance(command, model.CreateSnapshotCommand):
            taken = await self._call(lambda: hv.create_snapshot(vm, name, command.description))
            return Outcome(f"snapshot {name} {'taken' if taken else 'already exists'}")
        if isinstance(command, model.RevertSnapshotCommand):
            await self._call(lambda: hv.revert_snapshot(vm, name))
            return Outcome(f"reverted to {name}")
        deleted = await self._call(lambda: hv.delete_snapshot(vm, name))
        return Outcome(f"snapshot {name} {'deleted' if deleted else 'already absent'}")

    async def _save(self, vm: str, path: str, state: model.VmState) -> Outcome:
        hv = self._hypervisor
        _check_path(path)
        if state is model.VmState.SHUT_OFF:
            if os.path.exists(path) and await self._call(lambda: hv.saved_vm(path)) == vm:
                return Outcome(f"already saved to {path}")
            raise HypervisorError(f"VM {vm} is shut off; only a running or paused VM can save")
        await self._call(lambda: hv.save(vm, path))
        return Outcome(f"saved to {path}")

    async def _restore(self, path: str) -> Outcome:
        hv = self._hypervisor
        _check_path(path)
        vm = await self._call(lambda: hv.saved_vm(path))
        with contextlib.suppress(DomainNotFound):
            if await self._call(lambda: hv.domain_state(vm)) is not model.VmState.SHUT_OFF:
                return Outcome(f"already restored from {path}", vm)
        vm = await self._call(lambda: hv.restore(path))
        return Outcome(f"restored from {path}", vm)

    async def _transition(self, already: bool, target: str, action: Callable[[], None]) -> Outcome:
        if already:
            return Outcome(f"already {target}")
        await self._call(action)
        return Outcome(target)

    async def _call(self, call: Callable[[], T]) -> T:
        result: T = await self._run_blocking(call)
        return result

    def _progress(self, command: model.Command) -> Callable[[MigrationProgress], None]:
        """Publish a RUNNING result for each progress reading of a long command."""

        def publish(progress: MigrationProgress) -> None:
            result = self._result(command, model.CommandState.RUNNING, "migrating")
            self._publish(
                dataclasses.replace(
                    result,
                    progress_fraction=progress.fraction,
                    data_processed_bytes=progress.data_processed_bytes,
                    data_remaining_bytes=progress.data_remaining_bytes,
                )
            )

        return publish

    def _result(
        self, command: model.Command, state: model.CommandState, message: str
    ) -> model.CommandResult:
        return model.CommandResult(
            command_id=command.command_id,
            state=state,
            progress_fraction=1.0 if state in model.FINAL_COMMAND_STATES else 0.0,
            message=message,
            simulated=self._hypervisor.simulated,
            vm_uuid=getattr(command, "vm_uuid", ""),
            updated_at_unix_ns=time.time_ns(),
        )


def _check_path(path: str) -> None:
    if not os.path.isabs(path):
        raise HypervisorError(f"path {path!r} is not absolute; give an absolute path on the node")


def _failure(command: model.Command, error: HypervisorError) -> str:
    """One line naming the command, the VM (or file) and the hypervisor's reason."""
    kind = _KIND_NAMES.get(type(command), type(command).__name__.removesuffix("Command").lower())
    subject = (
        getattr(command, "vm_uuid", "")
        or getattr(command, "path", "")
        or getattr(command, "overlay_path", "")
    )
    if isinstance(command, model.DefineCommand):
        return f"define failed: {error}"
    return f"{kind} of {subject} failed: {error}"
