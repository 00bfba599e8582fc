"""`vmgridctl submit | job | jobs | checkpoints`: run jobs on the grid, read their state, and
list, take, revert or delete their checkpoints.

Route: the grid coordinator by default (``--coordinator``, else ``$VMGRID_COORDINATOR``, else
127.0.0.1:7600), which chooses one cluster for the whole group; ``--cluster HOST:PORT`` talks
to one cluster manager directly instead. The job file is read here (TOML or JSON) and sent
whole; a bad field comes back as one INVALID_ARGUMENT line and nothing starts. Checkpoints live
on the job's cluster: without ``--cluster`` the coordinator tells which one and where it is.
Exit codes: 0 running / done, 1 job failed or other error, 2 bad file, flag or value,
3 unreachable, 4 not found, 5 not possible now.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tomllib
from pathlib import Path
from typing import Any, TypeAlias

import grpc
import grpc.aio
from google.protobuf.json_format import MessageToDict
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.jobmodel import JobState
from vmgrid.agents.jobmodel import codec as jobs_codec
from vmgrid.coordinator.cli import grid_cmd
from vmgrid.coordinator.cli import settings as s
from vmgrid.v1 import cluster_pb2, common_pb2, coordinator_pb2, coordinator_pb2_grpc

GridStub: TypeAlias = coordinator_pb2_grpc.CoordinatorServiceStub
STATES = tuple(state.value for state in JobState)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    submit = _parser(sub, "submit", "submit a VM or VM group (job file) to the grid or a cluster")
    submit.add_argument(
        "-f", "--file", required=True, metavar="FILE", help="job file, .toml or .json"
    )
    submit.set_defaults(handler=lambda a: _route(a, _submit_grid, _submit_cluster))
    job = _parser(sub, "job", "show one job")
    job.add_argument("job_id", help="job id (see vmgridctl jobs)")
    job.set_defaults(handler=lambda a: _route(a, _job_grid, _job_cluster))
    jobs = _parser(sub, "jobs", "list the grid's jobs (coordinator)")
    jobs.add_argument("--state", action="append", choices=STATES, help="only jobs in this state")
    jobs.add_argument("--in-cluster", default="", help="only jobs placed in this cluster id")
    jobs.set_defaults(handler=lambda a: grid_cmd.run(a, _jobs))
    ckpt = _parser(sub, "checkpoints", "list, take, revert or delete a job's checkpoints")
    ckpt.add_argument("job_id", help="job id (see vmgridctl jobs)")
    action = ckpt.add_mutually_exclusive_group()
    action.add_argument("--take", action="store_true", help="take a checkpoint now")
    action.add_argument("--revert", metavar="NAME", help="revert every member to NAME")
    action.add_argument("--delete", metavar="NAME", help="delete checkpoint NAME")
    ckpt.set_defaults(handler=_checkpoints)


def _parser(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog="examples:\n  vmgridctl submit -f job.toml --coordinator 10.0.0.1:7600\n"
        "  vmgridctl submit -f job.toml --cluster 10.0.0.5:7443   # one cluster, directly\n"
        "  vmgridctl jobs --state running\n  vmgridctl checkpoints JOB_ID --take\n"
        + s.EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_connection_arguments(parser)
    parser.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="grid coordinator, the default route ($VMGRID_COORDINATOR or 127.0.0.1:7600)",
    )
    return parser


def read_document(path: str) -> dict[str, Any]:
    """The job file as a dict; ConfigError names the file and what is wrong."""
    p = Path(path)
    if p.suffix not in (".toml", ".json"):
        raise ConfigError(f"job file {path!r}: suffix {p.suffix!r}; accepted: .toml or .json")
    try:
        text = p.read_text(encoding="utf-8")
        data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except OSError as exc:
        raise ConfigError(
            f"job file {path!r}: {exc.strerror}; accepted: a readable .toml or .json file"
        ) from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"job file {path!r}: {exc}; accepted: valid TOML or JSON") from None
    if not isinstance(data, dict):
        raise ConfigError(f"job file {path!r}: accepted: a table / JSON object")
    return data


def _route(
    args: argparse.Namespace,
    on_grid: grid_cmd.Query,
    on_cluster: s.Query,
) -> int:
    """--cluster given: that cluster directly; else the coordinator."""
    if args.cluster:
        return s.run(args, on_cluster)
    return grid_cmd.run(args, on_grid)


def _spec(args: argparse.Namespace) -> common_pb2.JobSpec:
    try:
        return jobs_codec.encode_document(read_document(args.file))
    except ConfigError as exc:
        raise s.CommandError(str(exc), s.EXIT_USAGE) from None


async def _submit_grid(stub: GridStub, args: argparse.Namespace) -> int:
    request = coordinator_pb2.CoordinatorServiceSubmitJobRequest(spec=_spec(args))
    reply = await stub.SubmitJob(request, timeout=max(args.timeout, 300.0))
    return _show(reply.job, args)


async def _submit_cluster(stub: s.Stub, args: argparse.Namespace) -> int:
    request = cluster_pb2.SubmitJobRequest(spec=_spec(args))
    reply = await stub.SubmitJob(request, timeout=max(args.timeout, 300.0))
    return _show(reply.job, args)


async def _job_grid(stub: GridStub, args: argparse.Namespace) -> int:
    request = coordinator_pb2.CoordinatorServiceGetJobRequest(job_id=args.job_id)
    reply = await stub.GetJob(request, timeout=args.timeout)
    return _show(reply.job, args)


async def _job_cluster(stub: s.Stub, args: argparse.Namespace) -> int:
    reply = await stub.GetJob(cluster_pb2.GetJobRequest(job_id=args.job_id), timeout=args.timeout)
    return _show(reply.job, args)


def _state(job: common_pb2.Job) -> str:
    return common_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_").lower()


def _show(job: common_pb2.Job, args: argparse.Namespace) -> int:
    if args.output == "json":
        print(json.dumps(MessageToDict(job, preserving_proto_field_name=True), indent=2))
    else:
        print(f"job {job.job_id} {job.spec.name}: {_state(job)} on {job.cluster_id or '-'}")
        print(f"  {job.message}")
    return s.EXIT_ERROR if job.state == common_pb2.JOB_STATE_FAILED else s.EXIT_OK


async def _jobs(stub: GridStub, args: argparse.Namespace) -> int:
    states = [jobs_codec.job_state_to_wire(JobState(x)) for x in args.state or []]
    request = coordinator_pb2.ListJobsRequest(
        cluster_id=args.in_cluster,
        states=states,  # type: ignore[arg-type]
    )
    reply = await stub.ListJobs(request, timeout=args.timeout)
    if args.output == "json":
        s.print_json(reply)
        return s.EXIT_OK
    rows = [
        [j.job_id, j.spec.name, _state(j), j.cluster_id or "-", len(j.vm_uuids), j.message]
        for j in reply.jobs
    ]
    s.print_table(["JOB", "NAME", "STATE", "CLUSTER", "VMS", "MESSAGE"], rows)
    return s.EXIT_OK


# ---- checkpoints (on the job's cluster) ------------------------------------------------------


async def _cluster_of(args: argparse.Namespace, job_id: str) -> str:
    """The endpoint of the cluster running `job_id`, as the coordinator knows it."""
    target = grid_cmd.address(args)
    async with grid_cmd._channel(args, target) as channel:
        stub = GridStub(channel)
        request = coordinator_pb2.CoordinatorServiceGetJobRequest(job_id=job_id)
        job = (await stub.GetJob(request, timeout=args.timeout)).job
        if not job.cluster_id:
            raise s.CommandError(
                f"job {job_id} is {_state(job)} and runs on no cluster yet", s.EXIT_STATE
            )
        clusters = await stub.ListClusters(
            coordinator_pb2.ListClustersRequest(), timeout=args.timeout
        )
    for info in clusters.clusters:
        if info.cluster_id == job.cluster_id and info.endpoint:
            return str(info.endpoint)
    raise s.CommandError(
        f"cluster {job.cluster_id} of job {job_id} has no known endpoint; give --cluster",
        s.EXIT_NOT_FOUND,
    )


def _checkpoints(args: argparse.Namespace) -> int:
    async def go() -> int:
        settings = s.resolve(args)
        if not args.cluster:
            endpoint = await _cluster_of(args, args.job_id)
            settings = s.Settings(endpoint, settings.coordinator, settings.certs)
        async with s.channel(args, settings) as chan:
            return await _checkpoint_action(s.Stub(chan), args)

    try:
        return asyncio.run(go())
    except ConfigError as exc:
        s.fail(args, str(exc))
        return s.EXIT_USAGE
    except s.CommandError as exc:
        s.fail(args, str(exc))
        return exc.code
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
        s.fail(args, f"{code.name}: {exc.details() or code.name}")
        return s.EXIT_BY_STATUS.get(code, s.EXIT_ERROR)


async def _checkpoint_action(stub: s.Stub, args: argparse.Namespace) -> int:
    job_id, timeout = args.job_id, max(args.timeout, 120.0)
    if args.take:
        reply = await stub.TakeCheckpoint(
            cluster_pb2.TakeCheckpointRequest(job_id=job_id), timeout=timeout
        )
        print(f"checkpoint {reply.checkpoint.name} of job {job_id} taken")
    elif args.revert:
        request = cluster_pb2.RevertCheckpointRequest(job_id=job_id, name=args.revert)
        await stub.RevertCheckpoint(request, timeout=timeout)
        print(f"job {job_id} reverted to {args.revert}")
    elif args.delete:
        request_d = cluster_pb2.DeleteCheckpointRequest(job_id=job_id, name=args.delete)
        await stub.DeleteCheckpoint(request_d, timeout=timeout)
        print(f"checkpoint {args.delete} of job {job_id} deleted")
    else:
        reply_l = await stub.ListCheckpoints(
            cluster_pb2.ListCheckpointsRequest(job_id=job_id), timeout=args.timeout
        )
        if args.output == "json":
            s.print_json(reply_l)
        else:
            rows = [
                [c.name, c.taken_at.ToDatetime().isoformat() + "Z"] for c in reply_l.checkpoints
            ]
            s.print_table(["CHECKPOINT", "TAKEN_AT"], rows)
    return s.EXIT_OK
