"""Where a live migration's downtime goes, as the network probe sees it.

The longest gap in the host's 10 ms ping over a whole migration also counts the gaps a loaded
TCG guest has anyway (its vCPU thread starved by the machine's other work). The switchover is
pinned by libvirt's lifecycle events: the source's ``SUSPENDED/MIGRATED`` (QEMU stopped the
guest for its last round) and the destination's ``RESUMED/MIGRATED`` (libvirt's finish step
started its CPUs). The gap the switchover sits in runs from the last reply before the pause to
the first reply after it; it lasts at least libvirt's own downtime (``downtime`` of the
completed job: the source's pause to the destination's resume, which libvirt times itself),
and the rest (``rest_ms``) is the probe and the guest. Where both events fall inside the gap
it also splits into:

- ``reply_to_pause_ms``: last reply to the pause (the probe's period, and the guest's own
  latency just before);
- ``pause_to_resume_ms``: the pause to the destination's resume: QEMU's stop-and-copy
  (its reported downtime), then libvirt's confirm and finish steps between the daemons;
- ``resume_to_reply_ms``: the resume to the first reply: the guest announces its MAC (a
  gratuitous ARP, so the bridge learns its new port) and answers, with a cold translation
  cache under TCG.

Event times are when the bench received them (a few ms after libvirt sent them), so the
middle part is an upper bound and the last a lower one.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import libvirt

_loop_lock = threading.Lock()
_loop_started = False


def ensure_event_loop() -> None:
    """libvirt's default event loop in a daemon thread (once per process); needed before
    opening a connection that receives domain events."""
    global _loop_started
    with _loop_lock:
        if _loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _loop_started = True


@dataclass(frozen=True, slots=True)
class Switchover:
    """One migration's switchover, in ms (None where an event does not fall in the gap)."""

    gap_ms: float
    downtime_ms: float | None
    """libvirt's own downtime (source paused to destination resumed), from its job stats."""
    rest_ms: float | None
    """gap - downtime: the probe's period before the pause, and after the resume the bridge
    learning the guest's new port and the guest's first reply."""
    reply_to_pause_ms: float | None
    pause_to_resume_ms: float | None
    resume_to_reply_ms: float | None


def switchover(
    replies: Sequence[float],
    paused_at: float | None,
    resumed_at: float | None,
    downtime_ms: float | None = None,
    window: tuple[float, float] | None = None,
) -> Switchover | None:
    """The reply gap the switchover sits in (seconds in, ms out), None when it is not found.

    The guest answers nothing from its pause to its resume, so that gap lasts about libvirt's
    `downtime_ms` or more (libvirt's own clock can start a little before the guest stops: at
    least half of it is asked). Events reach the bench late under load, never early: the gap
    is the last one long enough that starts before the pause event (else the resume event)
    and overlaps `window` (the migration command). The split at the events is given only
    where both fall inside the gap."""
    anchor = paused_at if paused_at is not None else resumed_at
    if anchor is None:
        return None
    shortest = 0.0 if downtime_ms is None else downtime_ms / 2000
    start, end = window if window is not None else (float("-inf"), float("inf"))
    found = [
        (a, b)
        for a, b in zip(replies, replies[1:], strict=False)
        if a <= anchor and b - a >= shortest and b >= start and a <= end
    ]
    if not found:
        return None
    last, first = found[-1]

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 1)

    inside = (
        paused_at is not None
        and resumed_at is not None
        and last <= paused_at <= resumed_at <= first
    )
    gap = ms(first - last)
    return Switchover(
        gap_ms=gap,
        downtime_ms=downtime_ms,
        rest_ms=None if downtime_ms is None else round(gap - downtime_ms, 1),
        reply_to_pause_ms=ms(paused_at - last) if inside and paused_at else None,
        pause_to_resume_ms=ms(resumed_at - paused_at)
        if inside and paused_at and resumed_at
        else None,
        resume_to_reply_ms=ms(first - resumed_at) if inside and resumed_at else None,
    )


def background_gap_ms(replies: Sequence[float], start: float, end: float) -> float | None:
    """Longest gap between replies inside [start, end] (no migration running): what the
    loaded guest does anyway. None with fewer than two replies there."""
    inside = [r for r in replies if start <= r <= end]
    if len(inside) < 2:
        return None
    return round(max(b - a for a, b in zip(inside, inside[1:], strict=False)) * 1000, 1)


class LifecycleWatch:
    """Lifecycle events of one domain on several libvirt hosts, with arrival times."""

    def __init__(self, hosts: Sequence[tuple[str, str]], domain: str) -> None:
        """`hosts`: (name, libvirt URI) pairs."""
        ensure_event_loop()
        self.domain = domain
        self.events: list[tuple[float, str, int, int]] = []
        self._lock = threading.Lock()
        self._conns: list[tuple[libvirt.virConnect, int]] = []
        for name, uri in hosts:
            conn = libvirt.open(uri)
            callback = conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_event, name
            )
            self._conns.append((conn, callback))

    def _on_event(
        self, _conn: libvirt.virConnect, dom: libvirt.virDomain, event: int, detail: int, host: Any
    ) -> None:
        if dom.name() == self.domain:
            with self._lock:
                self.events.append((time.monotonic(), str(host), event, detail))

    def switchover(
        self, src: str, dst: str, start: float, end: float
    ) -> tuple[float | None, float | None]:
        """(source paused for migration, destination resumed after it) in [start, end]."""
        with self._lock:
            events = [e for e in self.events if start <= e[0] <= end]
        paused = next(
            (
                t
                for t, host, event, detail in events
                if host == src
                and event == libvirt.VIR_DOMAIN_EVENT_SUSPENDED
                and detail == libvirt.VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED
            ),
            None,
        )
        resumed = next(
            (
                t
                for t, host, event, _ in events
                if host == dst
                and event == libvirt.VIR_DOMAIN_EVENT_RESUMED
                and (paused is None or t >= paused)
            ),
            None,
        )
        return paused, resumed

    def close(self) -> None:
        for conn, callback in self._conns:
            with contextlib.suppress(libvirt.libvirtError):
                conn.domainEventDeregisterAny(callback)
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()
        self._conns.clear()


def downtime_parts(records: Sequence[Any]) -> dict[str, float | None]:
    """p50 and max of each part of the switchover gap over the records that have one, the
    longest gap over each whole migration and the longest gap before each (no migration)."""
    from vmgrid.bench.migration_probe import percentile

    def fig(values: list[float], q: float) -> float | None:
        return round(percentile(values, q), 1) if values else None

    parts: dict[str, float | None] = {}
    splits = [r.switchover for r in records if r.switchover]
    for key in ("rest_ms", "reply_to_pause_ms", "pause_to_resume_ms", "resume_to_reply_ms"):
        values = [s[key] for s in splits if s[key] is not None]
        parts[f"{key}_p50"], parts[f"{key}_max"] = fig(values, 50), fig(values, 100)
    longest = [r.downtime_gap_ms for r in records if r.downtime_gap_ms is not None]
    parts["longest_gap_ms_p50"], parts["longest_gap_ms_p99"] = fig(longest, 50), fig(longest, 99)
    background = [r.background_gap_ms for r in records if r.background_gap_ms is not None]
    parts["background_gap_ms_p50"] = fig(background, 50)
    parts["background_gap_ms_max"] = fig(background, 100)
    parts["switchovers_seen"] = len(splits)
    return parts
