"""Grid submission: the coordinator picks ONE cluster for a job and has that cluster run it.

pending -> placing (`choose_clusters` on the latest summaries, then a `SubmitJobToCluster`
grid command on the cluster's own stream; the cluster admits, places with CP-SAT and starts
all-or-nothing) -> starting (the cluster reported its placement) -> running | failed. When a
cluster refuses (its solver or HA admission), the next ranked cluster is tried, up to three;
the whole group always lands in one cluster. The job keeps the grid's id on the cluster, so
member UUIDs are the same on both sides and a resent command never runs a job twice.

The coordinator only sees summaries (totals per cluster, no per-node sizes, no image
catalogue): it checks the document's shape and the clusters' headroom; the chosen cluster's
catalogue resolves image names and its solver decides nodes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine, Iterable, Mapping
from typing import Any

from vmgrid.agents import grid_model as m
from vmgrid.agents.errors import InvalidArgument, NotFound
from vmgrid.agents.jobmodel.codec import placement_of
from vmgrid.agents.jobmodel.errors import JobSpecError, JobStateError
from vmgrid.agents.jobmodel.placement import ClusterView, Rejection, choose_clusters
from vmgrid.agents.jobmodel.spec import JobSpec, NodeSize, SpecContext, parse_job
from vmgrid.agents.jobmodel.store import JobRecord, JobState, JobStore
from vmgrid.coordinator.service import Coordinator

log = logging.getLogger(__name__)

MIB = 1024 * 1024
MAX_CLUSTERS_TRIED = 3


class _ClusterCatalogue(Mapping[str, str]):
    """Accepts any image name: the chosen cluster's catalogue resolves it."""

    def __getitem__(self, name: str) -> str:
        return f"/cluster-catalogue/{name}.qcow2"

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(name)

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0


