"""The ``[fault_tolerance]`` table of ``vmgrid-cluster``: jobs, checkpoints, node failures.

Off unless ``--jobs`` is given or the table exists. Keys are the long flag names with
underscores (a flag overrides its key); ``[fault_tolerance.images]`` maps catalogue names to
qcow2 backing files (flag: ``--image NAME=PATH``, repeatable). Each bad value is one
ConfigError line naming the key, the value and what is accepted.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vmgrid.agents.cluster.jobs.fault_tolerance import FaultToleranceOptions
from vmgrid.agents.cluster.jobs.ha import HaConfig
from vmgrid.agents.cluster.jobs.submission import DOMAIN_TYPES, SubmissionConfig
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.jobmodel import SnapshotPolicy

TABLE = "fault_tolerance"
JOBS_FILE = "jobs.sqlite"
_S, _H, _F = SubmissionConfig(), HaConfig(), FaultToleranceOptions()

# key -> (default, help); the default's type is the accepted TOML type (int accepted for float).
KEYS: dict[str, tuple[object, str]] = {
    "jobs": (False, "accept job submission, take checkpoints, restart VMs of failed nodes"),
    "storage_dir": (_S.storage_dir, "directory of overlays and seed ISOs (see shared_storage)"),
    "shared_storage": (
        _S.shared_storage,
        "storage_dir is shared by every node (manager writes disks); false: each node's agent "
        "creates them in its own storage_dir",
    ),
    "jobs_db": ("", f"SQLite of jobs and checkpoints (default beside the journal: {JOBS_FILE})"),
    "failures_to_tolerate": (_S.failures_to_tolerate, "node failures admission keeps room for"),
    "domain_type": (_S.domain_type, f"member domain type: {', '.join(DOMAIN_TYPES)}"),
    "network": (_S.network, "libvirt network members join (empty: none)"),
    "fence_command": (
        shlex.join(_H.fence_command),
        "fencing argv, {node} and {uri} substituted; exit 0 = fenced",
    ),
    "fence_timeout_s": (_H.fence_timeout_s, "seconds a fence command or libvirt probe may take"),
    "ha_period_s": (_H.period_s, "seconds between examinations of lost nodes"),
    "restart_on_failure": (
        _F.restart_on_failure,
        "restart the VMs of a failed (lost + fenced) node elsewhere",
    ),
    "checkpoint_period_s": (_F.checkpoint_period_s, "seconds between snapshot policy checks"),
    "checkpoint_dir": (
        _F.checkpoint_dir,
        "directory of checkpoints' memory files, on every node (NFS); default "
        "<storage_dir>/checkpoints",
    ),
    "checkpoint_interval_s": (0.0, "default checkpoint interval of jobs without one (0: none)"),
    "checkpoint_retention": (3, "checkpoints kept with the default interval"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(f"jobs and fault tolerance ([{TABLE}] table)")
    for key, (default, help_text) in KEYS.items():
        flag = "--" + key.replace("_", "-")
        text = f"{help_text} (default {default!r})" if default != "" else help_text
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            kind = type(default)
            group.add_argument(flag, type=kind, default=None, metavar=key.upper(), help=text)
    group.add_argument(
        "--image", action="append", metavar="NAME=PATH", help="catalogue image (repeatable)"
    )


def table(document: Mapping[str, Any], path: str) -> dict[str, Any] | None:
    """The ``[fault_tolerance]`` table of a read config file, checked; None when absent."""
    found = document.get(TABLE)
    if found is None:
        return None
    if not isinstance(found, dict):
        raise ConfigError(f"{TABLE}: must be a table ([{TABLE}]) in {path!r}, got {found!r}")
    for key, value in found.items():
        if key == "images":
            continue
        if key not in KEYS:
            raise ConfigError(f"{TABLE}: unknown key {key!r}; accepted: images, {', '.join(KEYS)}")
        expected = type(KEYS[key][0])
        if not (type(value) is expected or (expected is float and type(value) is int)):
            raise ConfigError(
                f"{TABLE}.{key} = {value!r} in {path!r}: must be a {expected.__name__}"
            )
    return dict(found)


def _images(found: Mapping[str, Any], flags: list[str] | None) -> dict[str, str]:
    images = found.get("images", {})
    if not isinstance(images, dict) or not all(isinstance(v, str) for v in images.values()):
        raise ConfigError(f'{TABLE}.images: {images!r}; accepted: a table of name = "/path.qcow2"')
    out = dict(images)
    for item in flags or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--image {item!r}: accepted: NAME=/absolute/path.qcow2")
        out[name] = path
    for name, path in out.items():
        if not path.startswith("/") or not path.endswith(".qcow2"):
            raise ConfigError(f"{TABLE}.images.{name}: {path!r}; accepted: an absolute .qcow2 path")
    return out


def options(
    found: Mapping[str, Any] | None, args: argparse.Namespace, journal_path: str
) -> FaultToleranceOptions | None:
    """FaultToleranceOptions from the table and flags; None when jobs are not enabled."""
    values = dict(found or {})
    for key in KEYS:
        if getattr(args, key, None) is not None:
            values[key] = getattr(args, key)
    enabled = values.get("jobs", found is not None or bool(getattr(args, "image", None)))
    if not enabled:
        return None
    v = {k: values.get(k, default) for k, (default, _) in KEYS.items()}
    if v["domain_type"] not in DOMAIN_TYPES:
        raise ConfigError(
            f"{TABLE}.domain_type: {v['domain_type']!r}; accepted: {', '.join(DOMAIN_TYPES)}"
        )
    for key in ("fence_timeout_s", "ha_period_s", "checkpoint_period_s"):
        if not float(v[key]) > 0:
            raise ConfigError(f"{TABLE}.{key}: {v[key]!r} must be > 0")
    if int(v["failures_to_tolerate"]) < 0:
        raise ConfigError(
            f"{TABLE}.failures_to_tolerate: {v['failures_to_tolerate']!r} must be >= 0"
        )
    storage = str(v["storage_dir"])
    shared = bool(v["shared_storage"])
    if storage and shared and not Path(storage).is_dir():
        raise ConfigError(f"{TABLE}.storage_dir: {storage!r} is not a directory")
    if storage and not shared and not storage.startswith("/"):
        raise ConfigError(
            f"{TABLE}.storage_dir: {storage!r}; accepted: an absolute path on every node"
        )
    try:
        fence = tuple(shlex.split(str(v["fence_command"])))
    except ValueError as exc:
        raise ConfigError(f"{TABLE}.fence_command: {v['fence_command']!r} ({exc})") from None
    default_policy = None
    if float(v["checkpoint_interval_s"]) > 0:
        if float(v["checkpoint_interval_s"]) < 60 or int(v["checkpoint_retention"]) < 1:
            raise ConfigError(
                f"{TABLE}.checkpoint_interval_s / checkpoint_retention: "
                f"{v['checkpoint_interval_s']!r} / {v['checkpoint_retention']!r}; accepted: "
                "an interval of at least 60 s and a retention of at least 1"
            )
        default_policy = SnapshotPolicy(
            int(v["checkpoint_interval_s"]), int(v["checkpoint_retention"])
        )
    db = str(v["jobs_db"]) or _beside(journal_path)
    return FaultToleranceOptions(
        submission=SubmissionConfig(
            storage_dir=storage,
            shared_storage=shared,
            images=_images(found or {}, getattr(args, "image", None)),
            failures_to_tolerate=int(v["failures_to_tolerate"]),
            domain_type=str(v["domain_type"]),
            network=str(v["network"]),
            db_path=db,
        ),
        ha=HaConfig(
            fence_command=fence,
            fence_timeout_s=float(v["fence_timeout_s"]),
            period_s=float(v["ha_period_s"]),
        ),
        checkpoint_period_s=float(v["checkpoint_period_s"]),
        restart_on_failure=bool(v["restart_on_failure"]),
        default_checkpoint_policy=default_policy,
        checkpoint_dir=str(v["checkpoint_dir"]),
    )


def _beside(journal_path: str) -> str:
    if journal_path == ":memory:":
        return ":memory:"
    return str(Path(journal_path).parent / JOBS_FILE)
