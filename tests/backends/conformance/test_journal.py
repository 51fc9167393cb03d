"""Conformance: commits, history and subscriptions (Promises 1, 2 and 4)."""

from __future__ import annotations

import asyncio

import pytest
from conformance_kit import Collector, NewRoom, events, joined, msg, step

from roomwire.backends import Backend
from roomwire.backends.records import Loaded, OutEvent, Published, Receipt
from roomwire.errors import CommitConflictError, HistoryGoneError, RoomNotFoundError, StaleLeaseError


async def lease(backend: Backend, room: str) -> int:
    epoch = await backend.acquire_lease(room, "w1", 30)
    assert epoch is not None
    return epoch


async def test_load_is_none_before_the_first_commit(backend: Backend, room: str) -> None:
    assert await backend.load(room) is None
    assert await backend.read_events(room, 0) == []


async def test_commit_is_atomic_and_published_after_durable(backend: Backend, room: str) -> None:
    await backend.append_input(room, msg(1))
    epoch = await lease(backend, room)
    seen_from_callback: list[tuple[Loaded | None, list[OutEvent]]] = []
    checks: Collector[asyncio.Task[None]] = Collector()

    async def look() -> None:
        seen_from_callback.append((await backend.load(room), list(await backend.read_events(room, 0))))

    def on_commit(published: Published) -> None:
        # Whatever a subscriber does on delivery must already find the commit stored.
        checks(asyncio.get_running_loop().create_task(look()))

    unsubscribe = backend.subscribe(room, on_commit)
    try:
        await backend.commit(room, epoch, step(2, events(1, 3), snapshot=b"after-2"), history=10)
        await asyncio.gather(*await checks.wait_for(1))
    finally:
        unsubscribe()

    after_2 = Loaded(snapshot=b"after-2", inbound_offset=2, last_seq=3)
    assert seen_from_callback == [(after_2, list(events(1, 3)))]
    assert await backend.load(room) == Loaded(snapshot=b"after-2", inbound_offset=2, last_seq=3)


async def test_events_must_continue_the_sequence(backend: Backend, room: str) -> None:
    epoch = await lease(backend, room)
    with pytest.raises(CommitConflictError):
        await backend.commit(room, epoch, step(1, events(2, 2)), history=10)  # must start at 1
    with pytest.raises(CommitConflictError):
        gap = (*events(1, 1), *events(3, 1))
        await backend.commit(room, epoch, step(1, gap), history=10)
    assert await backend.load(room) is None

    await backend.commit(room, epoch, step(1, events(1, 2)), history=10)
    with pytest.raises(CommitConflictError):
        await backend.commit(room, epoch, step(1, events(2, 2)), history=10)  # replays seq 2
    with pytest.raises(CommitConflictError):
        await backend.commit(room, epoch, step(1, events(4, 1)), history=10)  # skips seq 3
    await backend.commit(room, epoch, step(1, events(3, 1)), history=10)
    assert [e.seq for e in await backend.read_events(room, 0)] == [1, 2, 3]


async def test_commit_without_events_keeps_the_sequence(backend: Backend, room: str) -> None:
    epoch = await lease(backend, room)
    await backend.commit(room, epoch, step(1, events(1, 2)), history=10)
    await backend.commit(room, epoch, step(1, snapshot=b"tick"), history=10)
    assert await backend.load(room) == Loaded(snapshot=b"tick", inbound_offset=1, last_seq=2)
    await backend.commit(room, epoch, step(1, events(3, 1)), history=10)


async def test_inbound_offset_must_not_go_back_or_past_the_log(backend: Backend, room: str) -> None:
    for n in range(1, 4):
        await backend.append_input(room, msg(n))  # offsets 2..4
    epoch = await lease(backend, room)
    await backend.commit(room, epoch, step(3), history=10)

    with pytest.raises(CommitConflictError):
        await backend.commit(room, epoch, step(2), history=10)
    with pytest.raises(CommitConflictError):
        await backend.commit(room, epoch, step(5), history=10)
    loaded = await backend.load(room)
    assert loaded is not None and loaded.inbound_offset == 3
    await backend.commit(room, epoch, step(4), history=10)


