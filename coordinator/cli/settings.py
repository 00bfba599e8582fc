"""Where `vmgridctl` connects and how: flags, then environment, then a config file.

The file is TOML (``--config PATH``, else ``~/.config/vmgrid/vmgridctl.toml`` when it exists)
with the keys ``cluster``, ``coordinator`` and ``certs``. The environment has
``VMGRID_CLUSTER``, ``VMGRID_COORDINATOR`` and ``VMGRID_CERTS``. Also here: the exit codes
every cluster command uses, and the one place where a gRPC error becomes a message and a code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import grpc
import grpc.aio
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from vmgrid.agents.common import preflight
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.identity import Role
from vmgrid.agents.tls import (
    TlsFiles,
    TlsHandshakeFailed,
    WrongServer,
    channel_credentials,
    check_server_role,
    server_role_options,
)
from vmgrid.v1 import cluster_pb2_grpc
from vmgrid.v1.errors import VmgridError

DEFAULT_CLUSTER = "127.0.0.1:7443"
DEFAULT_CONFIG = Path("~/.config/vmgrid/vmgridctl.toml")
FILE_KEYS = ("cluster", "coordinator", "certs")
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_FOUND, EXIT_STATE = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130
EXIT_BY_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_USAGE,
    grpc.StatusCode.UNAVAILABLE: EXIT_UNREACHABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: EXIT_UNREACHABLE,
    grpc.StatusCode.NOT_FOUND: EXIT_NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION: EXIT_STATE,
    grpc.StatusCode.ALREADY_EXISTS: EXIT_STATE,
    grpc.StatusCode.UNIMPLEMENTED: EXIT_STATE,
}
EXIT_CODES_HELP = (
    "exit codes: 0 ok, 1 other error or plan failed, 2 bad usage or value, 3 unreachable, "
    "4 not found, 5 not possible in the current state, 130 interrupted (plan cancelled)"
)


class CommandError(VmgridError):
    """A failure the command has already explained; carries its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Settings:
    """Resolved connection settings."""

    cluster: str
    coordinator: str
    certs: str


def positive_seconds(text: str) -> float:
    """argparse type: a number of seconds > 0 (a zero or negative RPC deadline fails at once)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not accepted; give seconds > 0")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not accepted; give an integer >= 0")
    return value


def non_negative_seconds(text: str) -> float:
    """argparse type: a number of seconds >= 0 (0 usually means "the default")."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not accepted; give seconds >= 0")
    return value


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """--cluster, --config, --insecure/--certs, --cert-name, --timeout and --output."""
    parser.add_argument(
        "--cluster",
        metavar="HOST:PORT",
        help=f"cluster manager (default $VMGRID_CLUSTER, config file, or {DEFAULT_CLUSTER})",
    )
    parser.add_argument("--config", metavar="PATH", help=f"config file (default {DEFAULT_CONFIG})")
    parser.add_argument(
        "--output", choices=("table", "json"), default="table", help="(default table)"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--insecure", action="store_true", help="plaintext (test managers)")
    group.add_argument(
        "--certs", metavar="DIR", help="certs dir from 'vmgridctl certs init' ($VMGRID_CERTS)"
    )
    parser.add_argument(
        "--cert-name", default="vmgridctl", help="client cert name in --certs (default vmgridctl)"
    )
    parser.add_argument(
        "--timeout", type=positive_seconds, default=10.0, help="RPC seconds (default 10)"
    )


def _file_values(args: argparse.Namespace) -> dict[str, str]:
    explicit = getattr(args, "config", None)
    path = Path(explicit) if explicit else DEFAULT_CONFIG.expanduser()
    if not path.exists():
        if explicit:
            raise ConfigError(f"--config {explicit!r}: no such file")
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {str(path)!r}: {exc}") from None
    for key, value in data.items():
        if key not in FILE_KEYS:
            raise ConfigError(
                f"config file {str(path)!r}: unknown key {key!r}; accepted: {', '.join(FILE_KEYS)}"
            )
        if not isinstance(value, str):
            raise ConfigError(f"config file {str(path)!r}: {key} must be a string, got {value!r}")
    return dict(data)


def resolve(args: argparse.Namespace) -> Settings:
    """Flags > environment > config file > defaults; addresses checked to be HOST:PORT."""
    file = _file_values(args)

    def pick(flag: str, env: str, default: str) -> str:
        return getattr(args, flag, None) or os.environ.get(env) or file.get(flag) or default

    settings = Settings(
        cluster=pick("cluster", "VMGRID_CLUSTER", DEFAULT_CLUSTER),
        coordinator=pick("coordinator", "VMGRID_COORDINATOR", ""),
        certs=pick("certs", "VMGRID_CERTS", ""),
    )
    check_address("--cluster", settings.cluster)
    return settings


def check_address(flag: str, value: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{flag} {value!r} is not HOST:PORT (e.g. {DEFAULT_CLUSTER})")


def channel(args: argparse.Namespace, settings: Settings) -> grpc.aio.Channel:
    if args.insecure:
        return grpc.aio.insecure_channel(settings.cluster)
    if not settings.certs:
        raise ConfigError(
            "give --certs DIR (or $VMGRID_CERTS, or certs in the config file) for mTLS, "
            "or --insecure for a plaintext manager"
        )
    files = TlsFiles.from_dir(settings.certs, args.cert_name)
    credentials = channel_credentials(files)
    verify_server(settings.cluster, files, Role.CLUSTER)
    return grpc.aio.secure_channel(settings.cluster, credentials, server_role_options(Role.CLUSTER))


def verify_server(target: str, files: TlsFiles, role: Role) -> None:
    """ConfigError (exit 2) for TLS files that cannot be loaded or a server no TLS handshake
    completes with; CommandError (exit 3) unless the server at ``target`` holds a certificate
    of ``role``."""
    preflight.check_tls(
        "--certs CA", files.ca_file, "--certs", files.cert_file, "--certs", files.key_file
    )
    try:
        check_server_role(target, files, role)
    except TlsHandshakeFailed as exc:
        raise ConfigError(str(exc)) from None
    except WrongServer as exc:
        raise CommandError(str(exc), EXIT_UNREACHABLE) from None


Stub: TypeAlias = cluster_pb2_grpc.ClusterServiceStub
Query = Callable[[Stub, argparse.Namespace], Awaitable[int]]


def run(args: argparse.Namespace, query: Query) -> int:
    """Run one command against the cluster; one line on stderr and an exit code on failure."""
    target = ""

    async def go() -> int:
        nonlocal target
        settings = resolve(args)
        target = settings.cluster
        async with channel(args, settings) as chan:
            return await query(Stub(chan), args)

    try:
        return asyncio.run(go())
    except ConfigError as exc:
        fail(args, str(exc))
        return EXIT_USAGE
    except CommandError as exc:
        fail(args, str(exc))
        return exc.code
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
        detail = exc.details() or code.name
        if code is grpc.StatusCode.UNAVAILABLE:
            detail = f"cluster manager unreachable ({detail})"
        fail(args, f"{target}: {code.name}: {detail}")
        return EXIT_BY_STATUS.get(code, EXIT_ERROR)
    except KeyboardInterrupt:
        fail(args, "interrupted")
        return EXIT_INTERRUPTED


def fail(args: argparse.Namespace, message: str) -> None:
    print(f"vmgridctl {args.command}: {message}", file=sys.stderr)


def print_json(value: Message | dict[str, Any] | list[Any]) -> None:
    if isinstance(value, Message):
        value = MessageToDict(value, preserving_proto_field_name=True)
    print(json.dumps(value, indent=2))


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    widths = [max(len(str(v)) for v in col) for col in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
