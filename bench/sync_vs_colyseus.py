"""Synced state against hand-written events and against Colyseus's schema sync: bytes and CPU.

    python3 bench/sync_vs_colyseus.py                 # 3 rounds, about 2 minutes
    python3 bench/sync_vs_colyseus.py --rounds 1 --moves 100 --rooms 2   # smoke run

One game state everywhere: N players in a room, each {x, y, score}; each `move {x, y}` changes
the sender's x and y. Variants (bench/apps/sync_app.py, bench/colyseus/server.mjs):

- roomwire `events`: the handler broadcasts a hand-written `moved {p, x, y}` (the baseline);
- roomwire `synced`: `sync=True`, the handler only writes room.state, roomwire sends `@patch`;
  both on the JSON and on the msgpack subprotocol;
- Colyseus `sync_events`: `this.broadcast("moved", {p, x, y})`, no schema state;
- Colyseus `sync_schema`: a MapSchema of Player schemas, sent as binary state patches at its
  patch rate (`--patch-rate`, default Colyseus's 50 ms), and once more at a 10 ms patch rate.

K rooms x N clients in lockstep: in each room one move is in flight at a time, and the next is
sent when every client of the room has received the update of the last one (rooms run side by
side). So every update carries exactly one move, whatever the server's batching or patch rate.
Figures: WebSocket payload bytes received per delivery (one update arriving at one client; every
frame received in the window counts) and the server process tree's CPU per 1,000 deliveries
(bench/procstat.py via loadgen.CpuWindow), servers and client pinned as bench/run.py pins them.
Each round runs every variant once, in turns, every other round in reverse; the table keeps each
variant's best CPU figure (a neighbour on a shared host only ever makes a run look worse) and
prints ratios to roomwire's hand-written events on JSON measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shlex
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import run

# A stuck server or client fails one run, not the whole benchmark.
DRIVE_TIMEOUT_S = 180.0
LOCKSTEP_TIMEOUT_S = 10.0
SYNC_APP = run.BENCH / "apps" / "sync_app.py"
# variant → (server kind, room type, codec, label)
VARIANTS: dict[str, tuple[str, str, str, str]] = {
    "rw-events-json": ("roomwire", "events", "json", "roomwire, events by hand (JSON)"),
    "rw-sync-json": ("roomwire", "synced", "json", "roomwire, synced state (JSON)"),
    "rw-events-msgpack": ("roomwire", "events", "msgpack", "roomwire, events by hand (msgpack)"),
    "rw-sync-msgpack": ("roomwire", "synced", "msgpack", "roomwire, synced state (msgpack)"),
    "colyseus-events": ("colyseus", "sync_events", "", "Colyseus, events by hand"),
    "colyseus-schema": ("colyseus", "sync_schema", "", "Colyseus, schema state"),
    "colyseus-schema-10ms": ("colyseus", "sync_schema", "", "Colyseus, schema state, 10 ms patch rate"),
}
# Variants that run Colyseus at another patch rate than --patch-rate: in lockstep, time-based
# costs (its patch timer, the runtime's idle work) are spread over more deliveries at a faster rate.
PATCH_RATE_MS = {"colyseus-schema-10ms": 10}
BASELINE = "rw-events-json"


def position(i: int) -> dict[str, float]:
    """The i-th move's position: coordinates with one decimal, as a game's usually are.

    Not exact in float32, so Colyseus's `number` fields go as float64, as they would in a game.
    """
    return {"x": (i % 1000) + 0.3, "y": (i % 500) + 0.7}


# --- the client side (run in the benchmark's venv, pinned to the load generator's CPU) ---------


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    """Open the rooms, run warm-up and measured moves in lockstep; the window's figures."""
    import msgspec
    from adapters import ColyseusAdapter, RoomwireAdapter, Stats, _reject, _resolve
    from loadgen import CpuWindow
    from wsclient import WsClient

    window = {"on": False, "bytes": 0, "frames": 0, "deliveries": 0, "other": 0}
    rooms: dict[str, dict[str, Any]] = {}

    def delivered(room_id: str) -> None:
        room = rooms.get(room_id)
        if room is None:  # a join's patch before the room's bookkeeping began: not a move's
            return
        room["got"] += 1
        if window["on"]:
            window["deliveries"] += 1
        if room["got"] >= room["expected"]:
            room["done"].set()

    class _Head(msgspec.Struct):
        t: str
        room: str | None = None
        type: str | None = None

    class Roomwire(RoomwireAdapter):
        """Counts `moved` or `@patch` events as deliveries, and every payload byte."""

        def __init__(self, *a: Any, update: str, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.update = update
            self._head = (msgspec.msgpack if self.binary else msgspec.json).Decoder(_Head).decode

        def on_message(self, ws: WsClient, payload: bytes, opcode: int, now_ns: int) -> None:
            if window["on"]:
                window["bytes"] += len(payload)
                window["frames"] += 1
            head = self._head(payload)
            if head.t == "event":
                if head.type == self.update and head.room is not None:
                    delivered(head.room)
                elif window["on"]:
                    window["other"] += 1
                return
            super().on_message(ws, payload, opcode, now_ns)

    class Colyseus(ColyseusAdapter):
        """Counts state patches (code 15) or `moved` room messages as deliveries."""

        def __init__(self, *a: Any, room_name: str, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.room_name = room_name
            self._move_type = b"\x0d" + self._encode("move")

        def on_message(self, ws: WsClient, payload: bytes, opcode: int, now_ns: int) -> None:
            client = ws.user
            if window["on"]:
                window["bytes"] += len(payload)
                window["frames"] += 1
            code = payload[0] if payload else -1
            if code == 15 or (code == 13 and payload[2:7] == b"moved"):
                delivered(client.room)  # type: ignore[attr-defined]
            elif code == 10:
                ws.send_binary(b"\x0a")  # confirms the join: the server starts sending
                _resolve(client, "joined")  # type: ignore[arg-type]
            elif code == 11:
                text = payload[1:].decode(errors="replace")
                self.stats.note_error(text)
                _reject(client, RuntimeError(text))  # type: ignore[arg-type]
            elif window["on"]:
                window["other"] += 1

        async def open_room(self, index: int, size: int) -> list[Any]:
            async with self.connect_slots:
                created = await self.lobby.post(f"/matchmake/create/{self.room_name}", {})
            room_id = str(created["roomId"])
            first = self._open(room_id, size, created)
            rest = (self._open(room_id, size, None) for _ in range(size - 1))
            return list(await asyncio.gather(first, *rest))

        def send_move(self, client: Any, x: int, ts_ns: int) -> None:
            client.ws.send_binary(self._move_type + self._encode(position(x)))

    stats = Stats()
    adapter: Any
    if args.server == "roomwire":
        update = "@patch" if args.room_type == "synced" else "moved"
        adapter = Roomwire(
            args.host, args.port, stats, codec=args.codec, room_type=args.room_type, update=update
        )
    else:
        adapter = Colyseus(args.host, args.port, stats, room_name=args.room_type)
    encode = adapter._encode if args.server == "roomwire" else None

    def send(client: Any, i: int) -> None:
        if encode is None:
            adapter.send_move(client, i, 0)
            return
        frame = {"t": "msg", "room": client.room, "type": "move", "data": position(i)}
        if adapter.binary:
            client.ws.send_binary(encode(frame))
        else:
            client.ws.send_text(encode(frame))
        client.ws.last_sent_ns = time.monotonic_ns()

    try:
        opened = [await adapter.open_room(i, args.clients) for i in range(args.rooms)]
        await adapter.start()
        for clients in opened:
            rooms[clients[0].room] = {"got": 0, "expected": 0, "done": asyncio.Event()}
        await asyncio.sleep(0.5)  # joins' own state, presence and patch frames arrive before any move

        async def lockstep(clients: list[Any], first: int, count: int) -> None:
            room = rooms[clients[0].room]
            for i in range(first, first + count):
                room["expected"] += len(clients)
                room["done"] = asyncio.Event()
                send(clients[i % len(clients)], i)
                await asyncio.wait_for(room["done"].wait(), LOCKSTEP_TIMEOUT_S)

        for room in rooms.values():
            room["got"] = room["expected"] = 0
        await asyncio.gather(*(lockstep(c, 0, args.warmup_moves) for c in opened))
        gc.collect()
        gc.freeze()
        window["on"] = True
        cpu_window = CpuWindow(args.server_pid)
        await asyncio.gather(*(lockstep(c, args.warmup_moves, args.moves) for c in opened))
        cpu = cpu_window.stop()
        window["on"] = False
    finally:
        await adapter.aclose()
    deliveries = int(window["deliveries"])
    updates = args.moves * args.rooms
    return {
        "rooms": args.rooms,
        "clients_per_room": args.clients,
        "updates": updates,
        "deliveries": deliveries,
        "expected_deliveries": updates * args.clients,
        "bytes": window["bytes"],
        "frames": window["frames"],
        "other_frames": window["other"],
        "bytes_per_delivery": window["bytes"] / deliveries if deliveries else float("nan"),
        "server_cpu_ms_per_1k": cpu["server_cpu_s"] / deliveries * 1e6 if deliveries else float("nan"),
        "updates_per_s": round(updates / cpu["duration_s"], 1),
        "server_errors": stats.errors,
        "error_samples": stats.error_samples,
        **cpu,
    }


# --- the orchestrator ----------------------------------------------------------------------------


def measure(
    variant: str, args: argparse.Namespace, python: Path, run_dir: Path, round_: int
) -> dict[str, Any]:
    """One fresh server and one drive of it; the client's figures, or {"error": ...}."""
    server, room_type, codec, _ = VARIANTS[variant]
    port = run.free_port()
    if server == "roomwire":
        argv = shlex.split(run.DEFAULT_ROOMWIRE_CMD.format(app=SYNC_APP, host=run.HOST, port=port))
    else:
        argv = [
            *run.server_command("colyseus", python, "", port),
            "--patch-rate",
            str(PATCH_RATE_MS.get(variant, args.patch_rate)),
        ]
    server_pin, client_pin, _ = run.pinning()
    out = run_dir / f"{variant}-{round_}.json"
    client = [
        *client_pin,
        str(python),
        str(Path(__file__).resolve()),
        "drive",
        *("--server", server, "--room-type", room_type, "--codec", codec or "json"),
        *("--host", run.HOST, "--port", str(port), "--out", str(out)),
        *("--rooms", str(args.rooms), "--clients", str(args.clients)),
        *("--moves", str(args.moves), "--warmup-moves", str(args.warmup_moves)),
    ]
    run.wait_for_quiet(args.quiet_wait_s)
    try:
        with run.running_server(argv, server_pin, port, run_dir / f"{variant}-{round_}.log") as pid:
            status, tail = run._run_streaming([*client, "--server-pid", str(pid)], DRIVE_TIMEOUT_S)
    except RuntimeError as exc:
        return {"error": str(exc)}
    if status != 0:
        return {"error": f"client exited with {status}: {tail}"}
    try:
        figures: dict[str, Any] = json.loads(out.read_text())
    except (OSError, ValueError) as exc:
        return {"error": f"no figures from the client: {exc}"}
    if figures["deliveries"] != figures["expected_deliveries"] or figures["server_errors"]:
        return {
            "error": f"deliveries {figures['deliveries']}/{figures['expected_deliveries']}, "
            f"server errors {figures['error_samples']}"
        }
    return figures


def table(runs: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown: bytes per delivery and best/median CPU per 1,000 deliveries, with ratios to the baseline."""
    done = {v: [r for r in rs if "error" not in r] for v, rs in runs.items()}
    best: dict[str, dict[str, Any]] = {
        v: min(rs, key=lambda r: r["server_cpu_ms_per_1k"]) for v, rs in done.items() if rs
    }
    median_cpu = {v: statistics.median(r["server_cpu_ms_per_1k"] for r in rs) for v, rs in done.items() if rs}
    base = best.get(BASELINE)
    lines = [
        "| variant | bytes / delivery | ÷ baseline | best server CPU ms / 1,000 deliveries | ÷ baseline "
        "| median CPU | runs (CPU) | other CPU % (best run) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, (_, _, _, label) in VARIANTS.items():
        if variant not in runs:
            continue
        if variant not in best:
            lines.append(f"| {label} | failed | | | | | 0 | |")
            continue
        b = best[variant]
        byte_ratio = cpu_ratio = ""
        if base is not None:
            byte_ratio = f"{b['bytes_per_delivery'] / base['bytes_per_delivery']:.2f}"
            # A run too short for the kernel's CPU clock (10 ms ticks) may read 0 s: no ratio then.
            if base["server_cpu_ms_per_1k"] > 0:
                cpu_ratio = f"{b['server_cpu_ms_per_1k'] / base['server_cpu_ms_per_1k']:.2f}"
        spread = ", ".join(
            f"{r['server_cpu_ms_per_1k']:.1f}"
            for r in sorted(done[variant], key=lambda r: r["server_cpu_ms_per_1k"])
        )
        lines.append(
            f"| {label} | {b['bytes_per_delivery']:.1f} | {byte_ratio} | {b['server_cpu_ms_per_1k']:.2f} "
            f"| {cpu_ratio} | {median_cpu[variant]:.2f} | {spread} | {b['other_cpu_pct']:.0f} |"
        )
    return "\n".join(lines)


def orchestrate(args: argparse.Namespace) -> int:
    """Run the rounds and print the table; exit status 1 when a variant never completed a run."""
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or args.rounds < 1 or args.moves < 1:
        print(f"unknown variants {unknown} (know {list(VARIANTS)}), or rounds/moves < 1", file=sys.stderr)
        return 2
    python = run.ensure_venv(args.venv)
    if any(VARIANTS[v][0] == "colyseus" for v in variants):
        why = run.ensure_colyseus()
        if why:
            print(f"Colyseus skipped: {why}", file=sys.stderr)
            variants = [v for v in variants if VARIANTS[v][0] != "colyseus"]
    run.raise_fd_limit()
    run_dir = run.RESULTS / f"sync-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    record = {"args": vars(args) | {"venv": str(args.venv)}, "machine": run.machine(), "runs": runs}
    for round_ in range(args.rounds):
        order = variants if round_ % 2 == 0 else list(reversed(variants))
        for variant in order:
            print(f"- round {round_ + 1}/{args.rounds}: {variant} ...", file=sys.stderr, flush=True)
            figures = measure(variant, args, python, run_dir, round_)
            if "error" in figures:
                print(f"    {figures['error']}", file=sys.stderr)
            runs[variant].append(figures)
            (run_dir / "runs.json").write_text(json.dumps(record, indent=2))  # kept if stopped
    print(
        f"{args.rooms} rooms x {args.clients} clients in lockstep, {args.moves:,} moves per room per run "
        f"({args.moves * args.rooms * args.clients:,} deliveries), {args.rounds} rounds in turns; "
        f"Colyseus patch rate {args.patch_rate} ms; JSON: {run_dir.relative_to(run.PROJECT)}/runs.json\n"
    )
    print(table(runs))
    return 0 if all(any("error" not in r for r in rs) for rs in runs.values()) else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line: the orchestrator, or (`drive`) the client side of one run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", nargs="?", choices=["orchestrate", "drive"], default="orchestrate")
    p.add_argument("--rounds", type=int, default=3, help="every variant once per round")
    p.add_argument("--rooms", type=int, default=20)
    p.add_argument("--clients", type=int, default=10, help="clients (players) per room")
    p.add_argument("--moves", type=int, default=200, help="measured moves per room per run")
    p.add_argument("--warmup-moves", type=int, default=20)
    p.add_argument(
        "--patch-rate", type=int, default=50, help="Colyseus patch interval in ms (its default: 50)"
    )
    p.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated, of " + ", ".join(VARIANTS)
    )
    p.add_argument("--quiet-wait-s", type=float, default=20.0, help="wait this long for a quiet machine")
    p.add_argument("--venv", type=Path, default=run.DEFAULT_VENV, help="the benchmark's own venv")
    # drive only
    p.add_argument("--server", choices=["roomwire", "colyseus"])
    p.add_argument("--room-type")
    p.add_argument("--codec", choices=["json", "msgpack"], default="json")
    p.add_argument("--host", default=run.HOST)
    p.add_argument("--port", type=int)
    p.add_argument("--server-pid", type=int)
    p.add_argument("--out")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Orchestrate, or drive one run and write its figures to --out."""
    args = parse_args(argv)
    if args.mode == "orchestrate":
        return orchestrate(args)
    import uvloop

    figures = uvloop.run(drive(args))
    Path(args.out).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the servers are stopped.
    signal.signal(signal.SIGTERM, run._interrupt)
    sys.exit(main())
