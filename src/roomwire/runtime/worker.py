"""Worker: claims rooms through leases, runs one executor per room, renews leases, drains on stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping

from roomwire.backends.base import Backend, Unsubscribe
from roomwire.errors import BackendError, RoomNotFoundError, StaleLeaseError
from roomwire.runtime.executor import RoomExecutor
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
    ) -> None:
        self.room_types = room_types
        self.backend = backend
        self.id = worker_id or f"w-{secrets.token_hex(4)}"
        self.lease_ttl_s = lease_ttl_s
        self.clock = clock
        self.code_version = code_version
        self._held: dict[str, _Held] = {}
        self._starting: dict[str, asyncio.Task[None]] = {}
        self._unwatch: Unsubscribe | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def room_ids(self) -> list[str]:
        """Rooms this worker currently runs."""
        return list(self._held)

    async def start(self) -> None:
        """Watch for input, resume rooms with pending work, and start renewing leases."""
        self._unwatch = self.backend.watch_inputs(self.wake)
        self._renewer = asyncio.create_task(self._renew_forever(), name=f"roomwire-renew-{self.id}")
        for record in await self.backend.list_rooms():
            self.wake(record.id)

    def wake(self, room_id: str) -> None:
        """Make sure the room runs here, unless it already does (called on each append)."""
        if self._closing or room_id in self._held or room_id in self._starting:
            return
        task = asyncio.create_task(self._claim(room_id), name=f"roomwire-claim-{room_id}")
        self._starting[room_id] = task

    async def _claim(self, room_id: str) -> None:
        try:
            epoch = await self.backend.acquire_lease(room_id, self.id, self.lease_ttl_s)
            if epoch is None:
                return  # another worker holds it
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
                self.backend, room_type, room_id, epoch, loaded, self.clock, self.code_version
            )
            task = asyncio.create_task(self._drive(executor), name=f"roomwire-room-{room_id}")
            self._held[room_id] = _Held(executor, task)
        except RoomNotFoundError:
            log.debug("room %s was removed before worker %s could claim it", room_id, self.id)
        except BackendError:
            log.exception("worker %s could not claim room %s", self.id, room_id)
        finally:
            self._starting.pop(room_id, None)

    async def _drive(self, executor: RoomExecutor) -> None:
        room_id = executor.room_id
        try:
            outcome = await executor.run()
        except Exception:
            log.exception("room %s: executor crashed", room_id)
            outcome = "crashed"
        finally:
            self._held.pop(room_id, None)
        if outcome in ("hibernated", "stopped", "crashed"):
            with contextlib.suppress(BackendError):
                await self.backend.release_lease(room_id, self.id, executor.epoch)
        if outcome == "hibernated" and not self._closing:
            # An input may have arrived between the idle check and the release: wake again if so.
            try:
                pending = await self.backend.read_inputs(room_id, executor.offset, 1, 0)
            except (BackendError, RoomNotFoundError):
                pending = []
            if pending:
                self.wake(room_id)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl_s / 3)  # renew well before the lease expires
            for room_id, held in list(self._held.items()):
                try:
                    await self.backend.renew_lease(room_id, self.id, held.executor.epoch, self.lease_ttl_s)
                except StaleLeaseError:
                    log.warning("worker %s lost the lease of room %s", self.id, room_id)
                    held.task.cancel()
                except BackendError:
                    log.warning("worker %s could not renew room %s; will retry", self.id, room_id)

    async def aclose(self) -> None:
        """Stop every room after its current batch commits, release leases, stop watching."""
        self._closing = True
        if self._unwatch is not None:
            self._unwatch()
        for task in list(self._starting.values()):
            task.cancel()
        for held in list(self._held.values()):
            held.executor.stop(held.task)
        tasks = [h.task for h in self._held.values()] + list(self._starting.values())
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
