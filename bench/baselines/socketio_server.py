"""Baseline: python-socketio rooms on uvicorn, with the benchmark's room broadcast logic.

What a Python developer picks today for realtime rooms: `socketio.AsyncServer` as an ASGI app on
uvicorn (uvloop, httptools), `enter_room` and `emit(..., room=...)`, default settings otherwise.
Events (Socket.IO packets over Engine.IO over WebSocket):

    join {"room": R}           → ack {"room": R, "player": sid, "seq": N}
    move {"x", "y", "ts"}      ⇒ every client of the room:
                               moved {"room": R, "seq": N, "data": {"p", "x", "y", "ts"}}
    echo D                     → ack D (Socket.IO's request/reply)
"""

from __future__ import annotations

import argparse
import resource
from typing import Any

import socketio
import uvicorn


class RoomState:
    """The positions of a room's players and its event sequence."""

    __slots__ = ("members", "pos", "seq")

    def __init__(self) -> None:
        self.pos: dict[str, list[float]] = {}
        self.seq = 0
        self.members = 0


def build_app() -> Any:
    """The ASGI app: one Socket.IO server with join, move and echo handlers."""
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
    rooms: dict[str, RoomState] = {}
    room_of: dict[str, str] = {}

    async def join(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        name = str(data["room"])
        await sio.enter_room(sid, name)
        state = rooms.get(name)
        if state is None:
            state = rooms[name] = RoomState()
        state.members += 1
        room_of[sid] = name
        return {"room": name, "player": sid, "seq": state.seq}

    async def move(sid: str, data: dict[str, Any]) -> None:
        name = room_of.get(sid)
        if name is None:
            return
        state = rooms[name]
        x, y, ts = float(data["x"]), float(data["y"]), int(data["ts"])
        state.pos[sid] = [x, y]
        state.seq += 1
        await sio.emit(
            "moved",
            {"room": name, "seq": state.seq, "data": {"p": sid, "x": x, "y": y, "ts": ts}},
            room=name,
        )

    async def echo(sid: str, data: Any) -> Any:
        return data

    async def disconnect(sid: str, *args: Any) -> None:
        name = room_of.pop(sid, None)
        if name is None:
            return
        state = rooms[name]
        state.pos.pop(sid, None)
        state.members -= 1
        if state.members <= 0:
            del rooms[name]

    # python-socketio's decorators are untyped: register the handlers explicitly.
    for handler in (join, move, echo, disconnect):
        sio.on(handler.__name__, handler=handler)
    return socketio.ASGIApp(sio)


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    _raise_fd_limit()
    uvicorn.run(
        build_app(),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        lifespan="off",
        backlog=4096,
    )
