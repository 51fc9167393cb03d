"""RoomFeed: ordering, duplicates, gaps and re-created rooms, driven message by message.

The feed is the Redis backend's pure bookkeeping between pub/sub messages and what the streams
hold; here its `fetch` answers from a Python list of commits, so each case (a trimmed commit log,
a room deleted while the link was down) is exact. test_redis_backend.py covers it end to end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import msgspec
from conformance_kit import Collector, events

from roomwire.backends._redis_feed import FAR, Fill, LoggedCommit, RoomFeed
from roomwire.backends.records import OutEvent, Published, Receipt

ROOM = "r1"


def receipt(ref: str) -> Receipt:
    return Receipt(player="p1", kind="ack", ref=ref)


class FakeRoom:
    """What the room's streams would hold: commits in order, some log entries trimmed."""

    def __init__(self, incarnation: bytes = b"100") -> None:
        self.incarnation: bytes | None = incarnation
        self.commits: list[Published] = []
        self.log_from = 1  # commits before this number are trimmed from the commit log
        self.keep: int | None = None  # events kept in the history (None: all)
        self.fetches: list[tuple[int, int]] = []

    def commit(self, *evs: OutEvent, receipts: tuple[Receipt, ...] = ()) -> bytes:
        published = Published(room=ROOM, events=evs, receipts=receipts)
        self.commits.append(published)
        return self.message(len(self.commits), published)

    def message(self, number: int, published: Published) -> bytes:
        assert self.incarnation is not None
        return self.incarnation + b":" + str(number).encode() + b"|" + msgspec.msgpack.encode(published)

    async def fetch(self, after_commit: int, after_seq: int) -> Fill | None:
        self.fetches.append((after_commit, after_seq))
        if self.incarnation is None:
            return None
        seqs = {e.seq: e for p in self.commits for e in p.events}
        last_seq = max(seqs, default=0)
        if self.keep is not None:
            seqs = {s: e for s, e in seqs.items() if s > last_seq - self.keep}
        log = []
        if after_commit < FAR:
            for number, p in enumerate(self.commits, 1):
                if number > after_commit and number >= self.log_from:
                    first = p.events[0].seq if p.events else 0
                    log.append(LoggedCommit(number, first, len(p.events), p.receipts))
        return Fill(
            incarnation=self.incarnation,
            commit=len(self.commits),
            last_seq=last_seq,
            log=log,
            events={s: e for s, e in seqs.items() if s > after_seq} if after_seq < FAR else {},
        )


class Harness:
    def __init__(self, room: FakeRoom) -> None:
        self.room = room
        self.tasks: list[asyncio.Task[None]] = []
        self.got: Collector[Published] = Collector()
        self.feed = RoomFeed(ROOM, room.fetch, self.spawn)
        self.feed.callbacks = (self.got,)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(coro))

    async def settle(self) -> None:
        while self.tasks:
            await self.tasks.pop(0)

    async def start(self) -> None:
        await self.feed.start(self.feed.on_active)  # "subscribed" at once
        await self.settle()


async def test_live_messages_are_delivered_in_order_and_duplicates_dropped() -> None:
    room = FakeRoom()
    h = Harness(room)
    await h.start()
    first = room.commit(*events(1, 1))
    second = room.commit(*events(2, 2), receipts=(receipt("1"),))
    for payload in (first, first, second, first, second):
        h.feed.on_message(payload)
    await h.settle()
    assert h.got.items == room.commits


async def test_commits_before_subscribing_are_not_delivered() -> None:
    room = FakeRoom()
    room.commit(*events(1, 1))
    h = Harness(room)
    await h.start()
    h.feed.on_message(room.commit(*events(2, 1)))
    assert h.got.items == room.commits[1:]


async def test_a_gap_is_filled_from_the_streams_before_later_messages() -> None:
    room = FakeRoom()
    h = Harness(room)
    await h.start()
    room.commit(*events(1, 1), receipts=(receipt("1"),))  # its message is lost
    room.commit(receipts=(receipt("2"),))  # lost too
    third = room.commit(*events(2, 1))
    fourth = room.commit(*events(3, 1))

    h.feed.on_message(third)
    h.feed.on_message(fourth)  # arrives while the gap is being filled: buffered, then applied
    await h.settle()

    assert h.got.items == room.commits
    assert room.fetches[-1] == (0, 0)


