"""A small asyncio client of etcd's v3 API through its JSON gateway (``/v3/...`` over HTTP).

etcd serves every v3 call as JSON next to gRPC on its client port (etcd 3.4 and later under
``/v3/``). Speaking JSON over aiohttp, which vmgrid already uses, keeps etcd's own protobuf and
grpc versions out of vmgrid's environment and needs no thread: every call is a coroutine on the
manager's event loop. Keys and values are bytes on the wire (base64 in JSON) and ``str`` here.

With ``tls`` (a CA and a client certificate, vmgrid's own ``TlsFiles``) it speaks HTTPS to
``https://`` endpoints, verifying the members against the CA and presenting the certificate
(etcd's ``--client-cert-auth``); docs/replication.md says how the members are set up.

The client tries its endpoints in order and remembers the one that answered; a member that does
not answer within ``timeout_s`` is skipped. Every failure is an ``EtcdUnavailable`` naming the
endpoints and the last cause; a refused compare is not an error but a ``TxnResult``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from vmgrid.agents.errors import InvalidArgument, Unavailable
from vmgrid.agents.tls import TlsFiles

log = logging.getLogger(__name__)


RETRY_PAUSE_S = 0.2
"""Pause before the second round over the members (a raft election takes about that long)."""


class EtcdUnavailable(Unavailable):
    """No etcd member answered (or the cluster has no quorum)."""


class WatchCompacted(EtcdUnavailable):
    """A watch asked for revisions etcd has compacted; it may start again at
    ``compact_revision``, the oldest one etcd keeps."""

    def __init__(self, message: str, compact_revision: int) -> None:
        super().__init__(message)
        self.compact_revision = compact_revision


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def prefix_end(prefix: str) -> str:
    """The range end that selects every key starting with `prefix` (etcd's recipe)."""
    raw = bytearray(prefix.encode())
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return raw.decode(errors="surrogateescape")
        raw.pop()
    return "\0"


def tls_context(tls: TlsFiles) -> ssl.SSLContext:
    """An HTTPS client context: members verified against `tls.ca_file`, and the client
    certificate `tls.cert_file`/`tls.key_file` presented when given. ValueError naming the
    file that cannot be read."""
    try:
        context = ssl.create_default_context(cafile=tls.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"etcd CA file {tls.ca_file!r}: {exc}") from None
    if tls.cert_file or tls.key_file:
        try:
            context.load_cert_chain(tls.cert_file, tls.key_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"etcd client certificate {tls.cert_file!r} / key {tls.key_file!r}: {exc}"
            ) from None
    return context


@dataclass(frozen=True)
class KeyValue:
    """One key as etcd holds it."""

    key: str
    value: str
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0

    @staticmethod
    def from_json(data: dict[str, Any]) -> KeyValue:
        return KeyValue(
            key=_unb64(data["key"]),
            value=_unb64(data.get("value", "")),
            create_revision=int(data.get("create_revision", 0)),
            mod_revision=int(data.get("mod_revision", 0)),
            version=int(data.get("version", 0)),
            lease=int(data.get("lease", 0)),
        )


@dataclass(frozen=True)
class Compare:
    """One guard of a transaction: ``target`` of ``key`` equals ``value``.

    target is ``create`` (create revision; 0 = the key does not exist), ``mod`` (last modified
    revision), ``version`` or ``value``.
    """

    key: str
    target: str
    value: int | str

    def to_json(self) -> dict[str, Any]:
        fields = {"create": "create_revision", "mod": "mod_revision", "version": "version"}
        body: dict[str, Any] = {"key": _b64(self.key), "result": "EQUAL"}
        body["target"] = self.target.upper()
        if self.target == "value":
            body["value"] = _b64(str(self.value))
        elif self.target in fields:
            body[fields[self.target]] = str(int(self.value))
        else:
            raise InvalidArgument(f"compare target {self.target!r}: one of create, mod, version")
        return body


@dataclass(frozen=True)
class Put:
    key: str
    value: str
    lease: int = 0

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"key": _b64(self.key), "value": _b64(self.value)}
        if self.lease:
            body["lease"] = str(self.lease)
        return {"request_put": body}


@dataclass(frozen=True)
class Delete:
    key: str
    prefix: bool = False

    def to_json(self) -> dict[str, Any]:
        body = {"key": _b64(self.key)}
        if self.prefix:
            body["range_end"] = _b64(prefix_end(self.key))
        return {"request_delete_range": body}


