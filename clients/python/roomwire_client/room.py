"""A joined room: send messages with ids, read its events once and in order, across reconnects."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

from roomwire.protocol import Error as ErrorFrame
from roomwire.protocol import ErrorCode, Event, Join, Joined, Leave, Left, Msg, Reject
from roomwire.protocol.frames import JSONValue
from roomwire.protocol.mirror import Change, StateMirror
from roomwire.protocol.patch import PathItem
from roomwire_client._resume import Outbox, PendingMessage, SeqFilter
from roomwire_client.errors import (
    ClientError,
    HistoryGoneError,
    MessageTooLargeError,
    RequestTimeoutError,
    RoomLeftError,
    error_for,
)

if TYPE_CHECKING:
    from roomwire_client.connection import Connection
    from roomwire_client.lobby import Seat

__all__ = ["Room", "RoomState"]

logger = logging.getLogger("roomwire_client")

RoomState = Literal["joining", "joined", "rejoining", "leaving", "left"]
RoomInput = Literal["joined", "refused", "drop", "leave", "left", "history_gone", "lost"]

# The room's states and legal transitions (anything else is a bug in this module):
#   joining   — the first `join` is sent, or waits for the connection; `joined` → joined
#   joined    — in the room; messages are sent at once
#   rejoining — the connection dropped; on reconnect `join` with since=last_seq, then resend
#   leaving   — `leave` sent, waiting for `left`
#   left      — final: events() ends, pending requests fail
_TRANSITIONS: Final[dict[tuple[RoomState, RoomInput], RoomState]] = {
    ("joining", "joined"): "joined",
    ("joining", "refused"): "left",
    ("joining", "drop"): "joining",  # the seat is presented again on the next connection
    ("joining", "leave"): "left",
    ("joined", "drop"): "rejoining",
    ("joined", "leave"): "leaving",
    ("rejoining", "joined"): "joined",
    ("rejoining", "history_gone"): "rejoining",  # join again without `since`
    ("rejoining", "refused"): "left",
    ("rejoining", "drop"): "rejoining",
    ("rejoining", "leave"): "left",
    ("leaving", "drop"): "left",  # the server's reconnect grace removes the player
    ("leaving", "leave"): "leaving",
}
# `left` (a left frame) and `lost` (the connection is gone for good) end every state.
_FINAL_INPUTS: Final = ("left", "lost")
# A rejoin answered `internal` (e.g. the room's worker is being replaced and did not answer the
# gateway in time) is retried this many times, after 0.25 s, 0.5 s, 1 s, ... before giving up.
_MAX_REJOIN_RETRIES: Final = 6
_REJOIN_RETRY_BASE_S: Final = 0.25


class _RoomEnded(Exception):
    """Internal: the inbox is closed and empty."""


class _Inbox:
    """The room's received events, bounded: a full inbox makes the connection's reader wait.

    That backpressure reaches the server, which closes a connection whose send queue overflows
    (4002); the client then resumes with `since`, so nothing is lost. Markers (a history gap)
    and the end bypass the bound.
    """

    def __init__(self, max_items: int) -> None:
        self._items: deque[Event | HistoryGoneError] = deque()
        self._max = max_items
        self._end: ClientError | None = None
        self._closed = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()

    async def put(self, event: Event) -> None:
        while len(self._items) >= self._max and not self._closed:
            self._writable.clear()
            await self._writable.wait()
        if not self._closed:
            self._items.append(event)
            self._readable.set()

    def put_marker(self, error: HistoryGoneError) -> None:
        self._items.append(error)
        self._readable.set()

    def close(self, error: ClientError | None) -> None:
        self._end, self._closed = error, True
        self._readable.set()
        self._writable.set()

    async def get(self) -> Event:
        while not self._items:
            if self._closed:
                if self._end is not None:
                    raise self._end
                raise _RoomEnded
            self._readable.clear()
            await self._readable.wait()
        item = self._items.popleft()
        self._writable.set()
        if isinstance(item, HistoryGoneError):
            raise item
        return item

    def __len__(self) -> int:
        return len(self._items)


class Room:
    """A room this client is in. Get one from `Client.join`, `create` or `join_or_create`.

    Events are delivered exactly once and in room order, also across reconnects (replayed events
    already seen are dropped by seq). Messages get client ids and are resent after a reconnect
    with the same ids, so each is applied at most once (promise 2).
    """

    def __init__(
        self,
        connection: Connection,
        seat: Seat,
        *,
        max_pending: int = 1000,
        max_buffered_events: int = 10_000,
    ) -> None:
        self.id: str = seat.room
        self.type: str = seat.type
        self.player: str = seat.player
        self.left_reason: str | None = None
        self.left_detail: str | None = None
        self._conn = connection
        self._seat = seat.seat
        self._rejoin: str | None = None
        self._state: RoomState = "joining"
        self._fresh_join = False  # after history_gone: join again without `since`
        self._rejoin_retries = 0
        self._retry: asyncio.TimerHandle | None = None
        self._filter = SeqFilter()
        self._outbox = Outbox()
        self._slots = asyncio.Semaphore(max_pending)
        self._answers: dict[int, asyncio.Future[int]] = {}
        self._inbox = _Inbox(max_buffered_events)
        self._joined_once: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._left = asyncio.Event()
        self._lost: ClientError | None = None  # why the room was lost, when it was not left normally
        # A synced room's state (protocol §15), kept by its `@state` and `@patch` events.
        self.mirror = StateMirror()

    # --- public API ---------------------------------------------------------------------------

    @property
    def state(self) -> RoomState:
        """joining, joined, rejoining (reconnecting), leaving or left."""
        return self._state

    @property
    def connected(self) -> bool:
        """True while joined on a live connection."""
        return self._state == "joined" and self._conn.is_open

    @property
    def last_seq(self) -> int:
        """The room sequence number of the last event received (resume point)."""
        return self._filter.last_seq

    @property
    def synced(self) -> Any:
        """The mirrored state of a synced room (your view of it); None until the first `@state`.

        It equals the server's state (view) as of `mirror.seq` while `mirror.ready`; after missed
        events it is stale until the next `@state`, which a rejoin brings (protocol §15).
        """
        return self.mirror.state

    def on_change(self, path: str | Sequence[PathItem], fn: Callable[[Change], object]) -> Callable[[], None]:
        """Call `fn(change)` when the synced state at `path` changes ("*" matches any key or index).

        `("players", "*")` reports each player added, changed or removed (`change.removed`).
        Runs in the connection's reader: keep it short. Returns a function that stops it.
        """

        def guarded(change: Change) -> None:
            try:
                fn(change)
            except Exception:  # the user's callback must not stop the connection's reader
                logger.exception("room %s: on_change callback for %r failed", self.id, change.path)

        return self.mirror.on_change(path, guarded)

    @property
    def presence(self) -> dict[str, str]:
        """A synced room's players: id → `connected` or `reconnecting` (from `@presence`)."""
        return self.mirror.presence

    def on_presence(self, fn: Callable[[str, str], object]) -> Callable[[], None]:
        """Call `fn(player, status)` when a player connects, starts reconnecting, or leaves (`left`)."""

        def guarded(player: str, status: str) -> None:
            try:
                fn(player, status)
            except Exception:  # the user's callback must not stop the connection's reader
                logger.exception("room %s: on_presence callback failed", self.id)

        return self.mirror.on_presence(guarded)

    @property
    def host(self) -> str | None:
        """A relay room's host (from `@host`), or None."""
        return self.mirror.host

    def on_host(self, fn: Callable[[str | None], object]) -> Callable[[], None]:
        """Call `fn(host)` when a relay room's host changes."""

        def guarded(host: str | None) -> None:
            try:
                fn(host)
            except Exception:  # the user's callback must not stop the connection's reader
                logger.exception("room %s: on_host callback failed", self.id)

        return self.mirror.on_host(guarded)

    @property
    def pending(self) -> int:
        """Messages sent and not yet acked or rejected."""
        return len(self._outbox)

    async def send(self, type: str, data: JSONValue = None) -> int:
        """Send a message and return its client id at once; a reject is only logged (see `request`).

        While the connection is down the message is kept and sent after the rejoin. Waits only
        when `max_pending` messages are unanswered.

        Raises:
            MessageTooLargeError: the frame exceeds the connection's max_frame_bytes; not sent.
            RoomLeftError / ConnectionLostError: the room is gone; do not retry in this room.
        """
        message, _ = await self._submit(type, data, wants_answer=False)
        return message.id

    async def request(self, type: str, data: JSONValue = None, *, timeout: float | None = 10.0) -> int:
        """Send a message and wait until it is applied and committed; returns its client id.

        Its events were delivered to `events()` before this returns.

        Raises:
            RejectedError, InvalidMessageError, UnknownTypeError, RateLimitedError,
            MessageTooLargeError, NotJoinedError, InternalServerError: refused; nothing applied.
            RequestTimeoutError: no answer in time; it stays pending and may still be applied.
            RoomLeftError / ConnectionLostError: the room is gone before an answer came.
        """
        message, answer = await self._submit(type, data, wants_answer=True)
        assert answer is not None  # wants_answer=True always makes one
        try:
            async with asyncio.timeout(timeout):
                return await answer
        except TimeoutError as exc:
            raise RequestTimeoutError(
                f"no answer to message {message.id} ({type!r}) within {timeout} s; it is still pending",
                room=self.id,
                msg_id=message.id,
            ) from exc
        finally:
            if not answer.done():
                self._answers.pop(message.id, None)
                answer.cancel()

    async def events(self) -> AsyncIterator[Event]:
        """Yield the room's events in order until the room is left; `left_reason` then says why.

        Raises:
            HistoryGoneError: events were missed and are no longer kept; call events() again.
            ConnectionLostError, UnauthorizedError, RoomNotFoundError, ...: the room was lost.
        """
        while True:
            try:
                event = await self._inbox.get()
            except _RoomEnded:
                return
            yield event

    async def next_event(self, type: str | None = None, *, timeout: float | None = 10.0) -> Event:
        """The next event (of `type`, if given; events of other types before it are consumed).

        Raises:
            RequestTimeoutError: none in time. RoomLeftError: the room was left first.
            HistoryGoneError and the errors of `events()`.
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        event = await self._inbox.get()
                    except _RoomEnded:
                        raise self._left_error() from None
                    if type is None or event.type == type:
                        return event
        except TimeoutError as exc:
            want = f"event {type!r}" if type else "event"
            raise RequestTimeoutError(f"no {want} within {timeout} s", room=self.id) from exc

    async def leave(self, *, timeout: float = 5.0) -> None:
        """Leave the room for good and wait for the server to confirm (at most `timeout`)."""
        if self._state == "left":
            return
        if self._state == "joined":
            self._move("leave")
            self._conn.send_frame(Leave(room=self.id))
        elif self._state != "leaving":
            self._move("leave")  # not in the room on the server right now: nothing to tell it
            self._finish(None, reason="left")
            return
        try:
            async with asyncio.timeout(timeout):
                await self._left.wait()
        except TimeoutError:
            logger.warning("room %s: no `left` within %s s; leaving locally", self.id, timeout)
            self._finish(None, reason="left")

    def __repr__(self) -> str:
        return f"<Room {self.id} type={self.type} player={self.player} {self._state} seq={self.last_seq}>"

    # --- driven by the Connection ---------------------------------------------------------------

    async def wait_joined(self) -> None:
        """Wait for the first `joined`; raises the refusal (ClientError) if the join failed."""
        await asyncio.shield(self._joined_once)

    def join_frame(self) -> Join | None:
        """The frame to send when a connection opens, or None if this room sends nothing."""
        if self._state == "joining":
            return Join(room=self.id, seat=self._seat)
        if self._state == "rejoining":
            since = None if self._fresh_join else self._filter.last_seq
            return Join(room=self.id, seat=self._rejoin or self._seat, since=since)
        return None

    def on_drop(self) -> None:
        """The connection dropped; the next one will rejoin."""
        if self._state == "left":
            return
        self._cancel_retry()  # the next connection sends its own join
        if self._move("drop") == "left":
            self._finish(None, reason="left")

    def on_joined(self, frame: Joined) -> None:
        """Apply a `joined` answer: first join or resume; resends every unanswered message (protocol §9)."""
        first = self._state == "joining"
        if self._state not in ("joining", "rejoining"):
            logger.warning("room %s: unexpected `joined` in state %s", self.id, self._state)
            return
        self.player, self._rejoin = frame.player, frame.rejoin
        if first or self._fresh_join:
            self._filter.skip_to(frame.seq)  # live events follow joined.seq
        elif frame.seq < self._filter.last_seq:
            # The room's journal is behind what we saw (a backend lost data): do not drop new events.
            self._history_gap(f"the room's seq went back from {self._filter.last_seq} to {frame.seq}")
            self._filter.last_seq = frame.seq
        self._fresh_join = False
        self._rejoin_retries = 0
        resend = self._outbox.on_joined(frame.last_id)
        self._move("joined")
        for message in resend:
            self._conn.send_frame(self._msg_frame(message))
        if not self._joined_once.done():
            self._joined_once.set_result(None)

    async def on_event(self, frame: Event) -> None:
        """A room event arrived; deliver it unless it was seen already."""
        if self._state == "left" or not self._filter.accept(frame.seq):
            return
        if self.mirror.on_event(frame.seq, frame.type, frame.data):
            return  # `@state`/`@patch`/`@presence`/`@host` update the mirror (and callbacks), not events()
        await self._inbox.put(frame)

    def on_ack(self, msg_id: int) -> None:
        """The message was applied (or was a duplicate of one applied)."""
        message = self._outbox.resolve(msg_id)
        if message is not None:
            self._answer(message, None)

    def on_reject(self, frame: Reject) -> None:
        """The message was refused."""
        message = self._outbox.resolve(frame.id)
        if message is None:
            return
        error = error_for(frame.code, frame.message, room=self.id, ref=frame.ref, msg_id=frame.id)
        if not message.wants_answer:
            logger.warning("room %s: message %s (%r) rejected: %s", self.id, frame.id, message.type, error)
        self._answer(message, error)

    def on_error(self, frame: ErrorFrame) -> None:
        """An `error` about this room: a refused join or rejoin, or a failed id-less request."""
        error = error_for(frame.code, frame.message, room=self.id, ref=frame.ref)
        if self._state == "rejoining" and frame.code == ErrorCode.HISTORY_GONE:
            self._history_gap(f"events after seq {self._filter.last_seq} are no longer kept")
            self._fresh_join = True
            self._move("history_gone")
            join = self.join_frame()
            if join is not None:
                self._conn.send_frame(join)
        elif (
            self._state == "rejoining"
            and frame.code == ErrorCode.INTERNAL
            and self._rejoin_retries < _MAX_REJOIN_RETRIES
        ):
            # Transient on the server side (a failover in progress): keep the room, ask again.
            delay = _REJOIN_RETRY_BASE_S * 2**self._rejoin_retries
            self._rejoin_retries += 1
            logger.warning("room %s: rejoin failed (%s); retrying in %.2f s", self.id, error, delay)
            self._retry = asyncio.get_running_loop().call_later(delay, self._retry_join)
        elif self._state in ("joining", "rejoining"):
            self._move("refused")
            self._finish(error, reason="refused")
        elif frame.code == ErrorCode.HISTORY_GONE:
            # Joined, but the replay found the history gone: live events follow after a gap.
            self._history_gap(f"events after seq {self._filter.last_seq} are no longer kept")
        else:
            logger.warning("room %s: %s", self.id, error)

    def on_left(self, frame: Left) -> None:
        """The server says this connection is no longer in the room."""
        self._finish(None, reason=frame.reason, detail=frame.detail)

    def on_lost(self, error: ClientError) -> None:
        """The connection is gone for good."""
        self._finish(error, reason="lost")

    # --- internals --------------------------------------------------------------------------------

    def _move(self, what: RoomInput) -> RoomState:
        if what in _FINAL_INPUTS:
            self._state = "left"
            return self._state
        new = _TRANSITIONS.get((self._state, what))
        if new is None:
            raise RoomLeftError(f"cannot {what} in state {self._state}", room=self.id)
        self._state = new
        return new

    async def _submit(
        self, type: str, data: JSONValue, *, wants_answer: bool
    ) -> tuple[PendingMessage, asyncio.Future[int] | None]:
        self._check_usable()
        size = self._conn.frame_size(Msg(room=self.id, type=type, data=data, id=self._outbox.next_id))
        if size > self._conn.max_frame_bytes:
            raise MessageTooLargeError(
                f"message {type!r} is {size} bytes on the wire; the limit is {self._conn.max_frame_bytes}",
                room=self.id,
            )
        await self._slots.acquire()
        try:
            self._check_usable()
        except ClientError:
            self._slots.release()
            raise
        # No await from here to send_frame: ids go on the wire in the order they were given.
        message = self._outbox.add(type, data, wants_answer=wants_answer)
        answer: asyncio.Future[int] | None = None
        if wants_answer:
            answer = asyncio.get_running_loop().create_future()
            self._answers[message.id] = answer
        if self._state == "joined":
            self._conn.send_frame(self._msg_frame(message))
        return message, answer

    def _check_usable(self) -> None:
        if self._state in ("left", "leaving"):
            raise self._left_error()

    def _left_error(self) -> ClientError:
        if self._lost is not None:
            return self._lost
        error = RoomLeftError(
            f"the room was left ({self.left_reason or 'leaving'}"
            + (f": {self.left_detail})" if self.left_detail else ")"),
            room=self.id,
        )
        error.reason, error.detail = self.left_reason or "left", self.left_detail
        return error

    def _msg_frame(self, message: PendingMessage) -> Msg:
        return Msg(room=self.id, type=message.type, data=message.data, id=message.id)

    def _answer(self, message: PendingMessage, error: ClientError | None) -> None:
        self._slots.release()
        answer = self._answers.pop(message.id, None)
        if answer is None or answer.done():
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(message.id)

    def _history_gap(self, why: str) -> None:
        error = HistoryGoneError(f"missed events: {why}; the room view may be stale", room=self.id)
        error.missed_after = self._filter.last_seq
        self.mirror.invalidate()  # patches do not fit now: wait for the rejoin's `@state`
        logger.warning("room %s: %s", self.id, error)
        self._inbox.put_marker(error)

    def _retry_join(self) -> None:
        self._retry = None
        join = self.join_frame() if self._state == "rejoining" else None
        if join is not None:
            self._conn.send_frame(join)

    def _cancel_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def _finish(self, error: ClientError | None, *, reason: str, detail: str | None = None) -> None:
        """Final: the room is left (error None: normally) — fail what waits, end events(), detach."""
        if self._left.is_set():
            return
        self._state = "left"
        self._cancel_retry()
        self.left_reason, self.left_detail = reason, detail
        self._lost = error
        end = error or self._left_error()
        for message in self._outbox.drain():
            self._answer(message, end)
        if not self._joined_once.done():
            self._joined_once.set_exception(end)
            self._joined_once.exception()  # retrieved here: wait_joined() may never be called
        self._inbox.close(error)
        self._left.set()
        self._conn.detach(self)
