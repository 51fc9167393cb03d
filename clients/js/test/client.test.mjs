// The client's protocol obligations, checked frame by frame against a scripted peer (no server):
// handshake, join, ids and acks, de-dup, resume with resend after a lost socket, close codes.

import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";

import { WebSocket } from "ws";

import {
  Client,
  ConnectionError,
  HistoryGoneError,
  MessageTooLargeError,
  NotJoinedError,
  RejectedError,
  RoomFullError,
  UnauthorizedError,
  ValidationError,
} from "../dist/index.js";
import { Collector, ScriptedServer, waitFor } from "./support/scripted-server.mjs";

const SEAT = { room: "r1", type: "arena", player: "p1", seat: "seat-1", ws: "/ws" };
const FAST_RECONNECT = { initialDelayMs: 5, maxDelayMs: 50 };

let server;
const clients = [];

before(async () => {
  server = await ScriptedServer.start();
});
after(async () => {
  await server.stop();
});
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

function newClient(options = {}) {
  const client = new Client(server.baseUrl, { WebSocket, reconnect: FAST_RECONNECT, ...options });
  clients.push(client);
  return client;
}

/** A client joined to room r1 through the scripted peer, at seq `seq`. */
async function joined({ codec = "json", seq = 0, last_id = 0, welcome = {}, clientOptions = {} } = {}) {
  const client = newClient({ codec, ...clientOptions });
  const statuses = new Collector();
  client.onStatus(statuses.push);
  const joining = client.joinSeat(SEAT);
  const peer = await server.nextPeer();
  const hello = await peer.handshake(welcome);
  const join = await peer.next();
  peer.send({ t: "joined", room: "r1", player: "p1", seq, last_id, rejoin: "rejoin-1" });
  const room = await joining;
  return { client, room, peer, hello, join, statuses };
}

