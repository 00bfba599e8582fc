"""libvirt's lifecycle events for the agent: its event loop (one daemon thread per process)
and the mapping of its (event, detail) pairs to the hypervisor seam's kinds."""

from __future__ import annotations

import threading

import libvirt
from vmgrid.agents.node.hypervisor import DomainEventKind

_EVENTS = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: DomainEventKind.DEFINED,
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: DomainEventKind.UNDEFINED,
    libvirt.VIR_DOMAIN_EVENT_STARTED: DomainEventKind.STARTED,
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: DomainEventKind.SUSPENDED,
    libvirt.VIR_DOMAIN_EVENT_RESUMED: DomainEventKind.RESUMED,
    libvirt.VIR_DOMAIN_EVENT_STOPPED: DomainEventKind.STOPPED,
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: DomainEventKind.SHUTDOWN,
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: DomainEventKind.SUSPENDED,
    libvirt.VIR_DOMAIN_EVENT_CRASHED: DomainEventKind.CRASHED,
}

_event_loop_lock = threading.Lock()
_event_loop_started = False


def ensure_event_loop() -> None:
    """Start libvirt's default event loop once per process, before any connection opens."""
    global _event_loop_started
    with _event_loop_lock:
        if _event_loop_started:
            return
        # libvirt prints every error to stderr by default; errors reach us as exceptions.
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        libvirt.virEventRegisterDefaultImpl()
        thread = threading.Thread(target=_run_event_loop, name="libvirt-events", daemon=True)
        thread.start()
        _event_loop_started = True


def _run_event_loop() -> None:
    while True:
        libvirt.virEventRunDefaultImpl()


def event_kind(event: int, detail: int) -> DomainEventKind | None:
    """Map a libvirt lifecycle (event, detail) pair; migrations are told apart by detail."""
    if event == libvirt.VIR_DOMAIN_EVENT_STARTED and detail == (
        libvirt.VIR_DOMAIN_EVENT_STARTED_MIGRATED
    ):
        return DomainEventKind.MIGRATED_IN
    if event == libvirt.VIR_DOMAIN_EVENT_STOPPED and detail == (
        libvirt.VIR_DOMAIN_EVENT_STOPPED_MIGRATED
    ):
        return DomainEventKind.MIGRATED_OUT
    return _EVENTS.get(event)
