"""How long a link waits before its next dial when it knows several replicas of its peer.

Used by the node agent's link to its cluster manager and by a cluster's uplink to its
coordinator: both keep dialling while no replica takes their stream, fast during a failover
and slowly during a long outage (etcd without quorum: every replica refuses)."""

from __future__ import annotations

import random

BETWEEN_REPLICAS_S = 0.05
"""Wait before dialling the next replica of the list within one round: every replica is tried
before the link waits out its backoff, so a leader anywhere in the list is reached within one
backoff, not one per replica."""
REPLICA_BACKOFF_CAP_S = 0.5
"""Longest wait between dials for one heartbeat timeout after the link lost its peer: one of
the replicas is about to lead (an election takes a lease TTL), and the link must reach it
within a heartbeat timeout."""


def replica_delay_s(silent_s: float, heartbeat_timeout_s: float) -> float:
    """Wait before the next dial when several replicas are known and none has taken the
    stream for `silent_s` seconds: at most `REPLICA_BACKOFF_CAP_S` for the first heartbeat
    timeout (a failover), then a ceiling that doubles every quarter of a heartbeat timeout up
    to half of one, with jitter (between half the ceiling and the ceiling). A long outage then
    costs about one dial every few seconds instead of two a second, while a leader that
    appears is still reached before its heartbeat timeout could count this link lost. A
    standby naming the leader is followed at once, without any wait (the callers' part)."""
    if silent_s < heartbeat_timeout_s:
        ceiling = REPLICA_BACKOFF_CAP_S
    else:
        doublings = (silent_s - heartbeat_timeout_s) / (heartbeat_timeout_s / 4)
        cap_s = max(REPLICA_BACKOFF_CAP_S, heartbeat_timeout_s / 2)
        ceiling = min(cap_s, REPLICA_BACKOFF_CAP_S * 2 ** min(doublings, 20))
    return random.uniform(ceiling / 2, ceiling)


def next_dial_delay_s(round_ended: bool, silent_s: float, heartbeat_timeout_s: float) -> float:
    """Wait before the next dial of a link to replicas: `replica_delay_s` once a round over the
    whole list has ended (the next dial goes to the list's first address), else
    `BETWEEN_REPLICAS_S`."""
    if not round_ended:
        return BETWEEN_REPLICAS_S
    return replica_delay_s(silent_s, heartbeat_timeout_s)
