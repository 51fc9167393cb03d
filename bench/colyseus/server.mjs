// Baseline: Colyseus (Node) with the benchmark's room broadcast logic.
//
// `move {x, y, ts}` updates the room's positions and is broadcast to every client of the room as
// `moved {p, x, y, ts}`; `echo` is sent back to its sender. No schema state: the positions live in
// a plain object, like the other servers' rooms, so nothing but messages goes on the wire.
//
// bench/sync_vs_colyseus.py uses two more rooms on one game state (players: id -> {x, y, score}):
// `sync_schema` keeps it in `@colyseus/schema` (a MapSchema of Player schemas), so Colyseus sends
// each change as a binary state patch at its patch rate (`--patch-rate MS`, default Colyseus's
// 50 ms); `sync_events` keeps it in a plain object and broadcasts a hand-written `moved {p, x, y}`.
// Usage: node server.mjs --host 127.0.0.1 --port PORT [--patch-rate MS]
import { Room, Server } from "@colyseus/core";
import { schema, t } from "@colyseus/schema";
import { WebSocketTransport } from "@colyseus/ws-transport";

class BenchRoom extends Room {
  maxClients = 1000;

  onCreate() {
    this.autoDispose = true;
    this.pos = {};
    this.onMessage("move", (client, msg) => {
      this.pos[client.sessionId] = [msg.x, msg.y];
      this.broadcast("moved", { p: client.sessionId, x: msg.x, y: msg.y, ts: msg.ts });
    });
    this.onMessage("echo", (client, msg) => {
      client.send("echo", msg);
    });
  }

  onLeave(client) {
    delete this.pos[client.sessionId];
  }
}

const SyncPlayer = schema({ x: t.number(), y: t.number(), score: t.number() }, "SyncPlayer");
const SyncState = schema({ players: t.map(SyncPlayer) }, "SyncState");

class SyncSchemaRoom extends Room {
  maxClients = 1000;

  onCreate() {
    this.autoDispose = true;
    this.patchRate = Number(arg("patch-rate", "50"));
    this.state = new SyncState();
    this.onMessage("move", (client, msg) => {
      const me = this.state.players.get(client.sessionId);
      me.x = msg.x;
      me.y = msg.y;
    });
  }

  onJoin(client) {
    this.state.players.set(client.sessionId, new SyncPlayer({ x: 0, y: 0, score: 0 }));
  }

  onLeave(client) {
    this.state.players.delete(client.sessionId);
  }
}

class SyncEventsRoom extends Room {
  maxClients = 1000;

  onCreate() {
    this.autoDispose = true;
    this.players = {};
    this.onMessage("move", (client, msg) => {
      const me = this.players[client.sessionId];
      me.x = msg.x;
      me.y = msg.y;
      this.broadcast("moved", { p: client.sessionId, x: msg.x, y: msg.y });
    });
  }

  onJoin(client) {
    this.players[client.sessionId] = { x: 0, y: 0, score: 0 };
  }

  onLeave(client) {
    delete this.players[client.sessionId];
  }
}

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const server = new Server({ transport: new WebSocketTransport({ maxPayload: 64 * 1024 }), greet: false });
server.define("bench", BenchRoom);
server.define("sync_schema", SyncSchemaRoom);
server.define("sync_events", SyncEventsRoom);
await server.listen(Number(arg("port", "2567")), arg("host", "127.0.0.1"));
console.log(`colyseus listening on ${arg("host", "127.0.0.1")}:${arg("port", "2567")}`);
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => process.exit(0));
}
