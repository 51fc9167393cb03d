"""Baseline: a bare `websockets` server with the benchmark's room broadcast logic and nothing else.

This is the cost floor of Python without a framework, written the way a careful developer would:
uvloop, msgspec for decoding and validation, each event encoded once and the same bytes written
to every client of the room (`websockets.broadcast`), no compression. It speaks the same JSON
shapes as roomwire's frames, so the load generator measures the same bytes:

    → {"t":"join","room":R}                                  ← {"t":"joined","room":R,"player":P,"seq":N}
    → {"t":"msg","room":R,"type":"move","data":{"x","y","ts"}}  ⇒ every client of R:
      {"t":"event","room":R,"seq":N,"type":"moved","data":{"p":P,"x","y","ts"}}
    → {"t":"msg","room":R,"type":"echo","data":D}
      ← {"t":"event","room":R,"seq":N,"type":"echo","data":D}

It keeps none of roomwire's promises (no journal, no commit, no resume, no auth): it is the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import resource
import signal

import msgspec
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed


class Join(msgspec.Struct, frozen=True, tag_field="t", tag="join"):
    """Enter a room by name."""

    room: str


class Msg(msgspec.Struct, frozen=True, tag_field="t", tag="msg"):
    """A game message; `data` stays raw until its type is known."""

    room: str
    type: str
    data: msgspec.Raw = msgspec.Raw(b"null")


class Move(msgspec.Struct, frozen=True):
    """The payload of a `move`."""

    x: float
    y: float
    ts: int


class Moved(msgspec.Struct, frozen=True):
    """The payload of a `moved` event."""

    p: str
    x: float
    y: float
    ts: int


class Joined(msgspec.Struct, frozen=True, tag_field="t", tag="joined"):
    """Answer to `join`."""

    room: str
    player: str
    seq: int


class Event(msgspec.Struct, frozen=True, tag_field="t", tag="event"):
    """A room event, shaped like roomwire's `event` frame."""

    room: str
    seq: int
    type: str
    data: Moved | msgspec.Raw


class Error(msgspec.Struct, frozen=True, tag_field="t", tag="error"):
    """A refused frame."""

    code: str
    message: str


class Room:
    """A room: its connections, the positions of its players and its event sequence."""

    __slots__ = ("clients", "name", "pos", "seq")

    def __init__(self, name: str) -> None:
        self.name = name
        self.clients: set[ServerConnection] = set()
        self.pos: dict[str, list[float]] = {}
        self.seq = 0


class BareServer:
    """The rooms of one server process."""

    def __init__(self) -> None:
        self.rooms: dict[str, Room] = {}
        self._ids = itertools.count(1)
        self._decode = msgspec.json.Decoder(Join | Msg).decode
        self._decode_move = msgspec.json.Decoder(Move).decode
        self._encode = msgspec.json.Encoder().encode

    async def handle(self, ws: ServerConnection) -> None:
        """Serve one connection until it closes."""
        player = f"p{next(self._ids)}"
        joined: dict[str, Room] = {}
        encode = self._encode
        try:
            while True:
                raw = await ws.recv(decode=False)
                try:
                    frame = self._decode(raw)
                    if isinstance(frame, Msg):
                        room = joined.get(frame.room)
                        if room is None:
                            await ws.send(encode(Error("not_joined", frame.room)), text=True)
                        elif frame.type == "move":
                            move = self._decode_move(frame.data)
                            room.pos[player] = [move.x, move.y]
                            room.seq += 1
                            moved = Moved(player, move.x, move.y, move.ts)
                            broadcast(
                                room.clients, encode(Event(room.name, room.seq, "moved", moved)), text=True
                            )
                        elif frame.type == "echo":
                            room.seq += 1
                            await ws.send(encode(Event(room.name, room.seq, "echo", frame.data)), text=True)
                        else:
                            await ws.send(encode(Error("unknown_type", frame.type)), text=True)
                    else:
                        room = self.rooms.get(frame.room)
                        if room is None:
                            room = self.rooms[frame.room] = Room(frame.room)
                        room.clients.add(ws)
                        joined[room.name] = room
                        await ws.send(encode(Joined(room.name, player, room.seq)), text=True)
                except msgspec.ValidationError as exc:
                    await ws.send(encode(Error("invalid_message", str(exc))), text=True)
                except msgspec.DecodeError as exc:
                    await ws.send(encode(Error("bad_frame", str(exc))), text=True)
        except ConnectionClosed:
            return
        finally:
            for room in joined.values():
                room.clients.discard(ws)
                room.pos.pop(player, None)
                if not room.clients:
                    self.rooms.pop(room.name, None)


async def main(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = BareServer()
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(server.handle, host, port, compression=None, max_size=64 * 1024, backlog=4096):
        print(f"bare_ws listening on {host}:{port}", flush=True)
        await stop


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
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(args.host, args.port))
    else:
        uvloop.run(main(args.host, args.port))
