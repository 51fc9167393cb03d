// The mirror against a real server: `roomwire run test/support/synced_app.py`, a synced room
// whose state four players scramble at random and at once (keys set and deleted, list elements
// inserted and removed anywhere), over JSON and MessagePack; one player's socket is cut mid-way
// and resumes. Then each player asks for the server's state (`dump`, to it alone): its mirror at
// that seq must be exactly that state, and the four mirrors equal to each other. And a relay
// room's host as the SDK tracks it.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { WebSocket } from "ws";

import { Client } from "../dist/index.js";
import { RoomwireServer, serverTestOptions } from "./support/server.mjs";

const PLAYERS = 4;
const MOVES = 60; // per player
const RECONNECT = { initialDelayMs: 20, maxDelayMs: 200 };

describe("a synced room scrambled by four players", serverTestOptions(), () => {
  let server;
  const clients = [];

  before(async () => {
    server = await RoomwireServer.start("clients/js/test/support/synced_app.py");
  });

  after(async () => {
    for (const client of clients) client.close();
    await server?.stop();
  });

  test("every mirror equals the server's state, also after a resume", async () => {
    const seed = Number(process.env.ROOMWIRE_PATCH_SEED ?? Date.now() % 100_000);
    const rooms = [];
    for (let i = 0; i < PLAYERS; i++) {
      const client = new Client(server.baseUrl, {
        WebSocket,
        codec: i % 2 ? "msgpack" : "json",
        reconnect: RECONNECT,
      });
      clients.push(client);
      await client.loginGuest(`p${i}`);
      rooms.push(i === 0 ? await client.create("box") : await client.join(rooms[0].id));
    }
    const dumps = rooms.map((room) => {
      // Checked when it arrives: the mirror then holds every patch before the dump's seq.
      return new Promise((resolve) =>
        room.on("dump", (state, event) => resolve({ state, mirror: structuredClone(room.synced), event })),
      );
    });
    const changes = rooms.map((room) => {
      const seen = { added: 0, removed: 0 };
      room.onChange(["list", "*"], (c) => {
        if (c.added) seen.added += 1;
        if (c.removed) seen.removed += 1;
      });
      return seen;
    });

    await Promise.all(
      rooms.map(async (room, i) => {
        for (let n = 0; n < MOVES; n++) {
          const sent = room.request("scramble", { seed: seed * 1000 + i * MOVES + n });
          if (i === 1 && n === MOVES / 2) clients[1].simulateDisconnect(); // resumes with since
          await sent;
        }
      }),
    );
    for (const room of rooms) await room.request("dump");
    const got = await Promise.all(dumps);
    for (const [i, { state, mirror }] of got.entries()) {
      assert.equal(rooms[i].mirror.status, "ready", `player ${i}'s mirror is current`);
      assert.deepEqual(mirror, state, `seed ${seed}: player ${i}'s mirror is the server's state at its dump`);
      assert.equal(Object.keys(state.players).length, PLAYERS);
      assert.ok(Object.values(state.players).every((p) => p.moves === MOVES));
    }
    const last = rooms.map((room) => room.synced);
    for (const mirror of last.slice(1)) assert.deepEqual(mirror, last[0]);
    assert.ok(
      changes.every((seen) => seen.added + seen.removed > 0),
      `list callbacks ran: ${JSON.stringify(changes)}`,
    );
  });

  test("a relay room's host is room.host, and @host events stay out of the game's events", async () => {
    const [a, b] = clients.slice(0, 2);
    const roomA = await a.create("chat");
    const roomB = await b.join(roomA.id);
    const hosts = [];
    roomB.onHost((host) => hosts.push(host));
    const types = [];
    let received = null;
    roomB.onEvent((event) => {
      types.push(event.type);
      received?.(event);
    });
    // The relayed message as an event (an ack can come before the events held after a join).
    const relayed = (data) =>
      new Promise((resolve) => {
        received = (event) => event.data.data === data && resolve();
        roomB.send("hi", data);
      });
    await relayed(1);
    assert.deepEqual([roomA.host, roomB.host], [roomA.player, roomA.player]);

    await roomA.leave(); // bob becomes host: a `@host` event, then bob's next message
    await relayed(2);
    assert.equal(roomB.host, roomB.player);
    assert.equal(hosts.at(-1), roomB.player);
    assert.deepEqual(types, ["hi", "hi"]);
    await roomB.leave();
  });
});
