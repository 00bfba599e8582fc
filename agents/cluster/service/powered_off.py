"""Nodes the manager powered off survive it: their hello (identity and capacity) is kept in the
journal until their agent says hello again, so they stay known, and can be powered on, after a
restart or a takeover (a replicated manager's etcd mirror carries the journal's table)."""

from __future__ import annotations

import dataclasses
import json
import logging

from vmgrid.agents.cluster.act.journal import Journal
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.model import NodeCapacity, NodeHello, NodeIdentity

log = logging.getLogger(__name__)


def persist_power_changes(state: ClusterState, journal: Journal) -> None:
    """Keep `journal` in step with the nodes `state` powers off and on."""

    def persist(node_id: str, hello: NodeHello | None, draining: bool) -> None:
        if hello is None:
            journal.forget_powered_off(node_id)
        else:
            journal.remember_powered_off(node_id, hello_to_json(hello), draining)

    state.power_listeners.append(persist)


def restore_powered_off(state: ClusterState, journal: Journal) -> None:
    """Give `state` back the powered-off nodes `journal` keeps; an unreadable one is said and
    forgotten."""
    for node_id, text, draining in journal.powered_off_nodes():
        try:
            state.restore_powered_off(hello_from_json(text), draining)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("journal: powered-off node %r unreadable (%s); forgotten", node_id, exc)
            journal.forget_powered_off(node_id)


def hello_to_json(hello: NodeHello) -> str:
    """A node's hello as the journal keeps it."""
    return json.dumps(dataclasses.asdict(hello), sort_keys=True)


def hello_from_json(text: str) -> NodeHello:
    """The hello `hello_to_json` wrote; ValueError/TypeError/KeyError when it is not one."""
    data = json.loads(text)
    return NodeHello(
        identity=NodeIdentity(**data["identity"]),
        capacity=NodeCapacity(**data["capacity"]),
        started_at_unix_ns=int(data.get("started_at_unix_ns", 0)),
        report_period_ms=int(data.get("report_period_ms", 3000)),
    )
