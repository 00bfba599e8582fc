"""A submitted job: one VM or a group of identical VMs (a parallel application).

`parse_job(data, context)` turns what a user wrote (TOML, JSON or the HTTP API's dict) into a
frozen `JobSpec`, or raises one `JobSpecError` naming the first bad field and value. It checks
everything that can be checked before placement, so that nothing starts on a bad request:
unknown image, a VM bigger than any node, conflicting placement rules, bad key, bad NFS share.

Example TOML (``vmgridctl submit -f job.toml``)::

    name = "mpi"
    count = 4                 # or: members = ["head", "w1", "w2"]
    image = "debian-12"       # a catalogue name, or an absolute path to a .qcow2 backing file
    vcpus = 2
    memory_mib = 2048
    bandwidth_mbps = 100
    ha_priority = 10
    user = "alice"
    ssh_key = "ssh-ed25519 AAAA... alice@laptop"
    [placement]
    spread = true
    ban = ["n3"]
    [[nfs]]
    source = "fs1:/export/home"
    mountpoint = "/home/shared"
    [snapshot]
    interval = "30m"
    retention = 4
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.jobmodel import fields as f
from vmgrid.agents.jobmodel.errors import JobSpecError
from vmgrid.agents.jobmodel.fields import NfsMount
from vmgrid.agents.wire_limits import MAX_JSON_DEPTH, json_depth, parse_json

MAX_MEMBERS = 256
MAX_VCPUS = 256
MAX_MEMORY_MIB = 4 * 1024 * 1024
MAX_BANDWIDTH_MBPS = 400_000
MAX_HA_PRIORITY = 1000
MIN_SNAPSHOT_INTERVAL_S = 60
_KEYS = {
    "name",
    "count",
    "members",
    "image",
    "vcpus",
    "cpu_millicores",
    "memory_mib",
    "bandwidth_mbps",
    "placement",
    "user",
    "ssh_key",
    "nfs",
    "snapshot",
    "ha_priority",
    "cluster",
    "backing_file",
}


@dataclass(frozen=True, slots=True)
class NodeSize:
    """What the largest node offers; a VM (or a gathered group) above it can never run."""

    cpu_millicores: int
    memory_mib: int
    network_mbps: int


@dataclass(frozen=True)
class SpecContext:
    """What the parser checks a job against; every part is optional.

    `images`: the image catalogue, name -> absolute qcow2 backing file path.
    `largest_node`: the biggest node in the grid (None: sizes are not checked against nodes).
    `known_nodes`: node names that ban/fence may use (None: not checked).
    """

    images: Mapping[str, str] = field(default_factory=dict)
    largest_node: NodeSize | None = None
    known_nodes: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class PlacementRules:
    """Placement constraints on the whole group (BtrPlace's spread/gather/ban/fence)."""

    spread: bool = False
    gather: bool = False
    ban: tuple[str, ...] = ()
    fence: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SnapshotPolicy:
    """Take a checkpoint every `interval_s`, keep the `retention` newest."""

    interval_s: int
    retention: int


@dataclass(frozen=True)
class JobSpec:
    """A validated job. Every member VM gets the same size, image, key and shares.

    `backing_file` is the resolved qcow2 image each member's overlay is created on.
    `ha_priority`: higher restarts first after a node failure.
    """

    name: str
    members: tuple[str, ...]
    image: str
    backing_file: str
    vcpus: int
    cpu_millicores: int
    memory_mib: int
    bandwidth_mbps: int
    ssh_key: str
    user: str = "vmgrid"
    placement: PlacementRules = PlacementRules()
    nfs: tuple[NfsMount, ...] = ()
    snapshot: SnapshotPolicy | None = None
    ha_priority: int = 0
    cluster: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A dict that `parse_job` reads back to an equal spec, with no image catalogue."""
        out: dict[str, Any] = {
            "name": self.name,
            "members": list(self.members),
            "image": self.image,
            "backing_file": self.backing_file,
            "vcpus": self.vcpus,
            "cpu_millicores": self.cpu_millicores,
            "memory_mib": self.memory_mib,
            "bandwidth_mbps": self.bandwidth_mbps,
            "user": self.user,
            "ssh_key": self.ssh_key,
            "ha_priority": self.ha_priority,
            "cluster": self.cluster,
            "placement": {
                "spread": self.placement.spread,
                "gather": self.placement.gather,
                "ban": list(self.placement.ban),
                "fence": list(self.placement.fence),
            },
            "nfs": [
                {"source": m.source, "mountpoint": m.mountpoint, "options": m.options}
                for m in self.nfs
            ],
        }
        if self.snapshot is not None:
            out["snapshot"] = {
                "interval": self.snapshot.interval_s,
                "retention": self.snapshot.retention,
            }
        return out


def load_job(path: str | Path, context: SpecContext | None = None) -> JobSpec:
    """Read a job file: ``.toml`` or ``.json``."""
    p = Path(path)
    if p.suffix not in (".toml", ".json"):
        raise JobSpecError("file", str(p), "accepted: a .toml or .json file")
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise JobSpecError("file", str(p), f"cannot be read ({exc.strerror})") from None
    if p.suffix == ".toml":
        try:
            data: object = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise JobSpecError("file", str(p), f"is not valid TOML ({exc})") from None
        except RecursionError:
            raise JobSpecError("file", str(p), "is nested too deep") from None
    else:
        try:
            data = parse_json("file", text)
        except MalformedMessage as exc:
            raise JobSpecError("file", str(p), str(exc)) from None
    return parse_job(data, context)


def parse_job(data: object, context: SpecContext | None = None) -> JobSpec:
    """Validate `data` (a mapping as written by the user) into a `JobSpec`."""
    ctx = context or SpecContext()
    if not isinstance(data, Mapping):
        raise JobSpecError("job", type(data).__name__, "accepted: a table / JSON object")
    if json_depth(data) > MAX_JSON_DEPTH:
        raise JobSpecError("job", "(document)", f"nested deeper than {MAX_JSON_DEPTH} levels")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise JobSpecError(unknown[0], data[unknown[0]], f"unknown field; known: {sorted(_KEYS)}")
    name = f.dns_label("name", data.get("name"))
    members = _members(name, data)
    image, backing = _image(data.get("image"), data.get("backing_file"), ctx)
    vcpus = f.int_in("vcpus", data.get("vcpus", 1), 1, MAX_VCPUS)
    cpu = f.int_in("cpu_millicores", data.get("cpu_millicores", vcpus * 1000), 1, vcpus * 1000)
    memory = f.int_in("memory_mib", data.get("memory_mib"), 16, MAX_MEMORY_MIB, "MiB")
    bandwidth = f.int_in("bandwidth_mbps", data.get("bandwidth_mbps", 0), 0, MAX_BANDWIDTH_MBPS)
    cluster = data.get("cluster", "")
    if not isinstance(cluster, str):
        raise JobSpecError("cluster", cluster, "accepted: a cluster id, or empty for any")
    spec = JobSpec(
        name=name,
        members=members,
        image=image,
        backing_file=backing,
        vcpus=vcpus,
        cpu_millicores=cpu,
        memory_mib=memory,
        bandwidth_mbps=bandwidth,
        ssh_key=f.ssh_public_key("ssh_key", data.get("ssh_key")),
        user=f.user_name("user", data.get("user", "vmgrid")),
        placement=_placement(data.get("placement", {}), len(members), ctx),
        nfs=_nfs(data.get("nfs", [])),
        snapshot=_snapshot(data.get("snapshot")),
        ha_priority=f.int_in("ha_priority", data.get("ha_priority", 0), 0, MAX_HA_PRIORITY),
        cluster=cluster,
    )
    _check_size(spec, ctx.largest_node)
    return spec


def _members(name: str, data: Mapping[str, Any]) -> tuple[str, ...]:
    if "count" in data and "members" in data:
        raise JobSpecError("members", data["members"], "give either count or members, not both")
    if "members" in data:
        raw = data["members"]
        if not isinstance(raw, list) or not raw or len(raw) > MAX_MEMBERS:
            raise JobSpecError("members", raw, f"accepted: a list of 1 to {MAX_MEMBERS} names")
        names = tuple(f.dns_label(f"members[{i}]", v) for i, v in enumerate(raw))
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise JobSpecError("members", dup, "member names must be unique")
        return names
    count = f.int_in("count", data.get("count", 1), 1, MAX_MEMBERS)
    if count == 1:
        return (name,)
    return tuple(f.dns_label("name", f"{name}-{i}") for i in range(count))


def _image(value: object, backing: object, ctx: SpecContext) -> tuple[str, str]:
    """(image as named, backing file). An explicit `backing` (a stored job) needs no catalogue."""
    if backing is not None:
        if not isinstance(value, str) or not value:
            raise JobSpecError("image", value, "accepted: an image name or .qcow2 path")
        return value, _qcow2_path("backing_file", backing)
    if isinstance(value, str) and value.startswith("/"):
        return value, _qcow2_path("image", value)
    if isinstance(value, str) and value in ctx.images:
        return value, ctx.images[value]
    known = ", ".join(sorted(ctx.images)) or "none configured"
    raise JobSpecError(
        "image", value, f"unknown image; accepted: a .qcow2 path or a catalogue name ({known})"
    )


def _qcow2_path(name: str, value: object) -> str:
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or not value.endswith(".qcow2")
        or any(c.isspace() for c in value)
    ):
        raise JobSpecError(name, value, "accepted: an absolute path to a .qcow2 file")
    return value


def _placement(value: object, members: int, ctx: SpecContext) -> PlacementRules:
    if not isinstance(value, Mapping) or not set(value) <= {"spread", "gather", "ban", "fence"}:
        raise JobSpecError("placement", value, "accepted: a table of spread, gather, ban, fence")
    for key in ("spread", "gather"):
        if not isinstance(value.get(key, False), bool):
            raise JobSpecError(f"placement.{key}", value[key], "accepted: true or false")
    rules = PlacementRules(
        spread=value.get("spread", False),
        gather=value.get("gather", False),
        ban=f.node_names("placement.ban", value.get("ban", [])),
        fence=f.node_names("placement.fence", value.get("fence", [])),
    )
    _check_rules(rules, members, ctx)
    return rules


def _check_rules(rules: PlacementRules, members: int, ctx: SpecContext) -> None:
    if rules.spread and rules.gather and members > 1:
        raise JobSpecError("placement", "spread+gather", "a group of 2+ VMs cannot be both")
    for key, nodes in (("ban", rules.ban), ("fence", rules.fence)):
        unknown = [n for n in nodes if ctx.known_nodes is not None and n not in ctx.known_nodes]
        if unknown:
            raise JobSpecError(f"placement.{key}", unknown[0], "unknown node")
    allowed = set(rules.fence) - set(rules.ban) if rules.fence else None
    if allowed is not None and not allowed:
        raise JobSpecError("placement.fence", list(rules.fence), "every fenced node is banned")
    if allowed is not None and rules.spread and len(allowed) < members:
        raise JobSpecError(
            "placement.fence",
            list(rules.fence),
            f"spread needs {members} nodes but only {len(allowed)} are allowed",
        )
    if ctx.known_nodes is not None and rules.spread and allowed is None:
        usable = len(ctx.known_nodes - set(rules.ban))
        if usable < members:
            raise JobSpecError("count", members, f"spread needs {members} nodes; {usable} usable")


def _nfs(value: object) -> tuple[NfsMount, ...]:
    if not isinstance(value, list):
        raise JobSpecError("nfs", value, "accepted: a list of NFS shares")
    mounts = tuple(f.nfs_mount(f"nfs[{i}]", v) for i, v in enumerate(value))
    points = [m.mountpoint for m in mounts]
    for i, point in enumerate(points):
        if point in points[:i]:
            raise JobSpecError(f"nfs[{i}].mountpoint", point, "mountpoints must be unique")
    return mounts


def _snapshot(value: object) -> SnapshotPolicy | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not set(value) <= {"interval", "retention"}:
        raise JobSpecError("snapshot", value, "accepted: a table with interval and retention")
    return SnapshotPolicy(
        interval_s=f.duration_s(
            "snapshot.interval", value.get("interval"), MIN_SNAPSHOT_INTERVAL_S
        ),
        retention=f.int_in("snapshot.retention", value.get("retention", 1), 1, 100),
    )


def _check_size(spec: JobSpec, node: NodeSize | None) -> None:
    if node is None:
        return
    k = len(spec.members) if spec.placement.gather else 1
    scope = f"{k} gathered VMs x " if k > 1 else ""
    for name, need, cap, unit in (
        ("cpu_millicores", spec.cpu_millicores, node.cpu_millicores, "millicores"),
        ("memory_mib", spec.memory_mib, node.memory_mib, "MiB"),
        ("bandwidth_mbps", spec.bandwidth_mbps, node.network_mbps, "Mbit/s"),
    ):
        if need * k > cap:
            raise JobSpecError(
                name, need, f"{scope}{need} {unit} exceeds the largest node ({cap} {unit})"
            )
