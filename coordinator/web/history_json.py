"""Past usage and past plans as the dashboard's JSON: ``GET /history`` (columns that share one
time axis, as charting libraries take them) and ``GET /timeline`` (plans, their actions with
state, progress and reason)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vmgrid.agents.cluster.act.journal import ActionState
from vmgrid.agents.cluster.operator.plan_views import PlanView
from vmgrid.solver.plan import Action

Json = dict[str, Any]


def history_json(
    kind: str,
    subject: str,
    minutes: int,
    bucket_s: int,
    buckets: int,
    times_unix_ms: Sequence[int],
    series: Mapping[str, Sequence[float | None]],
) -> Json:
    """One node's or VM's history: `kind` is ``node`` or ``vm``; the first `buckets` points
    are means over `bucket_s` seconds, the others the samples of the recent window."""
    return {
        kind: subject,
        "minutes": minutes,
        "bucket_s": bucket_s,
        "buckets": buckets,
        "times_unix_ms": list(times_unix_ms),
        "series": {name: list(values) for name, values in series.items()},
    }


def timeline_json(
    plans: Sequence[tuple[PlanView, Mapping[int, float]]],
    names: Mapping[str, str],
    describe: Callable[[Action], str],
) -> Json:
    """Plans newest first; each action's progress is 1 when it ended, its last reported
    fraction while it runs, 0 before it starts."""
    return {"plans": [_plan_json(view, progress, names, describe) for view, progress in plans]}


def _plan_json(
    view: PlanView,
    progress: Mapping[int, float],
    names: Mapping[str, str],
    describe: Callable[[Action], str],
) -> Json:
    actions: list[Json] = []
    done_total = 0.0
    for item in view.actions:
        action = item.action
        state = item.state.value if item.state is not None else "planned"
        if item.state is not None and item.state.final:
            done = 1.0
        elif item.state is ActionState.RUNNING:
            done = progress.get(action.id, 0.0)
        else:
            done = 0.0
        done_total += done
        actions.append(
            {
                "id": action.id,
                "kind": action.kind.value,
                "subject": action.subject,
                "name": names.get(action.subject, action.subject),
                "src": action.src,
                "dst": action.dst,
                "state": state,
                "progress": round(done, 3),
                "reason": action.reason,
                "message": item.message,
                "simulated": item.simulated,
                "description": describe(action),
            }
        )
    overall = done_total / len(actions) if actions else 1.0
    return {
        "id": view.plan_id,
        "status": view.status.value,
        "summary": view.summary,
        "created_unix_ms": int(view.created_unix_s * 1000),
        "progress": round(overall, 3),
        "actions": actions,
    }
