"""Redis-specific behaviour of RedisBackend: key layout, error mapping, pub/sub gap-fill, trimming.

The shared guarantees are in tests/backends/conformance (run with `-k redis`); these tests look
at how the Redis backend keeps them, with a real server on localhost:6379.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from conformance_kit import Collector, create_input, events, joined, msg, record, room_id, step
from redis import exceptions as rex
from redis.asyncio import Redis
from redis.crc import key_slot

from roomwire.backends import backend_from_url
from roomwire.backends._errors import map_engine_errors
from roomwire.backends.records import Published, Receipt
from roomwire.backends.redis import RedisBackend
from roomwire.errors import (
    BackendError,
    BackendUnavailableError,
    RoomNotFoundError,
    SetupError,
    StaleLeaseError,
)

HOST, PORT = "127.0.0.1", 6379
URL = f"redis://{HOST}:{PORT}/0"
WAIT_S = 5.0


@pytest.fixture
async def rb(require_engine: Callable[[str, str, int], None]) -> AsyncIterator[RedisBackend]:
    """An open RedisBackend on a fresh namespace; dropped and closed after the test."""
    require_engine("redis", HOST, PORT)
    backend = RedisBackend(URL, namespace=f"t-{uuid.uuid4().hex[:12]}")
    await backend.open()
    try:
        yield backend
    finally:
        await backend.drop_all()
        await backend.aclose()


@pytest.fixture
async def raw(require_engine: Callable[[str, str, int], None]) -> AsyncIterator[Redis]:
    """A plain client to look at (and tamper with) what the backend stored."""
    require_engine("redis", HOST, PORT)
    client = Redis.from_url(URL, protocol=2)
    try:
        yield client
    finally:
        await client.aclose()


async def new_room(backend: RedisBackend, **fields: Any) -> str:
    rid = room_id()
    await backend.create_room(record(rid, **fields), create_input())
    return rid


async def namespace_keys(raw: Redis, backend: RedisBackend) -> list[str]:
    return sorted([k.decode() async for k in raw.scan_iter(match=f"{backend.namespace}:*", count=1000)])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- key layout -------------------------------------------------------------------------------


async def test_every_key_of_a_room_maps_to_one_hash_slot(rb: RedisBackend, raw: Redis) -> None:
    rid = await new_room(rb)
    assert await rb.reserve_seat(rid, "p1", 30)
    assert await rb.reserve_seat(rid, "p2", 30)
    await rb.append_input(rid, msg(1))
    epoch = await rb.acquire_lease(rid, "w1", 30)
    assert epoch is not None
    await rb.commit(rid, epoch, step(1, events(1, 3), receipts=(joined("p1"),), players=1), history=10)

    room_keys = [k for k in await namespace_keys(raw, rb) if "{r:" in k]
    suffixes = {k.rsplit(":", 1)[1] for k in room_keys}
    assert suffixes == {"meta", "in", "out", "log", "snap", "lease", "seats", "members"}
    channel = f"{rb.namespace}:{{r:{rid}}}:ch"
    slots = {key_slot(k.encode()) for k in [*room_keys, channel]}
    assert slots == {key_slot(f"r:{rid}".encode())}


async def test_namespace_keys_share_the_namespace_slot(rb: RedisBackend, raw: Redis) -> None:
    rid = await new_room(rb, type="arena")
    epoch = await rb.acquire_lease(rid, "w1", 30)
    assert epoch is not None
    shared = [k for k in await namespace_keys(raw, rb) if "{r:" not in k]
    assert {k.split("}:", 1)[1] for k in shared} == {"rooms", "rooms:arena", "registered", "epoch"}
    assert {key_slot(k.encode()) for k in shared} == {key_slot(rb.namespace.encode())}


async def test_a_namespace_with_braces_is_refused() -> None:
    with pytest.raises(SetupError):
        RedisBackend(URL, namespace="a{b}")


def test_cluster_query_parameter_is_read_and_not_passed_on() -> None:
    backend = RedisBackend("redis://127.0.0.1:6379/0?cluster=0&db=0&namespace=y", namespace="x")
    assert backend.url == "redis://127.0.0.1:6379/0?db=0"
    assert isinstance(backend_from_url("redis://127.0.0.1:6379/0", namespace="x"), RedisBackend)


# --- error mapping ----------------------------------------------------------------------------


async def test_unreachable_server_is_backend_unavailable() -> None:
    backend = RedisBackend(f"redis://127.0.0.1:{free_port()}/0", namespace="x")
    with pytest.raises(BackendUnavailableError) as info:
        await backend.open()
    assert isinstance(info.value.__cause__, rex.ConnectionError)


async def test_a_script_error_is_a_backend_error_not_a_redis_error(rb: RedisBackend, raw: Redis) -> None:
    rid = room_id()
    await raw.set(f"{rb.namespace}:{{r:{rid}}}:meta", b"not a hash")  # WRONGTYPE inside room.lua

    with pytest.raises(BackendError) as info:
        await rb.get_room(rid)
    assert not isinstance(info.value, BackendUnavailableError)
    assert not isinstance(info.value, rex.RedisError)
    assert isinstance(info.value.__cause__, rex.ResponseError)


def test_map_engine_errors_sorts_engine_exceptions() -> None:
    def mapped(exc: BaseException) -> BaseException:
        with (
            pytest.raises(BackendError) as info,
            map_engine_errors(
                "redis",
                unavailable=(rex.ConnectionError,),
                failed=(rex.RedisError,),
                refused=(rex.AuthenticationError,),
            ),
        ):
            raise exc
        assert info.value.__cause__ is exc
        return info.value

    assert isinstance(mapped(rex.ConnectionError("down")), BackendUnavailableError)
    # AuthenticationError is a ConnectionError in redis-py, but retrying will not fix it.
    assert not isinstance(mapped(rex.AuthenticationError("bad password")), BackendUnavailableError)
    assert not isinstance(mapped(rex.ResponseError("WRONGTYPE")), BackendUnavailableError)
    with pytest.raises(ValueError), map_engine_errors("redis", unavailable=(), failed=(rex.RedisError,)):
        raise ValueError("not an engine error: passes through")


async def test_using_a_closed_backend_is_backend_unavailable(rb: RedisBackend) -> None:
    closed = RedisBackend(URL, namespace="never-opened")
    with pytest.raises(BackendUnavailableError):
        await closed.get_room("x")
    with pytest.raises(BackendUnavailableError):
        closed.subscribe("x", print)


# --- trimming ---------------------------------------------------------------------------------


async def test_history_consumed_inputs_and_commit_log_are_trimmed(rb: RedisBackend, raw: Redis) -> None:
    rid = await new_room(rb)
    keys = f"{rb.namespace}:{{r:{rid}}}:"
    for n in range(1, 6):
        await rb.append_input(rid, msg(n))  # offsets 2..6
    epoch = await rb.acquire_lease(rid, "w1", 30)
    assert epoch is not None

    await rb.commit(rid, epoch, step(4, events(1, 8)), history=3)
    assert await raw.xlen(keys + "out") == 3  # exactly the window
    assert await raw.xlen(keys + "in") == 2  # offsets 5 and 6 are not consumed yet
    assert [o for o, _ in await rb.read_inputs(rid, 0, 10, 0)] == [5, 6]

    for seq in range(9, 409):
        await rb.commit(rid, epoch, step(6, events(seq, 1)), history=3)
    assert await raw.xlen(keys + "in") == 0
    assert await raw.xlen(keys + "out") == 3
    log_length = await raw.xlen(keys + "log")
    assert 256 <= log_length < 401  # MAXLEN ~ 256: trimmed in whole stream nodes


# --- inbound ----------------------------------------------------------------------------------


async def test_deleting_a_room_wakes_its_waiting_reader(rb: RedisBackend, raw: Redis) -> None:
    rid = await new_room(rb)
    reader = asyncio.create_task(rb.read_inputs(rid, 1, 10, 30))
    await asyncio.sleep(0)  # let the reader start (a yield, not a wait for something)

    await rb.delete_room(rid)

    inbound = f"{rb.namespace}:{{r:{rid}}}:in"
    assert 0 < await raw.pttl(inbound) <= 10_000  # the tombstone expires on its own
    with pytest.raises(RoomNotFoundError):
        async with asyncio.timeout(WAIT_S):
            await reader


async def _blocked_in_xread(raw: Redis) -> set[str]:
    """Ids of the server's clients blocked in XREAD now (a set: other tests' readers come and go)."""
    return {c["id"] for c in await raw.client_list() if c["cmd"] == "xread" and "b" in c["flags"]}


@pytest.mark.parametrize("timeout_s", [30.0, None], ids=["deadline", "no-deadline"])
@pytest.mark.parametrize("drained", [False, True], ids=["first-read", "after-a-read"])
async def test_a_reader_blocked_in_xread_is_woken_by_the_append(
    rb: RedisBackend, raw: Redis, timeout_s: float | None, drained: bool
) -> None:
    rid = await new_room(rb)
    if drained:  # a reader that just got inputs goes straight to XREAD, without the read script
        assert [o for o, _ in await rb.read_inputs(rid, 0, 10, 0)] == [1]
    before = await _blocked_in_xread(raw)
    reader = asyncio.create_task(rb.read_inputs(rid, 1, 10, timeout_s))
    # Being blocked in the server is state nobody signals: ask the server until it shows.
    async with asyncio.timeout(WAIT_S):
        while not await _blocked_in_xread(raw) - before:
            assert not reader.done(), f"the reader returned without an input: {reader.result()}"
            await asyncio.sleep(0.01)

    offset = await rb.append_input(rid, msg(7))

    async with asyncio.timeout(WAIT_S):
        assert await reader == [(offset, msg(7))]


async def test_watchers_are_not_woken_for_a_room_with_a_live_lease(rb: RedisBackend) -> None:
    busy, idle = await new_room(rb), await new_room(rb)
    woken: Collector[str] = Collector()
    unwatch = rb.watch_inputs(woken)
    try:
        epoch = await rb.acquire_lease(busy, "w1", 30)
        assert epoch is not None
        await rb.commit(busy, epoch, step(1), history=10)

        await rb.append_input(busy, msg(1))  # the lease holder reads it: nobody to wake
        await rb.append_input(idle, msg(1))
        await woken.wait_for(1)  # one channel, in publish order: `busy` would have come first
        assert woken.items == [idle]

        await rb.release_lease(busy, "w1", epoch)  # its input is still waiting: wake someone
        await woken.wait_for(2)
        assert woken.items == [idle, busy]
    finally:
        unwatch()


# --- leases -----------------------------------------------------------------------------------


async def test_epochs_keep_increasing_when_the_epoch_counter_goes_back(rb: RedisBackend, raw: Redis) -> None:
    # The counter INCR and the acquire script are separate calls (different slots): the script
    # itself must hand out an epoch above the room's last one (issue #10 item 8).
    rid = await new_room(rb)
    first = await rb.acquire_lease(rid, "w1", 30)
    assert first is not None
    await raw.set(rb._keys.epoch, 0)  # a counter gone back (a restore, a lagging replica, ...)
    second = await rb.acquire_lease(rid, "w1", 30)
    assert second is not None and second > first
    await raw.set(rb._keys.epoch, 0)
    await rb.release_lease(rid, "w1", second)
    third = await rb.acquire_lease(rid, "w2", 30)
    assert third is not None and third > second
    with pytest.raises(StaleLeaseError):
        await rb.commit(rid, second, step(1), history=10)
    await rb.commit(rid, third, step(1), history=10)


# --- live delivery: gap-fill after a lost pub/sub connection ----------------------------------


async def pubsub_client_ids(raw: Redis, backend: RedisBackend) -> list[str]:
    clients = await raw.client_list(_type="pubsub")
    return [str(c["id"]) for c in clients if c.get("name") == backend.pubsub_client_name]


def kill_pubsub_before_commits(raw: Redis, backend: RedisBackend, client_id: str) -> Callable[[], None]:
    """Make the backend's commits run in a MULTI right after killing its pub/sub connection.

    The kill and the commit are one transaction, so the commit's message is certainly published
    while nobody listens: a real lost message, not a race. Returns a function that undoes it.
    """
    scripts = backend._scripts
    assert scripts is not None
    original = scripts.commit

    async def kill_then_commit(keys: list[str], args: tuple[Any, ...]) -> Any:
        async with raw.pipeline(transaction=True) as pipe:
            pipe.client_kill_filter(_id=client_id)
            await original(keys=keys, args=args, client=pipe)
            _, result = await pipe.execute()
        return result

    scripts.commit = kill_then_commit  # type: ignore[assignment]  # test instrumentation
    return lambda: setattr(scripts, "commit", original)


async def subscribed(backend: RedisBackend, rid: str) -> tuple[Collector[Published], Callable[[], None]]:
    got: Collector[Published] = Collector()
    unsubscribe = backend.subscribe(rid, got)
    return got, unsubscribe


async def test_subscriber_fills_the_gap_after_its_pubsub_connection_dropped(
    rb: RedisBackend, raw: Redis
) -> None:
    rid = await new_room(rb)
    epoch = await rb.acquire_lease(rid, "w1", 30)
    assert epoch is not None
    got, unsubscribe = await subscribed(rb, rid)
    try:
        await rb.commit(rid, epoch, step(1, events(1, 1)), history=10)
        await got.wait_for(1)
        (client_id,) = await pubsub_client_ids(raw, rb)

        restore = kill_pubsub_before_commits(raw, rb, client_id)
        receipt = Receipt(player="p1", kind="ack", ref="7")
        await rb.commit(rid, epoch, step(1, events(2, 2), receipts=(receipt,)), history=10)  # lost live
        restore()
        await rb.commit(rid, epoch, step(1, receipts=(joined("p2"),)), history=10)
        await rb.commit(rid, epoch, step(1, events(4, 1)), history=10)

        items = await got.wait_for(4)
        assert [cid for cid in await pubsub_client_ids(raw, rb) if cid != client_id]  # a new link
    finally:
        unsubscribe()
    assert [(p.events, p.receipts) for p in items] == [
        (events(1, 1), ()),
        (events(2, 2), (receipt,)),  # read back from the commit log: receipts included
        ((), (joined("p2"),)),
        (events(4, 1), ()),
    ]


async def test_subscriber_is_told_of_events_missed_and_trimmed_from_the_history(
    rb: RedisBackend, raw: Redis
) -> None:
    # Issue #10 item 3: a pub/sub gap longer than the history must not be skipped silently.
    rid = await new_room(rb)
    epoch = await rb.acquire_lease(rid, "w1", 30)
    assert epoch is not None
    got, unsubscribe = await subscribed(rb, rid)
    try:
        await rb.commit(rid, epoch, step(1, events(1, 1)), history=5)
        await got.wait_for(1)
        (client_id,) = await pubsub_client_ids(raw, rb)

        restore = kill_pubsub_before_commits(raw, rb, client_id)
        receipt = Receipt(player="p1", kind="ack", ref="7")
        await rb.commit(rid, epoch, step(1, events(2, 20), receipts=(receipt,)), history=5)  # lost live
        restore()
        await got.wait_for(2)  # the feed resubscribes and reads what it missed
        await rb.commit(rid, epoch, step(1, events(22, 1)), history=5)

        items = await got.wait_for(3)
    finally:
        unsubscribe()
    assert items[1:] == [
        Published(room=rid, events=events(17, 5), receipts=(receipt,), lost=(2, 16)),
        Published(room=rid, events=events(22, 1)),
    ]


async def test_subscriber_learns_the_room_is_gone_when_its_ended_commit_was_lost(
    rb: RedisBackend, raw: Redis
) -> None:
    rid = await new_room(rb)
    epoch = await rb.acquire_lease(rid, "w1", 30)
    assert epoch is not None
    got, unsubscribe = await subscribed(rb, rid)
    try:
        await rb.commit(rid, epoch, step(1, events(1, 1)), history=10)
        await got.wait_for(1)
        (client_id,) = await pubsub_client_ids(raw, rb)

        restore = kill_pubsub_before_commits(raw, rb, client_id)
        await rb.commit(rid, epoch, step(1, events(2, 1), ended="over"), history=10)
        restore()

        items = await got.wait_for(2)
    finally:
        unsubscribe()
    assert items[1] == Published(room=rid, events=(), ended="gone")
    assert await rb.get_room(rid) is None


async def test_subscriber_follows_a_room_id_deleted_and_created_again(rb: RedisBackend) -> None:
    rid = await new_room(rb)
    epoch = await rb.acquire_lease(rid, "w1", 30)
    assert epoch is not None
    got, unsubscribe = await subscribed(rb, rid)
    try:
        for seq in (1, 2, 3):
            await rb.commit(rid, epoch, step(1, events(seq, 1)), history=10)
        await got.wait_for(3)
        await rb.delete_room(rid)

        await rb.create_room(record(rid), create_input(again=True))
        epoch = await rb.acquire_lease(rid, "w1", 30)
        assert epoch is not None
        await rb.commit(rid, epoch, step(1, events(1, 1), snapshot=b"second life"), history=10)

        items = await got.wait_for(4)  # commit number 1 again, but a new incarnation: not a duplicate
    finally:
        unsubscribe()
    assert [p.events for p in items] == [events(1, 1), events(2, 1), events(3, 1), events(1, 1)]


async def test_subscribers_of_one_room_share_one_feed(rb: RedisBackend) -> None:
    rid = await new_room(rb)
    epoch = await rb.acquire_lease(rid, "w1", 30)
    assert epoch is not None
    first, unsubscribe_first = await subscribed(rb, rid)
    second, unsubscribe_second = await subscribed(rb, rid)
    try:
        await rb.commit(rid, epoch, step(1, events(1, 1)), history=10)
        await first.wait_for(1)
        await second.wait_for(1)
        unsubscribe_first()
        await rb.commit(rid, epoch, step(1, events(2, 1)), history=10)
        await second.wait_for(2)
    finally:
        unsubscribe_first()
        unsubscribe_second()
    assert [p.events for p in first.items] == [events(1, 1)]


async def test_list_rooms_drops_index_entries_of_rooms_removed_behind_its_back(
    rb: RedisBackend, raw: Redis
) -> None:
    kept, lost = await new_room(rb, type="arena"), await new_room(rb, type="arena")
    # As if delete_room crashed between deleting the room and unregistering it.
    await raw.unlink(*[f"{rb.namespace}:{{r:{lost}}}:{suffix}" for suffix in ("meta", "in")])

    assert [r.id for r in await rb.list_rooms("arena")] == [kept]
    index = f"{rb.namespace}:{{{rb.namespace}}}:rooms:arena"
    assert await raw.zrange(index, 0, -1) == [kept.encode()]


async def test_a_worker_loop_stops_when_cancelled(rb: RedisBackend) -> None:
    """Cancelling a task in the backend is never lost (redis-py's wait_for writes on 3.11 lose some)."""
    rid = await new_room(rb)
    epoch = await rb.acquire_lease(rid, "w1", 30)
    assert epoch is not None
    committed: Collector[Published] = Collector()
    unsubscribe = rb.subscribe(rid, committed)

    async def worker() -> None:
        offset, seq = 1, 0
        while True:
            items = await rb.read_inputs(rid, offset, 10, WAIT_S)
            if items:
                offset, seq = items[-1][0], seq + 1
                await rb.commit(rid, epoch, step(offset, events(seq, 1)), history=10)

    task = asyncio.create_task(worker())
    try:
        for n in range(1, 4):
            await rb.append_input(rid, msg(n))
            await committed.wait_for(n)
        task.cancel()  # lands while the worker sends its next read: the case that got lost
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(WAIT_S / 2):  # below one XREAD slice: a lost cancel would show
                await task
    finally:
        task.cancel()
        unsubscribe()
