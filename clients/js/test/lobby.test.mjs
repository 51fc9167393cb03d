// Lobby calls: request shapes (paths, bodies, bearer token) and error bodies mapped to typed errors,
// against a scripted HTTP peer that records each request and answers what the test says.

import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import { after, before, describe, test } from "node:test";

import {
  Client,
  ConnectionError,
  InternalError,
  Lobby,
  ProtocolError,
  RoomFullError,
  toWebSocketUrl,
  UnauthorizedError,
} from "../dist/index.js";

let server;
let baseUrl;
const requests = [];
let answer = () => [200, {}];

before(async () => {
  server = http.createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const request = {
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: body === "" ? undefined : JSON.parse(body),
    };
    requests.push(request);
    const [status, payload, type = "application/json"] = answer(request);
    res.writeHead(status, { "content-type": type });
    res.end(typeof payload === "string" ? payload : JSON.stringify(payload));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  baseUrl = `http://127.0.0.1:${server.address().port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function lastRequest() {
  return requests.at(-1);
}

describe("lobby", () => {
  test("loginGuest posts to /auth/guest without a token and keeps the token it gets", async () => {
    answer = () => [200, { player: "g-1", token: "tok-1" }];
    const client = new Client(baseUrl);
    const login = await client.loginGuest("ann");
    assert.deepEqual(login, { player: "g-1", token: "tok-1" });
    assert.equal(client.player, "g-1");
    assert.equal(client.token, "tok-1");
    const request = lastRequest();
    assert.equal(request.method, "POST");
    assert.equal(request.url, "/auth/guest");
    assert.deepEqual(request.body, { name: "ann" });
    assert.equal(request.headers.authorization, undefined);
  });

  test("joinOrCreate, create and reserveSeat send the bearer token and the documented bodies", async () => {
    const grant = { room: "r1", type: "arena", player: "g-1", seat: "s", ws: "/ws", created: true };
    answer = () => [200, grant];
    const lobby = new Lobby(`${baseUrl}/`, { token: "tok-1" });
    assert.deepEqual(await lobby.joinOrCreate("arena", { filters: { mode: "ffa" }, options: { size: 2 } }), grant);
    assert.equal(lastRequest().url, "/rooms/join-or-create");
    assert.deepEqual(lastRequest().body, { type: "arena", filters: { mode: "ffa" }, options: { size: 2 } });
    assert.equal(lastRequest().headers.authorization, "Bearer tok-1");
    assert.equal(lastRequest().headers["content-type"], "application/json");

    await lobby.create("arena", { private: true, meta: { name: "x" } });
    assert.equal(lastRequest().url, "/rooms");
    assert.deepEqual(lastRequest().body, { type: "arena", private: true, meta: { name: "x" } });

    await lobby.reserveSeat("room/with space");
    assert.equal(lastRequest().url, "/rooms/room%2Fwith%20space/seats");
    assert.equal(lastRequest().method, "POST");
  });

  test("listRooms queries by type and meta", async () => {
    const rooms = [{ id: "r1", type: "arena", players: 1, max_players: 8, meta: {}, created_at: 1 }];
    answer = () => [200, { rooms }];
    const client = new Client(baseUrl, { token: "tok-1" });
    assert.deepEqual(await client.listRooms("arena", { mode: "ffa" }), rooms);
    assert.equal(lastRequest().method, "GET");
    assert.equal(lastRequest().url, "/rooms?type=arena&meta.mode=ffa");
    assert.equal(lastRequest().body, undefined);
  });

  test("a server mounted under a path keeps it for lobby calls and the WebSocket", async () => {
    answer = () => [200, { rooms: [] }];
    await new Lobby(`${baseUrl}/game`, { token: "t" }).listRooms();
    assert.equal(lastRequest().url, "/game/rooms");
    assert.equal(toWebSocketUrl("http://h:8000/game", "/ws"), "ws://h:8000/game/ws");
    assert.equal(toWebSocketUrl("https://h/", "/ws"), "wss://h/ws");
    assert.equal(toWebSocketUrl("http://h", "ws://other:1/ws"), "ws://other:1/ws");
  });

  test("error bodies become typed errors with the HTTP status", async () => {
    const lobby = new Lobby(baseUrl, { token: "bad" });
    answer = () => [409, { error: { code: "room_full", message: "8 of 8 seats taken" } }];
    await assert.rejects(
      lobby.reserveSeat("r1"),
      (err) => err instanceof RoomFullError && err.status === 409 && err.message === "8 of 8 seats taken",
    );
    answer = () => [401, { error: { code: "unauthorized", message: "bad token" } }];
    await assert.rejects(lobby.joinOrCreate("arena"), (err) => err instanceof UnauthorizedError && err.status === 401);
    answer = () => [502, "<html>bad gateway</html>", "text/html"];
    await assert.rejects(lobby.listRooms(), (err) => err instanceof InternalError && err.status === 502);
    answer = () => [200, "not json", "text/plain"];
    await assert.rejects(lobby.listRooms(), ProtocolError);
  });

  test("an unreachable server gives ConnectionError", async () => {
    await assert.rejects(
      new Lobby("http://127.0.0.1:1").loginGuest(),
      (err) => err instanceof ConnectionError && err.code === "connection_failed",
    );
  });
});
