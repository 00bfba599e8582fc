"""Write docs/configuration.md from the config dataclasses' field docstrings.

The dataclasses are the single source of truth: each field's docstring (the string literal
under it), its default and the flag that sets it are read from the code, so that the reference
cannot drift from what the programs accept. tests/unit/test_config_docs.py fails when a field
is missing from the committed page.

    .venv/bin/python deploy/scripts/gen_config_docs.py            # rewrite docs/configuration.md
    .venv/bin/python deploy/scripts/gen_config_docs.py --check    # exit 1 when it is stale
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import enum
import inspect
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vmgrid.agents.cluster.decide.operator_policy import PRESETS, Aggressiveness, OperatorPolicy
from vmgrid.agents.cluster.service import etcd_config, ft_config, runtime_config
from vmgrid.agents.cluster.service import main as cluster_main
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.replica import ReplicaOptions
from vmgrid.agents.node import main as agent_main
from vmgrid.agents.node.config import AgentConfig, LoadConfig
from vmgrid.coordinator import main as coordinator_main
from vmgrid.coordinator.config import CoordinatorConfig

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "docs" / "configuration.md"

HEADER = """\
# Configuration reference

Generated from the config dataclasses by `deploy/scripts/gen_config_docs.py`; do not edit by
hand (`.venv/bin/python deploy/scripts/gen_config_docs.py` rewrites it, `--check` tells
whether it is stale). Every program reads a TOML file given with `--config`; a flag overrides
the key of the same meaning. A bad value stops the program with one line naming the key and
what is accepted (exit code 2).

