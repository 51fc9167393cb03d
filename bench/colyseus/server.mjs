// Baseline: Colyseus (Node) with the benchmark's room broadcast logic.
//
// `move {x, y, ts}` updates the room's positions and is broadcast to every client of the room as
// `moved {p, x, y, ts}`; `echo` is sent back to its sender. No schema state: the positions live in
// a plain object, like the other servers' rooms, so nothing but messages goes on the wire.
// Usage: node server.mjs --host 127.0.0.1 --port PORT
import { Room, Server } from "@colyseus/core";
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

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const server = new Server({ transport: new WebSocketTransport({ maxPayload: 64 * 1024 }), greet: false });
server.define("bench", BenchRoom);
await server.listen(Number(arg("port", "2567")), arg("host", "127.0.0.1"));
console.log(`colyseus listening on ${arg("host", "127.0.0.1")}:${arg("port", "2567")}`);
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => process.exit(0));
}