describe("client against a scripted peer", () => {
  test("handshake and join: hello v1, then join with the seat; the room resolves on joined", async () => {
    const { client, room, hello, join, statuses } = await joined({ seq: 12, last_id: 4 });
    assert.equal(hello.t, "hello");
    assert.equal(hello.v, 1);
    assert.match(hello.client, /roomwire-client/);
    assert.deepEqual(join, { t: "join", room: "r1", seat: "seat-1" });
    assert.equal(room.id, "r1");
    assert.equal(room.player, "p1");
    assert.equal(room.type, "arena");
    assert.equal(room.status, "joined");
    assert.equal(room.lastSeq, 12);
    assert.equal(room.rejoinToken, "rejoin-1");
    assert.equal(client.status, "connected");
    assert.deepEqual(statuses.items, ["connecting", "connected"]);
  });

  for (const codec of ["json", "msgpack"]) {
    test(`events reach listeners by type, once each, in seq order (${codec})`, async () => {
      const { room, peer } = await joined({ codec });
      const all = new Collector();
      const moves = new Collector();
      room.onEvent(all.push);
      room.on("moved", (data, event) => moves.push([data, event.seq]));
      // Sent before the test's listeners could run if delivery were not held for one task.
      for (const seq of [1, 2, 2, 1, 4, 3, 5]) {
        peer.send({ t: "event", room: "r1", seq, type: seq % 2 ? "moved" : "tick", data: { seq } });
      }
      peer.send({ t: "event", room: "other", seq: 6, type: "moved", data: {} });
      await all.until("event 5", (items) => items.some((e) => e.seq === 5));
      assert.deepEqual(
        all.items.map((e) => e.seq),
        [1, 2, 4, 5],
      );
      assert.deepEqual(moves.items, [
        [{ seq: 1 }, 1],
        [{ seq: 5 }, 5],
      ]);
      assert.equal(room.lastSeq, 5);
    });
  }

  test("send and request use ids 1, 2, 3...; ack resolves, reject rejects with the typed error", async () => {
    const { room, peer } = await joined({ codec: "msgpack", last_id: 0 });
    const errors = new Collector();
    room.onError(errors.push);
    assert.equal(room.send("move", { x: 1 }), 1);
    const second = room.request("move", { x: 2 });
    const third = room.request("shout", "x".repeat(3));
    const fourth = room.request("move", { x: "nan" });
    room.send("move", { x: 5 });
    const sent = [];
    for (let i = 0; i < 5; i++) sent.push(await peer.next());
    assert.deepEqual(
      sent.map((f) => [f.t, f.id, f.type]),
      [
        ["msg", 1, "move"],
        ["msg", 2, "move"],
        ["msg", 3, "shout"],
        ["msg", 4, "move"],
        ["msg", 5, "move"],
      ],
    );
    assert.deepEqual(sent[0].data, { x: 1 });
    assert.equal(room.pendingCount, 5);
    peer.send({ t: "ack", room: "r1", id: 1 });
    peer.send({ t: "ack", room: "r1", id: 2, dup: true });
    peer.send({ t: "reject", room: "r1", id: 3, code: "rejected", message: "too loud", ref: "L1" });
    peer.send({ t: "reject", room: "r1", id: 4, code: "invalid_message", message: "x must be a number" });
    peer.send({ t: "reject", room: "r1", id: 5, code: "rejected", message: "wall" });
    assert.deepEqual(await second, { id: 2, dup: true });
    await assert.rejects(
      third,
      (err) => err instanceof RejectedError && err.id === 3 && err.ref === "L1" && err.room === "r1",
    );
    await assert.rejects(fourth, ValidationError);
    await errors.until("the fire-and-forget reject", (items) => items.length === 1);
    assert.ok(errors.items[0] instanceof RejectedError);
    assert.equal(errors.items[0].id, 5);
    assert.equal(room.pendingCount, 0);
  });

  test("a message over the server's frame limit is refused before sending", async () => {
    const { room, peer } = await joined({ welcome: { max_frame_bytes: 200 } });
    assert.throws(() => room.send("big", "x".repeat(300)), MessageTooLargeError);
    await assert.rejects(room.request("big", "x".repeat(300)), MessageTooLargeError);
    assert.equal(room.send("small", "ok"), 1, "a refused message does not use up an id");
    assert.equal((await peer.next()).id, 1);
  });

  test("a lost socket resumes: rejoin with since, every pending message resent with its id", async () => {
    const { client, room, peer, statuses } = await joined();
    const events = new Collector();
    room.onEvent((e) => events.push(e.seq));
    for (const seq of [1, 2, 3]) peer.send({ t: "event", room: "r1", seq, type: "tick" });
    await events.until("3 events", (items) => items.length === 3);
    const acked = room.request("a", 1); // id 1, answered before the drop
    const applied = room.request("b", 2); // id 2, applied but its ack is lost
    const lost = room.request("c", 3); // id 3, never reached the room
    for (let i = 0; i < 3; i++) await peer.next();
    peer.send({ t: "ack", room: "r1", id: 1 });
    assert.deepEqual(await acked, { id: 1, dup: false });

    peer.terminate();
    await statuses.until("reconnecting", (items) => items.includes("reconnecting"));
    const queued = room.request("d", 4); // sent while offline: waits for the rejoin
    assert.equal(room.status, "joining");

    const peer2 = await server.nextPeer();
    await peer2.handshake();
    assert.deepEqual(await peer2.next(), { t: "join", room: "r1", seat: "rejoin-1", since: 3 });
    peer2.send({ t: "joined", room: "r1", player: "p1", seq: 5, last_id: 2, rejoin: "rejoin-2", resumed: true });
    // Id 2 too (<= last_id): the room may have skipped it; it answers `dup` if it consumed it.
    const resent = [await peer2.next(), await peer2.next(), await peer2.next()];
    assert.deepEqual(
      resent.map((f) => [f.id, f.type, f.data]),
      [
        [2, "b", 2],
        [3, "c", 3],
        [4, "d", 4],
      ],
    );
    peer2.send({ t: "ack", room: "r1", id: 2, dup: true });
    assert.deepEqual(await applied, { id: 2, dup: true });
    // The replay overlaps what was seen; live events follow it without a gap.
    for (const seq of [3, 4, 5, 6]) peer2.send({ t: "event", room: "r1", seq, type: "tick" });
    peer2.send({ t: "ack", room: "r1", id: 3 });
    peer2.send({ t: "ack", room: "r1", id: 4 });
    assert.deepEqual(await lost, { id: 3, dup: false });
    assert.deepEqual(await queued, { id: 4, dup: false });
    await events.until("event 6", (items) => items.includes(6));
    assert.deepEqual(events.items, [1, 2, 3, 4, 5, 6]);
    assert.equal(room.rejoinToken, "rejoin-2");
    assert.equal(room.status, "joined");
    assert.equal(client.status, "connected");
    assert.deepEqual(statuses.items, ["connecting", "connected", "reconnecting", "connected"]);
    assert.equal(room.send("e", 5), 5, "ids continue after the resent ones");
  });

  for (const code of [1001, 4002, 4003]) {
    test(`close code ${code} reconnects and resumes`, async () => {
      const { room, peer } = await joined({ seq: 9 });
      const roomStatuses = new Collector();
      room.onStatus(roomStatuses.push);
      peer.close(code, "bye");
      const peer2 = await server.nextPeer();
      await peer2.handshake();
      assert.deepEqual(await peer2.next(), { t: "join", room: "r1", seat: "rejoin-1", since: 9 });
      peer2.send({ t: "joined", room: "r1", player: "p1", seq: 9, last_id: 0, rejoin: "rejoin-2", resumed: true });
      await roomStatuses.until("joined again", (items) => items.at(-1) === "joined");
      assert.deepEqual(roomStatuses.items, ["joining", "joined"]);
      assert.equal(room.status, "joined");
    });
  }

  for (const [code, errorClass] of [
    [4001, UnauthorizedError],
    [4000, Error],
    [4004, Error],
  ]) {
    test(`close code ${code} is final: no reconnect, the room fails with a typed error`, async () => {
      const { client, room, peer, statuses } = await joined();
      const leaves = new Collector();
      const clientErrors = new Collector();
      room.onLeave(leaves.push);
      client.onError(clientErrors.push);
      const pending = room.request("x", 1);
      await peer.next();
      peer.close(code, "go away");
      await assert.rejects(pending, errorClass);
      const [info] = await leaves.until("the room to end", (items) => items.length === 1);
      assert.equal(info.reason, "failed");
      assert.equal(info.error.closeCode, code);
      assert.ok(info.error instanceof errorClass);
      assert.equal(client.status, "closed");
      assert.equal(statuses.items.at(-1), "closed");
      assert.equal(clientErrors.items.length, 1);
      assert.throws(() => room.send("x", 1), NotJoinedError);
      await assert.rejects(client.joinSeat(SEAT), ConnectionError);
      assert.equal(server.waitingPeers, 0, "no reconnect attempt was made");
    });
  }

  test("history_gone on rejoin: report it, join again without since, go on from joined.seq", async () => {
    const { room, peer } = await joined({ seq: 3 });
    const errors = new Collector();
    const events = new Collector();
    room.onError(errors.push);
    room.onEvent((e) => events.push(e.seq));
    peer.terminate();
    const peer2 = await server.nextPeer();
    await peer2.handshake();
    assert.equal((await peer2.next()).since, 3);
    peer2.send({ t: "error", code: "history_gone", message: "too old", room: "r1" });
    assert.deepEqual(await peer2.next(), { t: "join", room: "r1", seat: "rejoin-1" });
    peer2.send({ t: "joined", room: "r1", player: "p1", seq: 40, last_id: 0, rejoin: "rejoin-2" });
    peer2.send({ t: "event", room: "r1", seq: 40, type: "old" });
    peer2.send({ t: "event", room: "r1", seq: 41, type: "new" });
    await events.until("event 41", (items) => items.includes(41));
    assert.deepEqual(events.items, [41]);
    assert.ok(errors.items[0] instanceof HistoryGoneError);
    assert.match(errors.items[0].message, /after seq 3 /);
    assert.equal(room.status, "joined");
  });

  test("a resumed join behind the client's seq is reported as history lost; new events still flow", async () => {
    const { room, peer } = await joined({ seq: 8 });
    const errors = new Collector();
    const events = new Collector();
    room.onError(errors.push);
    room.onEvent((e) => events.push(e.seq));
    peer.terminate();
    const peer2 = await server.nextPeer();
    await peer2.handshake();
    assert.equal((await peer2.next()).since, 8);
    peer2.send({ t: "joined", room: "r1", player: "p1", seq: 5, last_id: 0, rejoin: "r2", resumed: true });
    peer2.send({ t: "event", room: "r1", seq: 6, type: "x" });
    await events.until("event 6", (items) => items.includes(6));
    assert.ok(errors.items[0] instanceof HistoryGoneError);
  });

  test("a rejoin answered with internal (room slow to answer) is tried again, not given up", async () => {
    const { room, peer } = await joined({ seq: 2 });
    const errors = new Collector();
    room.onError(errors.push);
    peer.terminate();
    const peer2 = await server.nextPeer();
    await peer2.handshake();
    assert.equal((await peer2.next()).since, 2);
    peer2.send({ t: "error", code: "internal", message: "the room did not answer in time", room: "r1", ref: "x" });
    assert.deepEqual(await peer2.next(), { t: "join", room: "r1", seat: "rejoin-1", since: 2 });
    peer2.send({ t: "joined", room: "r1", player: "p1", seq: 2, last_id: 0, rejoin: "r2", resumed: true });
    await waitFor("joined", (resolve) => room.onStatus((s) => s === "joined" && resolve()));
    assert.equal(errors.items[0].code, "internal");
  });

  test("a rejoin refused for good ends the room with that error", async () => {
    const { room, peer } = await joined();
    const leaves = new Collector();
    room.onLeave(leaves.push);
    peer.terminate();
    const peer2 = await server.nextPeer();
    await peer2.handshake();
    await peer2.next();
    peer2.send({ t: "error", code: "room_closed", message: "the room ended", room: "r1" });
    const [info] = await leaves.until("the room to end", (items) => items.length === 1);
    assert.equal(info.reason, "failed");
    assert.equal(info.error.code, "room_closed");
  });

  test("a refused first join rejects with the typed error and leaves no room behind", async () => {
    const client = newClient();
    const joining = client.joinSeat(SEAT);
    const peer = await server.nextPeer();
    await peer.handshake();
    await peer.next();
    peer.send({ t: "error", code: "room_full", message: "8 of 8", room: "r1" });
    await assert.rejects(joining, (err) => err instanceof RoomFullError && err.room === "r1");
    assert.deepEqual(client.joinedRooms, []);
  });

  test("leave sends leave and resolves on left; later sends fail with NotJoinedError", async () => {
    const { room, peer } = await joined();
    const leaves = new Collector();
    room.onLeave(leaves.push);
    const leaving = room.leave();
    assert.deepEqual(await peer.next(), { t: "leave", room: "r1" });
    assert.equal(room.status, "leaving");
    peer.send({ t: "left", room: "r1", reason: "left" });
    await leaving;
    assert.equal(room.status, "left");
    assert.deepEqual(leaves.items, [{ reason: "left" }]);
    assert.throws(() => room.send("x"), NotJoinedError);
    await room.leave(); // idempotent
  });

  test("replaced by another connection: no rejoin; pending requests fail with NotJoinedError", async () => {
    const { room, peer } = await joined();
    const leaves = new Collector();
    room.onLeave(leaves.push);
    const pending = room.request("x", 1);
    await peer.next();
    peer.send({ t: "left", room: "r1", reason: "replaced" });
    await assert.rejects(pending, NotJoinedError);
    await leaves.until("left", (items) => items.length === 1);
    assert.equal(leaves.items[0].reason, "replaced");
  });

  test("room ended: onLeave gets the game's detail", async () => {
    const { room, peer } = await joined();
    const info = waitFor("left", (resolve) => room.onLeave(resolve));
    peer.send({ t: "left", room: "r1", reason: "ended", detail: "round over" });
    assert.deepEqual(await info, { reason: "ended", detail: "round over" });
  });

  test("an idle connection pings within the heartbeat window and counts pongs as life", async () => {
    const { peer } = await joined({ welcome: { heartbeat_s: 0.2 } });
    const first = await peer.nextRaw();
    assert.equal(first.frame.t, "ping");
    peer.send({ t: "pong", id: first.frame.id });
    const second = await peer.nextRaw();
    assert.equal(second.frame.t, "ping");
    assert.ok(second.frame.id > first.frame.id);
  });

  test("a silent server is given up on after two heartbeat windows, then the client resumes", async () => {
    const { room, statuses } = await joined({ welcome: { heartbeat_s: 0.2 } });
    // The peer never answers the pings: the client must drop the socket and reconnect.
    const peer2 = await server.nextPeer();
    await peer2.handshake();
    assert.equal((await peer2.next()).t, "join");
    assert.ok(statuses.items.includes("reconnecting"));
    assert.equal(room.status, "joining");
  });

  test("frames of unknown kinds are ignored without an error", async () => {
    const { client, room, peer } = await joined();
    const errors = new Collector();
    const events = new Collector();
    client.onError(errors.push);
    room.onEvent(events.push);
    peer.send({ t: "from_a_newer_server", room: "r1" });
    peer.send({ t: "event", room: "r1", seq: 1, type: "ok", extra: "ignored" });
    await events.until("the event", (items) => items.length === 1);
    assert.deepEqual(errors.items, []);
  });

  test("an undecodable frame is reported to client.onError and skipped", async () => {
    const { client, room, peer } = await joined();
    const errors = new Collector();
    const events = new Collector();
    client.onError(errors.push);
    room.onEvent(events.push);
    peer.sendRaw("{not json");
    peer.send({ t: "event", room: "r1", seq: 1, type: "ok" });
    await events.until("the good event", (items) => items.length === 1);
    assert.equal(errors.items[0].code, "bad_frame");
  });

  test("no server listening: the join rejects with ConnectionError and the client stays usable", async () => {
    const client = new Client("http://127.0.0.1:1", { WebSocket, reconnect: FAST_RECONNECT });
    clients.push(client);
    await assert.rejects(client.joinSeat(SEAT), ConnectionError);
    assert.equal(client.status, "idle");
    assert.deepEqual(client.joinedRooms, []);
  });

  test("client.close ends rooms with reason closed and fails pending requests", async () => {
    const { client, room, peer } = await joined();
    const leaves = new Collector();
    room.onLeave(leaves.push);
    const pending = room.request("x", 1);
    await peer.next();
    client.close();
    await assert.rejects(pending, NotJoinedError);
    await leaves.until("left", (items) => items.length === 1);
    assert.equal(leaves.items[0].reason, "closed");
    assert.equal((await peer.closed).code, 1000);
    assert.equal(client.status, "closed");
  });

  test("with no room left, a lost socket is not reopened until the next join", async () => {
    const { client, room, peer, statuses } = await joined();
    const leaving = room.leave();
    await peer.next();
    peer.send({ t: "left", room: "r1", reason: "left" });
    await leaving;
    peer.close(1001, "going away");
    await statuses.until("idle", (items) => items.at(-1) === "idle");
    assert.equal(server.waitingPeers, 0);
    const joining = client.joinSeat({ ...SEAT, seat: "seat-again" });
    const peer2 = await server.nextPeer();
    await peer2.handshake();
    assert.deepEqual(await peer2.next(), { t: "join", room: "r1", seat: "seat-again" });
    peer2.send({ t: "joined", room: "r1", player: "p1", seq: 3, last_id: 0, rejoin: "r" });
    await joining;
    assert.deepEqual(statuses.items, ["connecting", "connected", "idle", "connecting", "connected"]);
  });

  test("after 1001 going away, the reconnect goes to the next server of the deployment", async () => {
    const other = await ScriptedServer.start();
    try {
      const { room, peer, statuses } = await joined({ seq: 4, clientOptions: { servers: [other.baseUrl] } });
      peer.close(1001, "server shutting down");
      const peer2 = await other.nextPeer();
      await peer2.handshake();
      assert.deepEqual(await peer2.next(), { t: "join", room: "r1", seat: "rejoin-1", since: 4 });
      peer2.send({ t: "joined", room: "r1", player: "p1", seq: 4, last_id: 0, rejoin: "r2", resumed: true });
      await waitFor("joined", (resolve) => room.onStatus((s) => s === "joined" && resolve()));
      assert.equal(server.waitingPeers, 0);
      assert.equal(statuses.items.at(-1), "connected");
    } finally {
      for (const client of clients.splice(0)) client.close();
      await other.stop();
    }
  });

  test("two rooms share one socket and each resumes from its own seq", async () => {
    const { client, room, peer } = await joined({ seq: 2 });
    const joining2 = client.joinSeat({ ...SEAT, room: "r2", seat: "seat-2" });
    assert.deepEqual(await peer.next(), { t: "join", room: "r2", seat: "seat-2" });
    peer.send({ t: "joined", room: "r2", player: "p1", seq: 7, last_id: 0, rejoin: "rejoin-r2" });
    const room2 = await joining2;
    peer.terminate();
    const peer2 = await server.nextPeer();
    await peer2.handshake();
    const joins = [await peer2.next(), await peer2.next()].sort((a, b) => a.room.localeCompare(b.room));
    assert.deepEqual(joins, [
      { t: "join", room: "r1", seat: "rejoin-1", since: 2 },
      { t: "join", room: "r2", seat: "rejoin-r2", since: 7 },
    ]);
    assert.equal(room.lastSeq, 2);
    assert.equal(room2.lastSeq, 7);
  });
});
