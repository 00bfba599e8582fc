"""Run one computation in a forked child process and bring its result back.

The decision loop works on a picture of the whole cluster; on a large cluster, taking that
picture and deciding on it costs seconds of Python. In a thread of the manager that time is
taken from report ingestion (one interpreter lock), so report latency rises while the loop
thinks. A forked child gets the manager's memory as of the fork, copy-on-write, at no copying
cost: it takes the snapshot and decides on its own core, and only its (small) result comes back
through a pipe, pickled. The child runs niced (`CHILD_NICE`): a decision may wait, reports
should not.

What the child may do: pure computation on the objects it inherited (no sockets, no gRPC, no
SQLite handle of the parent, no event publication: those belong to the parent). It never runs
the parent's exit handlers (``os._exit``). Its garbage collector is off: a collection would
touch, and so copy, every page of the inherited heap, and the child lives for seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import math
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable
from typing import TypeVar

from vmgrid.v1.errors import VmgridError

T = TypeVar("T")

GRPC_FORK_HANDLERS_OFF = os.environ.get("GRPC_ENABLE_FORK_SUPPORT", "").lower() in {"0", "false"}
"""gRPC's fork handlers are off (vmgrid.agents.cluster turns them off before gRPC starts).
With them on, a child forked while gRPC threads are busy can crash, so no fork is made."""

FORK_AVAILABLE = hasattr(os, "fork") and sys.platform.startswith("linux") and GRPC_FORK_HANDLERS_OFF
"""Forked decisions are possible here; otherwise the caller decides in a thread."""


CHILD_NICE = 10
"""Niceness the child adds to its own: on a machine whose cores the manager's threads keep
busy, the decision waits for them, not the reports (with 5,000 agents on 2 cores and a 3-4 s
decision, p99 read 456-577 ms in three runs at the same priority, 85-753 ms in eight niced, median
about 190 ms)."""


class ForkedError(VmgridError, RuntimeError):
    """The child failed (its traceback is in the message), died, or ran out of time."""


async def run_forked(fn: Callable[[], T], timeout_s: float) -> T:
    """``fn()`` evaluated in a forked child; its result must pickle.

    Call from the thread that owns the objects `fn` reads (the event loop's): the fork is the
    instant the child's copy is taken. The answer is read by the event loop as it arrives, so
    the loop keeps serving while the child works. A child still busy after `timeout_s`, or whose
    caller is cancelled, is killed.
    """
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    _pause_gc()  # see _answer
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        _resume_gc()
        os.close(read_fd)
        os.close(write_fd)
        raise
    if pid == 0:  # the child: compute, write, leave without running the parent's cleanup
        os.close(read_fd)
        _child(fn, write_fd, parent, timeout_s)
    try:
        return await _answer(loop, pid, read_fd, write_fd, timeout_s)
    finally:
        _resume_gc()


_gc_pauses = 0
_gc_was_enabled = False


def _pause_gc() -> None:
    """Collector off while any child lives (several managers may share a process)."""
    global _gc_pauses, _gc_was_enabled
    if _gc_pauses == 0:
        _gc_was_enabled = gc.isenabled()
        gc.disable()
    _gc_pauses += 1


def _resume_gc() -> None:
    global _gc_pauses
    _gc_pauses -= 1
    if _gc_pauses == 0 and _gc_was_enabled:
        gc.enable()


async def _answer(
    loop: asyncio.AbstractEventLoop, pid: int, read_fd: int, write_fd: int, timeout_s: float
) -> T:
    """Read the child's answer and reap it.

    The parent's garbage collector stays off meanwhile: while the child lives, each page the
    parent writes is copied first, and a full collection writes to every object of a
    several-hundred-megabyte heap; that copying would stall the event loop for a good part of
    a second. Objects without cycles are still freed at once; cycles wait a second or two.
    """
    os.close(write_fd)
    os.set_blocking(read_fd, False)
    chunks: list[bytes] = []
    ended: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        try:
            chunk = os.read(read_fd, 1 << 20)
        except BlockingIOError:
            return
        if chunk:
            chunks.append(chunk)
        elif not ended.done():
            ended.set_result(None)

    loop.add_reader(read_fd, readable)
    try:
        await asyncio.wait_for(ended, timeout_s)
    except TimeoutError:
        _kill(pid)
        raise ForkedError(f"decision process {pid} still busy after {timeout_s:g} s") from None
    except BaseException:
        _kill(pid)
        raise
    finally:
        loop.remove_reader(read_fd)
        os.close(read_fd)
    try:
        status = await _reaped(pid)
    except BaseException:  # cancelled while the child exits: reap it all the same
        _kill(pid)
        raise
    if not chunks:
        raise ForkedError(f"decision process {pid} ended without an answer ({status})")
    outcome, value = pickle.loads(b"".join(chunks))
    if outcome != "ok":
        raise ForkedError(f"decision process failed:\n{value}")
    return value  # type: ignore[no-any-return]


def _child(fn: Callable[[], object], write_fd: int, parent: int, timeout_s: float) -> None:
    gc.disable()
    code = 0
    try:
        with contextlib.suppress(OSError):
            os.nice(CHILD_NICE)
        _on_its_own(parent, timeout_s)
        try:
            payload = pickle.dumps(("ok", fn()), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # everything goes back to the parent as text
            payload = pickle.dumps(("error", traceback.format_exc()))
        view = memoryview(payload)
        while view:
            view = view[os.write(write_fd, view) :]
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _on_its_own(parent: int, timeout_s: float) -> None:
    """Signals end the child rather than reaching the parent's handlers (the asyncio wake-up
    descriptor it inherited is the parent's); it dies with its parent, and on its own once
    past its time."""
    with contextlib.suppress(ValueError):  # only possible from the main thread
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
            signal.signal(number, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
    signal.alarm(max(1, math.ceil(timeout_s)) + 5)  # SIGALRM's default action ends it


_PR_SET_PDEATHSIG = 1


async def _reaped(pid: int) -> str:
    """Wait for the child's exit without blocking the loop; its status in words."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if os.WIFSIGNALED(status):
                return f"killed by signal {os.WTERMSIG(status)}"
            return f"exit code {os.waitstatus_to_exitcode(status)}"
        await asyncio.sleep(0.005)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
