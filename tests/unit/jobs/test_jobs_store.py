"""The SQLite job store: the state machine refuses illegal moves; jobs survive a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from jobs_builders import job
from vmgrid.agents.jobmodel import JobSpec, JobState, JobStateError, JobStore, parse_job

P, PL, ST, R, F = (
    JobState.PENDING,
    JobState.PLACING,
    JobState.STARTING,
    JobState.RUNNING,
    JobState.FAILED,
)


def spec() -> JobSpec:
    return parse_job(job(image="/img/base.qcow2"))


def walk(store: JobStore, path: list[JobState]) -> str:
    jid = store.create(spec()).job_id
    for state in path:
        store.transition(jid, state)
    return jid


LEGAL = [[PL, ST, R], [PL, ST, F], [PL, F], [F]]
ILLEGAL = [
    ([], ST),
    ([], R),
    ([PL], R),
    ([PL, ST], PL),
    ([PL, ST, R], F),
    ([PL, ST, R], PL),
    ([F], PL),
    ([F], F),
]


@pytest.mark.parametrize("path", LEGAL, ids=lambda p: ">".join(s.value for s in p))
def test_legal_paths_reach_their_last_state(path: list[JobState]) -> None:
    with JobStore(":memory:") as store:
        assert store.get(walk(store, path)).state is path[-1]


@pytest.mark.parametrize(("path", "to"), ILLEGAL, ids=lambda x: getattr(x, "value", None))
def test_illegal_transitions_are_refused_and_change_nothing(
    path: list[JobState], to: JobState
) -> None:
    with JobStore(":memory:") as store:
        jid = walk(store, path)
        before = store.get(jid)
        with pytest.raises(JobStateError, match=f"to {to.value}"):
            store.transition(jid, to)
        assert store.get(jid) == before


def test_jobs_survive_a_restart_with_placement_and_message(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    with JobStore(db) as store:
        jid = walk(store, [PL])
        store.transition(jid, ST, cluster_id="c1", placement={"mpi-0": "n1", "mpi-1": "n2"})
        failed = walk(store, [PL])
        store.transition(failed, F, message="no cluster can take the group")
    with JobStore(db) as store:
        job_ = store.get(jid)
        assert (job_.state, job_.cluster_id) == (ST, "c1")
        assert dict(job_.placement) == {"mpi-0": "n1", "mpi-1": "n2"}
        assert job_.spec == spec()
        assert store.get(failed).message == "no cluster can take the group"
        assert [j.job_id for j in store.list(states=[F])] == [failed]
        assert [j.job_id for j in store.list(cluster_id="c1")] == [jid]
        assert len(store.list()) == 2


def test_unknown_and_duplicate_ids_are_refused() -> None:
    with JobStore(":memory:") as store:
        with pytest.raises(JobStateError, match="unknown job id 'nope'"):
            store.get("nope")
        store.create(spec(), job_id="j1")
        with pytest.raises(JobStateError, match="already exists"):
            store.create(spec(), job_id="j1")


def test_final_states_are_final() -> None:
    assert R.final and F.final and not P.final
