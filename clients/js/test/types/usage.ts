// Compile-only check of the published types, as a TypeScript game would use them (tsc, no run).
import { WebSocket } from "ws";
import { Client, RejectedError, type Change, type MirrorStatus, type RoomEvent } from "roomwire-client";
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
  await room.whenSynced();
  const status: MirrorStatus = room.mirror.status;
  room.onChange(["players", "*"], (change: Change) => change.added || change.removed || change.path[1]);
  room.onAdd("players", (key, value) => [key, value]);
  room.onRemove("players", (key) => key);
  room.onPresence((player, presence) => presence === "left" && player.length);
  room.onHost((host) => host?.length);
  return [status, room.synced, room.presence, room.host];
}
void main();
