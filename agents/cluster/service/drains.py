"""Nodes in maintenance survive the manager: the set of draining nodes is kept in the journal
(a setting, so a replicated manager's etcd mirror carries it too) and given back to the
cluster state when the manager starts or takes over; a node not connected yet comes back
draining when its agent says hello."""

from __future__ import annotations

import json
import logging

from vmgrid.agents.cluster.act.journal import Journal
from vmgrid.agents.cluster.state.state import ClusterState

log = logging.getLogger(__name__)

SETTING = "draining_nodes"


def persist_drains(state: ClusterState, journal: Journal) -> None:
    """Save the draining nodes in `journal` whenever a node's maintenance flag changes."""

    def persist(_node_id: str, _draining: bool) -> None:
        nodes = {n for n in state.node_ids() if state.is_draining(n)} | state.pending_drains
        journal.save_setting(SETTING, json.dumps(sorted(nodes)))

    state.drain_listeners.append(persist)


def restore_drains(state: ClusterState, journal: Journal) -> list[str]:
    """Put the nodes saved as draining back in maintenance (a node not known yet when its
    agent connects); returns them. An unreadable setting is ignored, with a warning."""
    text = journal.setting(SETTING)
    if text is None:
        return []
    try:
        nodes = json.loads(text)
        if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
            raise ValueError("not a list of node ids")
    except ValueError as exc:
        log.warning("journal setting %s unreadable (%s): no node kept in maintenance", SETTING, exc)
        return []
    known = set(state.node_ids())
    for node_id in nodes:
        if node_id in known:
            state.set_draining(node_id, True)
        else:
            state.pending_drains.add(node_id)
    if nodes:
        log.info("nodes still in maintenance: %s", ", ".join(nodes))
    return nodes
