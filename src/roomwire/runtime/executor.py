"""RoomExecutor: the I/O loop of one room held by this worker: read inputs, step, commit."""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from roomwire.backends.base import Backend
from roomwire.backends.records import Commit, Loaded, MessageInput, Receipt
from roomwire.errors import BackendError, BackendUnavailableError, RoomNotFoundError, StaleLeaseError
from roomwire.runtime import tracing
from roomwire.runtime.bans import BAN_KEY_TTL_S, ban_key
from roomwire.runtime.machine import RoomMachine
from roomwire.runtime.metrics import Metrics
from roomwire.runtime.roomtype import RoomType

log = logging.getLogger("roomwire.executor")

BATCH = 64  # inputs handled per commit at most: bounds commit size and latency under load
# A batch stops taking inputs once it has run this long: the inputs already handled are committed
# (and answered) instead of waiting behind slow or hung handlers (each bounded by step_timeout_s,
# but 64 of them in a row would hold the first one's answer for 64 deadlines).
BATCH_BUDGET_S = 0.1
_COMMIT_RETRIES = 5


class RoomExecutor:
    """Runs one room while this worker holds its lease; returns when it ends, hibernates or is stopped.

    States: running → (hibernating | ended | lost | stopped). `stop()` lets the current batch
    commit first, unless game code is suspended in an await: then the step is cancelled and the
    batch is not committed (its inputs stay in the inbound log, so the next owner runs them).
    Losing the lease (StaleLeaseError) drops uncommitted effects at once.
    """

    def __init__(
        self,
        backend: Backend,
        room_type: RoomType,
        room_id: str,
        epoch: int,
        loaded: Loaded | None,
        clock: Callable[[], float],
        code_version: str = "",
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.backend = backend
        self.metrics = metrics
        self._message_at: list[float] = []  # MessageInput.at of the inputs the next commit covers
        self._spans: list[Any] = []  # traced inputs' spans, ended when their commit is done
        if metrics is not None:  # looked up once: the commit path only observes
            self._commit_hist = metrics.histogram(metrics.commit_seconds, room_type.name)
            self._message_hist = metrics.histogram(metrics.message_seconds, room_type.name)
        self.room_type = room_type
        self.room_id = room_id
        self.epoch = epoch
        self.clock = clock
        self.machine = RoomMachine(
            room_type, room_id, clock, loaded.snapshot if loaded else None, code_version
        )
        self.offset = loaded.inbound_offset if loaded else 0
        self._committed = self.machine.checkpoint
        self._committed_offset = self.offset
        self._stopping = False
        self._reading = False
        self.outcome = "running"
        # Metering: what this room cost while this worker ran it (see Worker.stats).
        self.inputs_total = 0
        self.events_total = 0
        self.commits_total = 0
        self.handler_s = 0.0

    def stop(self, task: asyncio.Task[None]) -> None:
        """Ask the loop to finish: interrupt an idle wait or an awaiting step, else stop after the batch."""
        self._stopping = True
        # A step awaiting in game code may never return (a hung handler): shutdown must not wait
        # up to step_timeout_s for it, nor forever when the room type disables the bound.
        if self._reading or self.machine.awaiting:
            task.cancel()

    async def run(self) -> str:
        """Drive the room; returns why it stopped: ended, hibernated, lost, stopped or gone."""
        policy = self.room_type.policy
        machine = self.machine
        idle_since = self.clock()
        unavailable_s = 0.0
        due = machine.next_due()  # timers change only in steps: recomputed after each batch
        try:
            while not self._stopping:
                now = self.clock()
                # No deadline when nothing is due: an input (a disconnect included) wakes the read.
                wait = None if due is None else max(0.0, due - now)
                if machine.is_idle():
                    until_idle = idle_since + policy.idle_timeout_s - now
                    if until_idle <= 0:
                        self.outcome = "hibernated"
                        break
                    wait = until_idle if wait is None else min(wait, until_idle)
                else:
                    idle_since = now
                self._reading = True
                try:
                    items = await self.backend.read_inputs(self.room_id, self.offset, BATCH, wait)
                except BackendUnavailableError:
                    # The engine is down: nothing can be read or committed; keep the room and
                    # retry (another worker may take it over meanwhile, which fencing handles).
                    if unavailable_s == 0:
                        log.warning("room %s: engine unavailable; retrying", self.room_id)
                    if self.metrics is not None:
                        self.metrics.engine_errors["read_inputs"] += 1
                    unavailable_s = min(1.0, max(0.05, unavailable_s * 2))
                    await asyncio.sleep(unavailable_s)  # back off while the engine is down
                    continue
                finally:
                    self._reading = False
                unavailable_s = 0.0
                started = time.perf_counter()
                for offset, item in items:
                    span = None
                    if type(item) is MessageInput:
                        self._message_at.append(item.at)
                        if item.trace and tracing.TRACER is not None:
                            span = self._trace(item)
                    await machine.apply(item)
                    if span is not None:
                        span.set_attribute("roomwire.seq", machine.snapshot.seq)
                    self.offset = offset
                    self.inputs_total += 1
                    if machine.ended is not None:
                        break  # inputs after the end are refused by the next incarnation: the room is gone
                    if time.perf_counter() - started > BATCH_BUDGET_S:
                        break  # commit what is done; the rest is read again from self.offset
                if items:
                    due = machine.next_due()  # the inputs may have set or cancelled timers
                if due is not None and due <= self.clock():
                    await machine.fire_due()
                    due = machine.next_due()
                self.handler_s += time.perf_counter() - started
                await self._commit()
                if machine.ended is not None:
                    self.outcome = "ended"
                    break
                if items:
                    idle_since = self.clock()
            else:
                self.outcome = "stopped"
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            self.outcome = "stopped"
        except StaleLeaseError:
            # Promise 4: another worker holds the room now; our uncommitted effects never happened.
            log.warning("room %s: lease epoch %d is stale; dropping the room", self.room_id, self.epoch)
            self.outcome = "lost"
        except RoomNotFoundError:
            log.info("room %s was removed while running", self.room_id)
            self.outcome = "gone"
        for span in self._spans:  # traced inputs never committed here (lease lost, room gone)
            span.set_attribute("roomwire.outcome", self.outcome)
            span.end()
        self._spans.clear()
        return self.outcome

    async def _commit(self) -> None:
        events, receipts = self.machine.take_output()
        checkpoint = self.machine.checkpoint
        unchanged = checkpoint is self._committed and self.offset == self._committed_offset
        if unchanged and not events and not receipts and self.machine.ended is None:
            return
        commit = Commit(
            snapshot=checkpoint,
            inbound_offset=self.offset,
            events=tuple(events),
            receipts=tuple(receipts),
            ended=self.machine.ended,
            players=len(self.machine.snapshot.players),
        )
        delay = 0.05
        started = time.perf_counter()
        spans = self._spans
        commit_span = tracing.commit_span(spans[0], self.room_type.name, len(events)) if spans else None
        for attempt in range(_COMMIT_RETRIES):
            try:
                await self.backend.commit(self.room_id, self.epoch, commit, self.room_type.policy.history)
                break
            except BackendUnavailableError:
                if attempt == _COMMIT_RETRIES - 1:
                    raise
                log.warning("room %s: commit failed (engine unavailable), retrying", self.room_id)
                if self.metrics is not None:
                    self.metrics.engine_errors["commit"] += 1
                await asyncio.sleep(delay)  # back off before retrying the same commit
                delay *= 2
                # The failed call may have been applied before the connection dropped: then a
                # retry would be refused as a conflict. The journal tells which happened.
                if await self._was_applied(commit):
                    break
        self._committed = checkpoint
        self._committed_offset = self.offset
        self.commits_total += 1
        self.events_total += len(events)
        if commit_span is not None:
            commit_span.end()
            for span in spans:
                span.end()
            spans.clear()
        if self.metrics is not None:
            self._count_commit(time.perf_counter() - started, receipts)
        await self._publish_bans()

    def _trace(self, item: MessageInput) -> Any:
        """The span of a traced message, from its step to its commit (runtime.tracing)."""
        span = tracing.handle_span(
            item.trace, self.room_id, self.room_type.name, self.machine.snapshot.code_version, item.type
        )
        self._spans.append(span)
        return span

    def _count_commit(self, took_s: float, receipts: list[Receipt]) -> None:
        """Metrics of one commit: its latency, message to event latency, refusals by code."""
        self._commit_hist.observe(took_s)
        message_at = self._message_at
        if message_at:
            now = time.time()  # MessageInput.at is the gateway's wall clock
            hist = self._message_hist
            counts, buckets, total = hist.counts, hist.buckets, 0.0
            for at in message_at:  # Histogram.observe inlined: one call less per message
                took = now - at  # a clock step back lands in the lowest bucket
                counts[bisect_left(buckets, took)] += 1
                total += took
            hist.sum += total
            message_at.clear()
        for receipt in receipts:
            if receipt.code:
                assert self.metrics is not None
                self.metrics.rejected[(self.room_type.name, receipt.code)] += 1

    async def _publish_bans(self) -> None:
        """Tell the lobby about bans the commit made, or drop the keys of a room that ended."""
        machine = self.machine
        bans, machine.new_bans = machine.new_bans, []
        if machine.ended is not None:
            bans = list(machine.snapshot.banned)
        for player in bans:
            key = ban_key(self.room_id, player)
            try:
                if machine.ended is not None:
                    await self.backend.kv_delete(key)
                else:
                    await self.backend.kv_set(key, b"1", ttl_s=BAN_KEY_TTL_S)
            except BackendError as exc:  # the room itself still refuses the player's joins
                log.warning("room %s: ban of %s not shown to the lobby: %s", self.room_id, player, exc)

    async def _was_applied(self, commit: Commit) -> bool:
        try:
            loaded = await self.backend.load(self.room_id)
        except BackendUnavailableError:
            return False
        if loaded is None:
            return False
        if commit.events:
            return loaded.last_seq >= commit.events[-1].seq
        return loaded.inbound_offset >= commit.inbound_offset and loaded.snapshot == commit.snapshot
