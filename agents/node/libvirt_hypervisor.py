"""The libvirt implementation of the hypervisor seam.

Reads are bulk (one ``getAllDomainStats`` per pass) so that a host with many guests costs
one round trip per period. Lifecycle events come from libvirt's own event loop, run in a
daemon thread, so a VM that starts, stops or migrates is known at once rather than at the
next period. When libvirtd restarts, the close callback marks the connection down; the
agent then calls ``connect`` again with backoff, which also re-registers the events.

The test driver (``test:///path/node.xml``) accounts no CPU time nor traffic; samples from
it carry ``cpu_time_ns=None`` and the hypervisor reports itself ``simulated``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import libvirt
from vmgrid.agents.model import MigrationJob, VmState
from vmgrid.agents.node import libvirt_actions as actions
from vmgrid.agents.node.dirty_rate import NOT_MEASURED, DirtyRates
from vmgrid.agents.node.guest_memory import memory_arriving
from vmgrid.agents.node.hypervisor import (
    ConnectionCallback,
    DomainEvent,
    DomainEventCallback,
    DomainNotFound,
    DomainSample,
    HostInfo,
    HostSample,
    HypervisorError,
    HypervisorUnavailable,
)
from vmgrid.agents.node.libvirt_events import ensure_event_loop, event_kind
from vmgrid.agents.node.libvirt_stats import STATES, STATS, host_counters, interfaces_from_stats
from vmgrid.agents.node.migration import MigrationProgress, MigrationRequest
from vmgrid.agents.node.traffic_meter import MAX_CACHED_DOMAINS, domain_macs

SIMULATED_MIGRATION = "simulated nodes migrate through the manager"


class LibvirtHypervisor:
    """A host reached through one libvirt connection, reopened when it drops."""

    def __init__(self, uri: str, simulated: bool | None = None) -> None:
        self._uri = uri
        self._simulated = uri.startswith("test:") if simulated is None else simulated
        self._lock = threading.Lock()
        self._conn: libvirt.virConnect | None = None
        self._event_callback_id: int | None = None
        self._on_event: DomainEventCallback | None = None
        self._on_connection: ConnectionCallback | None = None
        self._macs: dict[str, tuple[str, ...]] = {}  # uuid -> NIC MACs, read once per domain
        self.dirty_rates = DirtyRates()
        """Dirty-rate calculations started every few periods (real hosts only, #16)."""

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def simulated(self) -> bool:
        return self._simulated

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def connect(self) -> None:
        ensure_event_loop()
        self.close()
        try:
            conn = libvirt.open(self._uri)
        except libvirt.libvirtError as exc:
            raise HypervisorUnavailable(
                f"cannot reach libvirt at {self._uri!r}: {_message(exc)}"
            ) from exc
        # Local drivers (test://, embedded qemu) have no keepalive; remote ones need it to
        # notice a dead libvirtd.
        with contextlib.suppress(libvirt.libvirtError):
            conn.setKeepAlive(5, 3)
        with contextlib.suppress(libvirt.libvirtError):
            conn.registerCloseCallback(self._closed, None)
        with self._lock:
            self._conn = conn
        if self._on_event is not None:
            self._register_events(conn)
        if self._on_connection is not None:
            self._on_connection(True, f"connected to {self._uri}")

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            callback_id, self._event_callback_id = self._event_callback_id, None
        if conn is None:
            return
        try:
            if callback_id is not None:
                conn.domainEventDeregisterAny(callback_id)
            conn.unregisterCloseCallback()
        except libvirt.libvirtError:
            pass
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()

    def subscribe(self, on_event: DomainEventCallback, on_connection: ConnectionCallback) -> None:
        self._on_event = on_event
        self._on_connection = on_connection
        if self._conn is not None and self._event_callback_id is None:
            self._register_events(self._conn)

    def host_info(self) -> HostInfo:
        conn = self._connection()
        with self._guard():
            info = conn.getInfo()
            return HostInfo(
                hostname=conn.getHostname(),
                uri=self._uri,
                hypervisor_type=conn.getType(),
                cpu_count=int(info[2]),
                cpu_mhz=int(info[3]),
                memory_mib=int(info[1]),
            )

    def sample(self) -> HostSample:
        conn = self._connection()
        dirty = None if self._simulated else self.dirty_rates
        with self._guard():
            records = conn.getAllDomainStats(STATS | (dirty.stats_wanted() if dirty else 0))
            host = host_counters(conn)
            domains = tuple(self._domain_sample(dom, stats) for dom, stats in records)
        if dirty is not None:
            dirty.sampled(records)
        return HostSample(monotonic_ns=time.monotonic_ns(), host=host, domains=domains)

    def domain_state(self, vm: str) -> VmState:
        dom = self._lookup(vm)
        with self._guard():
            return STATES.get(dom.state()[0], VmState.SHUT_OFF)

    def define(self, domain_xml: str) -> str:
        conn = self._connection()
        with self._guard():
            return str(conn.defineXML(domain_xml).UUIDString())

    def start(self, vm: str) -> None:
        self._call(vm, "create")

    def shutdown(self, vm: str) -> None:
        self._call(vm, "shutdown")

    def destroy(self, vm: str) -> None:
        self._call(vm, "destroy")

    def undefine(self, vm: str) -> None:
        # Snapshot metadata goes with the definition; internal snapshot data stays in the
        # qcow2 (a relocated VM's shared disk keeps its checkpoints).
        dom = self._lookup(vm)
        with self._guard():
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)

    def suspend(self, vm: str) -> None:
        self._call(vm, "suspend")

    def resume(self, vm: str) -> None:
        self._call(vm, "resume")

    def migrate(self, vm: str, request: MigrationRequest) -> str:
        if self._simulated:
            raise HypervisorError(SIMULATED_MIGRATION)
        dom = self._lookup(vm)
        with self._guard():
            return actions.migrate(dom, request)

    def migration_progress(self, vm: str) -> MigrationProgress | None:
        if self._simulated:
            return None
        dom = self._lookup(vm)
        with self._guard():
            return actions.migration_progress(dom)

    def abort_migration(self, vm: str) -> bool:
        if self._simulated:
            return False  # a simulated migration runs in the manager, never here
        dom = self._lookup(vm)
        with self._guard():
            return actions.abort_migration(dom)

    def is_running_at(self, uri: str, vm: str) -> bool:
        try:
            return actions.is_running_at(uri, vm)
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"cannot ask libvirt at {uri!r}: {_message(exc)}") from exc

    def completed_migration(self, uri: str, vm: str) -> MigrationJob | None:
        if self._simulated:
            return None
        try:
            return actions.completed_migration(uri, vm)
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"cannot ask libvirt at {uri!r}: {_message(exc)}") from exc

    def create_snapshot(self, vm: str, name: str, description: str) -> bool:
        dom = self._lookup(vm)
        with self._guard():
            return actions.create_snapshot(dom, name, description)

    def list_snapshots(self, vm: str) -> tuple[str, ...]:
        dom = self._lookup(vm)
        with self._guard():
            return actions.list_snapshots(dom)

    def revert_snapshot(self, vm: str, name: str) -> None:
        dom = self._lookup(vm)
        with self._guard():
            actions.revert_snapshot(dom, name)

    def delete_snapshot(self, vm: str, name: str) -> bool:
        dom = self._lookup(vm)
        with self._guard():
            return actions.delete_snapshot(dom, name)

    def save(self, vm: str, path: str) -> None:
        dom = self._lookup(vm)
        with self._guard():
            dom.save(path)

    def saved_vm(self, path: str) -> str:
        conn = self._connection()
        with self._guard():
            return actions.saved_vm_uuid(conn, path)

    def restore(self, path: str) -> str:
        conn = self._connection()
        with self._guard():
            conn.restore(path)
            return actions.saved_vm_uuid(conn, path)

    # -- internals -------------------------------------------------------------------

    def _connection(self) -> libvirt.virConnect:
        conn = self._conn
        if conn is None:
            raise HypervisorUnavailable(f"not connected to libvirt at {self._uri!r}")
        return conn

    def _guard(self) -> _LibvirtGuard:
        return _LibvirtGuard(self)

    def _lost(self, reason: str) -> None:
        with self._lock:
            lost = self._conn is not None
            self._conn = None
            self._event_callback_id = None
        if lost and self._on_connection is not None:
            self._on_connection(False, reason)

    def _closed(self, _conn: libvirt.virConnect, reason: int, _opaque: object) -> None:
        self._lost(f"libvirt at {self._uri!r} closed the connection (reason {reason})")

    def _lookup(self, vm: str) -> libvirt.virDomain:
        conn = self._connection()
        try:
            if is_uuid(vm):
                return conn.lookupByUUIDString(vm)
            return conn.lookupByName(vm)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise DomainNotFound(f"no VM named {vm!r} on {self._uri}") from exc
            with self._guard():
                raise

    def _call(self, vm: str, operation: str) -> None:
        dom = self._lookup(vm)
        with self._guard():
            getattr(dom, operation)()

    def _register_events(self, conn: libvirt.virConnect) -> None:
        try:
            self._event_callback_id = conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle, None
            )
        except libvirt.libvirtError as exc:
            raise HypervisorUnavailable(
                f"libvirt at {self._uri!r} refused event registration: {_message(exc)}"
            ) from exc

    def _lifecycle(
        self, _conn: libvirt.virConnect, dom: libvirt.virDomain, event: int, detail: int, _o: object
    ) -> None:
        kind = event_kind(event, detail)
        if kind is not None and self._on_event is not None:
            self._on_event(DomainEvent(dom.UUIDString(), dom.name(), kind, detail))

    def _domain_sample(self, dom: libvirt.virDomain, stats: dict[str, Any]) -> DomainSample:
        state = STATES.get(int(stats.get("state.state", -1)), VmState.SHUT_OFF)
        vcpus = stats.get("vcpu.current")
        memory_kib = stats.get("balloon.current")
        if vcpus is None or memory_kib is None:
            info = dom.info()
            vcpus = info[3] if vcpus is None else vcpus
            memory_kib = info[2] if memory_kib is None else memory_kib
        cpu_time = stats.get("cpu.time")
        dirty = None if self._simulated else self.dirty_rates.figures(dom.UUIDString())
        dirty, rss_kib = dirty or NOT_MEASURED, stats.get("balloon.rss")
        return DomainSample(
            uuid=dom.UUIDString(),
            name=dom.name(),
            state=state,
            vcpus=int(vcpus),
            memory_mib=int(memory_kib) // 1024,
            cpu_time_ns=None if self._simulated or cpu_time is None else int(cpu_time),
            interfaces=() if self._simulated else interfaces_from_stats(stats),
            macs=() if self._simulated else self._domain_macs(dom),
            rss_bytes=0 if self._simulated or rss_kib is None else int(rss_kib) * 1024,
            dirty_bytes_per_second=dirty.bytes_per_second,
            dirty_set_bytes=dirty.set_bytes,
            memory_arriving=memory_arriving(stats),
        )

    def _domain_macs(self, dom: libvirt.virDomain) -> tuple[str, ...]:
        """The NICs' MACs from the domain XML; cached by uuid (a NIC's MAC is fixed while the
        domain is defined), the cache trimmed to the domains still listed."""
        uuid = dom.UUIDString()
        cached = self._macs.get(uuid)
        if cached is None:
            cached = domain_macs(dom.XMLDesc(0))
            if len(self._macs) > MAX_CACHED_DOMAINS:
                self._macs.clear()
            self._macs[uuid] = cached
        return cached


