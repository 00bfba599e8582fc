"""The cluster manager's package gives gRPC its environment before gRPC loads, and only then.

Each case runs a fresh interpreter: gRPC reads these variables once, when first imported, so
the order of imports is the behaviour under test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_SHOW = (
    "import json, os, sys\n"
    "{first}\n"
    "print(json.dumps({{k: os.environ.get(k) for k in "
    "('GRPC_ENABLE_FORK_SUPPORT', 'GRPC_EXPERIMENTS')}}))\n"
)


def _environ_after(first: str, **given: str) -> dict[str, str | None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_")}
    env.update(given)
    out = subprocess.run(
        [sys.executable, "-c", _SHOW.format(first=first)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_package_sets_both_defaults_when_grpc_is_not_loaded_yet() -> None:
    got = _environ_after("import vmgrid.agents.cluster")
    assert got == {"GRPC_ENABLE_FORK_SUPPORT": "0", "GRPC_EXPERIMENTS": "-event_engine_listener"}


def test_an_operators_values_are_kept_as_they_are() -> None:
    got = _environ_after(
        "import vmgrid.agents.cluster",
        GRPC_EXPERIMENTS="event_engine_listener",
        GRPC_ENABLE_FORK_SUPPORT="1",
    )
    assert got == {"GRPC_ENABLE_FORK_SUPPORT": "1", "GRPC_EXPERIMENTS": "event_engine_listener"}


def test_nothing_is_set_once_grpc_is_loaded_since_grpc_would_not_read_it() -> None:
    got = _environ_after("import grpc\nimport vmgrid.agents.cluster")
    assert got == {"GRPC_ENABLE_FORK_SUPPORT": None, "GRPC_EXPERIMENTS": None}


_SERVE = """
import asyncio
import vmgrid.agents.cluster
import grpc.aio

async def main():
    server = grpc.aio.server()
    server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await server.stop(None)

asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("given", "marker"),
    [
        ({}, "socket_utils_common_posix"),  # the completion queue's own listener
        ({"GRPC_EXPERIMENTS": "event_engine_listener"}, "posix_interface_posix"),  # EventEngine's
    ],
)
def test_a_server_listens_with_the_listener_the_environment_names(
    given: dict[str, str], marker: str
) -> None:
    """gRPC's TCP trace names the source file that set the listening socket up: iomgr's socket
    utilities for the older listener, the EventEngine's for its own. (A gRPC upgrade that moves
    these files fails this test: the listener choice is then to be measured again.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_")}
    env.update(given, GRPC_VERBOSITY="debug", GRPC_TRACE="tcp")
    out = subprocess.run(
        [sys.executable, "-c", _SERVE], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert marker in out.stderr, out.stderr[-2000:]
