"""Wire <-> domain for jobs (common.proto JobSpec / Job), used by the cluster and coordinator.

The whole job document travels as JSON in `JobSpec.document_json` (the wire VmSpec has no
field for the key, NFS shares, placement rules or snapshot policy); `vms` is filled too, for
readers that only know the older fields.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from collections.abc import Mapping
from typing import Any

from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.jobmodel.errors import JobSpecError
from vmgrid.agents.jobmodel.spec import JobSpec
from vmgrid.agents.jobmodel.store import JobRecord, JobState
from vmgrid.agents.wire_limits import parse_json
from vmgrid.v1 import common_pb2

MIB = 1024 * 1024
_NAMESPACE = uuidlib.UUID("6f1d2a52-9a49-4c1e-9a53-8f0f6c1d7a11")
_STATES = {
    JobState.PENDING: common_pb2.JOB_STATE_PENDING,
    JobState.PLACING: common_pb2.JOB_STATE_PLACING,
    JobState.STARTING: common_pb2.JOB_STATE_STARTING,
    JobState.RUNNING: common_pb2.JOB_STATE_RUNNING,
    JobState.FAILED: common_pb2.JOB_STATE_FAILED,
}
_FROM_WIRE = {v: k for k, v in _STATES.items()}


def member_uuid(job_id: str, member: str) -> str:
    """Stable per job and member, so a retried define is the same VM."""
    return str(uuidlib.uuid5(_NAMESPACE, f"{job_id}/{member}"))


def encode_document(document: Mapping[str, Any], cluster_id: str = "") -> common_pb2.JobSpec:
    """A job document as the user wrote it (validated by the receiver)."""
    name = document.get("name", "")
    return common_pb2.JobSpec(
        name=name if isinstance(name, str) else "",
        cluster_id=cluster_id,
        document_json=json.dumps(dict(document), sort_keys=True),
    )


def decode_document(spec: common_pb2.JobSpec) -> dict[str, Any]:
    """The job document of a wire JobSpec; JobSpecError names what is missing or bad."""
    if not spec.document_json:
        raise JobSpecError(
            "spec.document_json", "", "the job document (JSON of a job file) is required"
        )
    try:
        data = parse_json("spec.document_json", spec.document_json)
    except MalformedMessage as exc:
        raise JobSpecError("spec.document_json", spec.document_json[:40], str(exc)) from None
    if not isinstance(data, dict):
        raise JobSpecError("spec.document_json", type(data).__name__, "accepted: a JSON object")
    if spec.cluster_id and not data.get("cluster"):
        data["cluster"] = spec.cluster_id
    return data


def _vm_specs(spec: JobSpec) -> list[common_pb2.VmSpec]:
    return [
        common_pb2.VmSpec(
            name=m,
            vcpus=spec.vcpus,
            memory_bytes=spec.memory_mib * MIB,
            cpu_demand_millicores=spec.cpu_millicores,
            network_demand_bps=spec.bandwidth_mbps * 1_000_000,
            image=spec.backing_file,
        )
        for m in spec.members
    ]


def encode_job(record: JobRecord) -> common_pb2.Job:
    spec = record.spec
    job = common_pb2.Job(
        job_id=record.job_id,
        spec=common_pb2.JobSpec(
            name=spec.name,
            vms=_vm_specs(spec),
            cluster_id=record.cluster_id,
            document_json=json.dumps(spec.to_dict(), sort_keys=True),
        ),
        state=_STATES[record.state],
        cluster_id=record.cluster_id,
        vm_uuids=[member_uuid(record.job_id, m) for m in spec.members if m in record.placement],
        message=record.message,
    )
    job.submitted_at.FromNanoseconds(int(record.created_at * 1e9))
    job.updated_at.FromNanoseconds(int(record.updated_at * 1e9))
    return job


def job_state(wire: int) -> JobState:
    """Domain state of a wire JobState (unknown values read as failed)."""
    return _FROM_WIRE.get(wire, JobState.FAILED)  # type: ignore[call-overload]


def job_state_to_wire(state: JobState) -> int:
    return int(_STATES[state])


def describe_placement(hosts: Mapping[str, str]) -> str:
    """``a@n1, b@n2``: a placement in a job message (read back by `placement_of`)."""
    return ", ".join(f"{m}@{n}" for m, n in sorted(hosts.items()))


def placement_of(message: str) -> dict[str, str]:
    """The placement in a ``running: a@n1, b@n2`` message; empty when there is none."""
    _, sep, rest = message.partition("running: ")
    if not sep:
        return {}
    pairs = (item.strip().partition("@") for item in rest.split(","))
    return {m: n for m, at, n in pairs if at and m and n}
