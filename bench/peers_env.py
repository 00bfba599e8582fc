"""The peers' own environments under build/peers: one virtualenv per peer, never vmgrid's.

`ensure(peer)` returns the interpreter of the peer's environment, creating it and installing the
peer's pinned PyPI package on first use (a progress line on stderr says so; pip's output goes to
build/peers/NAME.log). A peer that cannot be installed raises `PeerUnavailable` with the reason
(the last line pip printed). ``python -m vmgrid.bench.peers_env`` (``make peers``) installs them
all ahead of time.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from vmgrid.v1.errors import VmgridError

ROOT = Path(__file__).resolve().parents[1] / "build" / "peers"


@dataclass(frozen=True)
class Peer:
    name: str
    requirement: str
    module: str
    driver: str
    what: str


PEERS: dict[str, Peer] = {
    "proxlb": Peer(
        "proxlb",
        "proxlb-solver==0.1.1",
        "proxlb_solver",
        "proxlb_driver.py",
        "ProxLB's CP-SAT placement solver (proxlb-solver on PyPI)",
    ),
    "watcher": Peer(
        "watcher",
        "python-watcher==17.0.0",
        "watcher.decision_engine.strategy.strategies",
        "watcher_driver.py",
        "OpenStack Watcher's own strategy code (python-watcher on PyPI)",
    ),
}

DRIVERS = Path(__file__).resolve().parent / "peer_drivers"


class PeerUnavailable(VmgridError):
    """A peer whose environment cannot be made or whose package does not import."""


def _progress(message: str) -> None:
    print(f"[solver-peers] {message}", file=sys.stderr, flush=True)


def python_of(peer: Peer, root: Path = ROOT) -> Path:
    return root / peer.name / "bin" / "python"


def _imports(python: Path, module: str) -> str | None:
    """None when `module` imports under `python`, else the error's last line."""
    done = subprocess.run(
        [str(python), "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def ensure(peer: Peer, root: Path = ROOT) -> Path:
    """The interpreter of `peer`'s environment, installed on first use."""
    python = python_of(peer, root)
    if python.exists() and _imports(python, peer.module) is None:
        return python
    root.mkdir(parents=True, exist_ok=True)
    log = root / f"{peer.name}.log"
    _progress(
        f"installing {peer.requirement} into {root / peer.name} (first use; pip output in {log})"
    )
    if not python.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        made = subprocess.run(
            [base, "-m", "venv", str(root / peer.name)], capture_output=True, text=True
        )
        if made.returncode != 0:
            raise PeerUnavailable(f"cannot create a virtualenv: {made.stderr.strip()[-300:]}")
    with log.open("w") as out:
        pip = [str(python), "-m", "pip", "install", "-q", peer.requirement]
        done = subprocess.run(pip, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = [ln for ln in log.read_text().splitlines() if ln.strip()][-1:]
        raise PeerUnavailable(f"pip install {peer.requirement} failed: {' '.join(tail)}")
    error = _imports(python, peer.module)
    if error is not None:
        raise PeerUnavailable(
            f"{peer.requirement} installed but {peer.module} does not import: {error}"
        )
    _progress(f"{peer.requirement} ready")
    return python


def main() -> int:
    status = 0
    for peer in PEERS.values():
        try:
            print(f"{peer.name}: {ensure(peer)}")
        except PeerUnavailable as exc:
            print(f"{peer.name}: unavailable: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
