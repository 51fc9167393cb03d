"""RoomMachine: applies one input at a time to a room and collects what to commit. No I/O.

Every input (create, join, leave, disconnect, message, timer, tick) is one *step*. A step that
succeeds is checkpointed (the snapshot is encoded, which also proves the state is serializable);
a step that raises is rolled back to the last checkpoint, its events are dropped, and the sender
gets a reject receipt. The executor (I/O) and roomwire.testing (no I/O) both drive this class.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import secrets
from collections.abc import Callable
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
from roomwire.errors import RejectedError, SetupError
from roomwire.protocol.codes import ErrorCode
from roomwire.runtime.ids import take_id
from roomwire.runtime.room import Player, Room, timer_path
from roomwire.runtime.roomtype import RoomType
from roomwire.runtime.snapshot import (
    DepartedRecord,
    PlayerRecord,
    Snapshot,
    TimerRecord,
    decode_snapshot,
    encode_snapshot,
    freeze_event_data,
)
from roomwire.runtime.sync import StateSync

log = logging.getLogger("roomwire.room")

Clock = Callable[[], float]

# Built-in timers (names start with "@" so they never collide with an import path).
GRACE = "@grace"  # args [player]: the reconnect grace of a disconnected player ran out
LIFETIME = "@lifetime"  # the room reached max_lifetime_s
EMPTY = "@empty"  # nobody ever joined the room

# Removed players whose message ids a room remembers (promise 2); past it the oldest departure is
# forgotten, and that player's rejoin seat is refused instead of being answered as a resume.
MAX_DEPARTED = 1024


class _DeadlineExpired(Exception):
    """Internal: a step's awaits ran past step_timeout_s (however the handler took the cancel)."""


async def _await_within(awaitable: Any, timeout_s: float) -> None:
    """Await game code, cancelling it at the deadline and again every `timeout_s` until it ends.

    One cancellation is not enough: a handler may await again while it unwinds (a `finally`, an
    `async with` exit) or catch the CancelledError and go on, and its room would wait for good.
    Raises _DeadlineExpired if the deadline passed, even when the handler then returned; a
    cancellation from elsewhere (the executor's shutdown) propagates as CancelledError. Game
    code that swallows every cancellation cannot be stopped in-process, like a blocking call.
    """
    task = asyncio.current_task()
    assert task is not None  # only called in the event loop
    loop = asyncio.get_running_loop()
    cancels = 0
    handle: asyncio.TimerHandle

    def expire() -> None:
        nonlocal cancels, handle
        cancels += 1
        task.cancel()
        handle = loop.call_later(timeout_s, expire)

    handle = loop.call_later(timeout_s, expire)
    try:
        await awaitable
    except asyncio.CancelledError:
        if cancels == 0:
            raise
        for _ in range(cancels):
            task.uncancel()
        if task.cancelling():
            raise  # cancelled from elsewhere as well: shutdown
        raise _DeadlineExpired from None
    finally:
        handle.cancel()
    if cancels:  # the handler caught the cancellation and returned: still over the deadline
        for _ in range(cancels):
            task.uncancel()
        raise _DeadlineExpired


class _StepFailed(Exception):
    """Internal: a step raised; carries the reject to send (code, message, ref)."""

    def __init__(self, code: ErrorCode, message: str, ref: str | None) -> None:
        super().__init__(message)
        self.error_code = code
        self.ref = ref