So does a bad start-up condition, checked before anything is served or written
(`agents/common/preflight.py`): a `listen`, `metrics_listen` or `web_listen` port another
process holds (a second manager on the port of a first included: gRPC's `SO_REUSEPORT` is
off), TLS files that cannot be read, are not PEM, or whose key is not the certificate's, a
directory given for a file, and a journal, jobs or state database that is not SQLite or holds
tables but none of vmgrid's. The agent stops the same way on a certificate it cannot load
rather than retrying for ever.
"""


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the docstring written under it in the class body (attribute docstrings
    are not kept at run time, so they are read from the source)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for statement, following in zip(body, body[1:], strict=False):
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
            docs[statement.target.id] = " ".join(str(following.value.value).split())
    return docs


def flags_by_dest(parser: argparse.ArgumentParser) -> dict[str, str]:
    """argparse destination -> its long flag."""
    flags: dict[str, str] = {}
    for action in parser._actions:  # argparse has no public accessor for its actions
        long = [option for option in action.option_strings if option.startswith("--")]
        if long:
            flags[action.dest] = long[0]
    return flags


def show_default(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if value is None or value == "" or value == {}:
        return "(none)"
    if isinstance(value, Path):
        value = str(value)
    return f"`{value!r}`" if isinstance(value, str) else f"`{value}`"


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def dataclass_rows(
    cls: type, flags: dict[str, str], prefix: str = "", skip: Iterable[str] = ()
) -> list[str]:
    """One table row per field: key, flag, default, meaning."""
    docs = field_docs(cls)
    rows = []
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        flag = f"`{flags[field.name]}`" if field.name in flags else "—"
        meaning = docs.get(field.name, "")
        rows.append(
            f"| `{prefix}{field.name}` | {flag} | {show_default(_default(field))} | "
            f"{_cell(meaning)} |"
        )
    return rows


TABLE_HEAD = ["| key | flag | default | meaning |", "| --- | --- | --- | --- |"]


def table_rows(keys: dict[str, tuple[object, str]], flags: dict[str, str]) -> list[str]:
    """Rows of a TOML table declared as ``key -> (default, help)`` (runtime_config, ft_config)."""
    rows = []
    for key, (default, meaning) in keys.items():
        flag = f"`{flags[key]}`" if key in flags else "—"
        rows.append(f"| `{key}` | {flag} | {show_default(default)} | {_cell(meaning)} |")
    return rows


def preset_rows() -> list[str]:
    """What each aggressiveness level sets, one row per key."""
    levels = list(Aggressiveness)
    head = "| key | " + " | ".join(a.value for a in levels) + " |"
    rows = [head, "| --- |" + " --- |" * len(levels)]
    for key in PRESETS[Aggressiveness.MODERATE]:
        rows.append(f"| `{key}` | " + " | ".join(f"{PRESETS[a][key]}" for a in levels) + " |")
    return rows


def render() -> str:
    agent_flags = flags_by_dest(agent_main.build_parser())
    cluster_flags = flags_by_dest(cluster_main.build_parser())
    coordinator_flags = flags_by_dest(coordinator_main.build_parser())
    parts = [HEADER]
    parts += [
        "## vmgrid-agent (`agents/node/config.py`, `AgentConfig`)\n",
        "Top-level keys of the agent's TOML file (`deploy/examples/agent.toml`).\n",
        *TABLE_HEAD,
        *dataclass_rows(AgentConfig, agent_flags, skip=("load",)),
        "",
        "### `[load]` table (`LoadConfig`): synthetic load of test-driver nodes\n",
        "Read only when `libvirt_uri` is a `test:///` node; profiles are described in "
        "`agents/node/load.py`.\n",
        *TABLE_HEAD,
        *dataclass_rows(LoadConfig, {}, prefix="load.", skip=("base_dir",)),
        "",
        "## vmgrid-cluster (`agents/cluster/service/settings.py`, `ClusterSettings`)\n",
        "One config tree, loaded in one pass (file, then flags, then validation): the server "
        "(`ClusterConfig`) and what runs beside it (`RuntimeOptions`: `ControlConfig`, "
        "`DriverOptions`, `ExecutionLimits`, `FaultToleranceOptions`). A key's default is the default of the "
        "field it sets; keys that name a file or switch a feature on have their own.\n",
        "### Server keys (`agents/cluster/service/config.py`, `ClusterConfig`)\n",
        "At the top level of the file or in a `[cluster]` table. `--certs DIR` "
        "(with `--cert-name`, default the cluster id) sets the three `tls_*` files at once.\n",
        *TABLE_HEAD,
        *dataclass_rows(ClusterConfig, cluster_flags),
        "",
        "### `[control]` table: decision loop, execution, journal, uplink\n",
        "See [docs/control.md](control.md) for what these do; keys and defaults as the code "
        "has them (`agents/cluster/service/runtime_config.py`):\n",
        *TABLE_HEAD,
        *table_rows(runtime_config.KEYS, cluster_flags),
        "",
        "### `[policy]` table: the operator policy (band, migration budget, minimum times)\n",
        "`OperatorPolicy` (`agents/cluster/decide/operator_policy.py`), also readable and "
        "settable at run time (`vmgridctl policy show|set`, `GET/PUT /policy`; a policy set "
        "there is kept in the journal's database and wins over this table after a restart). "
        "`aggressiveness` sets every other key; a key given explicitly overrides its level. "
        "Defaults shown are the `moderate` level's; see [docs/control.md](control.md).\n",
        *TABLE_HEAD,
        *dataclass_rows(OperatorPolicy, cluster_flags, skip=("explicit",)),
        "",
        *preset_rows(),
        "",
        "### `[fault_tolerance]` table: job submission, checkpoints, node failures\n",
        "Off unless `--jobs` is given or the table exists; see [docs/ha.md](ha.md). "
        "`[fault_tolerance.images]` maps catalogue names to qcow2 backing files "
        "(flag `--image NAME=PATH`, repeatable). From `agents/cluster/service/ft_config.py`:\n",
        *TABLE_HEAD,
        *table_rows(ft_config.KEYS, cluster_flags),
        "",
        "### `[etcd]` table: replicated managers (`agents/cluster/service/replica.py`)\n",
        "Absent: a single replica on its SQLite journal. With endpoints, several managers of "
        "one cluster elect a leader through etcd; see [docs/replication.md](replication.md).\n",
        *TABLE_HEAD,
        *dataclass_rows(
            ReplicaOptions,
            {k: cluster_flags[d] for k, d in etcd_config.FLAG_DESTS.items()},
            prefix="etcd.",
        ),
        "",
        "## vmgrid-coordinator (`coordinator/config.py`, `CoordinatorConfig`)\n",
        "`--certs DIR` (with `--cert-name`, default `coordinator`) sets the three `tls_*` "
        "files at once.\n",
        *TABLE_HEAD,
        *dataclass_rows(CoordinatorConfig, coordinator_flags, skip=("replica",)),
        "",
        "### `[etcd]` table: replicated coordinators (`coordinator/replica.py`)\n",
        "The same keys and flags as the cluster manager's `[etcd]` table, at the top level of "
        "the coordinator's TOML file. Absent: one coordinator on its SQLite file. With "
        "endpoints, several coordinators of one grid elect a leader through etcd; see "
        "[docs/replication.md](replication.md).\n",
        *TABLE_HEAD,
        *dataclass_rows(
            ReplicaOptions,
            {k: coordinator_flags[d] for k, d in etcd_config.FLAG_DESTS.items()},
            prefix="etcd.",
        ),
        "",
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"default {OUTPUT}")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale; run {Path(__file__).name} to regenerate it")
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
