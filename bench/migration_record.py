"""One migration's measurements (`Record`) and the bench's last line (`result`)."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from typing import Any

from vmgrid.bench.migration_probe import Migration, percentile, relative_error, summary
from vmgrid.bench.migration_switchover import downtime_parts

GUEST_MEMORY_MIB = 256


def working_sets(text: str) -> list[int]:
    """`--working-sets-mib`: MiB, each 0 (idle) up to half the guest's memory."""
    limit = GUEST_MEMORY_MIB // 2 - 1
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(p.isdigit() and int(p) <= limit for p in parts):
        raise ValueError(f"--working-sets-mib {text!r}: give 0 to {limit} MiB each, e.g. 0,4,12")
    return [int(p) for p in parts]


@dataclass
class Record:
    """Everything measured for one migration (one line of the bench's `records`)."""

    load_mib: int
    src: str
    dst: str
    dirty_mib_s: float | None
    resident_mib: float
    predicted_s: float
    predicted_converges: bool
    predicted_sent_mib: float
    naive_s: float
    plan_s: float | None
    """The manager's estimate: the operator plan's ``estimated_duration_ms``."""
    reported: dict[str, float] | None
    """The guest's figures the manager had from its agent before the migration (#16):
    ``resident_mib``, ``dirty_mib_s`` and ``dirty_set_mib`` (0: not measured)."""
    operator_s: float
    aborted: bool
    downtime_gap_ms: float | None = None
    """Longest gap between the host's 10 ms ping replies during the migration."""
    ping_gaps: list[tuple[float, float]] = field(default_factory=list)
    """Ping gaps over 50 ms, 3 s either side: (start after the command, length), seconds."""
    ping_hz: float = 0.0
    """Replies per second over the 3 s before the command."""
    guest_stream_gap_ms: float | None = None
    """Longest gap in the guest's own 10 ms UDP stream (its clock and scheduler included)."""
    switchover: dict[str, float | None] | None = None
    """The ping gap around the source's pause, split (`migration_switchover.Switchover`)."""
    events_s: list[float | None] | None = None
    """The source's pause and the destination's resume events, s after the command."""
    background_gap_ms: float | None = None
    """Longest ping gap in the 3 s before the command: the loaded guest without migration."""
    job: dict[str, float] | None = None
    message: str = ""
    lost: dict[str, Any] | None = None
    """When the guest stopped answering after the migration: the bridge's and the guest's
    state then (`migration_lost.lost_guest_evidence`)."""


def result(records: list[Record], args: argparse.Namespace, boot: dict[str, Any]) -> dict[str, Any]:
    """The bench's last line: the headline figures, then context and every record."""
    migrations = [
        Migration(
            duration_s=(r.job or {}).get("elapsed_s", 0.0) or r.operator_s,
            downtime_ms=r.switchover["gap_ms"] if r.switchover else r.downtime_gap_ms,
            predicted_s=r.predicted_s,
            naive_s=r.naive_s,
            aborted=r.aborted,
            plan_s=r.plan_s,
        )
        for r in records
    ]
    qemu_downtimes = [r.job["downtime_ms"] for r in records if r.job]
    sent_errors = [
        relative_error(r.predicted_sent_mib, r.job["transferred_mib"])
        for r in records
        if r.job and r.job["transferred_mib"] > 0
    ]
    return {
        **summary(migrations),
        "qemu_downtime_ms_max": max(qemu_downtimes, default=None),
        "sent_prediction_error_p50": round(percentile(sent_errors, 50), 3) if sent_errors else None,
        "sent_prediction_error_max": round(max(sent_errors), 3) if sent_errors else None,
        "guest": args.guest,
        "guest_memory_mib": GUEST_MEMORY_MIB,
        "domain_type": boot.get("domain_type"),
        "bandwidth_mbit": args.bandwidth_mbit,
        "auto_converge": args.auto_converge,
        "max_downtime_ms": args.max_downtime_ms,
        **downtime_parts(records),
        "working_sets_mib": working_sets(args.working_sets_mib),
        "migrations_per_load": args.migrations_per_load,
        "boot_s": boot.get("checks", [{}])[0].get("ready_s"),
        "records": [asdict(r) for r in records],
    }