async def test_commits_trimmed_from_the_log_come_back_as_their_events() -> None:
    room = FakeRoom()
    h = Harness(room)
    await h.start()
    for seq in range(1, 6):
        room.commit(*events(seq, 1), receipts=(receipt(str(seq)),))
    room.log_from = 4  # commits 1..3 are only in the history now
    h.feed.on_active()  # as after a reconnect
    await h.settle()

    assert h.got.items == [
        Published(room=ROOM, events=events(1, 3)),  # one notice for 1..3; their receipts are lost
        room.commits[3],
        room.commits[4],
    ]
    h.feed.on_message(room.commit(*events(6, 1)))
    assert h.got.items[-1] == room.commits[-1]


async def test_a_room_deleted_unseen_is_reported_gone_once() -> None:
    room = FakeRoom()
    h = Harness(room)
    await h.start()
    h.feed.on_message(room.commit(*events(1, 1)))
    room.incarnation = None  # deleted while the link was down
    h.feed.on_active()
    await h.settle()
    h.feed.on_active()
    await h.settle()

    assert h.got.items == [room.commits[0], Published(room=ROOM, events=(), ended="gone")]


async def test_a_buffered_ended_commit_is_delivered_instead_of_gone() -> None:
    room = FakeRoom()
    h = Harness(room)
    await h.start()
    h.feed.on_message(room.commit(*events(1, 1)))
    ended = Published(room=ROOM, events=events(2, 1), ended="over")
    room.commits.append(ended)
    message = room.message(2, ended)
    room.incarnation = None  # the ended commit deleted the room
    h.feed.on_active()  # a sync starts...
    h.feed.on_message(message)  # ...and the ended message arrives meanwhile
    await h.settle()

    assert h.got.items == [room.commits[0], ended]


async def test_a_recreated_room_starts_over_from_its_first_commit() -> None:
    room = FakeRoom(incarnation=b"100")
    h = Harness(room)
    await h.start()
    h.feed.on_message(room.commit(*events(1, 1)))
    h.feed.on_message(room.commit(*events(2, 1)))

    room.incarnation, room.commits = b"200", []
    h.feed.on_message(room.commit(*events(1, 1)))  # commit 1 again, new incarnation
    assert [p.events for p in h.got.items] == [events(1, 1), events(2, 1), events(1, 1)]

    room.incarnation, room.commits = b"300", []
    room.commit(*events(1, 1))  # lost
    h.feed.on_message(room.commit(*events(2, 1)))  # a later commit of yet another incarnation
    await h.settle()
    assert h.got.items[3:] == [Published(room=ROOM, events=(), ended="gone"), *room.commits]


async def test_events_trimmed_before_the_feed_could_read_them_are_reported_lost() -> None:
    room = FakeRoom()
    h = Harness(room)
    await h.start()
    h.feed.on_message(room.commit(*events(1, 1)))
    for first in range(2, 12, 2):  # five commits of two events each, all missed
        room.commit(*events(first, 2), receipts=(receipt(str(first)),))
    room.keep = 3  # the history holds 9..11 now
    h.feed.on_active()  # as after a reconnect
    await h.settle()

    assert h.got.items[1:] == [
        Published(room=ROOM, events=(), receipts=(receipt("2"),), lost=(2, 8)),  # named once, first
        Published(room=ROOM, events=(), receipts=(receipt("4"),)),
        Published(room=ROOM, events=(), receipts=(receipt("6"),)),
        Published(room=ROOM, events=events(9, 1), receipts=(receipt("8"),)),
        Published(room=ROOM, events=events(10, 2), receipts=(receipt("10"),)),
    ]
    h.feed.on_message(room.commit(*events(12, 1)))  # live again, right after the reported hole
    assert h.got.items[-1] == room.commits[-1]


async def test_a_hole_older_than_the_commit_log_is_reported_lost_too() -> None:
    room = FakeRoom()
    h = Harness(room)
    await h.start()
    h.feed.on_message(room.commit(*events(1, 1)))
    for seq in range(2, 8):
        room.commit(*events(seq, 1))
    room.log_from, room.keep = 7, 2  # the log holds commits 7..; the history events 6..7
    h.feed.on_active()
    await h.settle()

    assert h.got.items[1:] == [
        Published(room=ROOM, events=events(6, 1), lost=(2, 5)),  # commits 2..6, receipts lost
        room.commits[6],
    ]
