"""A sleeping room's first join is answered although no worker heard its wake-up (issue #10 item 4).

Separate processes on Redis: the room hibernates, its worker stops, a player joins (the append
publishes a wake-up that nobody hears), then a new worker starts. Scheduling follows pending
input, so the new worker's first sweep claims the sleeping room: the join is answered, within the
gateway's join timeout (10 s), with the room's state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from distributed_kit import WAIT_S, Deployment, opened_backend, wait_status

from roomwire.cli.status import Status
from roomwire_client import Client


async def test_a_sleeping_room_wakes_for_a_join_made_while_no_worker_ran(
    deploy: Callable[..., Deployment], redis_url: str
) -> None:
    deployment = deploy(redis_url)
    (gateway,), (w1,) = await deployment.start(gateways=1, workers=1)
    async with (
        opened_backend(deployment.backend_url) as backend,
        Client(gateway) as alice,
        Client(gateway) as bob,
    ):
        for client in (alice, bob):
            await client.login_guest()
        sleepy = await alice.create("sleepy")
        await sleepy.request("add", {"c": "alice", "k": 1})
        await sleepy.leave()

        def hibernating(s: Status) -> bool:
            return any(r.id == sleepy.id and r.state == "hibernating" for r in s.rooms)

        await wait_status(backend, hibernating, "the sleepy room hibernating")
        await asyncio.to_thread(w1.stop)  # no worker listens for wake-ups now

        loaded = await backend.load(sleepy.id)
        assert loaded is not None
        joining = asyncio.create_task(bob.join(sleepy.id))
        # The join is in the room's inbound log: its wake-up went out to nobody.
        async with asyncio.timeout(WAIT_S):
            assert await backend.read_inputs(sleepy.id, loaded.inbound_offset, 1, WAIT_S)
        appended_at = time.monotonic()

        w2 = deployment.worker("w2")
        await asyncio.to_thread(w2.wait_for_line, "worker w2 running")
        started_s = time.monotonic() - appended_at
        async with asyncio.timeout(WAIT_S):
            again = await joining
        answered_s = time.monotonic() - appended_at
        await again.request("add", {"c": "bob", "k": 1})
        event = await again.next_event("added")
    print(
        f"\njoin appended with no worker running; w2 up {started_s:.2f} s later, joined at {answered_s:.2f} s"
    )
    assert event.data == {"n": 2, "c": "bob", "k": 1}  # woke from its last commit
