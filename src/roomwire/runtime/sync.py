"""StateSync: turns each checkpoint of a synced room into `@patch` and `@state` events.

A synced room (`app.room(..., sync=True)`) keeps, outside its snapshot, a copy of what each
client's mirror holds: one shared copy when the room type has no view, one per player when it
has one. At every checkpoint (the moment a step's effects become the room's new state, see
RoomMachine._checkpoint_or_raise) it diffs the mirror against the state (or the player's view),
emits the operations as a `@patch` event addressed to the players whose mirror they update, and
a `@state` event with the whole (view of the) state to every player whose connection has not had
one yet (a join, a rejoin or a resume). Being ordinary events of the same step, they get room
sequence numbers, are committed with the step's other events, kept in the history and replayed
on resume: nothing here needs its own durability. docs/protocol.md §15 is the wire contract.

Two phases, because the encode of the snapshot that follows may still fail the step: `stage`
emits and keeps the new mirrors aside; `settle` (called once the snapshot is encoded) makes them
current. A failed step's events are dropped by the machine's rollback and its staged mirrors are
never settled, so the mirrors always equal what the committed events say.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from roomwire.protocol.patch import DiffMemo, Op, apply_patch, copy_value, diff

if TYPE_CHECKING:
    from roomwire.runtime.machine import RoomMachine

log = logging.getLogger("roomwire.room")

PRESENCE = "@presence"  # data: {player: "connected" | "reconnecting"} for every seated player
PATCH = "@patch"  # data: a list of patch operations (roomwire.protocol.patch)
STATE = "@state"  # data: the whole state, or the player's view of it
RESERVED_PREFIX = "@"  # event types starting with it are the framework's (Room.broadcast refuses them)

ViewFn = Callable[..., Any]  # view(room, player) -> plain data


class StateSync:
    """The client mirrors of one synced room and the events that keep them equal to the state."""

    def __init__(self, machine: RoomMachine, view: ViewFn | None) -> None:
        self._machine = machine
        self._view = view
        # What the clients' mirrors hold: one shared copy of the state (no view), or a copy of
        # each player's view. Copies, because handlers mutate the state in place.
        self._shared: Any = copy_value(machine.snapshot.state) if view is None else None
        self._mirrors: dict[str, Any] = {}
        # The session (join ref) of each player whose connection has had its `@state`. A new
        # session (join, rejoin, resume, or every player after a recovery) gets one.
        self._sessions: dict[str, str] = {}
        self._presence: dict[str, str] = {}  # as last sent in `@presence`
        self._staged: _Staged | None = None

    def stage(self) -> None:
        """Emit `@patch` (per group of players with equal changes) and `@state` (per new session).

        Raises:
            TypeError: the state holds something that is not plain data (fails the step).
        """
        machine = self._machine
        records = machine.snapshot.players
        synced = [pid for pid, rec in records.items() if self._sessions.get(pid, None) == rec.session]
        fresh = [pid for pid in records if self._sessions.get(pid, None) != records[pid].session]
        staged = _Staged({pid: records[pid].session for pid in synced})
        if self._view is None:
            staged.shared_ops = diff(self._shared, machine.snapshot.state)
            if staged.shared_ops and synced:
                # A new session's `@state` below already holds this step: it must not get both.
                machine.emit(PATCH, staged.shared_ops, None, tuple(fresh) if fresh else None)
            if fresh:
                data = copy_value(machine.snapshot.state)  # shared by the events: never mutated
                for pid in fresh:
                    machine.emit(STATE, data, (pid,), None)
                    staged.sessions[pid] = records[pid].session
        else:
            groups: list[tuple[list[Op], list[str]]] = []
            memo = DiffMemo()  # the views share subtrees of the state: diff each once
            for pid in synced:
                ops = self._player_ops(pid, memo)
                if not ops:
                    continue
                staged.player_ops[pid] = ops
                for group_ops, players in groups:
                    if group_ops == ops:
                        players.append(pid)
                        break
                else:
                    groups.append((ops, [pid]))
            for ops, players in groups:
                machine.emit(PATCH, ops, tuple(players), None)
            for pid in fresh:
                view = self._player_view(pid, copy=True)
                if view is _FAILED:
                    continue  # no `@state` yet: the next checkpoint tries again
                machine.emit(STATE, view, (pid,), None)
                staged.fresh_mirrors[pid] = copy_value(view)
                staged.sessions[pid] = records[pid].session
        presence = {pid: "connected" if rec.connected else "reconnecting" for pid, rec in records.items()}
        if presence != self._presence:
            if synced:
                machine.emit(PRESENCE, presence, None, tuple(fresh) if fresh else None)
            staged.presence = presence
        for pid in fresh:
            if pid in staged.sessions:  # got its `@state`: presence follows
                machine.emit(PRESENCE, presence, (pid,), None)
        self._staged = staged

    def settle(self) -> None:
        """Make the staged mirrors current: the checkpoint that carries their events succeeded."""
        staged, self._staged = self._staged, None
        if staged is None:
            return
        if staged.shared_ops:
            self._shared = apply_patch(self._shared, _copied(staged.shared_ops))
        if self._view is not None:
            mirrors = {pid: self._mirrors[pid] for pid in staged.sessions if pid in self._mirrors}
            for pid, ops in staged.player_ops.items():
                mirrors[pid] = apply_patch(mirrors[pid], _copied(ops))
            mirrors.update(staged.fresh_mirrors)
            self._mirrors = mirrors
        self._sessions = staged.sessions
        if staged.presence is not None:
            self._presence = staged.presence

    def _player_ops(self, pid: str, memo: DiffMemo) -> list[Op]:
        """The changes of one player's view since their mirror (none when the view fails)."""
        view = self._player_view(pid, copy=False)  # the diff checks (and copies) what changed
        if view is _FAILED:
            return []
        try:
            return diff(self._mirrors[pid], view, memo)
        except TypeError:
            self._log_view_failure(pid)
            return []

    def _player_view(self, pid: str, *, copy: bool) -> Any:
        """The player's view (a checked copy if `copy`), or _FAILED (logged) when it fails.

        A failing view must not fail a framework checkpoint (a join, a disconnect): that step
        has no handler to blame. The player's mirror then stays as it was, and nothing the view
        did not return is ever sent.
        """
        assert self._view is not None
        machine = self._machine
        try:
            view = self._view(machine.room, machine.players[pid])
            return copy_value(view) if copy else view
        except Exception:  # game code: a failure is logged with a ref, never a crash
            self._log_view_failure(pid)
            return _FAILED

    def _log_view_failure(self, pid: str) -> None:
        machine = self._machine
        log.exception(
            "room %s (%s): view failed for player %s [ref %s]",
            machine.room_id,
            machine.room_type.name,
            pid,
            secrets.token_hex(6),
        )


class _Staged:
    """What a checkpoint emitted, to become the mirrors once it is encoded."""

    __slots__ = ("fresh_mirrors", "player_ops", "presence", "sessions", "shared_ops")

    def __init__(self, sessions: dict[str, str]) -> None:
        self.sessions = sessions
        self.shared_ops: list[Op] = []
        self.player_ops: dict[str, list[Op]] = {}
        self.fresh_mirrors: dict[str, Any] = {}
        self.presence: dict[str, str] | None = None


_FAILED: Any = object()


def _copied(ops: list[Op]) -> list[Op]:
    """The ops with their values copied again: the events' values must never alias a mirror."""
    return [[op[0], op[1], copy_value(op[2])] if len(op) == 3 else op for op in ops]
