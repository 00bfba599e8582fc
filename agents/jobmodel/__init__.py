"""VM and VM-group submission: spec -> store -> placement -> seed ISO and domain XML.

Pipeline, one module per stage: `spec` (parse and validate what the user wrote) -> `store`
(SQLite job states pending -> placing -> starting -> running | failed) -> `placement` (one
cluster for the whole group, then that cluster's solver picks nodes, all-or-nothing) ->
`seed` (cloud-init NoCloud ISO and the libvirt XML that boots each member). HA admission
control lives in the solver: `vmgrid.solver.admission`.
"""

from vmgrid.agents.jobmodel.errors import JobError, JobSpecError, JobStateError, SeedError
from vmgrid.agents.jobmodel.spec import (
    JobSpec,
    NodeSize,
    PlacementRules,
    SnapshotPolicy,
    SpecContext,
    load_job,
    parse_job,
)
from vmgrid.agents.jobmodel.store import JobRecord, JobState, JobStore

__all__ = [
    "JobError",
    "JobRecord",
    "JobSpec",
    "JobSpecError",
    "JobState",
    "JobStateError",
    "JobStore",
    "NodeSize",
    "PlacementRules",
    "SeedError",
    "SnapshotPolicy",
    "SpecContext",
    "load_job",
    "parse_job",
]
