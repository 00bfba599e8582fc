"""`vmgridctl submit -f job.toml` and `vmgridctl job ID`: run a job on a cluster, read its state.

The job file is read here (TOML or JSON) and sent whole; the cluster validates it (a bad
field comes back as one INVALID_ARGUMENT line and nothing starts), places the group with HA
admission and starts it, all-or-nothing. Exit codes: 0 running, 1 failed or RPC error, 2 bad
file or flags.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from vmgrid.agents.errors import ConfigError
from vmgrid.coordinator.cli.cluster_cmd import _common, _run
from vmgrid.coordinator.jobs import codec as jobs_codec
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, common_pb2


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    submit = sub.add_parser("submit", help="submit a VM or VM group (job file) to a cluster")
    _common(submit)
    submit.add_argument("-f", "--file", required=True, help="job file, .toml or .json")
    submit.set_defaults(handler=lambda a: _run(a, _submit))
    job = sub.add_parser("job", help="show one job of a cluster")
    _common(job)
    job.add_argument("job_id")
    job.set_defaults(handler=lambda a: _run(a, _job))


def read_document(path: str) -> dict[str, Any]:
    """The job file as a dict; ConfigError names the file and what is wrong."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except (OSError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"job file {path!r}: {exc}; accepted: a readable .toml or .json"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"job file {path!r}: accepted: a table / JSON object")
    return data


async def _submit(stub: cluster_pb2_grpc.ClusterServiceStub, args: argparse.Namespace) -> int:
    spec = jobs_codec.encode_document(read_document(args.file))
    reply = await stub.SubmitJob(cluster_pb2.SubmitJobRequest(spec=spec), timeout=args.timeout)
    return _show(reply.job, args)


async def _job(stub: cluster_pb2_grpc.ClusterServiceStub, args: argparse.Namespace) -> int:
    reply = await stub.GetJob(cluster_pb2.GetJobRequest(job_id=args.job_id), timeout=args.timeout)
    return _show(reply.job, args)


def _show(job: common_pb2.Job, args: argparse.Namespace) -> int:
    state = common_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_").lower()
    if args.output == "json":
        print(json.dumps(MessageToDict(job), indent=2))
    else:
        print(f"job {job.job_id} {job.spec.name}: {state} on {job.cluster_id or '-'}")
        print(f"  {job.message}")
    return 1 if job.state == common_pb2.JOB_STATE_FAILED else 0
