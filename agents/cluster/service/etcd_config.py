"""The ``[etcd]`` table of ``vmgrid-cluster``: replicated managers (``ReplicaOptions``).

Absent (and no ``--etcd-endpoints``): a single replica with its SQLite journal, as before.
Keys are the long flag names with underscores; a flag overrides its key. ``endpoints`` is a
TOML list of URLs (the flag takes them separated by commas). Each bad value is one
ConfigError line naming the key.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from typing import Any

from vmgrid.agents.cluster.service.replica import ReplicaOptions
from vmgrid.agents.errors import ConfigError

TABLE = "etcd"
_D = ReplicaOptions()
_FIELDS = {f.name: f for f in dataclasses.fields(ReplicaOptions)}
FLAG_DESTS = {
    "endpoints": "etcd_endpoints",
    "lease_ttl_s": "lease_ttl_s",
    "replica_id": "replica_id",
    "prefix": "etcd_prefix",
    "advertise": "advertise",
    "ca_file": "etcd_ca_file",
    "cert_file": "etcd_cert_file",
    "key_file": "etcd_key_file",
}
"""Key of the table -> argparse dest of the flag that overrides it."""


def add_arguments(parser: argparse.ArgumentParser, what: str = "replicated managers") -> None:
    group = parser.add_argument_group(f"{what} on etcd ([{TABLE}] table)")
    group.add_argument(
        "--etcd-endpoints",
        metavar="URL,URL",
        help="etcd client URLs; given: this process is one replica of several (docs/replication.md)",
    )
    group.add_argument(
        "--lease-ttl-s", type=int, metavar="S", help=f"leader lease TTL (default {_D.lease_ttl_s})"
    )
    group.add_argument("--replica-id", help="name of this replica (default: its address)")
    group.add_argument("--etcd-prefix", help=f"root of vmgrid's etcd keys (default {_D.prefix})")
    group.add_argument(
        "--advertise", metavar="HOST:PORT", help="address agents are sent to when this leads"
    )
    group.add_argument("--etcd-ca-file", metavar="PEM", help="CA of etcd's TLS (https://)")
    group.add_argument("--etcd-cert-file", metavar="PEM", help="client certificate for etcd")
    group.add_argument("--etcd-key-file", metavar="PEM", help="key of --etcd-cert-file")


def options(document: Mapping[str, Any], path: str, args: argparse.Namespace) -> ReplicaOptions:
    """ReplicaOptions from the ``[etcd]`` table (if any) and the flags, validated."""
    found = document.get(TABLE, {})
    if not isinstance(found, dict):
        raise ConfigError(f"{TABLE}: must be a table ([{TABLE}]) in {path!r}, got {found!r}")
    values: dict[str, Any] = {}
    for key, value in found.items():
        if key not in _FIELDS:
            raise ConfigError(f"{TABLE}: unknown key {key!r}; accepted: {', '.join(_FIELDS)}")
        values[key] = _typed(key, value, path)
    for key, dest in FLAG_DESTS.items():
        value = getattr(args, dest, None)
        if value is not None:
            values[key] = _typed(key, value, "flags")
    return ReplicaOptions(**values).validate()


def _typed(key: str, value: Any, where: str) -> Any:
    if key == "endpoints":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"{TABLE}.endpoints = {value!r} in {where!r}: a list of URLs")
        return tuple(i.strip() for i in items if i.strip())
    expected = type(getattr(_D, key))
    if expected is float and type(value) is int:
        return float(value)
    if type(value) is not expected:
        raise ConfigError(f"{TABLE}.{key} = {value!r} in {where!r}: must be a {expected.__name__}")
    return value


def check_advertised(options: ReplicaOptions, listen: str) -> None:
    """A replica bound to every interface must say which address agents are sent to."""
    host = listen.rpartition(":")[0]
    if options.endpoints and not options.advertise and host in ("0.0.0.0", "[::]", "::", ""):
        raise ConfigError(
            f"etcd.advertise: empty while listen is {listen!r}; give the HOST:PORT agents and "
            "operators reach this replica at (standbys send them there)"
        )