@dataclass(frozen=True)
class Get:
    key: str

    def to_json(self) -> dict[str, Any]:
        return {"request_range": {"key": _b64(self.key)}}


Operation = Put | Delete | Get


@dataclass(frozen=True)
class TxnResult:
    """Whether every compare held, the revision after the transaction, and what the Gets of
    the branch taken read (one list per Get, in order)."""

    succeeded: bool
    revision: int
    reads: list[list[KeyValue]] = field(default_factory=list)


@dataclass(frozen=True)
class WatchEvent:
    """A put or a delete seen by a watch (``kv.value`` is empty for a delete)."""

    kind: str
    kv: KeyValue


class EtcdClient:
    """``async with EtcdClient(endpoints) as etcd``; every call may raise EtcdUnavailable."""

    def __init__(
        self, endpoints: Sequence[str], timeout_s: float = 2.0, tls: TlsFiles | None = None
    ) -> None:
        if not endpoints:
            raise InvalidArgument("etcd endpoints: empty; give at least one http://HOST:PORT")
        for endpoint in endpoints:
            if not endpoint.startswith(("http://", "https://")):
                raise InvalidArgument(f"etcd endpoint {endpoint!r}: not an http(s):// URL")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self._ssl = tls_context(tls) if tls is not None else None
        self.timeout_s = timeout_s
        self._current = 0
        self._session: aiohttp.ClientSession | None = None
        self.errors: Counter[str] = Counter()
        """Failures by kind, counted where they happen: ``unavailable`` (a call no member
        answered), ``watch_broken`` (a watch stream that broke or ended); its users add their
        own kinds (replica_store: ``fenced``, ``unreadable``). Exported as metrics."""

    async def __aenter__(self) -> EtcdClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl) if self._ssl is not None else None
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def _order(self) -> list[str]:
        n = len(self.endpoints)
        return [self.endpoints[(self._current + i) % n] for i in range(n)]

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body` to ``/v3/<path>`` on the first member that answers. A member that
        answers with an error (no leader during a raft election, for example) is tried again
        once after a short pause, the others too."""
        last = ""
        for attempt in range(2):
            if attempt:
                await asyncio.sleep(RETRY_PAUSE_S)
            for endpoint in self._order():
                try:
                    async with asyncio.timeout(self.timeout_s):
                        response = await self._http().post(f"{endpoint}/v3/{path}", json=body)
                        async with response:
                            data: dict[str, Any] = await response.json(content_type=None)
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    last = f"{endpoint}: {type(exc).__name__} {exc}".strip()
                    continue
                if response.status != 200 or "error" in data:
                    reason = data.get("message") or data.get("error") or response.status
                    last = f"{endpoint}: {reason}"
                    continue
                self._current = self.endpoints.index(endpoint)
                return data
        self.errors["unavailable"] += 1
        raise EtcdUnavailable(f"etcd at {', '.join(self.endpoints)} unavailable ({last})")

    # -- keys ------------------------------------------------------------------------------

    async def put(self, key: str, value: str, lease: int = 0) -> int:
        """Store `value` under `key`; returns the new revision."""
        data = await self.call("kv/put", Put(key, value, lease).to_json()["request_put"])
        return int(data["header"]["revision"])

    async def get(self, key: str) -> KeyValue | None:
        found = await self.range(key, prefix=False)
        return found[0] if found else None

    async def range(
        self, key: str, prefix: bool = True, limit: int = 0, first_created: bool = False
    ) -> list[KeyValue]:
        """Keys starting with `key` (or `key` alone), by key, or by create revision."""
        body: dict[str, Any] = {"key": _b64(key)}
        if prefix:
            body["range_end"] = _b64(prefix_end(key))
        if limit:
            body["limit"] = str(limit)
        if first_created:
            body |= {"sort_target": "CREATE", "sort_order": "ASCEND"}
        data = await self.call("kv/range", body)
        return [KeyValue.from_json(kv) for kv in data.get("kvs", [])]

    async def newest(self, prefix: str) -> tuple[int, int]:
        """How many keys start with `prefix` and the newest mod revision among them: a put
        under it raises the second, a delete lowers the first (a follower's cheap check that
        nothing changed since it read)."""
        body: dict[str, Any] = {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))}
        body |= {"limit": "1", "sort_target": "MOD", "sort_order": "DESCEND", "keys_only": True}
        data = await self.call("kv/range", body)
        kvs = data.get("kvs", [])
        newest = int(kvs[0].get("mod_revision", 0)) if kvs else 0
        return int(data.get("count", 0)), newest

    async def keys(self, prefix: str) -> list[KeyValue]:
        """The keys starting with `prefix`, without their values (``value`` is empty)."""
        body: dict[str, Any] = {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))}
        data = await self.call("kv/range", body | {"keys_only": True})
        return [KeyValue.from_json(kv) for kv in data.get("kvs", [])]

    async def revision(self) -> int:
        """etcd's current revision."""
        data = await self.call("kv/range", {"key": _b64("\0"), "count_only": True})
        return int(data["header"]["revision"])

    async def compact(self, revision: int) -> None:
        """Drop the history before `revision` (etcd's compaction); asking for a revision
        already compacted is not an error."""
        try:
            await self.call("kv/compaction", {"revision": str(revision)})
        except EtcdUnavailable as exc:
            if "compacted" not in str(exc):
                raise

    async def delete(self, key: str, prefix: bool = False) -> int:
        """Delete `key` (or every key under it); returns how many were deleted."""
        data = await self.call(
            "kv/deleterange", Delete(key, prefix).to_json()["request_delete_range"]
        )
        return int(data.get("deleted", 0))

    async def txn(
        self,
        compare: Sequence[Compare],
        success: Sequence[Operation],
        failure: Sequence[Operation] = (),
    ) -> TxnResult:
        body = {
            "compare": [c.to_json() for c in compare],
            "success": [op.to_json() for op in success],
            "failure": [op.to_json() for op in failure],
        }
        data = await self.call("kv/txn", body)
        reads = [
            [KeyValue.from_json(kv) for kv in r["response_range"].get("kvs", [])]
            for r in data.get("responses", [])
            if "response_range" in r
        ]
        return TxnResult(bool(data.get("succeeded", False)), int(data["header"]["revision"]), reads)

    # -- leases ----------------------------------------------------------------------------

    async def grant(self, ttl_s: int) -> int:
        """A new lease of `ttl_s` seconds; returns its id."""
        data = await self.call("lease/grant", {"TTL": str(ttl_s)})
        return int(data["ID"])

    async def keepalive(self, lease: int) -> int:
        """Renew `lease` once; returns its TTL, 0 when it has already expired."""
        data = await self.call("lease/keepalive", {"ID": str(lease)})
        return int(data.get("result", {}).get("TTL", 0))

    async def revoke(self, lease: int) -> None:
        """End `lease` and delete its keys."""
        await self.call("lease/revoke", {"ID": str(lease)})

    # -- watch -----------------------------------------------------------------------------

    async def watch(
        self, key: str, prefix: bool = False, start_revision: int = 0
    ) -> AsyncIterator[WatchEvent]:
        """Events on `key` (or under it) from `start_revision` (0: from now) until the caller
        stops iterating; EtcdUnavailable when the stream breaks (the caller resumes from the
        last revision it saw + 1)."""
        create: dict[str, Any] = {"key": _b64(key)}
        if prefix:
            create["range_end"] = _b64(prefix_end(key))
        if start_revision:
            create["start_revision"] = str(start_revision)
        endpoint = self._order()[0]
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout_s)
        try:
            response = await self._http().post(
                f"{endpoint}/v3/watch", json={"create_request": create}, timeout=timeout
            )
            async with response:
                async for line in response.content:
                    if not line.strip():
                        continue
                    result = json.loads(line).get("result", {})
                    if result.get("canceled"):
                        compacted = int(result.get("compact_revision", 0))
                        raise WatchCompacted(
                            f"etcd watch on {key!r} from revision {start_revision} cancelled: "
                            f"compacted up to {compacted}",
                            compacted,
                        )
                    for event in result.get("events", []):
                        kind = "delete" if event.get("type") == "DELETE" else "put"
                        yield WatchEvent(kind, KeyValue.from_json(event["kv"]))
        except (aiohttp.ClientError, ValueError) as exc:
            self.errors["watch_broken"] += 1
            raise EtcdUnavailable(f"etcd watch on {endpoint} broke ({exc})") from exc
        self.errors["watch_broken"] += 1
        raise EtcdUnavailable(f"etcd watch on {endpoint} ended")
