"""Start the dashboard inside ``vmgrid-coordinator`` and ``vmgrid-cluster``.

Off unless ``web_listen`` is set. Tokens come from ``web_token_file`` (TOML with ``read`` and
``operator`` strings) when given. Without one, the program uses STATE_DIR/web-tokens.toml,
generating it (mode 0600) on first start and reusing it afterwards, so a restart does not
invalidate the token an operator saved. The tokens themselves are never logged (logs travel
further than a 0600 file); the log names the file to read them from.
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from vmgrid.agents.errors import ConfigError
from vmgrid.coordinator.web.backend import Backend

if TYPE_CHECKING:  # config modules import this one; aiohttp loads only when a dashboard runs
    from vmgrid.coordinator.grid_jobs import GridJobs
    from vmgrid.coordinator.mover import GridMover
    from vmgrid.coordinator.service import Coordinator
    from vmgrid.coordinator.web.auth import Tokens
    from vmgrid.coordinator.web.cluster_backend import DashboardSource
    from vmgrid.coordinator.web.server import WebServer

log = logging.getLogger(__name__)
TOKEN_FILE = "web-tokens.toml"
MIN_TOKEN_CHARS = 16


class ServedBackend(Backend, Protocol):
    """A backend with a relay task: ``start()`` in the event loop, ``await stop()``."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


def load_tokens(path: Path) -> Tokens:
    """Tokens from a TOML file with ``read`` and ``operator``; ConfigError names the problem."""
    from vmgrid.coordinator.web.auth import Tokens

    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"web_token_file: cannot read {str(path)!r} ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"web_token_file: {str(path)!r} is not valid TOML ({exc})") from None
    values = {}
    for key in ("read", "operator"):
        value = data.get(key)
        if not isinstance(value, str) or len(value.strip()) < MIN_TOKEN_CHARS:
            raise ConfigError(
                f"web_token_file: {key} in {str(path)!r} must be a string of at least "
                f"{MIN_TOKEN_CHARS} characters (e.g. from 'openssl rand -base64 24')"
            )
        values[key] = value.strip()
    extra = sorted(set(data) - {"read", "operator"})
    if extra:
        raise ConfigError(
            f"web_token_file: unknown key {extra[0]!r} in {str(path)!r}; accepted: read, operator"
        )
    if values["read"] == values["operator"]:
        raise ConfigError(f"web_token_file: read and operator tokens in {str(path)!r} are equal")
    return Tokens(read=values["read"], operator=values["operator"])


def stored_tokens(state_dir: Path) -> tuple[Tokens, Path]:
    """STATE_DIR/web-tokens.toml, created with fresh tokens (0600) when it does not exist."""
    from vmgrid.coordinator.web.auth import Tokens

    path = state_dir / TOKEN_FILE
    if path.exists():
        return load_tokens(path), path
    tokens = Tokens.generate()
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"web_token_file: cannot create {str(path)!r} ({exc.strerror}); "
            "give --web-token-file or a writable state directory"
        ) from None
    with os.fdopen(fd, "w") as handle:
        handle.write(f'read = "{tokens.read}"\noperator = "{tokens.operator}"\n')
    log.info("generated dashboard tokens in %s (mode 0600)", path)
    return tokens, path


def default_state_dir(name: str) -> Path:
    """$XDG_STATE_HOME/vmgrid/NAME (~/.local/state when XDG_STATE_HOME is unset)."""
    home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(home) / "vmgrid" / name


@dataclass
class Dashboard:
    """A running dashboard: ``url``, ``tokens``; ``await stop()`` ends it."""

    server: WebServer
    backend: ServedBackend
    tokens: Tokens
    token_file: Path

    @property
    def url(self) -> str:
        return self.server.url + "/"

    async def stop(self) -> None:
        await self.server.stop()
        await self.backend.stop()


async def _serve(
    backend: ServedBackend, listen: str, token_file: str, state_dir: Path, program: str
) -> Dashboard:
    from vmgrid.coordinator.web.server import WebServer

    if token_file:
        path = Path(token_file)
        tokens = load_tokens(path)
    else:
        tokens, path = stored_tokens(state_dir)
    backend.start()
    server = WebServer(backend, tokens, listen)
    try:
        await server.start()
    except OSError as exc:
        await backend.stop()
        raise ConfigError(f"web_listen: cannot bind {listen!r} ({exc.strerror})") from None
    dashboard = Dashboard(server, backend, tokens, path)
    log.info("%s dashboard on %s (tokens in %s)", program, dashboard.url, path)
    return dashboard


async def serve_cluster_dashboard(
    runtime: DashboardSource, listen: str, token_file: str, state_dir: Path
) -> Dashboard:
    """The dashboard of a running cluster manager (nodes, VMs, plans, actions)."""
    from vmgrid.coordinator.web.cluster_backend import ClusterBackend

    return await _serve(ClusterBackend(runtime), listen, token_file, state_dir, "vmgrid-cluster")


async def serve_coordinator_dashboard(
    coordinator: Coordinator,
    listen: str,
    token_file: str,
    state_dir: Path,
    jobs: GridJobs | None = None,
    mover: GridMover | None = None,
) -> Dashboard:
    """The grid dashboard of a running coordinator (clusters, topology, their nodes and VMs;
    with `jobs`, the grid's submitted jobs; with `mover`, DELETE /clusters/{id})."""
    from vmgrid.coordinator.web.coordinator_backend import CoordinatorBackend

    backend = CoordinatorBackend(coordinator, jobs=jobs, mover=mover)
    return await _serve(backend, listen, token_file, state_dir, "vmgrid-coordinator")
