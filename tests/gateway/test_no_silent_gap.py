"""No silent gap (promise 1, issue #10 item 3): events a gateway cannot deliver reach the client as
`error {code: history_gone, room}` before the events after them, never as a jump in seq.

Over real sockets: two gateways on Redis where one loses its pub/sub connection while the room
commits more events than it keeps, and one gateway on the embedded backend whose subscription is
made to skip a commit (the gateway then fills the hole from the history, or reports it).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
from gateway_harness import RawClient, Server, serving
from redis.asyncio import Redis
from websockets.exceptions import ConnectionClosed

from roomwire import App
from roomwire.backends.base import Unsubscribe
from roomwire.backends.embedded import EmbeddedBackend
from roomwire.backends.records import Published
from roomwire.backends.redis import RedisBackend
from roomwire.testing import serve_app

REDIS_URL = "redis://127.0.0.1:6379/0"
SECRET = "no-silent-gap-tests-share-this-secret-between-gateways"
HISTORY = 5


class Burst(msgspec.Struct):
    """How many events to broadcast in one step."""

    n: int


def gap_app() -> App:
    app = App("gap-tests")
    app.use_secret(SECRET)
    for name, history in (("tiny", HISTORY), ("roomy", 200)):
        room_type = app.room(name, max_players=4, history=history, rate_limit=None, idle_timeout_s=60)

        @room_type.message("burst")
        def burst(room: Any, player: Any, msg: Burst) -> None:
            for i in range(msg.n):
                room.broadcast("b", i=i)

    return app


async def frames_until_ack(client: RawClient, room: str, msg_id: int) -> list[dict[str, Any]]:
    """Every frame of `room` up to the ack of `msg_id`."""
    got: list[dict[str, Any]] = []
    while True:
        frame = await client.recv()
        if frame.get("room") == room:
            got.append(frame)
        if frame["t"] == "ack" and frame.get("id") == msg_id:
            return got


def assert_no_silent_gap(frames: list[dict[str, Any]], joined_seq: int) -> None:
    """Each event continues the one before, unless `history_gone` came in between."""
    last, told = joined_seq, False
    for frame in frames:
        if frame["t"] == "error" and frame["code"] == "history_gone":
            told = True
        elif frame["t"] == "event":
            assert frame["seq"] == last + 1 or told, f"silent gap: seq {frame['seq']} after {last}"
            last, told = frame["seq"], False


# --- Redis: a pub/sub connection lost while the room commits past its history ---------------


@pytest.fixture
async def two_gateways(
    require_engine: Callable[[str, str, int], None],
) -> AsyncIterator[tuple[Server, Server, RedisBackend]]:
    """g1 runs the worker, g2 only serves clients; both on one fresh namespace."""
    require_engine("redis", "127.0.0.1", 6379)
    namespace = f"t-{uuid.uuid4().hex[:12]}"
    looker = RedisBackend(REDIS_URL, namespace)
    await looker.open()
    try:
        async with contextlib.AsyncExitStack() as stack:
            servers = []
            for run_worker in (True, False):
                app = gap_app()
                url = await stack.enter_async_context(
                    serve_app(app, RedisBackend(REDIS_URL, namespace), run_worker=run_worker)
                )
                servers.append(await stack.enter_async_context(serving(url, app)))
            yield servers[0], servers[1], looker
    finally:
        await looker.drop_all()
        await looker.aclose()


def kill_room_subscribers_with_next_commit(
    worker_side: RedisBackend, raw: Redis, client_ids: list[str]
) -> None:
    """Run the worker's next commit in a MULTI right after killing these pub/sub connections.

    The kill and the commit are one transaction: the commit's message is certainly published
    while the other gateway does not listen (a real lost message, not a race).
    """
    scripts = worker_side._scripts
    assert scripts is not None
    original = scripts.commit

    async def kill_then_commit(keys: list[str], args: tuple[Any, ...]) -> Any:
        scripts.commit = original  # type: ignore[method-assign]  # one commit only
        async with raw.pipeline(transaction=True) as pipe:
            for client_id in client_ids:
                pipe.client_kill_filter(_id=client_id)
            await original(keys=keys, args=args, client=pipe)
            *_, result = await pipe.execute()
        return result

    scripts.commit = kill_then_commit  # type: ignore[method-assign]  # test instrumentation


async def test_a_pubsub_gap_longer_than_the_history_reaches_the_client_as_history_gone(
    two_gateways: tuple[Server, Server, RedisBackend],
) -> None:
    g1, g2, looker = two_gateways
    seat = await g1.seat("tiny", create=True)
    client = await g2.connect()
    joined = await client.join(seat)
    assert joined["t"] == "joined"
    first = await client.msg(seat.room, "burst", {"n": 1})
    assert first is not None
    await client.recv_until("ack", id=first)

    raw = Redis.from_url(REDIS_URL, protocol=2)
    try:
        name = looker.pubsub_client_name
        # g2's pub/sub connection is the one subscribed to the room's sharded channel (g1's only
        # listens for wake-ups).
        g2_links = [
            str(c["id"])
            for c in await raw.client_list(_type="pubsub")
            if c.get("name") == name and int(c.get("ssub", 0)) > 0
        ]
        assert g2_links
        g1_backend = g1.app.gateway.backend if g1.app.gateway else None
        assert isinstance(g1_backend, RedisBackend)
        kill_room_subscribers_with_next_commit(g1_backend, raw, g2_links)
        burst = await client.msg(seat.room, "burst", {"n": 20})  # 20 events; the room keeps 5
        assert burst is not None
        frames = await frames_until_ack(client, seat.room, burst)
    finally:
        await raw.aclose()

    kinds = [(f["t"], f.get("code"), f.get("seq")) for f in frames]
    print(f"\nafter the lost commit the client got: {kinds}")
    assert ("error", "history_gone", None) in kinds
    assert_no_silent_gap([f for f in client.frames if f.get("room") == seat.room], joined["seq"])
    # The events still kept follow the notice; the ack comes back from the commit log.
    gone = kinds.index(("error", "history_gone", None))
    assert [s for t, _, s in kinds[gone + 1 :] if t == "event"] == list(
        range(joined["seq"] + 17, joined["seq"] + 22)
    )

    later = await client.msg(seat.room, "burst", {"n": 1})
    assert later is not None
    tail = await frames_until_ack(client, seat.room, later)
    assert [f["seq"] for f in tail if f["t"] == "event"] == [joined["seq"] + 22]


# --- embedded: the gateway's own check, when a subscription skips a commit ---------------------


class SkippingBackend(EmbeddedBackend):
    """The in-memory backend, with subscriptions that skip the next commit carrying events once
    `skip_next` is set: a backend that breaks its delivery promise, for the gateway's check."""

    skip_next = False

    def __init__(self) -> None:
        super().__init__(None, "gap-tests")
        self.skipped = asyncio.Event()

    def subscribe(self, room_id: str, callback: Callable[[Published], None]) -> Unsubscribe:
        def skipping(pub: Published) -> None:
            if self.skip_next and pub.events:
                self.skip_next = False
                self.skipped.set()
                return
            callback(pub)

        return super().subscribe(room_id, skipping)


