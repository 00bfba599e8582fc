"""The one config tree of ``vmgrid-cluster`` and its one loader.

The tree is ``ClusterSettings``: the server (``ClusterConfig``: top-level keys or a
``[cluster]`` table) and what runs beside it (``RuntimeOptions``, whose branches are the
decision loop's ``ControlConfig`` (with the operator policy's ``OperatorPolicy``, TOML table
``[policy]``, see policy_config.py), the driver's ``DriverOptions``, the executor's
``ExecutionLimits`` and, with jobs, ``FaultToleranceOptions`` with its ``SubmissionConfig`` and
``HaConfig``; and the ``[etcd]`` table's ``ReplicaOptions``). The ``[control]`` table
(``runtime_config.KEYS``) and the ``[fault_tolerance]``
table (``ft_config.KEYS``) name their keys after the long flags; each key's default is read from
the field of the tree it sets, so a field has one default. Loading goes one way: the TOML file,
read once -> its three branches checked -> flags override -> validated into the tree. Each bad
value is one ConfigError line naming the key (the program exits 2 on it).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from vmgrid.agents.cluster.service import config as server
from vmgrid.agents.cluster.service import etcd_config, ft_config, policy_config, runtime_config
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.runtime import RuntimeOptions
from vmgrid.agents.common.config import read_toml


@dataclass(frozen=True)
class ClusterSettings:
    """Everything one cluster manager is configured with."""

    server: ClusterConfig = field(default_factory=ClusterConfig)
    """The gRPC server, its TLS files and endpoints (top-level keys or ``[cluster]``)."""

    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    """Decision loop, execution, journal, uplink (``[control]``) and jobs and fault tolerance
    (``[fault_tolerance]``)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every flag of the tree: server flags, then one per ``[control]`` and
    ``[fault_tolerance]`` key (each overrides the key of the same name)."""
    server.add_arguments(parser)
    runtime_config.add_arguments(parser)
    policy_config.add_arguments(parser)
    ft_config.add_arguments(parser)
    etcd_config.add_arguments(parser)


def load(args: argparse.Namespace) -> ClusterSettings:
    """The tree from the file given with ``--config`` (if any) and the flags; ConfigError
    names the first bad value."""
    path = args.config or ""
    document: dict[str, Any] = read_toml(path) if path else {}
    cluster = server.from_keys(server.server_keys(document, path) if path else {}, args)
    control = runtime_config.control_table(document, path) if path else {}
    options = runtime_config.runtime_options(runtime_config.merge(control, args), cluster)
    policy_table = policy_config.table(document, path) if path else {}
    policy = policy_config.operator_policy(policy_table, args)
    options = dataclasses.replace(
        options, control=dataclasses.replace(options.control, operator_policy=policy)
    )
    ft_table = ft_config.table(document, path) if path else None
    fault_tolerance = ft_config.options(ft_table, args, options.journal_path)
    replica = etcd_config.options(document, path, args)
    etcd_config.check_advertised(replica, cluster.listen)
    runtime = dataclasses.replace(options, fault_tolerance=fault_tolerance, replica=replica)
    return ClusterSettings(cluster, runtime)
