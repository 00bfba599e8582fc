"""How long one pre-copy live migration takes, round by round as QEMU runs it.

The older estimate, ``memory x 8 / bandwidth`` (the planner's ``bandwidth_mbit``), counts every
MiB of the VM once and nothing else. A real migration differs in three ways, each measured on
the lab (docs/migration.md):

- the first pass sends only the guest's **resident** pages: pages the guest never wrote are
  zero, and QEMU sends a zero page as a few bytes of header;
- while a round is sent the guest **dirties** pages, which the next round sends again; QEMU
  stops iterating and pauses the guest once what is left fits in its downtime limit (300 ms by
  default) at the rate it sees, so a guest that dirties faster than that never converges;
- a **fixed cost** (connection, destination QEMU start, device state, handover) that does not
  depend on memory.

``dirty_mib_s`` is what libvirt's dirty-rate calculation (``virDomainStartDirtyRateCalc``, QEMU's
``calc-dirty-rate``) reports: distinct pages written over its window. Pages written again
within a round are sent once, so a round dirties at most ``working_set_mib`` (the pages the
load keeps rewriting; default: all resident memory).
"""

from __future__ import annotations

from dataclasses import dataclass

from vmgrid.solver.model import ModelError

QEMU_DOWNTIME_LIMIT_S = 0.3
"""QEMU's default ``downtime-limit`` (300 ms): the pause it aims for when it stops iterating."""


@dataclass(frozen=True, slots=True)
class PrecopyInput:
    """What is known of a VM and its link before the migration starts (MiB, MiB/s, seconds)."""

    resident_mib: float
    """Memory the first pass copies: the guest's non-zero pages (at most its allocation)."""
    rate_mib_s: float
    """What the migration stream carries: the bandwidth cap, or the link's rate if lower."""
    dirty_mib_s: float = 0.0
    """The guest's dirty rate (distinct pages written per second)."""
    working_set_mib: float | None = None
    """Most a round can dirty (the pages the load rewrites); None: all resident memory."""
    fixed_s: float = 0.0
    """Cost independent of memory: connection, destination start, device state, handover."""
    downtime_limit_s: float = QEMU_DOWNTIME_LIMIT_S
    max_rounds: int = 30

    def __post_init__(self) -> None:
        if self.resident_mib < 0 or self.dirty_mib_s < 0 or self.fixed_s < 0:
            raise ModelError(
                f"PrecopyInput: resident_mib {self.resident_mib}, dirty_mib_s "
                f"{self.dirty_mib_s}, fixed_s {self.fixed_s}: none may be negative"
            )
        if self.rate_mib_s <= 0:
            raise ModelError(f"PrecopyInput.rate_mib_s = {self.rate_mib_s}: must be > 0 MiB/s")
        if self.downtime_limit_s <= 0 or self.max_rounds < 1:
            raise ModelError(
                f"PrecopyInput: downtime_limit_s {self.downtime_limit_s} must be > 0 and "
                f"max_rounds {self.max_rounds} >= 1"
            )


@dataclass(frozen=True, slots=True)
class PrecopyEstimate:
    """The predicted run of one migration."""

    seconds: float
    """From start to the guest running on the destination (fixed cost included)."""
    sent_mib: float
    """Memory sent, all rounds and the final stop-and-copy included."""
    rounds: int
    """Pre-copy rounds before the stop-and-copy (1: memory sent once)."""
    downtime_s: float
    """The stop-and-copy's share of the pause (device state not counted)."""
    converges: bool
    """False when what is left never fits the downtime limit: the migration needs
    auto-converge, post-copy or a higher limit, or it runs until it is aborted."""


def estimate(inp: PrecopyInput) -> PrecopyEstimate:
    """Simulate pre-copy rounds until the remainder fits the downtime limit."""
    working_set = inp.resident_mib if inp.working_set_mib is None else inp.working_set_mib
    pending = inp.resident_mib
    seconds, sent = inp.fixed_s, 0.0
    threshold = inp.rate_mib_s * inp.downtime_limit_s
    for rounds in range(1, inp.max_rounds + 1):
        round_s = pending / inp.rate_mib_s
        seconds += round_s
        sent += pending
        pending = min(inp.dirty_mib_s * round_s, working_set, inp.resident_mib)
        if pending <= threshold:
            stop_s = pending / inp.rate_mib_s
            return PrecopyEstimate(seconds + stop_s, sent + pending, rounds, stop_s, True)
    return PrecopyEstimate(seconds, sent, inp.max_rounds, pending / inp.rate_mib_s, False)


def naive_seconds(memory_mib: float, rate_mib_s: float) -> float:
    """The older estimate: all allocated memory once over the rate (no fixed cost, no dirtying)."""
    if rate_mib_s <= 0:
        raise ModelError(f"rate_mib_s = {rate_mib_s}: must be > 0 MiB/s")
    return memory_mib / rate_mib_s
