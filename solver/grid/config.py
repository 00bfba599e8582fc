"""Planner settings, each field documented; validated once so the planner can trust them."""

from __future__ import annotations

from dataclasses import dataclass

from vmgrid.solver.grid.errors import GridInputError


@dataclass(frozen=True)
class PlannerConfig:
    """Thresholds and limits of the inter-cluster planner."""

    overload_ratio: float = 0.85
    """A cluster whose usage exceeds this fraction of capacity on any resource is overloaded."""
    target_ratio: float = 0.80
    """Relief sheds load until the source is at or below this; no move takes a receiver above it."""
    consolidation: bool = True
    """Master switch for cross-cluster consolidation (each source must also allow it)."""
    consolidation_ratio: float = 0.25
    """Clusters allowing consolidation whose busiest resource is below this are emptied."""
    heavy_traffic_mbps: int = 100
    """Groups exchanging at least this much are gathered into one cluster when they are split."""
    max_migration_mbps: int = 1000
    """Bandwidth one migration may use (libvirt's migrate-setmaxspeed); reserved on its path."""
    min_path_mbps: int = 100
    """Destinations whose widest path has less free bandwidth than this are not considered."""
    dirty_ratio_cap: float = 0.9
    """Dirty rate / migration rate is clamped here: beyond it hypervisors auto-converge."""
    affinity_seconds_per_mbps_ms: float = 0.01
    """Converts a change in split cost (traffic Mbit/s x latency ms) into migration seconds."""
    max_notes: int = 50
    """At most this many "why not" notes are kept in the plan statistics."""

    def __post_init__(self) -> None:
        for name in ("overload_ratio", "target_ratio", "consolidation_ratio", "dirty_ratio_cap"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise GridInputError(f"{name} {value} must be in (0, 1]")
        if self.target_ratio > self.overload_ratio:
            raise GridInputError(
                f"target_ratio {self.target_ratio} must not exceed "
                f"overload_ratio {self.overload_ratio}"
            )
        if self.dirty_ratio_cap >= 1.0:
            raise GridInputError(f"dirty_ratio_cap {self.dirty_ratio_cap} must be below 1")
        for name in ("max_migration_mbps", "min_path_mbps"):
            if getattr(self, name) <= 0:
                raise GridInputError(f"{name} {getattr(self, name)} must be a positive integer")
        if self.min_path_mbps > self.max_migration_mbps:
            raise GridInputError(
                f"min_path_mbps {self.min_path_mbps} must not exceed "
                f"max_migration_mbps {self.max_migration_mbps}"
            )
        if self.heavy_traffic_mbps < 0 or self.affinity_seconds_per_mbps_ms < 0:
            raise GridInputError("heavy_traffic_mbps and affinity_seconds_per_mbps_ms must be >= 0")
