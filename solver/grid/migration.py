"""How long a live migration takes over a given rate, with pre-copy's dirty-rate allowance.

Pre-copy sends all memory once, then re-sends what the guest dirtied meanwhile, round after
round. With ``r = dirty_rate / rate`` each round is ``r`` times the previous one, so the total
sent is ``memory x (1 + r + r^2 + ...) = memory / (1 - r)``: the *dirty allowance* is
``r / (1 - r)``. ``r`` is clamped to ``dirty_ratio_cap`` (0.9 by default, an allowance of at most
9x) because beyond that QEMU's auto-converge throttles the guest instead of copying forever.
"""

from __future__ import annotations

MBIT_PER_MIB = 8.388608
"""1 MiB = 2^20 bytes = 8.388608 Mbit (network rates are decimal megabits)."""


def dirty_allowance(dirty_rate_mbps: float, rate_mbps: float, dirty_ratio_cap: float) -> float:
    """Extra fraction of memory re-sent during pre-copy (0 for an idle guest)."""
    ratio = min(dirty_rate_mbps / rate_mbps, dirty_ratio_cap)
    return ratio / (1.0 - ratio)


def migration_seconds(
    memory_mib: int, dirty_rate_mbps: float, rate_mbps: float, dirty_ratio_cap: float = 0.9
) -> float:
    """Estimated duration of one live migration at ``rate_mbps``."""
    base = memory_mib * MBIT_PER_MIB / rate_mbps
    return base * (1.0 + dirty_allowance(dirty_rate_mbps, rate_mbps, dirty_ratio_cap))
