"""The Python client's resume bookkeeping and room logic, without a server or a socket.

Room is driven through the same calls its Connection makes (join_frame, on_joined, on_event,
on_ack, ...); `_Wire` stands in for the Connection and records the frames the room sends.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from roomwire.protocol import JSON, ClientFrame, ErrorCode, Event, Join, Joined, Leave, Left, Msg, Reject
from roomwire.protocol import Error as ErrorFrame
from roomwire_client import (
    ClientError,
    ConnectionLostError,
    HistoryGoneError,
    MessageTooLargeError,
    RateLimitedError,
    RejectedError,
    RequestTimeoutError,
    Room,
    RoomFullError,
    RoomLeftError,
    Seat,
)
from roomwire_client._resume import Backoff, Endpoints, Outbox, SeqFilter
from roomwire_client.errors import error_for

# --- Outbox -----------------------------------------------------------------------------------


def test_outbox_gives_strictly_increasing_ids_from_one() -> None:
    box = Outbox()
    assert [box.add("m", i).id for i in range(3)] == [1, 2, 3]
    assert [m.id for m in box.pending()] == [1, 2, 3]


def test_outbox_forgets_answered_messages_and_ignores_late_answers() -> None:
    box = Outbox()
    box.add("a", None)
    box.add("b", None)
    resolved = box.resolve(1)
    assert resolved is not None
    assert resolved.type == "a"
    assert box.resolve(1) is None
    assert [m.id for m in box.pending()] == [2]


def test_a_rejoin_resends_every_pending_message_in_id_order_even_below_last_id() -> None:
    box = Outbox()
    for name in "abcde":
        box.add(name, None)
    box.resolve(2)  # acked before the drop
    # Ids 1 and 3 may have been skipped by the room (refused before it saw them, e.g.
    # `unavailable`, while 4 was applied): only the room can tell, so they are resent too.
    resend = box.on_joined(last_id=4)
    assert [m.id for m in resend] == [1, 3, 4, 5]
    assert [m.id for m in box.pending()] == [1, 3, 4, 5]  # pending until answered after the resend
    assert box.add("f", None).id == 6  # ids are never reused


def test_first_join_continues_ids_after_an_earlier_session() -> None:
    box = Outbox()
    assert box.on_joined(last_id=41) == []
    assert box.add("m", None).id == 42


def test_outbox_drain_returns_and_forgets_everything() -> None:
    box = Outbox()
    box.add("a", None)
    box.add("b", None)
    assert [m.id for m in box.drain()] == [1, 2]
    assert len(box) == 0


# --- SeqFilter ----------------------------------------------------------------------------------


def test_seq_filter_passes_each_seq_once_and_in_order() -> None:
    seen = SeqFilter()
    arrivals = [1, 2, 4, 2, 3, 4, 7, 5, 8]  # a replay overlapping live events
    assert [s for s in arrivals if seen.accept(s)] == [1, 2, 4, 7, 8]
    assert seen.last_seq == 8


def test_seq_filter_skip_to_never_moves_back() -> None:
    seen = SeqFilter()
    seen.skip_to(10)
    seen.skip_to(3)
    assert seen.last_seq == 10
    assert not seen.accept(10)
    assert seen.accept(11)


# --- Backoff and Endpoints ---------------------------------------------------------------------


def test_backoff_is_immediate_first_then_exponential_and_capped() -> None:
    backoff = Backoff(initial_s=0.1, max_s=1.0, factor=2.0, rand=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(7)] == [0.0, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.reset()
    assert backoff.next_delay() == 0.0


def test_backoff_jitter_stays_within_the_ceiling() -> None:
    backoff = Backoff(initial_s=0.5, max_s=5.0, rand=lambda: 0.25)
    backoff.next_delay()
    assert backoff.next_delay() == pytest.approx(0.125)


def test_endpoints_fail_over_in_order_and_wrap() -> None:
    ends = Endpoints(["http://a:1", "http://b:2/", "https://c"])
    assert ends.current == "http://a:1"
    assert ends.advance() == "http://b:2"
    assert ends.advance() == "https://c"
    assert ends.advance() == "http://a:1"


def test_endpoints_rotation_starts_at_the_current_one_and_leaves_the_last_tried_current() -> None:
    ends = Endpoints(["http://a", "http://b", "http://c"])
    ends.advance()
    assert list(ends.rotation()) == ["http://b", "http://c", "http://a"]
    rotation = ends.rotation()
    next(rotation)
    assert next(rotation) == "http://b"
    assert ends.current == "http://b"


def test_ws_url_maps_scheme_and_keeps_a_path_prefix() -> None:
    assert Endpoints("http://127.0.0.1:8000").ws_url("/ws") == "ws://127.0.0.1:8000/ws"
    assert Endpoints("https://example.com/game/").ws_url("/ws") == "wss://example.com/game/ws"


@pytest.mark.parametrize("urls", [[], ["ws://x"], ["127.0.0.1:8000"]])
def test_endpoints_refuse_bad_urls(urls: list[str]) -> None:
    with pytest.raises(ValueError):
        Endpoints(urls)


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_every_server_error_code_maps_to_a_typed_error_with_that_code(code: ErrorCode) -> None:
    error = error_for(code.value, "why", room="r1", ref="abc", msg_id=3)
    assert type(error) is not ClientError
    assert error.code == code.value
    assert (error.room, error.ref, error.msg_id, error.message) == ("r1", "abc", 3, "why")


def test_error_mapping_examples_and_fallbacks() -> None:
    assert isinstance(error_for("rejected", "no"), RejectedError)
    assert isinstance(error_for("rate_limited", "slow"), RateLimitedError)
    assert isinstance(error_for("room_full", "full"), RoomFullError)
    assert type(error_for(None, "Not Found", status=404)) is ClientError  # a path, not a room
    assert error_for(None, "?", status=401).code == "unauthorized"
    unknown = error_for("from_the_future", "new code")
    assert type(unknown) is ClientError
    assert unknown.code == "from_the_future"
    assert "from_the_future: new code" in str(unknown)


def test_request_timeout_is_a_timeout_error() -> None:
    assert issubclass(RequestTimeoutError, TimeoutError)
    assert issubclass(RequestTimeoutError, ClientError)


# --- Room, driven like the Connection drives it ---------------------------------------------


class _Wire:
    """Stands in for Connection: records frames while `is_open`, like Connection.send_frame."""

    def __init__(self, max_frame_bytes: int = 65536) -> None:
        self.is_open = True
        self.max_frame_bytes = max_frame_bytes
        self.frames: list[ClientFrame] = []
        self.rooms: dict[str, Room] = {}
        self.sent = asyncio.Event()

    def send_frame(self, frame: ClientFrame) -> bool:
        if self.is_open:
            self.frames.append(frame)
            self.sent.set()
        return self.is_open

    def frame_size(self, frame: ClientFrame) -> int:
        return len(JSON.encode(frame))

    def detach(self, room: Room) -> None:
        self.rooms.pop(room.id, None)

    def take(self) -> list[ClientFrame]:
        frames, self.frames = self.frames, []
        return frames


SEAT = Seat(room="r1", type="arena", player="p1", seat="seat-token")


def _joined(seq: int, last_id: int = 0, rejoin: str = "rejoin-1", resumed: bool = False) -> Joined:
    return Joined(room="r1", player="p1", seq=seq, last_id=last_id, rejoin=rejoin, resumed=resumed)


def _event(seq: int, type: str = "moved", data: Any = None) -> Event:
    return Event(room="r1", seq=seq, type=type, data=data)


async def _joined_room(wire: _Wire, *, seq: int = 5, last_id: int = 0, **kwargs: Any) -> Room:
    room = Room(wire, SEAT, **kwargs)  # type: ignore[arg-type]  # _Wire has the calls Room makes
    wire.rooms[room.id] = room
    assert room.join_frame() == Join(room="r1", seat="seat-token")
    room.on_joined(_joined(seq, last_id))
    await room.wait_joined()
    return room


async def test_first_join_starts_after_joined_seq_and_continues_ids_after_last_id() -> None:
    wire = _Wire()
    room = await _joined_room(wire, seq=5, last_id=3)
    assert (room.state, room.last_seq, room.player) == ("joined", 5, "p1")
    assert await room.send("move", {"x": 1}) == 4
    assert wire.take() == [Msg(room="r1", type="move", data={"x": 1}, id=4)]


async def test_events_are_delivered_once_and_in_order() -> None:
    room = await _joined_room(_Wire(), seq=5)
    for seq in (4, 5, 6, 7, 6, 9):  # 4 and 5 were before the join; 6 arrives twice
        await room.on_event(_event(seq))
    got = [(await room.next_event(timeout=1)).seq for _ in range(3)]
    assert got == [6, 7, 9]
    assert room.last_seq == 9


async def test_next_event_skips_other_types_and_times_out_typed() -> None:
    room = await _joined_room(_Wire(), seq=0)
    await room.on_event(_event(1, "chat"))
    await room.on_event(_event(2, "moved", {"x": 2}))
    event = await room.next_event(type="moved", timeout=1)
    assert (event.seq, event.data) == (2, {"x": 2})
    with pytest.raises(RequestTimeoutError):
        await room.next_event(timeout=0.01)


async def test_reconnect_resumes_with_since_and_resends_every_pending_message_in_order() -> None:
    wire = _Wire()
    room = await _joined_room(wire, seq=10)
    first = asyncio.create_task(room.request("move", 1, timeout=5))
    second = asyncio.create_task(room.request("move", 2, timeout=5))
    await asyncio.sleep(0)  # let both tasks submit (no time passes: one loop turn)
    assert [f.id for f in wire.take() if isinstance(f, Msg)] == [1, 2]
    await room.on_event(_event(11))

    wire.is_open = False
    room.on_drop()
    assert (room.state, room.connected) == ("rejoining", False)
    assert await room.send("move", 3) == 3  # kept while disconnected, not sent
    assert wire.take() == []

    wire.is_open = True
    assert room.join_frame() == Join(room="r1", seat="rejoin-1", since=11)
    room.on_joined(_joined(seq=13, last_id=1, rejoin="rejoin-2", resumed=True))
    # Every pending message is resent with its id, 1 too (at or below last_id: the room answers
    # `dup` if it consumed it, or applies it if it had skipped it).
    assert [(f.id, f.data) for f in wire.take() if isinstance(f, Msg)] == [(1, 1), (2, 2), (3, 3)]
    room.on_ack(1)  # ack {dup: true}
    assert await asyncio.wait_for(first, 1) == 1
    assert await room.send("move", 4) == 4
    assert [f.id for f in wire.take() if isinstance(f, Msg)] == [4]

    # The replay overlaps what was already received: only new seqs come through.
    for seq in (11, 12, 13, 14):
        await room.on_event(_event(seq))
    assert [(await room.next_event(timeout=1)).seq for _ in range(4)] == [11, 12, 13, 14]
    room.on_ack(2)
    assert await asyncio.wait_for(second, 1) == 2
    assert room.join_frame() is None  # joined: nothing to present on this connection


async def test_duplicate_ack_completes_a_request() -> None:
    wire = _Wire()
    room = await _joined_room(wire)
    task = asyncio.create_task(room.request("move", timeout=5))
    await asyncio.sleep(0)
    room.on_ack(1)  # Ack(dup=True) resolves the same way: applied once, earlier
    assert await asyncio.wait_for(task, 1) == 1
    assert room.pending == 0


@pytest.mark.parametrize(
    ("code", "error_type"), [("rejected", RejectedError), ("rate_limited", RateLimitedError)]
)
async def test_reject_raises_the_typed_error_from_request(code: str, error_type: type[ClientError]) -> None:
    room = await _joined_room(_Wire())
    task = asyncio.create_task(room.request("move", timeout=5))
    await asyncio.sleep(0)
    room.on_reject(Reject(room="r1", id=1, code=code, message="not your turn", ref=None))
    with pytest.raises(error_type) as info:
        await asyncio.wait_for(task, 1)
    assert (info.value.code, info.value.msg_id, info.value.message) == (code, 1, "not your turn")


async def test_request_timeout_keeps_the_message_pending() -> None:
    room = await _joined_room(_Wire())
    with pytest.raises(RequestTimeoutError) as info:
        await room.request("move", timeout=0.01)
    assert info.value.msg_id == 1
    assert room.pending == 1
    room.on_ack(1)  # a late ack is still bookkept
    assert room.pending == 0


async def test_history_gone_on_resume_raises_once_then_joins_fresh() -> None:
    wire = _Wire()
    room = await _joined_room(wire, seq=3)
    await room.on_event(_event(4))
    room.on_drop()
    assert room.join_frame() == Join(room="r1", seat="rejoin-1", since=4)
    room.on_error(ErrorFrame(code="history_gone", message="too old", room="r1"))
    assert wire.take() == [Join(room="r1", seat="rejoin-1", since=None)]
    room.on_joined(_joined(seq=50, rejoin="rejoin-2"))
    for seq in (49, 50, 51):
        await room.on_event(_event(seq))
    assert (await room.next_event(timeout=1)).seq == 4
    with pytest.raises(HistoryGoneError) as info:
        await room.next_event(timeout=1)
    assert info.value.missed_after == 4
    assert (await room.next_event(timeout=1)).seq == 51


async def test_room_ended_ends_events_and_fails_what_waits() -> None:
    room = await _joined_room(_Wire())
    task = asyncio.create_task(room.request("move", timeout=5))
    await asyncio.sleep(0)
    await room.on_event(_event(6, "over"))
    room.on_left(Left(room="r1", reason="ended", detail="game over"))
    assert [e.type async for e in room.events()] == ["over"]
    assert (room.state, room.left_reason, room.left_detail) == ("left", "ended", "game over")
    with pytest.raises(RoomLeftError) as info:
        await asyncio.wait_for(task, 1)
    assert (info.value.reason, info.value.detail) == ("ended", "game over")
    with pytest.raises(RoomLeftError):
        await room.send("move")
    with pytest.raises(RoomLeftError):
        await room.next_event(timeout=1)


async def test_a_refused_first_join_raises_the_refusal() -> None:
    wire = _Wire()
    room = Room(wire, SEAT)  # type: ignore[arg-type]  # _Wire has the calls Room makes
    room.on_error(ErrorFrame(code="room_full", message="full", room="r1"))
    with pytest.raises(RoomFullError):
        await room.wait_joined()
    assert room.state == "left"


async def test_a_refused_rejoin_ends_events_with_the_refusal() -> None:
    room = await _joined_room(_Wire())
    room.on_drop()
    room.on_error(ErrorFrame(code="room_not_found", message="ended meanwhile", room="r1"))
    with pytest.raises(ClientError) as info:
        async for _ in room.events():
            pass
    assert info.value.code == "room_not_found"


async def test_a_rejoin_answered_internal_is_retried_and_a_drop_cancels_the_retry() -> None:
    wire = _Wire()
    room = await _joined_room(wire, seq=3)
    room.on_drop()
    room.on_error(ErrorFrame(code="internal", message="the room did not answer in time", room="r1"))
    assert room.state == "rejoining"
    wire.sent.clear()
    await asyncio.wait_for(wire.sent.wait(), 5)  # the retry, after its backoff delay
    assert wire.take() == [Join(room="r1", seat="rejoin-1", since=3)]
    room.on_error(ErrorFrame(code="internal", message="again", room="r1"))
    room.on_drop()  # the next connection sends its own join: no stray retry on it
    assert room._retry is None
    room.on_joined(_joined(seq=3, resumed=True))
    assert room.connected


async def test_connection_lost_for_good_fails_events_and_requests() -> None:
    room = await _joined_room(_Wire())
    task = asyncio.create_task(room.request("move", timeout=5))
    await asyncio.sleep(0)
    room.on_lost(ConnectionLostError("no server reachable"))
    with pytest.raises(ConnectionLostError):
        await asyncio.wait_for(task, 1)
    with pytest.raises(ConnectionLostError):
        await room.next_event(timeout=1)


async def test_an_oversized_message_is_refused_locally_without_using_an_id() -> None:
    wire = _Wire(max_frame_bytes=200)
    room = await _joined_room(wire)
    with pytest.raises(MessageTooLargeError):
        await room.send("say", "x" * 500)
    assert await room.send("say", "hi") == 1
    assert len(wire.take()) == 1


async def test_send_waits_when_max_pending_messages_are_unanswered() -> None:
    room = await _joined_room(_Wire(), max_pending=1)
    assert await room.send("a") == 1
    blocked = asyncio.create_task(room.send("b"))
    await asyncio.sleep(0)
    assert not blocked.done()
    room.on_ack(1)
    assert await asyncio.wait_for(blocked, 1) == 2


async def test_a_full_inbox_holds_the_reader_until_the_user_reads() -> None:
    room = await _joined_room(_Wire(), seq=0, max_buffered_events=2)
    await room.on_event(_event(1))
    await room.on_event(_event(2))
    third = asyncio.create_task(room.on_event(_event(3)))
    await asyncio.sleep(0)
    assert not third.done()
    assert (await room.next_event(timeout=1)).seq == 1
    await asyncio.wait_for(third, 1)
    assert [(await room.next_event(timeout=1)).seq for _ in range(2)] == [2, 3]


async def test_concurrent_sends_reach_the_wire_in_id_order() -> None:
    wire = _Wire()
    room = await _joined_room(wire)
    ids = await asyncio.gather(*(room.send("m", i) for i in range(20)))
    assert sorted(ids) == list(range(1, 21))
    assert [f.id for f in wire.take() if isinstance(f, Msg)] == list(range(1, 21))


async def test_leave_sends_leave_and_completes_on_left() -> None:
    wire = _Wire()
    room = await _joined_room(wire)
    task = asyncio.create_task(room.leave(timeout=5))
    await asyncio.sleep(0)
    assert wire.take() == [Leave(room="r1")]
    room.on_left(Left(room="r1", reason="left"))
    await asyncio.wait_for(task, 1)
    assert (room.state, room.left_reason) == ("left", "left")
    assert "r1" not in wire.rooms


async def test_leave_while_disconnected_is_local() -> None:
    wire = _Wire()
    room = await _joined_room(wire)
    room.on_drop()
    await room.leave()
    assert room.state == "left"
    assert wire.take() == []
