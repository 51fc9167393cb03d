// A WebSocket peer driven frame by frame by a test: it checks what the client sends, in order.
//
// This is not a roomwire server: it has no rooms and no logic. A test states the exact frames a
// real server would send and asserts the exact frames the client must answer with, the way
// h11 and websockets test a protocol endpoint against a scripted peer. The real server is used
// by test/integration.test.mjs.

import { once } from "node:events";
import http from "node:http";

import { decode as msgpackDecode, encode as msgpackEncode } from "@msgpack/msgpack";
import { WebSocketServer } from "ws";

const DEFAULT_WAIT_MS = 5_000;

/** An async queue whose `next()` fails after a timeout instead of hanging the test. */
class Queue {
  #items = [];
  #waiters = [];

  push(item) {
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(item);
    else this.#items.push(item);
  }

  next(what, timeoutMs = DEFAULT_WAIT_MS) {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift());
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (item) => {
          clearTimeout(timer);
          resolve(item);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  get size() {
    return this.#items.length;
  }
}

/** One client connection as the scripted server sees it. */
export class Peer {
  #socket;
  #frames = new Queue();
  closed;

  constructor(socket) {
    this.#socket = socket;
    this.codec = socket.protocol === "roomwire.v1.msgpack" ? "msgpack" : "json";
    this.closed = new Promise((resolve) =>
      socket.on("close", (code, reason) => resolve({ code, reason: String(reason) })),
    );
    socket.on("message", (data, isBinary) => {
      const frame = isBinary ? msgpackDecode(data) : JSON.parse(String(data));
      this.#frames.push({ frame, isBinary });
    });
  }

  /** The next frame the client sent, skipping pings unless asked for. */
  async next({ pings = false, timeoutMs } = {}) {
    for (;;) {
      const { frame } = await this.#frames.next("a frame from the client", timeoutMs);
      if (pings || frame.t !== "ping") return frame;
      this.send({ t: "pong", id: frame.id });
    }
  }

  /** The next frame with its opcode, pings included. */
  nextRaw(timeoutMs) {
    return this.#frames.next("a frame from the client", timeoutMs);
  }

  /** Send one server frame in this connection's codec. */
  send(frame) {
    if (this.codec === "msgpack") this.#socket.send(msgpackEncode(frame, { ignoreUndefined: true }));
    else this.#socket.send(JSON.stringify(frame));
  }

  /** Send raw data (to test malformed frames). */
  sendRaw(data) {
    this.#socket.send(data);
  }

  /** Expect `hello`, answer `welcome`; returns the hello frame. */
  async handshake({ heartbeat_s = 30, max_frame_bytes = 65536 } = {}) {
    const hello = await this.next();
    this.send({ t: "welcome", v: 1, codec: this.codec, heartbeat_s, max_frame_bytes, server: "scripted" });
    return hello;
  }

  /** Close with a code, as the server does. */
  close(code, reason = "") {
    this.#socket.close(code, reason);
  }

  /** Cut the TCP connection without a close frame, as a crash or a network failure does. */
  terminate() {
    this.#socket.terminate();
  }
}

/** A WebSocket server on a free 127.0.0.1 port that hands each connection to the test. */
export class ScriptedServer {
  #http;
  #wss;
  #peers = new Queue();
  baseUrl;

  static async start() {
    const server = new ScriptedServer();
    server.#http = http.createServer((req, res) => {
      res.writeHead(404).end();
    });
    server.#wss = new WebSocketServer({
      server: server.#http,
      path: "/ws",
      handleProtocols: (protocols) => {
        for (const name of ["roomwire.v1.json", "roomwire.v1.msgpack"]) if (protocols.has(name)) return name;
        return false;
      },
    });
    server.#wss.on("connection", (socket) => server.#peers.push(new Peer(socket)));
    server.#http.listen(0, "127.0.0.1");
    await once(server.#http, "listening");
    server.baseUrl = `http://127.0.0.1:${server.#http.address().port}`;
    return server;
  }

  /** The next client connection. */
  nextPeer(timeoutMs) {
    return this.#peers.next("a client connection", timeoutMs);
  }

  /** Connections accepted but not yet taken by the test. */
  get waitingPeers() {
    return this.#peers.size;
  }

  async stop() {
    for (const socket of this.#wss.clients) socket.terminate();
    await new Promise((resolve) => this.#wss.close(resolve));
    this.#http.closeAllConnections?.();
    await new Promise((resolve) => this.#http.close(resolve));
  }
}

/** A promise with its resolve function, to wait on a callback with a timeout. */
export function waitFor(what, register, timeoutMs = DEFAULT_WAIT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    register((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

/** Collects what a callback receives, and lets a test wait until a predicate holds. */
export class Collector {
  items = [];
  #checks = [];

  push = (item) => {
    this.items.push(item);
    for (const check of [...this.#checks]) check();
  };

  until(what, predicate, timeoutMs = DEFAULT_WAIT_MS) {
    if (predicate(this.items)) return Promise.resolve(this.items);
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate(this.items)) return;
        clearTimeout(timer);
        this.#checks.splice(this.#checks.indexOf(check), 1);
        resolve(this.items);
      };
      const timer = setTimeout(() => {
        this.#checks.splice(this.#checks.indexOf(check), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(this.items)}`));
      }, timeoutMs);
      this.#checks.push(check);
    });
  }
}
