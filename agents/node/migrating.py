"""Run one live migration from the agent: checks, the blocking call, progress while it runs.

``migrateToURI3`` blocks until the migration ends, so it runs in a worker thread while the
event loop polls the domain's job statistics every half second on another one and
publishes each reading as a RUNNING result. A migration whose VM already runs on the
destination (a retry after the first attempt finished) succeeds without doing anything.
Once it succeeded, the destination's completed job statistics go with the result: the
manager learns the migrations' fixed cost from libvirt's job time (not from the command's,
which also counts libvirt's peer-to-peer begin, prepare and confirm steps).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from vmgrid.agents import model
from vmgrid.agents.node.hypervisor import DomainNotFound, Hypervisor, HypervisorError
from vmgrid.agents.node.libvirt_hypervisor import SIMULATED_MIGRATION
from vmgrid.agents.node.migration import MigrationProgress, MigrationRequest

log = logging.getLogger(__name__)
T = TypeVar("T")
PROGRESS_PERIOD_S = 0.5
# Wider than the manager's MOVABLE_STATES: the agent also migrates a paused VM (libvirt moves
# it paused) and accepts a VM already marked migrating (a retried command).
_MOVABLE = model.MOVABLE_STATES | {model.VmState.PAUSED, model.VmState.MIGRATING}


class Caller(Protocol):
    """Runs a blocking hypervisor call off the event loop (the actuators' ``_call``)."""

    def __call__(self, call: Callable[[], T], /) -> Awaitable[T]: ...


async def migrate(
    hv: Hypervisor,
    command: model.MigrateCommand,
    call: Caller,
    on_progress: Callable[[MigrationProgress], None],
    period_s: float = PROGRESS_PERIOD_S,
) -> tuple[str, model.MigrationJob | None]:
    """Migrate ``command.vm_uuid``; returns the success message and libvirt's figures of the
    job (None for a retry that found the VM migrated, or when they cannot be read), raises
    HypervisorError."""
    if hv.simulated:
        raise HypervisorError(SIMULATED_MIGRATION)
    vm, destination = command.vm_uuid, command.destination_uri
    if not destination:
        raise HypervisorError("destination_uri is empty; give the destination's libvirt URI")
    try:
        state: model.VmState | None = await call(lambda: hv.domain_state(vm))
    except DomainNotFound:
        state = None
    if state not in _MOVABLE:
        if await call(lambda: hv.is_running_at(destination, vm)):
            return f"already running on {destination}", None
        here = "not defined" if state is None else state.value
        raise HypervisorError(f"VM {vm} is {here} here and not running on {destination}")
    request = MigrationRequest(
        destination_uri=destination,
        migration_uri=command.migration_uri,
        bandwidth_cap_bps=command.bandwidth_cap_bps,
        live=command.live,
        auto_converge=command.auto_converge,
        copy_storage=command.copy_storage,
        max_downtime_ms=command.max_downtime_ms,
    )
    job = asyncio.ensure_future(call(lambda: hv.migrate(vm, request)))
    await _watch(hv, vm, job, call, on_progress, period_s)
    note = job.result()
    message = f"migrated to {destination}" + (f" with {note}" if note else "")
    return message, await _completed_job(hv, vm, destination, call)


async def _completed_job(
    hv: Hypervisor, vm: str, destination: str, call: Caller
) -> model.MigrationJob | None:
    """The destination's figures of the migration just done; a failed reading costs the
    manager one sample to learn from, never the migration's success."""
    try:
        job: model.MigrationJob | None = await call(lambda: hv.completed_migration(destination, vm))
    except HypervisorError as exc:
        log.warning("no job statistics for the migration of %s: %s", vm, exc)
        return None
    return job


async def _watch(
    hv: Hypervisor,
    vm: str,
    job: asyncio.Future[Any],
    call: Caller,
    on_progress: Callable[[MigrationProgress], None],
    period_s: float,
) -> None:
    """Publish progress until the job ends; a failed reading is skipped, never fatal.

    The first reading comes soon after the start (a small guest may migrate in well under a
    period), the later ones every `period_s`.
    """
    best = 0.0
    wait_s = min(0.1, period_s)
    while True:
        done, _ = await asyncio.wait({job}, timeout=wait_s)
        wait_s = period_s
        if done:
            return
        try:
            progress: MigrationProgress | None = await call(lambda: hv.migration_progress(vm))
        except HypervisorError:
            continue  # the domain leaves this host at the very end
        if progress is not None and progress.fraction >= best:
            best = progress.fraction
            on_progress(progress)
