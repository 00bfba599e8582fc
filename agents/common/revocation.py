"""Revoked certificates: a deny list the servers re-read when it changes.

The list is ``revoked.txt`` beside the server's CA file (``vmgridctl certs revoke`` appends to
it). One entry a line: ``serial:HEX`` (a certificate's serial number) or an identity
``vmgrid://ROLE/NAME`` (every certificate of that holder); ``#`` starts a comment. A call whose
certificate is listed is refused like a forbidden role. Streams already open keep running
until they reconnect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vmgrid.agents.identity import Identity, parse_uri

log = logging.getLogger(__name__)

FILE_NAME = "revoked.txt"


def deny_list_path(ca_file: str) -> Path:
    """Where the deny list of a server whose CA file is ``ca_file`` lives."""
    return Path(ca_file).parent / FILE_NAME


@dataclass(frozen=True)
class Entries:
    serials: frozenset[int] = frozenset()
    identities: frozenset[Identity] = frozenset()


def parse_entries(text: str, source: str) -> Entries:
    """The entries of a deny list; a line that is neither form is logged (naming it) and
    skipped, so one typo cannot un-revoke the rest."""
    serials: set[int] = set()
    identities: set[Identity] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("serial:"):
            try:
                serials.add(int(line.removeprefix("serial:"), 16))
                continue
            except ValueError:
                pass
        identity = parse_uri(line)
        if identity is not None:
            identities.add(identity)
            continue
        log.warning(
            "%s:%d: %r is neither serial:HEX nor vmgrid://ROLE/NAME; skipped", source, number, line
        )
    return Entries(frozenset(serials), frozenset(identities))


@dataclass
class DenyList:
    """The deny list at ``path``, re-read at most every ``check_interval_s`` when its size or
    modification time changed; a missing file denies nothing."""

    path: Path
    check_interval_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _entries: Entries = field(default_factory=Entries)
    _stamp: tuple[int, int] | None = None
    _checked_at: float = float("-inf")

    def reason(self, serial: int, identity: Identity | None) -> str:
        """Why a certificate is revoked, or '' when it is not."""
        self._refresh()
        if serial in self._entries.serials:
            return f"certificate serial {serial:x} is revoked"
        if identity is not None and identity in self._entries.identities:
            return f"{identity} is revoked"
        return ""

    def _refresh(self) -> None:
        now = self.clock()
        if now - self._checked_at < self.check_interval_s:
            return
        self._checked_at = now
        try:
            stat = self.path.stat()
        except OSError:
            self._entries, self._stamp = Entries(), None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            text = self.path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            log.warning(
                "%s: cannot read the deny list (%s); keeping the previous one", self.path, exc
            )
            return
        self._entries, self._stamp = parse_entries(text, str(self.path)), stamp
        log.info(
            "%s: %d serials, %d identities revoked",
            self.path,
            len(self._entries.serials),
            len(self._entries.identities),
        )
