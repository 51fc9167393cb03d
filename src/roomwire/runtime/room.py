"""Room and Player: what a handler sees. No sockets, no backend: only state and effects."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from roomwire.errors import SetupError
from roomwire.runtime.snapshot import PlayerRecord, TimerRecord

if TYPE_CHECKING:
    from roomwire.runtime.machine import RoomMachine


class Player:
    """A player seated in a room: `id` comes from the verified seat, never from the client."""

    __slots__ = ("_record",)

    def __init__(self, record: PlayerRecord) -> None:
        self._record = record

    @property
    def id(self) -> str:
        """The player id (from the auth token)."""
        return self._record.id

    @property
    def claims(self) -> dict[str, Any]:
        """Claims of the player's token (name, rank, ...), as issued by the app."""
        return self._record.claims

    @property
    def connected(self) -> bool:
        """False while the player is disconnected within the reconnect grace period."""
        return self._record.connected

    @property
    def status(self) -> PresenceStatus:
        """`connected`, or `reconnecting` while disconnected within the reconnect grace."""
        return "connected" if self._record.connected else "reconnecting"

    @property
    def joined_at(self) -> float:
        """When this membership began (room clock); a reconnect does not change it."""
        return self._record.joined_at

    def __repr__(self) -> str:
        return f"Player({self.id!r}, connected={self.connected})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Player) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


PlayerRef = Player | str
PresenceStatus = Literal["connected", "reconnecting", "left"]


def _player_id(player: PlayerRef) -> str:
    return player if isinstance(player, str) else player.id


def timer_path(fn: Callable[..., Any]) -> str:
    """The import path a timer callback is stored under; refuses lambdas and closures."""
    qualname = getattr(fn, "__qualname__", "")
    module = getattr(fn, "__module__", None)
    if not module or not qualname or "<" in qualname:
        raise SetupError(
            f"timer callback {fn!r} must be a module-level function (timers are stored by name so they "
            "survive recovery; a lambda or nested function cannot be found again)"
        )
    return f"{module}:{qualname}"


class Room:
    """One running room, as handlers see it: state, players, broadcast/send, timers, end."""

    __slots__ = ("_machine", "id")

    def __init__(self, machine: RoomMachine, room_id: str) -> None:
        self._machine = machine
        self.id = room_id

    @property
    def type(self) -> str:
        """The room type's name."""
        return self._machine.room_type.name

    @property
    def state(self) -> dict[str, Any]:
        """The room's state: plain data (dict, list, str, number, bool, None), committed after each input."""
        return self._machine.snapshot.state

    @property
    def players(self) -> Mapping[str, Player]:
        """Seated players by id, connected or within their reconnect grace."""
        return self._machine.players

    @property
    def presence(self) -> dict[str, PresenceStatus]:
        """Who is in the room and how: seated players (`connected`/`reconnecting`), then the
        players who left and whose message ids the room still remembers (`left`)."""
        snapshot = self._machine.snapshot
        presence: dict[str, PresenceStatus] = {pid: p.status for pid, p in self._machine.players.items()}
        for pid in snapshot.departed:
            presence.setdefault(pid, "left")
        return presence

    @property
    def now(self) -> float:
        """The room clock (seconds since the epoch); advanced by hand in roomwire.testing."""
        return self._machine.clock()

    @property
    def seq(self) -> int:
        """The last room sequence number assigned."""
        return self._machine.snapshot.seq

    def broadcast(
        self,
        type: str,
        data: Any = None,
        /,
        *,
        exclude: PlayerRef | list[PlayerRef] | None = None,
        **fields: Any,
    ) -> None:
        """Send an event to every player of the room (but `exclude`); data is `data` or the keyword fields."""
        if type.__class__ is str and type.startswith("@"):  # inline: every broadcast passes here
            _refuse_reserved(type)
        excluded: tuple[str, ...] | None = None
        if exclude is not None:
            items = exclude if isinstance(exclude, list) else [exclude]
            excluded = tuple(_player_id(p) for p in items)
        self._machine.emit(type, _payload(data, fields), None, excluded)

    def send(
        self, player: PlayerRef | list[PlayerRef], type: str, data: Any = None, /, **fields: Any
    ) -> None:
        """Send an event to one player (or a list of players) only."""
        if type.__class__ is str and type.startswith("@"):  # inline: every broadcast passes here
            _refuse_reserved(type)
        items = player if isinstance(player, list) else [player]
        self._machine.emit(type, _payload(data, fields), tuple(_player_id(p) for p in items), None)

    def after(self, seconds: float, fn: Callable[..., Any], *args: Any) -> int:
        """Call `fn(room, *args)` once after `seconds`; returns a timer id for `cancel`."""
        return self._machine.add_timer(_delay(seconds), fn, list(args), every=None)

    def every(self, seconds: float, fn: Callable[..., Any], *args: Any) -> int:
        """Call `fn(room, *args)` every `seconds` until cancelled; returns a timer id."""
        interval = _delay(seconds)
        if interval <= 0:
            raise SetupError("room.every needs a positive interval")
        return self._machine.add_timer(interval, fn, list(args), every=interval)

    def cancel(self, timer_id: int) -> bool:
        """Cancel a pending timer; False if it already fired or does not exist."""
        return self._machine.cancel_timer(timer_id)

    @property
    def timers(self) -> list[TimerRecord]:
        """Pending user timers, soonest first (read-only view for tests and debugging)."""
        return sorted(
            (t for t in self._machine.snapshot.timers if not t.fn.startswith("@")), key=lambda t: t.due
        )

    def end(self, reason: str = "ended") -> None:
        """End the room after this input: clients get `left` (reason ended), history is removed."""
        self._machine.request_end(reason)

    def kick(self, player: PlayerRef, reason: str = "kicked", *, ban: bool = False) -> None:
        """Remove a player after this input; the leave hook runs with `reason`.

        With `ban=True` the player may not come back for the room's life: their joins (with a
        rejoin seat or a new one) are refused `forbidden`, and the lobby gives them no new seat.
        """
        self._machine.request_kick(_player_id(player), reason, ban)


def framework_event(room: Room, type: str, data: Any, to: tuple[str, ...] | None = None) -> None:
    """Emit an event of a reserved `@` type to every player, or to `to` (roomwire's own modules)."""
    room._machine.emit(type, data, to, None)


def _refuse_reserved(type: str) -> None:
    # Event types starting with "@" are the framework's (`@patch`, `@state`: protocol §15).
    raise ValueError(f"event type {type!r}: types starting with '@' are reserved for roomwire")


def _payload(data: Any, fields: dict[str, Any]) -> Any:
    if fields:
        if data is not None:
            raise TypeError("pass event data either positionally or as keyword fields, not both")
        return fields
    return data


def _delay(seconds: float) -> float:
    if not isinstance(seconds, int | float) or math.isnan(seconds) or seconds < 0:
        raise SetupError(f"timer delay must be a non-negative number of seconds, got {seconds!r}")
    return float(seconds)
