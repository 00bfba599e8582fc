"""Jobs as the dashboard shows them: the same JSON from the grid's and a cluster's job store.

The coordinator's ``GridJobs`` and a cluster's ``ClusterJobs`` keep ``JobRecord``s in the same
``JobStore``; both backends answer GET /jobs and /jobs/{id} through ``JobSource`` so the page
and the API do not care which level they talk to. States: pending -> placing -> starting ->
running | failed.
"""

from __future__ import annotations

from typing import Any, Protocol

from vmgrid.agents.errors import NotFound
from vmgrid.agents.jobmodel import JobRecord
from vmgrid.agents.jobmodel.codec import member_uuid
from vmgrid.coordinator.web.errors import not_found

Json = dict[str, Any]
STATES = ("pending", "placing", "starting", "running", "failed")


class JobSource(Protocol):
    """What both ``GridJobs`` and ``ClusterJobs`` offer (``get`` raises on an unknown id)."""

    def get(self, job_id: str) -> JobRecord: ...


def job_json(record: JobRecord) -> Json:
    """One job in the API's units (memory in MiB, CPU in millicores, times in Unix ms)."""
    spec = record.spec
    members = [
        {
            "name": name,
            "uuid": member_uuid(record.job_id, name),
            "node": record.placement.get(name, ""),
        }
        for name in spec.members
    ]
    return {
        "id": record.job_id,
        "name": spec.name,
        "state": record.state.value,
        "cluster": record.cluster_id,
        "message": record.message,
        "members": members,
        "image": spec.image,
        "vcpus": spec.vcpus,
        "cpu_millicores": spec.cpu_millicores,
        "memory_mib": spec.memory_mib,
        "created_at_unix_ms": int(record.created_at * 1000),
        "updated_at_unix_ms": int(record.updated_at * 1000),
    }


def jobs_json(records: list[JobRecord]) -> list[Json]:
    """Newest first: the page shows recent submissions at the top."""
    ordered = sorted(records, key=lambda r: (r.created_at, r.job_id), reverse=True)
    return [job_json(r) for r in ordered]


def one_job(source: JobSource | None, job_id: str) -> Json:
    """The job `job_id` of `source`; 404 naming the id when there is none (or no source)."""
    if source is not None:
        try:
            return job_json(source.get(job_id))
        except NotFound:
            pass
    raise not_found(f"no job {job_id!r}", "id")
