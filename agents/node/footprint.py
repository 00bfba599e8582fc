"""The agent's resident memory once it runs: glibc's malloc held to a few arenas, and what
start-up alone touched given back to the kernel.

Three calls into libc, made through ``_ctypes`` (the C module alone: the ``ctypes`` package
would cost the agent 0.7 MB of Python for three calls):

- ``limit_arenas`` (``mallopt(M_ARENA_MAX, n)``), before any thread starts: glibc gives each
  thread that mallocs (gRPC's event engine and timer threads, libvirt's event loop, the libvirt
  thread) an arena of its own, each keeping its freed chunks; with n arenas they share them.
- ``trim`` (``malloc_trim(0)``): returns the free pages inside every arena and at the top of
  the main heap, left by start-up (imports, the first dial, the first reports), to the kernel.
- ``release_file_pages`` (``madvise(MADV_DONTNEED)`` on every read-only file mapping that holds
  no private page): unmaps the library code and read-only data pages the process mapped, most
  of them touched once at start-up (module initialisation, fault-around's neighbours of each
  page touched). They stay in the page cache, shared with other processes, and any page the
  agent touches again is mapped back by a minor fault; only mappings without a private
  (copied) page are released, so no relocated data is ever discarded. This is what the kernel
  does to a process's clean file pages under memory pressure.

``settle`` makes the last two once the agent has connected and reported (start-up done) and
then on a slow period, so the resident set is what each period touches rather than what start-up
left, and memory freed by a burst (a large command, a reconnect) does not stay resident.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's malloc.h
MADV_DONTNEED = 4
ARENAS = 2
"""malloc arenas the agent's threads share: the main thread's and one for all others."""

SETTLE_FIRST_S = 10.0
"""Seconds after start when the agent first settles its memory (settle): by then it
has dialled, said hello and sent its first reports, so what start-up alone used is left."""
SETTLE_PERIOD_S = 300.0
"""Then how often it settles again, so pages a burst (a command, a redial) touched or freed
do not stay resident."""


@dataclass(frozen=True)
class Mapping:
    """One line of /proc/PID/smaps with the fields ``release_file_pages`` needs."""

    start: int
    end: int
    perms: str
    path: str
    rss_kib: int
    private_kib: int
    """Private_Dirty + Anonymous + Swap: pages this process copied or wrote, resident or
    swapped out (a copied page in swap is in no file either)."""

    @property
    def releasable(self) -> bool:
        """A file's read-only mapping with resident pages and none copied: dropping its pages
        loses nothing the file does not hold."""
        return (
            self.path.startswith("/")
            and "w" not in self.perms
            and self.rss_kib > 0
            and self.private_kib == 0
        )


def parse_smaps(lines: Iterable[str]) -> Iterator[Mapping]:
    """The mappings of /proc/PID/smaps, in order, as its lines are read (the whole text of a
    process with gRPC and libvirt is 0.4 MB, which, split at once, would stay in malloc's and
    Python's free lists: reading it must not cost what releasing saves)."""
    head: list[str] | None = None
    rss = private = 0
    for line in lines:
        parts = line.split(maxsplit=5)
        if not parts:
            continue
        key = parts[0]
        if not key.endswith(":"):  # a mapping's header: start-end perms offset dev inode [path]
            if head is not None:
                yield _mapping(head, rss, private)
            head, rss, private = parts, 0, 0
        elif key == "Rss:":
            rss = int(parts[1])
        elif key in ("Private_Dirty:", "Anonymous:", "Swap:"):
            private += int(parts[1])
    if head is not None:
        yield _mapping(head, rss, private)


def _mapping(head: list[str], rss_kib: int, private_kib: int) -> Mapping:
    start, end = (int(part, 16) for part in head[0].split("-"))
    path = head[5].strip() if len(head) > 5 else ""
    return Mapping(start, end, head[1], path, rss_kib, private_kib)


class Libc:
    """mallopt, malloc_trim and madvise of the process's C library; None where it has none
    (not glibc): every call is then a no-op returning False."""

    def __init__(self) -> None:
        self._mallopt: Callable[[int, int], int] | None = None
        self._malloc_trim: Callable[[int], int] | None = None
        self._madvise: Callable[[int, int, int], int] | None = None
        try:
            import _ctypes
        except ImportError:  # an interpreter built without ctypes
            return

        class CInt(_ctypes._SimpleCData):  # type: ignore[name-defined,misc]
            _type_ = "i"

        class CSize(_ctypes._SimpleCData):  # type: ignore[name-defined,misc]
            _type_ = "L"

        def function(name: str, *argtypes: type) -> Callable[..., int] | None:
            class Function(_ctypes.CFuncPtr):  # type: ignore[name-defined,misc]
                _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
                _restype_ = CInt
                _argtypes_ = argtypes

            try:
                return Function(_ctypes.dlsym(handle, name))  # type: ignore[no-any-return]
            except OSError:  # not glibc
                return None

        handle = _ctypes.dlopen(None)  # type: ignore[arg-type]  # the process itself
        self._mallopt = function("mallopt", CInt, CInt)
        self._malloc_trim = function("malloc_trim", CSize)
        self._madvise = function("madvise", CSize, CSize, CInt)

    def mallopt(self, param: int, value: int) -> bool:
        return self._mallopt is not None and self._mallopt(param, value) == 1

    def malloc_trim(self) -> bool:
        """True when memory was returned to the kernel."""
        return self._malloc_trim is not None and self._malloc_trim(0) == 1

    def madvise(self, start: int, length: int, advice: int) -> bool:
        return self._madvise is not None and self._madvise(start, length, advice) == 0


_libc: Libc | None = None


def libc() -> Libc:
    global _libc
    if _libc is None:
        _libc = Libc()
    return _libc


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas; call before the first thread starts. False if not glibc."""
    return libc().mallopt(M_ARENA_MAX, arenas)


def trim() -> bool:
    """Return free malloc pages (in every arena) to the kernel."""
    return libc().malloc_trim()


def release_file_pages(smaps: Path = Path("/proc/self/smaps")) -> int:
    """Unmap the resident pages of this process's read-only, unmodified file mappings (they
    stay in the page cache and map back on the next touch); the KiB released."""
    released = 0
    try:
        with smaps.open() as lines:
            for mapping in parse_smaps(lines):
                if mapping.releasable and libc().madvise(
                    mapping.start, mapping.end - mapping.start, MADV_DONTNEED
                ):
                    released += mapping.rss_kib
    except OSError:  # no /proc
        return 0
    return released


def settle() -> int:
    """After start-up or a burst: collect garbage, trim malloc, release file pages; the KiB
    of file pages released."""
    gc.collect()
    released = release_file_pages()
    trim()
    log.debug("memory settled: %d KiB of file pages released", released)
    return released