def _in_event_loop() -> bool:
    """False under RoomTester, which runs steps without an event loop (no deadline there)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _describe(item: Input | None) -> str:
    """A short name of an input for logs (never its data)."""
    if item is None:
        return "timer"
    if isinstance(item, MessageInput):
        return f"msg {item.type!r} id {item.id}"
    return type(item).__name__


class RoomMachine:
    """The state machine of one room: apply inputs and timers, collect events and receipts."""

    def __init__(
        self,
        room_type: RoomType,
        room_id: str,
        clock: Clock,
        snapshot: bytes | None = None,
        code_version: str = "",
    ) -> None:
        self.room_type = room_type
        self.policy = room_type.policy
        self.room_id = room_id
        self.clock = clock
        if snapshot is None:
            self.snapshot = Snapshot(
                type=room_type.name,
                state={},
                players={},
                timers=[],
                created_at=clock(),
                code_version=code_version,
            )
            self._checkpoint = encode_snapshot(self.snapshot)
        else:
            self._checkpoint = snapshot
            self.snapshot = decode_snapshot(snapshot)
        self.players: dict[str, Player] = {}
        self._rebuild_players()
        self.room = Room(self, room_id)
        self.events: list[OutEvent] = []
        self._unchecked = 0  # index of the first event of `events` not yet proven encodable
        self.receipts: list[Receipt] = []
        self.ended: str | None = None
        self._end_request: str | None = None
        self._kicks: list[tuple[str, str, bool]] = []
        self.new_bans: list[str] = []  # players banned by committed steps, for the lobby (executor)
        self._input: Input | None = None  # the input being applied, named in step-timeout logs
        self.awaiting = False  # game code of the current step is suspended in an await
        # A synced room (issue #12) turns each checkpoint into `@patch`/`@state` events too.
        self.sync = StateSync(self, room_type.view_fn) if room_type.sync else None

    # --- what handlers call (through Room) -------------------------------------------------------

    def emit(self, type: str, data: Any, to: tuple[str, ...] | None, exclude: tuple[str, ...] | None) -> None:
        """Assign the next room sequence number to an event."""
        if not isinstance(type, str) or not type:
            raise TypeError(f"event type must be a non-empty string, got {type!r}")
        self.snapshot.seq += 1
        self.events.append(OutEvent(self.snapshot.seq, type, data, to, exclude))

    def add_timer(self, delay: float, fn: Callable[..., Any], args: list[Any], every: float | None) -> int:
        """Schedule a user timer; it is part of the snapshot, so it survives recovery."""
        path = timer_path(fn)
        self.room_type.timer_functions.setdefault(path, fn)
        return self._add_timer(self.clock() + delay, path, args, every)

    def cancel_timer(self, timer_id: int) -> bool:
        """Remove a pending timer by id."""
        for i, timer in enumerate(self.snapshot.timers):
            if timer.id == timer_id:
                del self.snapshot.timers[i]
                return True
        return False

    def request_end(self, reason: str) -> None:
        """End the room once the current step succeeds."""
        self._end_request = str(reason)

    def request_kick(self, player: str, reason: str, ban: bool = False) -> None:
        """Remove a player once the current step succeeds; `ban` refuses them for the room's life."""
        # A string, as for request_end: it is stored in the snapshot (`banned`, typed str), where
        # another type would still encode but never decode again (no rollback, no recovery).
        self._kicks.append((player, str(reason), ban))

    # --- what the driver calls --------------------------------------------------------------------

    def take_output(self) -> tuple[list[OutEvent], list[Receipt]]:
        """Hand over the events and receipts collected since the last call."""
        events, receipts = self.events, self.receipts
        self.events, self.receipts = [], []
        self._unchecked = 0
        return events, receipts

    @property
    def checkpoint(self) -> bytes:
        """The encoded snapshot after the last successful step."""
        return self._checkpoint

    @property
    def connected_count(self) -> int:
        """Players currently connected."""
        return sum(1 for p in self.snapshot.players.values() if p.connected)

    def is_idle(self) -> bool:
        """True when the room may hibernate: nobody connected and no timer pending but its lifetime."""
        return (
            self.ended is None
            and not any(p.connected for p in self.snapshot.players.values())
            and all(t.fn == LIFETIME for t in self.snapshot.timers)
        )

    def next_due(self) -> float | None:
        """Wall-clock time of the next timer or tick, or None."""
        timers = self.snapshot.timers
        due = min(t.due for t in timers) if timers else None
        tick = self.snapshot.next_tick
        if tick is not None and (due is None or tick < due):
            return tick
        return due

    async def apply(self, item: Input) -> None:
        """Apply one inbound input as one step (or refuse it when the room has ended)."""
        if self.ended is not None:
            self._refuse_after_end(item)
            return
        self._input = item
        if isinstance(item, MessageInput):
            await self._on_message(item)
        elif isinstance(item, JoinInput):
            await self._on_join(item)
        elif isinstance(item, LeaveInput):
            await self._on_leave(item)
        elif isinstance(item, DisconnectInput):
            await self._on_disconnect(item)
        elif isinstance(item, CreateInput):
            await self._on_create(item.options)
        self._input = None
        await self._after_step()

    async def fire_due(self) -> None:
        """Run every timer and tick that is due now, each as its own step, soonest first."""
        now = self.clock()
        while self.ended is None:
            due = [t for t in self.snapshot.timers if t.due <= now]
            tick = self.snapshot.next_tick
            if tick is not None and tick <= now and (not due or tick < min(t.due for t in due)):
                await self._fire_tick(now)
            elif due:
                await self._fire_timer(min(due, key=lambda t: (t.due, t.id)))
            else:
                return
            await self._after_step()

    # --- steps ------------------------------------------------------------------------------------

    async def _on_create(self, options: dict[str, Any]) -> None:
        now = self.clock()
        if self.policy.max_lifetime_s is not None:
            self._add_timer(now + self.policy.max_lifetime_s, LIFETIME, [], None)
        if self.policy.auto_dispose:
            self._add_timer(now + self.policy.seat_ttl_s + self.policy.reconnect_grace_s, EMPTY, [], None)
        self._commit_point()
        hook = self.room_type.hooks.get("create")
        if hook is not None and not await self._run(hook, (self.room, options), "create", None):
            self.request_end("create failed")

    async def _on_join(self, item: JoinInput) -> None:
        banned = self.snapshot.banned.get(item.player)
        if banned is not None:
            message = f"you were banned from this room ({banned})"
            self.receipts.append(Receipt(item.player, "refused", item.ref, ErrorCode.FORBIDDEN, message))
            return
        record = self.snapshot.players.get(item.player)
        seq_before = self.snapshot.seq
        if record is not None:  # a reconnect within the grace period: seat kept, no join hook
            was_connected = record.connected
            record.connected = True
            record.session = item.ref
            self._cancel_builtin(GRACE, item.player)
            self._start_tick()
            self._commit_point()
            hook = self.room_type.hooks.get("reconnect")
            if hook is not None and not was_connected:
                await self._run(hook, (self.room, self.players[item.player]), "reconnect", item.player)
            self.receipts.append(
                Receipt(item.player, "joined", item.ref, last_id=record.last_id, seq=seq_before)
            )
            return
        self._forget_departed()
        departed = self.snapshot.departed.get(item.player)
        if departed is None and item.rejoin:
            # Promise 2: this seat continues a membership whose message ids the room no longer
            # knows; answering it as a resume would let a resend be applied twice.
            self.receipts.append(
                Receipt(
                    item.player,
                    "refused",
                    item.ref,
                    ErrorCode.UNAUTHORIZED,
                    "this rejoin seat has expired: the room no longer remembers you; get a new seat",
                )
            )
            return
        if len(self.snapshot.players) >= self.policy.max_players:
            self.receipts.append(
                Receipt(item.player, "refused", item.ref, ErrorCode.ROOM_FULL, "the room is full")
            )
            return
        record = PlayerRecord(item.player, item.claims, True, 0, self.clock(), item.ref)
        if departed is not None:  # a new membership; its message ids continue (promise 2)
            del self.snapshot.departed[item.player]
            record.last_id, record.gaps, record.floor = departed.last_id, departed.gaps, departed.floor
        self.snapshot.players[item.player] = record
        self.players[item.player] = Player(record)
        self.snapshot.ever_joined = True
        hook = self.room_type.hooks.get("join")
        self._start_tick()
        try:
            if hook is not None:  # _call checkpoints the step
                await self._call(hook, (self.room, self.players[item.player]), "join", item.player)
            else:
                self._commit_point()
        except _StepFailed as failed:
            self._rollback()
            code = ErrorCode.FORBIDDEN if failed.error_code is ErrorCode.REJECTED else failed.error_code
            self.receipts.append(Receipt(item.player, "refused", item.ref, code, str(failed), seq=0))
            return
        self.receipts.append(Receipt(item.player, "joined", item.ref, last_id=record.last_id, seq=seq_before))

    async def _on_disconnect(self, item: DisconnectInput) -> None:
        player = item.player
        record = self.snapshot.players.get(player)
        if record is None or not record.connected:
            return
        if item.session and record.session and item.session != record.session:
            return  # a connection the player replaced by joining again: they are still here
        record.connected = False
        self._add_timer(self.clock() + self.policy.reconnect_grace_s, GRACE, [player], None)
        if self.connected_count == 0:
            self.snapshot.next_tick = None  # ticks pause while nobody is connected
        self._commit_point()
        hook = self.room_type.hooks.get("disconnect")
        if hook is not None:
            await self._run(hook, (self.room, self.players[player]), "disconnect", player)

    async def _on_leave(self, item: LeaveInput) -> None:
        record = self.snapshot.players.get(item.player)
        if record is not None and item.session and record.session and item.session != record.session:
            return  # the leave of a connection the player replaced by joining again: they stay
        await self._remove_player(item.player, item.reason)

    async def _remove_player(self, player: str, reason: str) -> None:
        record = self.snapshot.players.pop(player, None)
        if record is None:
            return
        view = self.players.pop(player)
        self._cancel_builtin(GRACE, player)
        if self.connected_count == 0:
            self.snapshot.next_tick = None
        # Promise 2: the player's message ids outlive the membership, for as long as a rejoin
        # seat could bring them back.
        departed = self.snapshot.departed
        departed[player] = DepartedRecord(record.last_id, record.gaps, record.floor, self.clock())
        self._forget_departed()
        self._commit_point()
        self.receipts.append(Receipt(player, "removed", "", "", reason, session=record.session))
        hook = self.room_type.hooks.get("leave")
        if hook is not None:
            await self._run(hook, (self.room, view, reason), "leave", player)
        if self.policy.auto_dispose and not self.snapshot.players:
            self.request_end("empty")

    async def _on_message(self, item: MessageInput) -> None:
        record = self.snapshot.players.get(item.player)
        if record is None:
            self._reject(item, ErrorCode.NOT_JOINED, "you are not in this room", None)
            return
        if item.session and record.session and item.session != record.session:
            # Sent by a connection the player has since replaced: its ids belong to the newer
            # one now. Not applied, id not consumed; the newer connection resends what it needs.
            message = "this connection was replaced by a newer join of the same player"
            self._reject(item, ErrorCode.REPLACED, message, None)
            return
        if item.id is not None:
            verdict = take_id(record, item.id)
            if verdict == "dup":  # Promise 2: a resend is acknowledged, not applied again
                self.receipts.append(Receipt(item.player, "dup", str(item.id), session=item.session))
                return
            if verdict == "expired":
                message = f"message id {item.id} is too old: the room no longer knows its outcome"
                self._reject(item, ErrorCode.ID_EXPIRED, message, None)
                return
        handler = self.room_type.handlers.get(item.type) or self.room_type.handler_for(item.type)
        if handler is None:
            self._commit_point()
            self._reject(item, ErrorCode.UNKNOWN_TYPE, f"no handler for message type {item.type!r}", None)
            return
        msg = item.data
        if handler.schema is not None:
            try:
                msg = msgspec.convert(item.data, handler.schema)
            except msgspec.ValidationError as exc:
                self._commit_point()
                self._reject(item, ErrorCode.INVALID_MESSAGE, f"invalid {item.type!r} message: {exc}", None)
                return
        try:
            await self._call(handler.fn, (self.room, self.players[item.player], msg), item.type, item.player)
        except _StepFailed as failed:
            self._rollback()
            if item.id is not None:  # the id stays consumed: a resend must not run it again
                take_id(self.snapshot.players[item.player], item.id)  # as before the rollback
                self._commit_point()
            self._reject(item, failed.error_code, str(failed), failed.ref)
            return
        if item.id is not None:
            self.receipts.append(Receipt(item.player, "ack", str(item.id), session=item.session))

    async def _fire_timer(self, timer: TimerRecord) -> None:
        # Consume (or reschedule) the timer first, in its own checkpoint: a timer fires once
        # even if its callback raises.
        if timer.every is not None:
            timer.due = max(timer.due + timer.every, self.clock())
        else:
            self.snapshot.timers.remove(timer)
        self._commit_point()
        if timer.fn == GRACE:
            player = timer.args[0]
            record = self.snapshot.players.get(player)
            if record is not None and not record.connected:
                await self._remove_player(player, "disconnected")
        elif timer.fn == LIFETIME:
            self.request_end("max_lifetime")
        elif timer.fn == EMPTY:
            if not self.snapshot.players and self.policy.auto_dispose:
                self.request_end("empty")
        else:
            await self._run(self._call_timer, (timer,), f"timer {timer.fn}", None)

    async def _fire_tick(self, now: float) -> None:
        assert self.policy.tick_rate_hz is not None and self.snapshot.next_tick is not None
        period = 1.0 / self.policy.tick_rate_hz
        due = self.snapshot.next_tick
        # A room that fell far behind skips ticks instead of running a burst of them.
        self.snapshot.next_tick = due + period if now - due < 5 * period else now + period
        self._commit_point()
        hook = self.room_type.hooks.get("tick")
        if hook is not None:
            await self._run(hook, (self.room, period), "tick", None)

    async def _after_step(self) -> None:
        """Apply kicks and an end requested by the step that just succeeded."""
        while self._kicks:
            player, reason, ban = self._kicks.pop(0)
            if ban and player not in self.snapshot.banned:
                self.snapshot.banned[player] = reason
                self.new_bans.append(player)
            await self._remove_player(player, reason)
        if self._end_request is not None and self.ended is None:
            reason, self._end_request = self._end_request, None
            hook = self.room_type.hooks.get("dispose")
            if hook is not None:
                await self._run(hook, (self.room,), "dispose", None)
            self.snapshot.timers.clear()
            self.snapshot.next_tick = None
            self._commit_point()
            self.ended = reason

    # --- step mechanics ---------------------------------------------------------------------------

    async def _run(
        self, fn: Callable[..., Any], args: tuple[Any, ...], what: str, player: str | None
    ) -> bool:
        """Run a hook or timer as a step; on failure roll back and log. Returns success."""
        try:
            await self._call(fn, args, what, player)
            return True
        except _StepFailed as failed:
            self._rollback()
            if failed.error_code is ErrorCode.REJECTED:
                log.info("room %s: %s refused: %s", self.room_id, what, failed)
            return False

    async def _call(
        self, fn: Callable[..., Any], args: tuple[Any, ...], what: str, player: str | None
    ) -> None:
        """Call game code and checkpoint the step; turn every exception into _StepFailed.

        The one broad catch of the runtime. Checkpointing here, once, is what makes a room state
        that cannot be encoded fail the step that produced it.
        """
        try:
            result = fn(*args)
            if result is not None and inspect.isawaitable(result):  # most handlers are plain functions
                timeout_s = self.policy.step_timeout_s if _in_event_loop() else None
                self.awaiting = True  # the executor cancels a suspended step on shutdown
                try:
                    if timeout_s is None:
                        await result
                    else:
                        # Only an await can be bounded: a sync handler that blocks the thread
                        # cannot be interrupted in-process (docs/design.md, "Step deadline").
                        await _await_within(result, timeout_s)
                finally:
                    self.awaiting = False
            self._checkpoint_or_raise()
        except RejectedError as exc:
            raise _StepFailed(ErrorCode.REJECTED, str(exc) or "refused", None) from exc
        except _DeadlineExpired as exc:
            ref = secrets.token_hex(6)
            log.error(
                "room %s (%s): %s for player %s (input %s) did not finish within step_timeout_s=%s; "
                "rolled back [ref %s]",
                self.room_id,
                self.room_type.name,
                what,
                player,
                _describe(self._input),
                self.policy.step_timeout_s,
                ref,
                extra=self._log_context(player, ref),
            )
            message = f"the handler did not finish within {self.policy.step_timeout_s} s (ref {ref})"
            raise _StepFailed(ErrorCode.STEP_TIMEOUT, message, ref) from exc
        except Exception as exc:
            raise self._internal(what, player) from exc

    def _internal(self, what: str, player: str | None) -> _StepFailed:
        """Log the exception being handled with a fresh ref; the failure to raise for it."""
        ref = secrets.token_hex(6)
        log.exception(
            "room %s (%s): %s failed for player %s [ref %s]",
            self.room_id,
            self.room_type.name,
            what,
            player,
            ref,
            extra=self._log_context(player, ref),
        )
        return _StepFailed(ErrorCode.INTERNAL, f"internal error (ref {ref})", ref)

    def _log_context(self, player: str | None, ref: str) -> dict[str, Any]:
        """Fields for structured logs (roomwire serve --log-format json; docs/operations.md)."""
        return {
            "room": self.room_id,
            "room_type": self.room_type.name,
            "player": player,
            "version": self.snapshot.code_version,
            "seq": self.snapshot.seq,
            "ref": ref,
        }

    def _checkpoint_or_raise(self) -> None:
        sync = self.sync
        try:
            if sync is not None:
                sync.stage()  # the step's @patch/@state events, checked with the others below
            checkpoint = encode_snapshot(self.snapshot)
        except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:  # Overflow: wide int
            raise TypeError(
                f"room state must be plain data (dict, list, str, number, bool, None): {exc}"
            ) from exc
        # The step's events must reach every client: one that no codec can encode would fail the
        # commit or the fan-out, for everyone, after the fact. Proving it here fails the step.
        # Each is also frozen: a copy of its data, so a later step changing an object the game
        # shares between its state and an event cannot change the event.
        events = self.events
        for i in range(self._unchecked, len(events)):
            ev = events[i]
            data = freeze_event_data(ev.type, ev.data)
            if data is not ev.data:
                events[i] = OutEvent(ev.seq, ev.type, data, ev.to, ev.exclude)
        self._unchecked = len(events)
        if sync is not None:
            sync.settle()  # only now: a step failed above never moves the mirrors
        self._checkpoint = checkpoint

    def _commit_point(self) -> None:
        """Checkpoint after framework-only changes (cannot fail on user data that was valid before)."""
        self._checkpoint_or_raise()

    def _rollback(self) -> None:
        seq_before = decode_snapshot(self._checkpoint)
        # Drop the failed step's events: they carry seqs above the checkpoint's.
        while self.events and self.events[-1].seq > seq_before.seq:
            self.events.pop()
        self._unchecked = min(self._unchecked, len(self.events))
        self.snapshot = seq_before
        self._end_request = None
        self._kicks.clear()
        self._rebuild_players()

    def _rebuild_players(self) -> None:
        self.players = {pid: Player(rec) for pid, rec in self.snapshot.players.items()}

    def _reject(self, item: MessageInput, code: ErrorCode, message: str, ref: str | None) -> None:
        ref_id = "" if item.id is None else str(item.id)
        self.receipts.append(
            Receipt(item.player, "reject", ref_id, code, message, log_ref=ref or "", session=item.session)
        )

    def _forget_departed(self) -> None:
        """Drop departed players older than a rejoin seat lives, and the oldest beyond MAX_DEPARTED."""
        departed = self.snapshot.departed
        if not departed:
            return
        horizon = self.clock() - self.policy.rejoin_ttl_s
        # Departures are inserted in time order (a player departs again only after rejoining).
        while departed:
            oldest = next(iter(departed))
            if len(departed) <= MAX_DEPARTED and departed[oldest].at >= horizon:
                break
            del departed[oldest]

    def _refuse_after_end(self, item: Input) -> None:
        if isinstance(item, JoinInput):
            self.receipts.append(
                Receipt(item.player, "refused", item.ref, ErrorCode.ROOM_CLOSED, "the room has ended")
            )
        elif isinstance(item, MessageInput) and item.id is not None:
            self._reject(item, ErrorCode.ROOM_CLOSED, "the room has ended", None)

    def _add_timer(self, due: float, fn: str, args: list[Any], every: float | None) -> int:
        timer_id = self.snapshot.next_timer_id
        self.snapshot.next_timer_id += 1
        self.snapshot.timers.append(TimerRecord(timer_id, due, fn, args, every))
        return timer_id

    def _cancel_builtin(self, fn: str, player: str) -> None:
        self.snapshot.timers = [t for t in self.snapshot.timers if not (t.fn == fn and t.args == [player])]

    def _start_tick(self) -> None:
        if self.policy.tick_rate_hz is not None and self.snapshot.next_tick is None:
            self.snapshot.next_tick = self.clock() + 1.0 / self.policy.tick_rate_hz

    def _call_timer(self, timer: TimerRecord) -> Any:
        return self._resolve_timer(timer.fn)(self.room, *timer.args)

    def _resolve_timer(self, path: str) -> Callable[..., Any]:
        fn = self.room_type.timer_functions.get(path)
        if fn is not None:
            return fn
        module_name, _, qualname = path.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise SetupError(f"timer callback {path} cannot be found in this code version") from exc
        self.room_type.timer_functions[path] = target
        return target  # type: ignore[no-any-return]  # resolved by import path
