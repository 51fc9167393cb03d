"""Worker: claims rooms through leases, runs one executor per room, renews leases, drains on stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping

from roomwire.backends.base import Backend, Unsubscribe
from roomwire.backends.records import DisconnectInput, RoomRecord
from roomwire.errors import BackendError, RoomNotFoundError, StaleLeaseError
from roomwire.runtime.executor import RoomExecutor
from roomwire.runtime.metrics import Metrics
from roomwire.runtime.presence import DEFAULT_PRESENCE_TTL_S, gateway_key, session_gateway
from roomwire.runtime.roomtype import RoomType

log = logging.getLogger("roomwire.worker")


class _Held:
    """A room this worker runs: its executor and the task driving it."""

    __slots__ = ("executor", "task")

    def __init__(self, executor: RoomExecutor, task: asyncio.Task[None]) -> None:
        self.executor = executor
        self.task = task


class Worker:
    """Runs the rooms whose leases it holds. Wakes a room when input arrives for it."""

    def __init__(
        self,
        room_types: Mapping[str, RoomType],
        backend: Backend,
        *,
        worker_id: str | None = None,
        lease_ttl_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        code_version: str = "",
        spread_s: float = 0.0,
        presence_ttl_s: float = DEFAULT_PRESENCE_TTL_S,
        pinned: bool = True,
        metrics: Metrics | None = None,
    ) -> None:
        self.room_types = room_types
        self.metrics = metrics or Metrics()  # exported by roomwire.gateway.metrics
        # Promise 5: a pinned worker runs only rooms created for its code_version (or with no
        # version recorded); dev reload (cli/hotswap.py) unpins, to run every room on new code.
        self.pinned = pinned
        # Versions besides its own this worker also runs: `roomwire serve` adds the App's
        # declared `version=`, which rooms created before content-hash versions recorded.
        self.also_runs: frozenset[str] = frozenset()
        # Gateways renew their presence every ttl/3; checking every ttl/2 and acting on the
        # second miss in a row leaves a gateway back from an engine outage time to renew.
        self.presence_check_s = presence_ttl_s / 2
        # With several workers, each waits spread_s per room it holds before claiming a woken
        # room, so the least loaded worker usually wins the race: rooms spread over workers.
        self.spread_s = spread_s
        self.backend = backend
        self.id = worker_id or f"w-{secrets.token_hex(4)}"
        self.lease_ttl_s = lease_ttl_s
        self.clock = clock
        self.code_version = code_version
        self._held: dict[str, _Held] = {}
        self._starting: dict[str, asyncio.Task[None]] = {}
        self._unwatch: Unsubscribe | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._presence: asyncio.Task[None] | None = None
        self._missing_gateways: set[str] = set()
        self._closing = False

    @property
    def room_ids(self) -> list[str]:
        """Rooms this worker currently runs."""
        return list(self._held)

    def stats(self) -> dict[str, dict[str, float]]:
        """Per running room: inputs, events and commits so far, and handler seconds (metering)."""
        return {
            room_id: {
                "inputs": held.executor.inputs_total,
                "events": held.executor.events_total,
                "commits": held.executor.commits_total,
                "handler_s": round(held.executor.handler_s, 6),
                "players": len(held.executor.machine.snapshot.players),
                "connected": held.executor.machine.connected_count,
            }
            for room_id, held in self._held.items()
        }

    async def start(self) -> None:
        """Watch for input, resume rooms with pending work, and start renewing leases."""
        self._unwatch = self.backend.watch_inputs(self.wake)
        self._renewer = asyncio.create_task(self._renew_forever(), name=f"roomwire-renew-{self.id}")
        await self.sweep()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name=f"roomwire-sweep-{self.id}")
        self._presence = asyncio.create_task(
            self._check_gateways_forever(), name=f"roomwire-presence-{self.id}"
        )

    async def sweep(self) -> None:
        """Claim every room that needs a worker (`Backend.rooms_to_run`).

        This is how a room whose worker died moves on (promise 3): its lease expires, and the
        next sweep of a live worker takes it over with a higher epoch and resumes from its last
        commit, timers included. A hibernating room is skipped until input is appended to it:
        scheduling follows pending input, so a wake-up lost on the way (a pub/sub drop, a worker
        restart) delays the room by one sweep interval at most, never for good.
        """
        try:
            for room_id in await self.backend.rooms_to_run():
                if room_id not in self._held and room_id not in self._starting:
                    self.wake(room_id)
        except BackendError:
            self.metrics.engine_errors["sweep"] += 1
            log.warning("worker %s: sweep failed; will retry", self.id)

    async def _sweep_forever(self) -> None:
        # TODO(#13): one check per room per sweep; an index of rooms needing a worker (lease
        # expiries, pending input) would make it O(due).
        interval = min(0.5, self.lease_ttl_s / 4)
        while True:
            await asyncio.sleep(interval)
            await self.sweep()

    async def check_gateways(self) -> None:
        """Disconnect the players of rooms held here whose gateway is gone (see runtime.presence).

        A gateway counts as gone when its presence key is missing on two checks in a row. The
        disconnect names the player's session, so a player who has joined again since (through
        another gateway) is not affected.
        """
        players: dict[str, list[tuple[str, str, str]]] = {}  # gateway -> (room, player, session)
        for room_id, held in list(self._held.items()):
            for record in held.executor.machine.snapshot.players.values():
                gateway_id = session_gateway(record.session) if record.connected else None
                if gateway_id is not None:
                    players.setdefault(gateway_id, []).append((room_id, record.id, record.session))
        try:
            missing = {g for g in players if await self.backend.kv_get(gateway_key(g)) is None}
        except BackendError:
            log.warning("worker %s: gateway presence check failed; will retry", self.id)
            return
        gone, self._missing_gateways = missing & self._missing_gateways, missing
        for gateway_id in sorted(gone):
            log.warning(
                "worker %s: gateway %s is gone; disconnecting its %d players",
                self.id,
                gateway_id,
                len(players[gateway_id]),
            )
            for room_id, player, session in players[gateway_id]:
                try:
                    await self.backend.append_input(room_id, DisconnectInput(player, self.clock(), session))
                except RoomNotFoundError:
                    continue  # the room ended meanwhile
                except BackendError:
                    # The gateway is still missing at the next check, which appends again (a second
                    # disconnect of a player already disconnected changes nothing).
                    log.warning("worker %s: disconnect of %s not recorded; will retry", self.id, player)
                    return

    async def _check_gateways_forever(self) -> None:
        while True:
            await asyncio.sleep(self.presence_check_s)
            try:
                await self.check_gateways()
            except Exception:
                # A bug here must not end presence checking for the rest of the worker's life.
                log.exception("worker %s: gateway presence check failed", self.id)

    def wake(self, room_id: str) -> None:
        """Make sure the room runs here, unless it already does (called on each append)."""
        if self._closing or room_id in self._held or room_id in self._starting:
            return
        task = asyncio.create_task(self._claim(room_id), name=f"roomwire-claim-{room_id}")
        self._starting[room_id] = task

    async def _claim(self, room_id: str) -> None:
        try:
            if self.spread_s and self._held:
                await asyncio.sleep(min(0.05, self.spread_s * len(self._held)))
            # Pinned, the record is read before the lease, so a room of another version is never
            # leased here (a lease taken and given back would delay the worker that can run it);
            # that one read also serves the claim (acquire fails on a room removed since).
            record = await self.backend.get_room(room_id) if self.pinned else None
            if record is not None and not self._runs_version(record):
                return  # left for a worker running its version; never run under other code
            epoch = await self.backend.acquire_lease(room_id, self.id, self.lease_ttl_s)
            if epoch is None:
                return  # another worker holds it (the sweep retries once its lease expires)
            if record is None:
                record = await self.backend.get_room(room_id)
            if record is None:
                await self.backend.release_lease(room_id, self.id, epoch)
                return
            room_type = self.room_types.get(record.type)
            if room_type is None:
                log.error("room %s has type %r, unknown to this app; leaving it", room_id, record.type)
                await self.backend.release_lease(room_id, self.id, epoch)
                return
            loaded = await self.backend.load(room_id)
            executor = RoomExecutor(
                self.backend,
                room_type,
                room_id,
                epoch,
                loaded,
                self.clock,
                self.code_version,
                metrics=self.metrics,
            )
            self.metrics.room_claims[(room_type.name, "new" if loaded is None else "resumed")] += 1
            task = asyncio.create_task(self._drive(executor), name=f"roomwire-room-{room_id}")
            self._held[room_id] = _Held(executor, task)
        except RoomNotFoundError:
            log.debug("room %s was removed before worker %s could claim it", room_id, self.id)
        except BackendError:
            self.metrics.engine_errors["claim"] += 1
            log.exception("worker %s could not claim room %s", self.id, room_id)
        finally:
            self._starting.pop(room_id, None)

    def _runs_version(self, record: RoomRecord) -> bool:
        # A generic worker (cli/generic.py) runs one pinned worker per version in a child.
        version = record.code_version
        return version in ("", self.code_version) or version in self.also_runs

    async def _drive(self, executor: RoomExecutor) -> None:
        room_id = executor.room_id
        outcome = "cancelled"  # what the metrics count if run() is cancelled
        try:
            outcome = await executor.run()
        except Exception:
            log.exception("room %s: executor crashed", room_id)
            outcome = "crashed"
        finally:
            self._held.pop(room_id, None)
            self._retire(executor, outcome)
        if outcome in ("hibernated", "stopped", "crashed"):
            with contextlib.suppress(BackendError, RoomNotFoundError):
                if outcome == "hibernated":
                    # One fenced step: the mark and the release (no sweep takes it in between).
                    await self.backend.hibernate(room_id, self.id, executor.epoch)
                else:
                    await self.backend.release_lease(room_id, self.id, executor.epoch)
        # An input appended between the idle check and `hibernate` is pending: the backend wakes
        # the watchers for it, and the next sweep finds it even if that wake-up is lost.

    def _retire(self, executor: RoomExecutor, outcome: str) -> None:
        """Move a stopped executor's totals into the metrics (running ones are read at scrape)."""
        name = executor.room_type.name
        totals = self.metrics.totals(name)
        totals.inputs += executor.inputs_total
        totals.events += executor.events_total
        totals.commits += executor.commits_total
        totals.handler_s += executor.handler_s
        self.metrics.room_stops[(name, outcome)] += 1

    def held_executors(self) -> list[RoomExecutor]:
        """The executors of the rooms running here now (for metrics at scrape time)."""
        return [held.executor for held in list(self._held.values())]

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl_s / 3)  # renew well before the lease expires
            for room_id, held in list(self._held.items()):
                if self._closing or self._held.get(room_id) is not held:
                    continue  # being released by aclose: renewing now would race the release
                try:
                    await self.backend.renew_lease(room_id, self.id, held.executor.epoch, self.lease_ttl_s)
                except StaleLeaseError:
                    self.metrics.leases_lost += 1
                    log.warning("worker %s lost the lease of room %s", self.id, room_id)
                    held.task.cancel()
                except BackendError:
                    self.metrics.engine_errors["renew"] += 1
                    log.warning("worker %s could not renew room %s; will retry", self.id, room_id)

    async def aclose(self) -> None:
        """Stop every room after its current batch commits, release leases, stop watching."""
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._presence is not None:
            self._presence.cancel()
        if self._unwatch is not None:
            self._unwatch()
        for task in list(self._starting.values()):
            task.cancel()
        for held in list(self._held.values()):
            held.executor.stop(held.task)
        tasks = [h.task for h in self._held.values()] + list(self._starting.values())
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for background in (self._sweeper, self._renewer, self._presence):
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