async def test_rejected_commit_changes_nothing(backend: Backend, room: str) -> None:
    assert await backend.reserve_seat(room, "p1", 30)
    epoch = await lease(backend, room)
    published: Collector[Published] = Collector()
    unsubscribe = backend.subscribe(room, published)
    try:
        bad = step(1, events(5, 1), receipts=(joined("p1"),), players=3)
        with pytest.raises(CommitConflictError):
            await backend.commit(room, epoch, bad, history=10)
        with pytest.raises(StaleLeaseError):
            await backend.commit(room, epoch + 1000, step(1, events(1, 1), players=3), history=10)
        await backend.commit(room, epoch, step(1, events(1, 1)), history=10)  # a marker commit
        await published.wait_for(1)
    finally:
        unsubscribe()

    assert [p.events for p in published.items] == [events(1, 1)]
    got = await backend.get_room(room)
    assert got is not None and (got.players, got.reserved) == (0, 1)


async def test_history_is_trimmed_and_gone_raises(backend: Backend, room: str) -> None:
    epoch = await lease(backend, room)
    await backend.commit(room, epoch, step(1, events(1, 6)), history=4)
    await backend.commit(room, epoch, step(1, events(7, 4)), history=4)  # keeps 7..10

    assert [e.seq for e in await backend.read_events(room, 6)] == [7, 8, 9, 10]
    assert [e.seq for e in await backend.read_events(room, 8)] == [9, 10]
    assert await backend.read_events(room, 10) == []
    assert await backend.read_events(room, 12) == []
    with pytest.raises(HistoryGoneError):
        await backend.read_events(room, 5)
    with pytest.raises(HistoryGoneError):
        await backend.read_events(room, 0)


async def test_read_events_spans_commits_in_order(backend: Backend, room: str) -> None:
    epoch = await lease(backend, room)
    for first in (1, 3, 4, 8):
        count = {1: 2, 3: 1, 4: 4, 8: 2}[first]
        await backend.commit(room, epoch, step(1, events(first, count)), history=100)
    assert list(await backend.read_events(room, 0)) == list(events(1, 9))
    assert list(await backend.read_events(room, 5)) == list(events(6, 4))


async def test_read_events_with_a_limit_returns_the_first_ones(backend: Backend, room: str) -> None:
    epoch = await lease(backend, room)
    await backend.commit(room, epoch, step(1, events(1, 6)), history=4)  # keeps 3..6
    assert list(await backend.read_events(room, 2, limit=2)) == list(events(3, 2))
    assert list(await backend.read_events(room, 4, limit=10)) == list(events(5, 2))
    assert await backend.read_events(room, 6, limit=1) == []
    with pytest.raises(HistoryGoneError):
        await backend.read_events(room, 1, limit=1)


async def test_events_keep_their_addressing(backend: Backend, room: str) -> None:
    epoch = await lease(backend, room)
    evs = (
        OutEvent(seq=1, type="hello", data={"to": "all"}),
        OutEvent(seq=2, type="secret", data=[1, "two", None], to=("p1",)),
        OutEvent(seq=3, type="others", data=None, exclude=("p1", "p2")),
    )
    await backend.commit(room, epoch, step(1, evs), history=10)
    assert tuple(await backend.read_events(room, 0)) == evs


async def test_subscribers_get_each_commit_once_in_order(backend: Backend, room: str) -> None:
    epoch = await lease(backend, room)
    first: Collector[Published] = Collector()
    second: Collector[Published] = Collector()
    unsubscribe = [backend.subscribe(room, first), backend.subscribe(room, second)]
    receipt = Receipt(player="p1", kind="ack", ref="7")
    try:
        await backend.commit(room, epoch, step(1, events(1, 2)), history=10)
        await backend.commit(room, epoch, step(1, receipts=(receipt,)), history=10)
        await backend.commit(room, epoch, step(1, events(3, 3)), history=10)
        for collector in (first, second):
            await collector.wait_for(3)
    finally:
        for unsub in unsubscribe:
            unsub()

    expected = [
        Published(room=room, events=events(1, 2)),
        Published(room=room, events=(), receipts=(receipt,)),
        Published(room=room, events=events(3, 3)),
    ]
    assert first.items == expected
    assert second.items == expected


