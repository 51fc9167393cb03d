"""RoomTester: drive a room type in-process, with a hand-moved clock and no sockets.

t = RoomTester(arena, options={"round_s": 60})
alice, bob = t.join("alice"), t.join("bob")
alice.send("move", {"x": 1, "y": 2})
assert bob.events_of("moved")[-1]["x"] == 1
t.advance(60)                     # fires due timers in order
alice.synced                      # a synced room: what alice's client mirrors (her view)
"""

from __future__ import annotations

import itertools
from collections.abc import Coroutine
from typing import Any

import msgspec

from roomwire.backends.records import (
    CreateInput,
    DisconnectInput,
    Input,
    JoinInput,
    LeaveInput,
    MessageInput,
    OutEvent,
    Receipt,
)
from roomwire.errors import (
    ForbiddenError,
    NotJoinedError,
    RateLimitedError,
    RejectedError,
    RoomClosedError,
    RoomFullError,
    RoomwireError,
    SetupError,
    UnknownMessageTypeError,
    ValidationError,
)
from roomwire.protocol.codes import ErrorCode
from roomwire.protocol.mirror import StateMirror
from roomwire.runtime.machine import RoomMachine
from roomwire.runtime.room import Room
from roomwire.runtime.roomtype import RoomType

_ERRORS: dict[str, type[RoomwireError]] = {
    ErrorCode.REJECTED: RejectedError,
    ErrorCode.INVALID_MESSAGE: ValidationError,
    ErrorCode.UNKNOWN_TYPE: UnknownMessageTypeError,
    ErrorCode.NOT_JOINED: NotJoinedError,
    ErrorCode.ROOM_FULL: RoomFullError,
    ErrorCode.ROOM_CLOSED: RoomClosedError,
    ErrorCode.FORBIDDEN: ForbiddenError,
    ErrorCode.RATE_LIMITED: RateLimitedError,
}


def _raise_for(receipt: Receipt) -> None:
    error = _ERRORS.get(receipt.code, RoomwireError)(receipt.message)
    error.add_note(f"code: {receipt.code}")
    raise error


def _run(coro: Coroutine[Any, Any, None]) -> None:
    """Run a step to completion without an event loop: game code must not wait on real I/O here."""
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise SetupError("a handler awaited real I/O; RoomTester runs handlers without an event loop")


class TestPlayer:
    """A player in a RoomTester: send messages, read the events they received."""

    __test__ = False  # not a pytest test class

    def __init__(self, tester: RoomTester, player_id: str) -> None:
        self.tester = tester
        self.id = player_id
        self.events: list[OutEvent] = []
        self.receipts: list[Receipt] = []
        self.connected = True
        self._ids = itertools.count(1)
        self._joins = itertools.count(1)
        # What this player's client would mirror of a synced room (issue #12).
        self.mirror = StateMirror()

    def __repr__(self) -> str:
        return f"TestPlayer({self.id!r})"

    def send(self, type: str, data: Any = None, /, **fields: Any) -> None:
        """Send a message; raises the typed error (RejectedError, ValidationError, ...) if refused."""
        msg_id = next(self._ids)
        payload = fields if fields else data
        receipt = self.tester._apply(MessageInput(self.id, type, payload, msg_id, self.tester.now), self.id)
        if receipt is not None and receipt.kind == "reject":
            _raise_for(receipt)

    def leave(self) -> None:
        """Leave the room for good (the leave hook runs with reason `left`)."""
        self.tester._apply(LeaveInput(self.id, "left", self.tester.now), None)
        self.connected = False

    def disconnect(self) -> None:
        """Drop the connection; the seat is kept for the reconnect grace period."""
        self.connected = False
        self.tester._apply(DisconnectInput(self.id, self.tester.now), None)

    def reconnect(self) -> None:
        """Come back within the grace period (no join hook)."""
        self.connected = True  # so the reconnect hook's events reach this player
        # Each connection is a new session, as on a gateway (a synced room sends it a @state).
        ref = f"rejoin-{next(self._joins)}"
        receipt = self.tester._apply(JoinInput(self.id, {}, ref, self.tester.now), self.id)
        if receipt is not None and receipt.kind == "refused":
            self.connected = False
            _raise_for(receipt)

    @property
    def synced(self) -> Any:
        """This player's mirror of a synced room's state (their view), as their client holds it."""
        return self.mirror.state

    def events_of(self, type: str) -> list[Any]:
        """Data of the events of one type this player received, in order."""
        return [ev.data for ev in self.events if ev.type == type]

    @property
    def last_event(self) -> OutEvent | None:
        """The most recent event this player received."""
        return self.events[-1] if self.events else None


class RoomTester:
    """One room of a room type, driven by hand: join players, send, advance time, inspect."""

    __test__ = False

    def __init__(
        self,
        room_type: RoomType,
        *,
        options: dict[str, Any] | None = None,
        room_id: str = "test-room",
        start_time: float = 1_700_000_000.0,
    ) -> None:
        self.now = start_time
        self.machine = RoomMachine(room_type, room_id, lambda: self.now)
        self.players: dict[str, TestPlayer] = {}
        self.events: list[OutEvent] = []
        self._apply(CreateInput(options or {}, self.now), None)

    @property
    def room(self) -> Room:
        """The Room handlers see."""
        return self.machine.room

    @property
    def state(self) -> dict[str, Any]:
        """The room's current state."""
        return self.machine.snapshot.state

    @property
    def ended(self) -> str | None:
        """The end reason once the room has ended, else None."""
        return self.machine.ended

    def join(self, player_id: str, claims: dict[str, Any] | None = None) -> TestPlayer:
        """Seat a player (the join hook may refuse: ForbiddenError, RoomFullError)."""
        player = self.players.get(player_id) or TestPlayer(self, player_id)
        self.players[player_id] = player
        receipt = self._apply(JoinInput(player_id, claims or {}, "join", self.now), player_id)
        if receipt is not None and receipt.kind == "refused":
            del self.players[player_id]
            _raise_for(receipt)
        player.connected = True
        return player

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing every timer and tick that comes due, in order."""
        if seconds < 0:
            raise SetupError("time only moves forward")
        target = self.now + seconds
        while True:
            due = self.machine.next_due()
            if due is None or due > target or self.machine.ended is not None:
                break
            self.now = max(self.now, due)
            _run(self.machine.fire_due())
            self._distribute()
        self.now = target

    def _apply(self, item: Input, answer_for: str | None) -> Receipt | None:
        _run(self.machine.apply(item))
        return self._distribute(answer_for)

    def _distribute(self, answer_for: str | None = None) -> Receipt | None:
        events, receipts = self.machine.take_output()
        self.events.extend(events)
        for ev in events:
            for player in self.players.values():
                if player.connected and ev.is_for(player.id):
                    player.events.append(ev)
                    player.mirror.on_event(
                        ev.seq, ev.type, msgspec.msgpack.decode(msgspec.msgpack.encode(ev.data))
                    )
        answer = None
        for receipt in receipts:
            target = self.players.get(receipt.player)
            if target is not None:
                target.receipts.append(receipt)
                if receipt.kind == "removed":
                    target.connected = False
            if receipt.player == answer_for and receipt.kind != "removed":
                answer = receipt
        return answer
