"""The memory-independent part of a real live migration, learned from the last ones (#16).

A migration's duration is its memory over the cap (round by round, `migration_time`) plus a
part memory does not explain: connection, destination QEMU start, device state, libvirt's
finish step, and, on a loaded host, the time QEMU's migration thread and the guest's vCPUs
wait for a core. That part measured 0.2 s on a quiet lab and 3 to 5 s at load 50, so a
constant (`REAL_MIGRATION_FIXED_S`) is right at one load only. The driver times each real
migration it runs (command sent to final result) and keeps what its estimate's memory part
did not account for; the estimate of the next one uses the median of the last few. Until a
migration has been seen, the constant serves.
"""

from __future__ import annotations

REAL_MIGRATION_FIXED_S = 0.7
"""Memory-independent cost of one real live migration before any was measured: 0.5 to 1.8 s
on the lab at load 5 to 13 (TCG guests, 2 shared cores), more under heavier load
(docs/migration.md)."""
_LONGEST_S = 60.0
"""A learned part above this is a stalled migration, not a cost to plan with."""


class RecentFixedCost:
    """The median of what the last `window` real migrations took beyond their memory part."""

    def __init__(self, window: int = 3, default_s: float = REAL_MIGRATION_FIXED_S) -> None:
        if window < 1:
            raise ValueError(f"RecentFixedCost window {window}: must be >= 1")
        self._window = window
        self._default_s = default_s
        self._seen: list[float] = []

    def value(self) -> float:
        if not self._seen:
            return self._default_s
        ordered = sorted(self._seen)
        return ordered[len(ordered) // 2]

    def learn(self, measured_s: float, memory_part_s: float) -> None:
        """One migration that succeeded: `measured_s` from command to result, of which the
        estimate gave `memory_part_s` to its rounds."""
        extra = min(_LONGEST_S, max(0.0, measured_s - memory_part_s))
        self._seen = [*self._seen, extra][-self._window :]
