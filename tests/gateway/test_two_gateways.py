"""Two gateways on one Redis namespace, in this process: a player who joins again through the other
gateway replaces the first connection, and a late disconnect of that one does not disconnect the player."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from gateway_harness import Server, make_app, serving

from roomwire.backends.records import DisconnectInput
from roomwire.backends.redis import RedisBackend
from roomwire.runtime.snapshot import decode_snapshot
from roomwire.testing import serve_app

URL = "redis://127.0.0.1:6379/0"
SECRET = "two-gateways-of-one-deployment-share-this-secret"


@pytest.fixture
async def two_gateways(
    require_engine: Callable[[str, str, int], None],
) -> AsyncIterator[tuple[Server, Server, RedisBackend]]:
    """Gateways g1 (with the worker) and g2 on a fresh namespace, and a backend to look with."""
    require_engine("redis", "127.0.0.1", 6379)
    namespace = f"t-{uuid.uuid4().hex[:12]}"
    looker = RedisBackend(URL, namespace)
    await looker.open()
    try:
        async with contextlib.AsyncExitStack() as stack:
            servers = []
            for run_worker in (True, False):
                app = make_app()
                app.use_secret(SECRET)  # g2 must accept seats that g1's lobby signed
                url = await stack.enter_async_context(
                    serve_app(app, RedisBackend(URL, namespace), run_worker=run_worker)
                )
                servers.append(await stack.enter_async_context(serving(url, app)))
            yield servers[0], servers[1], looker
    finally:
        await looker.drop_all()
        await looker.aclose()


async def test_joining_again_through_another_gateway_replaces_the_first_connection(
    two_gateways: tuple[Server, Server, RedisBackend],
) -> None:
    g1, g2, looker = two_gateways
    seat = await g1.seat(create=True)
    first = await g1.connect()
    joined = await first.join(seat)
    assert joined["t"] == "joined"

    loaded = await looker.load(seat.room)
    assert loaded is not None
    old_session = decode_snapshot(loaded.snapshot).players[seat.player].session
    gateway = g1.app.gateway
    assert gateway is not None and old_session.startswith(gateway.id + ".")  # the join names g1

    second = await g2.connect()
    assert (await second.join(joined["rejoin"], room=seat.room))["t"] == "joined"

    # g1 learns of the join from the room's commit and lets the old connection go.
    left = await first.recv_until("left", room=seat.room)
    assert left["reason"] == "replaced"

    # g1's own disconnect of that connection may still reach the room after the new join (a
    # socket g1 found dead only now): the room must not count it.
    await looker.append_input(seat.room, DisconnectInput(seat.player, time.time(), old_session))
    msg_id = await second.msg(seat.room, "move", {"n": 1})
    await second.recv_until("ack", id=msg_id)  # the disconnect was appended before: applied by now
    loaded = await looker.load(seat.room)
    assert loaded is not None
    assert decode_snapshot(loaded.snapshot).players[seat.player].connected