@pytest.fixture
async def skipping() -> AsyncIterator[tuple[Server, SkippingBackend]]:
    backend = SkippingBackend()
    app = gap_app()
    async with serve_app(app, backend) as url, serving(url, app) as srv:
        yield srv, backend


@pytest.mark.parametrize(("room_type", "filled"), [("roomy", True), ("tiny", False)])
async def test_a_hole_the_backend_left_is_filled_from_the_history_or_reported(
    skipping: tuple[Server, SkippingBackend], room_type: str, filled: bool
) -> None:
    srv, backend = skipping
    watcher, seat = await srv.player(type=room_type, create=True)
    sender, _ = await srv.player(await srv.seat(room=seat.room))
    watcher.frames.clear()

    backend.skip_next = True
    await sender.msg(seat.room, "burst", {"n": 8}, id=None)  # its commit never reaches the gateway
    await asyncio.wait_for(backend.skipped.wait(), 10)
    after = await sender.msg(seat.room, "burst", {"n": 2})
    assert after is not None
    await sender.recv_until("ack", id=after)
    frames = [f for f in watcher.frames if f.get("room") == seat.room]
    while not any(f["t"] == "event" and f["data"] == {"i": 1} and f["seq"] > 8 for f in frames):
        frame = await watcher.recv()
        if frame.get("room") == seat.room:
            frames.append(frame)

    seqs = [f["seq"] for f in frames if f["t"] == "event"]
    told = [f for f in frames if f["t"] == "error"]
    if filled:  # 200 events kept: the gateway read the 8 skipped ones back, in place
        assert told == []
        assert seqs == list(range(seqs[0], seqs[0] + 10))
    else:  # 5 kept: the 8 are gone, and the watcher is told so before the events after them
        assert [f["code"] for f in told] == ["history_gone"]
        assert frames.index(told[0]) < next(i for i, f in enumerate(frames) if f["t"] == "event")
        assert len(seqs) == 2
    assert_no_silent_gap(frames, seqs[0] - 1 if filled else 0)


async def test_a_member_still_being_replayed_to_when_events_are_lost_is_made_to_resume(
    skipping: tuple[Server, SkippingBackend],
) -> None:
    srv, backend = skipping
    first, seat = await srv.player(type="tiny", create=True)
    sender, _ = await srv.player(await srv.seat(room=seat.room))
    joined = next(f for f in first.frames if f["t"] == "joined")
    await first.aclose()  # the player keeps their place for the reconnect grace
    one = await sender.msg(seat.room, "burst", {"n": 1})
    await sender.recv_until("ack", id=one)  # seq 1: a resume from 0 has something to replay

    # Hold the resume's replay (its read of the history) until the hole has been reported. The
    # gateway reads once before the join (to refuse a `since` already gone), then replays.
    replay_may_read = asyncio.Event()
    read_events = backend.read_events
    reads = 0

    async def held_read(room_id: str, after: int, limit: int | None = None) -> Any:
        nonlocal reads
        reads += 1
        if reads == 2:
            await replay_may_read.wait()
        return await read_events(room_id, after, limit)

    backend.read_events = held_read  # type: ignore[method-assign]  # test instrumentation
    again = await srv.connect()
    assert (await again.join(joined["rejoin"], room=seat.room, since=0))["t"] == "joined"

    backend.skip_next = True
    await sender.msg(seat.room, "burst", {"n": 8}, id=None)  # skipped; the room keeps only 5
    await asyncio.wait_for(backend.skipped.wait(), 10)
    after = await sender.msg(seat.room, "burst", {"n": 1})
    assert after is not None
    await sender.recv_until("ack", id=after)  # the hole was found and reported meanwhile
    assert reads == 3  # the gateway's own read of the hole found it gone
    replay_may_read.set()
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await again.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1011, "events lost: resume")
