"""The plan executor's concurrency bounds, and the count of running actions per node and per
migration link they are checked against."""

from __future__ import annotations

from dataclasses import dataclass

from vmgrid.solver.plan import Action, ActionKind


@dataclass(frozen=True, slots=True)
class ExecutionLimits:
    """Concurrency bounds for plan execution."""

    max_actions_per_node: int = 2
    """Actions touching one node (as source or destination) that may run at once."""

    max_migrations_per_link: int = 1
    """Migrations between one (source, destination) pair that may run at once."""

    max_parallel: int = 64
    """Actions running at once in the whole cluster."""

    def __post_init__(self) -> None:
        for name in ("max_actions_per_node", "max_migrations_per_link", "max_parallel"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def has_room(
    limits: ExecutionLimits,
    action: Action,
    busy_nodes: dict[str, int],
    busy_links: dict[tuple[str, str], int],
) -> bool:
    """Whether `action` may start beside the running actions counted in `busy_nodes` and
    `busy_links` (see occupy)."""
    for node in _nodes(action):
        if busy_nodes.get(node, 0) >= limits.max_actions_per_node:
            return False
    link = _link(action)
    return link is None or busy_links.get(link, 0) < limits.max_migrations_per_link


def _nodes(action: Action) -> tuple[str, ...]:
    return tuple(n for n in (action.src, action.dst) if n is not None)


def _link(action: Action) -> tuple[str, str] | None:
    if action.kind is ActionKind.MIGRATE and action.src and action.dst:
        return (action.src, action.dst)
    return None


def occupy(
    action: Action,
    busy_nodes: dict[str, int],
    busy_links: dict[tuple[str, str], int],
    delta: int,
) -> None:
    """Count `action` (delta +1) in the nodes and migration link it occupies."""
    for node in _nodes(action):
        busy_nodes[node] = busy_nodes.get(node, 0) + delta
    link = _link(action)
    if link is not None:
        busy_links[link] = busy_links.get(link, 0) + delta
