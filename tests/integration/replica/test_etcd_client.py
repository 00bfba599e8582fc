"""The etcd client and election against real etcd members (1 and 3)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from vmgrid.agents.common.etcd import (
    Compare,
    Election,
    EtcdClient,
    EtcdUnavailable,
    Get,
    Put,
)
from vmgrid.agents.errors import InvalidArgument
from vmgrid.lab.etcd import EtcdCluster


def _prefix() -> str:
    return f"/test/{uuid.uuid4().hex}/"


def test_put_get_range_delete_round_trip(etcd1: EtcdCluster) -> None:
    async def scenario() -> None:
        prefix = _prefix()
        async with EtcdClient(etcd1.endpoints) as etcd:
            first = await etcd.put(prefix + "a", "1")
            second = await etcd.put(prefix + "b", "é two")
            assert second > first
            got = await etcd.get(prefix + "b")
            assert got is not None and got.value == "é two" and got.create_revision == second
            assert [kv.key for kv in await etcd.range(prefix)] == [prefix + "a", prefix + "b"]
            assert await etcd.get(prefix + "missing") is None
            assert await etcd.delete(prefix, prefix=True) == 2
            assert await etcd.range(prefix) == []

    asyncio.run(scenario())


def test_txn_applies_only_when_the_compared_revision_is_unchanged(etcd1: EtcdCluster) -> None:
    async def scenario() -> None:
        key = _prefix() + "plan"
        async with EtcdClient(etcd1.endpoints) as etcd:
            created = await etcd.txn([Compare(key, "create", 0)], [Put(key, "v1")])
            assert created.succeeded
            again = await etcd.txn([Compare(key, "create", 0)], [Put(key, "v2")], [Get(key)])
            assert not again.succeeded and again.reads[0][0].value == "v1"
            kv = await etcd.get(key)
            assert kv is not None
            updated = await etcd.txn([Compare(key, "mod", kv.mod_revision)], [Put(key, "v3")])
            stale = await etcd.txn([Compare(key, "mod", kv.mod_revision)], [Put(key, "v4")])
            assert updated.succeeded and not stale.succeeded
            final = await etcd.get(key)
            assert final is not None and final.value == "v3"

    asyncio.run(scenario())


def test_a_key_bound_to_a_revoked_or_expired_lease_is_deleted(etcd1: EtcdCluster) -> None:
    async def scenario() -> None:
        prefix = _prefix()
        async with EtcdClient(etcd1.endpoints) as etcd:
            revoked, expiring = await etcd.grant(10), await etcd.grant(1)
            await etcd.put(prefix + "r", "x", lease=revoked)
            await etcd.put(prefix + "e", "x", lease=expiring)
            assert await etcd.keepalive(revoked) == 10
            await etcd.revoke(revoked)
            assert await etcd.get(prefix + "r") is None
            await asyncio.sleep(2.5)
            assert await etcd.get(prefix + "e") is None
            assert await etcd.keepalive(expiring) == 0

    asyncio.run(scenario())


def test_watch_sees_puts_and_deletes_in_order(etcd1: EtcdCluster) -> None:
    async def scenario() -> None:
        prefix = _prefix()
        async with EtcdClient(etcd1.endpoints) as etcd:
            start = await etcd.put(prefix + "a", "1")
            await etcd.delete(prefix + "a")
            seen = []
            async for event in etcd.watch(prefix, prefix=True, start_revision=start):
                seen.append((event.kind, event.kv.key, event.kv.value))
                if len(seen) == 2:
                    break
            assert seen == [("put", prefix + "a", "1"), ("delete", prefix + "a", "")]

    asyncio.run(scenario())


def test_bad_endpoints_and_dead_members_are_clear_errors() -> None:
    with pytest.raises(InvalidArgument, match="'127.0.0.1:2379': not an http"):
        EtcdClient(["127.0.0.1:2379"])

    async def scenario() -> None:
        async with EtcdClient(["http://127.0.0.1:9"], timeout_s=0.5) as etcd:
            with pytest.raises(EtcdUnavailable, match=r"etcd at http://127.0.0.1:9 unavailable"):
                await etcd.get("/x")
            assert etcd.errors == {"unavailable": 1}  # one failed call, however many tries
            with pytest.raises(EtcdUnavailable, match=r"etcd watch on http://127.0.0.1:9 broke"):
                async for _ in etcd.watch("/x"):
                    pass
            assert etcd.errors == {"unavailable": 1, "watch_broken": 1}

    asyncio.run(scenario())


def test_election_orders_candidates_and_hands_over_on_resign(etcd1: EtcdCluster) -> None:
    async def scenario() -> None:
        prefix = _prefix()
        async with EtcdClient(etcd1.endpoints) as a, EtcdClient(etcd1.endpoints) as b:
            first, second = Election(a, prefix, 5), Election(b, prefix, 5)
            term1 = await first.campaign("replica-a")
            assert first.holds()
            waiting = asyncio.create_task(second.campaign("replica-b"))
            await asyncio.sleep(1.0)
            assert not waiting.done()
            leader = await second.leader()
            assert leader is not None and (leader.value, leader.term) == ("replica-a", term1)
            await first.resign()
            assert not first.holds()
            term2 = await asyncio.wait_for(waiting, 5)
            assert term2 > term1 and second.holds()
            await second.resign()

    asyncio.run(scenario())


def test_a_candidate_cut_from_etcd_stops_holding_before_the_next_leader_wins(
    etcd3: EtcdCluster,
) -> None:
    """The leader talks to member 0 only; pausing that member cuts its session. It must see
    itself as deposed by its own clock no later than the other candidate wins."""

    async def scenario() -> None:
        prefix = _prefix()
        async with (
            EtcdClient(etcd3.endpoints[:1], timeout_s=0.5) as cut,
            EtcdClient(etcd3.endpoints[1:], timeout_s=0.5) as other,
        ):
            first, second = Election(cut, prefix, 2), Election(other, prefix, 2)
            term1 = await first.campaign("a")
            waiting = asyncio.create_task(second.campaign("b"))
            await asyncio.sleep(0.5)
            etcd3.pause(0)
            try:
                term2 = await asyncio.wait_for(waiting, 10)
                assert not first.holds()
                await asyncio.wait_for(first.lost.wait(), 1)
                assert term2 > term1 and second.holds()
            finally:
                etcd3.resume(0)
            await second.resign()

    asyncio.run(scenario())


async def _latency_proxy(endpoint: str, delay_s: float) -> tuple[asyncio.Server, str]:
    """A loopback TCP proxy to `endpoint` that hands every byte of etcd's answers on
    `delay_s` after it arrived (requests pass at once): a slow network or a loaded host."""
    host, port = endpoint.removeprefix("http://").rsplit(":", 1)
    loop = asyncio.get_running_loop()

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, delay: float) -> None:
        chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                at, data = await chunks.get()
                await asyncio.sleep(max(0.0, at + delay - loop.time()))
                if not data:
                    dst.close()
                    return
                dst.write(data)
                await dst.drain()

        sender = asyncio.create_task(send())
        while data := await src.read(65536):
            chunks.put_nowait((loop.time(), data))
        chunks.put_nowait((loop.time(), b""))
        await sender

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            await asyncio.gather(
                pipe(reader, up_writer, 0.0),
                pipe(up_reader, writer, delay_s),
                return_exceptions=True,
            )
        except asyncio.CancelledError:  # a connection still open when the test's loop ends
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.mark.slow
def test_a_lease_renewed_slowly_but_within_its_ttl_is_kept(etcd1: EtcdCluster) -> None:
    """etcd answers 1.6 s late: later than the renewal period (a third of the 4 s TTL), yet
    each renewal is answered well within the lease. The candidate keeps leading: a slow
    answer renews the lease from when it was sent, it is not given up at the period."""

    async def scenario() -> None:
        server, endpoint = await _latency_proxy(etcd1.endpoints[0], 1.6)
        async with server, EtcdClient([endpoint], timeout_s=10) as slow:
            election = Election(slow, _prefix(), 4)
            await election.campaign("slow")
            await asyncio.sleep(8)  # two TTLs
            assert election.holds() and not election.lost.is_set()
            await election.resign()

    asyncio.run(scenario())
