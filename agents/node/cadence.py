"""When an agent reports: at its own phase of the period, whatever woke it in between.

An agent reports at once when something happens (its manager acknowledged a (re)connection, a
VM changed state) and otherwise once a period. If the period were counted from the last report,
every agent of a cluster would report in step after a manager restart (they all reconnect and
report within a second, then keep that rhythm), so the manager would take a whole period's
reports in a burst and leave the rest of the period idle: twice the instantaneous rate for the
same load, and queueing at the front of each burst. Instead each agent's regular reports fall
on instants of its own, ``phase + k * period`` on the monotonic clock, the phase drawn from a
hash of its node id so that agents started together are spread all the same; a report made in
between does not move them.
"""

from __future__ import annotations

import zlib

MIN_GAP_SHARE = 0.1
"""A regular report closer than this share of the period after the previous one is skipped:
the report just made (woken early) stands for it."""


def report_phase_s(node_id: str, period_s: float) -> float:
    """The offset of `node_id`'s reports within the period: spread evenly over node ids and
    the same at every start of the agent."""
    return period_s * (zlib.crc32(node_id.encode()) / 2**32)


def next_report_in_s(now_s: float, period_s: float, phase_s: float) -> float:
    """Seconds from `now_s` (monotonic) to the next regular report, just after one was made:
    the next instant ``phase_s + k * period_s`` at least `MIN_GAP_SHARE` of a period away."""
    wait_s = (phase_s - now_s) % period_s
    if wait_s < MIN_GAP_SHARE * period_s:
        wait_s += period_s
    return wait_s
