"""A hung handler whose worker is killed mid-step: the next owner runs it again, bounded the same way.

Separate processes on Redis. The `hang` input awaits forever; its worker is SIGKILLed while the
step hangs (nothing committed), so the input is still pending. The next worker takes the room
over, runs the input again, and the step deadline (1 s for this room type) ends it there too:
the client gets `reject step_timeout`, not silence, and the room goes on from its last commit
(the hung step's state change never happened). The input is not poison for the room.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from distributed_kit import REQUEST_TIMEOUT_S, Deployment

from roomwire_client import Client
from roomwire_client.errors import InternalServerError


async def test_a_hung_step_killed_with_its_worker_times_out_on_the_next_owner(
    deploy: Callable[..., Deployment], redis_url: str
) -> None:
    deployment = deploy(redis_url)
    (gateway,), (w1,) = await deployment.start(gateways=1, workers=1)
    async with Client(gateway) as alice:
        await alice.login_guest()
        room = await alice.create("hung")
        await room.request("add", {"c": "alice", "k": 1})
        hanging = asyncio.create_task(room.request("hang", None, timeout=REQUEST_TIMEOUT_S))
        await asyncio.to_thread(w1.wait_for_line, "hang handler running")
        w1.kill()
        w2 = deployment.worker("w2")
        await asyncio.to_thread(w2.wait_for_line, "hang handler running")  # run again
        with pytest.raises(InternalServerError) as refused:
            await hanging
        assert refused.value.code == "step_timeout" and refused.value.ref, refused.value
        await room.request("add", {"c": "alice", "k": 2}, timeout=REQUEST_TIMEOUT_S)
        event = await room.next_event("added")
        while event.data["k"] != 2:
            event = await room.next_event("added")
        assert event.data["n"] == 2  # the hung step's +1000 never happened, on either worker
