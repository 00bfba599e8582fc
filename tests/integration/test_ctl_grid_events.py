"""`vmgridctl events --coordinator` against a real coordinator on 127.0.0.1: it streams for
--duration seconds and ends with exit code 0 (a quiet grid is not an error)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from vmgrid.coordinator.cli.main import main as ctl_main
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.server import CoordinatorServer


def test_grid_events_end_after_duration_with_exit_code_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def go() -> None:
        config = CoordinatorConfig(
            listen="127.0.0.1:0", insecure=True, state_db=str(tmp_path / "grid.sqlite")
        ).validate()
        server = CoordinatorServer(config)
        address = await server.start()
        try:
            argv = ["events", "--insecure", "--coordinator", address, "--duration", "0.5"]
            argv += ["--timeout", "0.2"]  # shorter than --duration: the stream must not use it
            assert await asyncio.to_thread(ctl_main, argv) == 0
        finally:
            await server.stop()

    asyncio.run(asyncio.wait_for(go(), 60))
    assert capsys.readouterr().err == ""