async def test_subscribers_get_every_event_without_a_gap_however_short_the_history(
    backend: Backend, room: str
) -> None:
    # Promise 1, no silent gap: a short history trims what resumes can read, never what a live
    # subscriber is given; `lost` stays None while nothing is missed.
    epoch = await lease(backend, room)
    got: Collector[Published] = Collector()
    unsubscribe = backend.subscribe(room, got)
    try:
        first = 1
        for count in (3, 0, 7, 1, 12):
            await backend.commit(room, epoch, step(1, events(first, count)), history=2)
            first += count
        items = await got.wait_for(5)
    finally:
        unsubscribe()
    assert [p.lost for p in items] == [None] * 5
    assert [e.seq for p in items for e in p.events] == list(range(1, first))


async def test_unsubscribed_callback_gets_nothing_more(backend: Backend, room: str) -> None:
    epoch = await lease(backend, room)
    old: Collector[Published] = Collector()
    unsubscribe_old = backend.subscribe(room, old)
    await backend.commit(room, epoch, step(1, events(1, 1)), history=10)
    await old.wait_for(1)
    unsubscribe_old()
    unsubscribe_old()  # a second call is harmless

    new: Collector[Published] = Collector()
    unsubscribe_new = backend.subscribe(room, new)
    try:
        await backend.commit(room, epoch, step(1, events(2, 1)), history=10)
        await new.wait_for(1)  # subscribers are served in order: `old` would have it by now
    finally:
        unsubscribe_new()
    assert [p.events for p in old.items] == [events(1, 1)]


async def test_subscribers_only_get_their_own_room(backend: Backend, new_room: NewRoom) -> None:
    a, b = await new_room(), await new_room()
    ea, eb = await lease(backend, a), await lease(backend, b)
    only_a: Collector[Published] = Collector()
    unsubscribe = backend.subscribe(a, only_a)
    try:
        await backend.commit(b, eb, step(1, events(1, 1)), history=10)
        await backend.commit(a, ea, step(1, events(1, 2)), history=10)
        await only_a.wait_for(1)
    finally:
        unsubscribe()
    assert [p.room for p in only_a.items] == [a]
    assert only_a.items[0].events == events(1, 2)


async def test_a_failing_subscriber_breaks_neither_commit_nor_others(backend: Backend, room: str) -> None:
    epoch = await lease(backend, room)

    def broken(published: Published) -> None:
        raise RuntimeError("subscriber bug")

    healthy: Collector[Published] = Collector()
    unsubscribe = [backend.subscribe(room, broken), backend.subscribe(room, healthy)]
    try:
        await backend.commit(room, epoch, step(1, events(1, 1)), history=10)
        await backend.commit(room, epoch, step(1, events(2, 1)), history=10)
        await healthy.wait_for(2)
    finally:
        for unsub in unsubscribe:
            unsub()
    assert [p.events for p in healthy.items] == [events(1, 1), events(2, 1)]


async def test_ended_commit_removes_the_room(backend: Backend, room: str) -> None:
    await backend.append_input(room, msg(1))
    assert await backend.reserve_seat(room, "p9", 30)
    epoch = await lease(backend, room)
    published: Collector[Published] = Collector()
    unsubscribe = backend.subscribe(room, published)
    try:
        await backend.commit(room, epoch, step(2, events(1, 1)), history=10)
        await backend.commit(room, epoch, step(2, events(2, 1), ended="finished"), history=10)
        await published.wait_for(2)
    finally:
        unsubscribe()

    assert published.items[-1] == Published(room=room, events=events(2, 1), ended="finished")
    assert await backend.get_room(room) is None
    assert room not in [r.id for r in await backend.list_rooms()]
    with pytest.raises(RoomNotFoundError):
        await backend.append_input(room, msg(2))
    with pytest.raises(RoomNotFoundError):
        await backend.read_events(room, 0)
    with pytest.raises(StaleLeaseError):
        await backend.commit(room, epoch, step(2, events(3, 1)), history=10)
