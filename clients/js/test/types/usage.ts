// Compile-only check of the published types, as a TypeScript game would use them (tsc, no run).
import { WebSocket } from "ws";
import { Client, RejectedError, type RoomEvent } from "roomwire-client";
const client = new Client("http://x", { WebSocket, codec: "msgpack", reconnect: { maxAttempts: 3 } });
async function main() {
  await client.loginGuest();
  const room = await client.joinOrCreate("arena", { options: { a: 1 } });
  room.on<{ x: number }>("moved", (data, ev: RoomEvent<{ x: number }>) => data.x + ev.seq);
  const off = room.onEvent((ev) => ev.type);
  off();
  try {
    await room.request("move", { x: 1 });
  } catch (e) {
    if (e instanceof RejectedError) e.code.toUpperCase();
  }
  client.onStatus((s) => s === "reconnecting");
}
void main();