class _LibvirtGuard:
    """Turn a libvirtError into a one-line HypervisorError, noticing a dead connection."""

    def __init__(self, owner: LibvirtHypervisor) -> None:
        self._owner = owner

    def __enter__(self) -> None:
        return None

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        if not isinstance(exc, libvirt.libvirtError):
            return
        conn = self._owner._conn
        alive = False
        if conn is not None:
            try:
                alive = conn.isAlive() == 1
            except libvirt.libvirtError:
                alive = False
        if not alive:
            self._owner._lost(f"lost libvirt at {self._owner.uri!r}: {_message(exc)}")
            raise HypervisorUnavailable(
                f"lost libvirt at {self._owner.uri!r}: {_message(exc)}"
            ) from exc
        raise HypervisorError(_message(exc)) from exc


def _message(exc: libvirt.libvirtError) -> str:
    return " ".join(str(exc.get_error_message() or exc).split())


def is_uuid(text: str) -> bool:
    """Whether uuid.UUID(text) would accept `text` (hyphens, braces and a urn:uuid: prefix
    allowed), without importing uuid, which brings platform and its subprocess probing."""
    digits = text.replace("urn:", "").replace("uuid:", "").strip("{}").replace("-", "")
    if len(digits) != 32:
        return False
    try:
        int(digits, 16)
    except ValueError:
        return False
    return True
