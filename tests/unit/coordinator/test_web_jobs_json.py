"""GET /jobs and /jobs/{id} JSON: states, members with their nodes, newest first, 404s."""

from __future__ import annotations

import itertools

import pytest
from vmgrid.agents.errors import NotFound
from vmgrid.agents.jobmodel import JobRecord, JobState, JobStateError, JobStore, parse_job
from vmgrid.agents.jobmodel.codec import member_uuid
from vmgrid.coordinator.web.errors import ApiError
from vmgrid.coordinator.web.jobs_json import jobs_json, one_job
from vmgrid.demo.ha_scenario import JOB


class StoreSource:
    """The lookup both GridJobs and ClusterJobs offer: NotFound for an unknown id."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def get(self, job_id: str) -> JobRecord:
        try:
            return self.store.get(job_id)
        except JobStateError as exc:
            raise NotFound(str(exc)) from None


def make_store() -> JobStore:
    ticks = itertools.count(1000)
    return JobStore(":memory:", clock=lambda: float(next(ticks)))


def test_a_placed_job_lists_its_members_with_their_nodes_and_state() -> None:
    store = make_store()
    record = store.create(parse_job(dict(JOB)))
    store.transition(record.job_id, JobState.PLACING)
    hosts = {"demo-mpi-0": "c1-n1", "demo-mpi-1": "c1-n2"}
    store.transition(record.job_id, JobState.STARTING, cluster_id="c1", placement=hosts)
    store.transition(record.job_id, JobState.RUNNING, message="running")

    [job] = jobs_json(store.list())

    assert (job["id"], job["name"], job["state"], job["cluster"]) == (
        record.job_id,
        "demo-mpi",
        "running",
        "c1",
    )
    assert job["members"] == [
        {"name": "demo-mpi-0", "uuid": member_uuid(record.job_id, "demo-mpi-0"), "node": "c1-n1"},
        {"name": "demo-mpi-1", "uuid": member_uuid(record.job_id, "demo-mpi-1"), "node": "c1-n2"},
    ]
    assert job["memory_mib"] == 256 and job["created_at_unix_ms"] == 1_000_000


def test_jobs_are_listed_newest_first_and_unplaced_members_have_no_node() -> None:
    store = make_store()
    first = store.create(parse_job(dict(JOB)))
    second = store.create(parse_job(dict(JOB, name="later")))

    listed = jobs_json(store.list())

    assert [j["id"] for j in listed] == [second.job_id, first.job_id]
    assert listed[0]["state"] == "pending" and listed[0]["cluster"] == ""
    assert {m["node"] for m in listed[0]["members"]} == {""}


def test_one_job_is_found_by_id_and_an_unknown_id_is_a_404_naming_it() -> None:
    store = make_store()
    record = store.create(parse_job(dict(JOB)))
    assert one_job(StoreSource(store), record.job_id)["id"] == record.job_id

    with pytest.raises(ApiError) as missing:
        one_job(StoreSource(store), "no-such-job")
    assert missing.value.status == 404 and "no-such-job" in missing.value.message

    with pytest.raises(ApiError) as disabled:
        one_job(None, "any")
    assert disabled.value.status == 404