def cluster_views(records: Iterable[m.ClusterRecord]) -> list[ClusterView]:
    """Placement views of the registered clusters from their latest summaries.

    Per-node sizes are not in a summary: the largest free node is taken as the cluster's
    whole headroom (optimistic; the cluster's solver has the last word) and node names are
    placeholders, so ban/fence only count nodes here.
    """
    views = []
    for record in records:
        summary = record.summary
        if summary is None:
            continue
        cap, use = summary.capacity, summary.usage
        free = NodeSize(
            max(0, cap.cpu_millicores - use.cpu_millicores),
            max(0, (cap.memory_bytes - use.memory_bytes) // MIB),
            max(0, (cap.network_bps - use.network_bps) // 1_000_000),
        )
        online = max(0, summary.health.nodes_total - summary.health.nodes_lost)
        healthy = record.state is m.ClusterState.CONNECTED and online > 0
        nodes = frozenset(f"{record.cluster_id}#{i}" for i in range(online))
        views.append(ClusterView(record.cluster_id, free, free, nodes, healthy))
    return views


def _with_named_nodes(spec: JobSpec, views: list[ClusterView]) -> list[ClusterView]:
    """Add the fence nodes to each view, so a fence is not mistaken for 'no node left'."""
    named = frozenset(spec.placement.fence)
    if not named:
        return views
    return [ClusterView(v.id, v.free, v.largest_free, frozenset(named), v.healthy) for v in views]


class GridJobs:
    """Jobs submitted to the grid; the coordinator's RPC layer calls `submit`, `get`, `list`."""

    def __init__(
        self, coordinator: Coordinator, store: JobStore, answer_within_s: float = 300.0
    ) -> None:
        self.coordinator = coordinator
        self.store = store
        self.answer_within_s = answer_within_s
        self._tasks: set[asyncio.Task[JobRecord]] = set()

    def parse(self, document: object) -> JobSpec:
        try:
            return parse_job(document, SpecContext(images=_ClusterCatalogue()))
        except JobSpecError as exc:
            raise InvalidArgument(str(exc)) from None

    def get(self, job_id: str) -> JobRecord:
        try:
            return self.store.get(job_id)
        except JobStateError as exc:
            raise NotFound(str(exc)) from None

    def list(self, states: Iterable[JobState] = (), cluster_id: str = "") -> list[JobRecord]:
        return self.store.list(states, cluster_id)

    async def submit(self, document: Mapping[str, Any], wait_s: float | None = None) -> JobRecord:
        """Store the job and run it; returns its record once final, or after `wait_s`
        (default `answer_within_s`) with the job still under way (poll `get`)."""
        spec = self.parse(document)
        record = self.store.create(spec)
        self._publish(record)
        task = self._start(record.job_id, self._run(record.job_id, spec, dict(document)))
        limit = self.answer_within_s if wait_s is None else wait_s
        try:
            return await asyncio.wait_for(asyncio.shield(task), limit)
        except TimeoutError:
            return self.store.get(record.job_id)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def resume(self, wait_for_clusters_s: float) -> int:
        """Carry on the jobs left under way by a coordinator that stopped (this process before
        a restart, or the leader before a failover). A job already sent to a cluster is sent
        there again, first, under the same command id: the cluster answers from its journal of
        grid commands or joins the run in progress, so the group never starts twice. A job not
        sent anywhere yet is placed once the clusters have come back (or `wait_for_clusters_s`
        has passed). Returns how many jobs were resumed."""
        unfinished = self.store.list((JobState.PENDING, JobState.PLACING, JobState.STARTING))
        for record in unfinished:
            log.info(
                "resuming job %s (%s, %s%s)",
                record.job_id,
                record.spec.name,
                record.state.value,
                f", sent to {record.cluster_id}" if record.cluster_id else "",
            )
            self._start(record.job_id, self._resume(record, wait_for_clusters_s))
        return len(unfinished)

    def _start(self, job_id: str, run: Coroutine[Any, Any, JobRecord]) -> asyncio.Task[JobRecord]:
        """Run a job's placement as a task `close` cancels."""
        task = asyncio.create_task(run, name=f"job-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _resume(self, record: JobRecord, wait_s: float) -> JobRecord:
        document = record.spec.to_dict()
        if not record.cluster_id:
            deadline = asyncio.get_running_loop().time() + wait_s
            while asyncio.get_running_loop().time() < deadline and any(
                r.state is not m.ClusterState.CONNECTED for r in self.coordinator.registry.records()
            ):
                await asyncio.sleep(0.2)
        return await self._run(record.job_id, record.spec, document, record.cluster_id)

    async def _run(
        self, job_id: str, spec: JobSpec, document: dict[str, Any], sent_to: str = ""
    ) -> JobRecord:
        if self.store.get(job_id).state is JobState.PENDING:
            self._move(job_id, JobState.PLACING, "choosing a cluster")
        views = _with_named_nodes(spec, cluster_views(self.coordinator.registry.records()))
        choice = choose_clusters(spec, views)
        if isinstance(choice, Rejection) and not sent_to:
            return self._move(job_id, JobState.FAILED, choice.reason)
        ranked = [] if isinstance(choice, Rejection) else list(choice.ranked[:MAX_CLUSTERS_TRIED])
        if sent_to:  # where it may already run: that cluster first, whatever it looks like now
            ranked = [sent_to, *(c for c in ranked if c != sent_to)]
        reasons = {} if isinstance(choice, Rejection) else dict(choice.filtered)
        document.pop("cluster", None)
        for cluster_id in ranked:
            result = await self._run_on(job_id, cluster_id, document)
            if result.state is m.GridCommandState.SUCCEEDED:
                if self.store.get(job_id).state is JobState.PLACING:
                    self._move(job_id, JobState.STARTING, "starting", cluster_id)
                hosts = placement_of(result.message)
                return self._move(job_id, JobState.RUNNING, result.message, cluster_id, hosts)
            reasons[cluster_id] = result.message
            log.info("job %s: cluster %s refused: %s", job_id, cluster_id, result.message)
            if self.store.get(job_id).state is not JobState.PLACING:
                break  # it had started there and was rolled back: do not try elsewhere
        detail = "; ".join(f"{c}: {r}" for c, r in sorted(reasons.items()))
        return self._move(job_id, JobState.FAILED, f"no cluster ran the group ({detail})")

    async def _run_on(
        self, job_id: str, cluster_id: str, document: dict[str, Any]
    ) -> m.GridCommandResult:
        command = m.SubmitJobToCluster(
            f"job-{job_id}@{cluster_id}", job_id, json.dumps(document, sort_keys=True)
        )

        if self.store.get(job_id).state is JobState.PLACING:
            self.store.aim(job_id, cluster_id, f"submitting to {cluster_id}")

        def progress(result: m.GridCommandResult) -> None:
            starting = result.state is m.GridCommandState.RUNNING and result.progress_fraction > 0
            if starting and self.store.get(job_id).state is JobState.PLACING:
                self._move(job_id, JobState.STARTING, f"starting on {cluster_id}", cluster_id)

        return await self.coordinator.send_grid_command(cluster_id, command, progress)

    def _move(
        self,
        job_id: str,
        to: JobState,
        message: str,
        cluster_id: str | None = None,
        placement: Mapping[str, str] | None = None,
    ) -> JobRecord:
        record = self.store.transition(
            job_id, to, message=message, cluster_id=cluster_id, placement=placement
        )
        self._publish(record)
        return record

    def _publish(self, record: JobRecord) -> None:
        self.coordinator.bus.publish(
            m.GridEventKind.JOB_CHANGED,
            record.cluster_id,
            f"job {record.job_id} ({record.spec.name}): {record.state.value}: {record.message}",
        )
