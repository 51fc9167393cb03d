// Codec unit tests: frames encode as the server expects and decode into checked server frames.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { decode as msgpackDecode, encode as msgpackEncode } from "@msgpack/msgpack";

import { codecFor, JSON_CODEC, MSGPACK_CODEC, ProtocolError, SUBPROTOCOLS } from "../dist/index.js";
import { encodedSize } from "../dist/codec.js";

const SERVER_FRAMES = [
  { t: "welcome", v: 1, codec: "json", heartbeat_s: 15.0, max_frame_bytes: 65536, server: "roomwire" },
  { t: "joined", room: "r1", player: "p1", seq: 7, last_id: 3, rejoin: "seat-token", resumed: true },
  { t: "event", room: "r1", seq: 8, type: "moved", data: { player: "p1", x: 1.5, y: -2, tags: ["a"] } },
  { t: "event", room: "r1", seq: 9, type: "tick" },
  { t: "ack", room: "r1", id: 4 },
  { t: "ack", room: "r1", id: 4, dup: true },
  { t: "reject", room: "r1", id: 5, code: "rejected", message: "not your turn", ref: "abc" },
  { t: "left", room: "r1", reason: "ended", detail: "round over" },
  { t: "error", code: "room_full", message: "full", room: "r1" },
  { t: "error", code: "bad_frame", message: "no" },
  { t: "pong", id: 3 },
];

describe("codecs", () => {
  test("subprotocol names match the server's", () => {
    assert.deepEqual(SUBPROTOCOLS, { json: "roomwire.v1.json", msgpack: "roomwire.v1.msgpack" });
    assert.equal(codecFor("json"), JSON_CODEC);
    assert.equal(codecFor("msgpack"), MSGPACK_CODEC);
    assert.throws(() => codecFor("xml"), TypeError);
  });

  test("json sends text, msgpack sends bytes", () => {
    const frame = { t: "msg", room: "r1", type: "move", data: { x: 1, y: 2 }, id: 1 };
    assert.equal(typeof JSON_CODEC.encode(frame), "string");
    assert.ok(MSGPACK_CODEC.encode(frame) instanceof Uint8Array);
    assert.equal(JSON_CODEC.isBinary, false);
    assert.equal(MSGPACK_CODEC.isBinary, true);
  });

  test("absent optional fields are left out, not sent as null", () => {
    const frame = { t: "join", room: "r1", seat: "s", since: undefined };
    assert.deepEqual(JSON.parse(JSON_CODEC.encode(frame)), { t: "join", room: "r1", seat: "s" });
    assert.deepEqual(msgpackDecode(MSGPACK_CODEC.encode(frame)), { t: "join", room: "r1", seat: "s" });
  });

  test("integers stay integers in msgpack (the server's id and since fields are ints)", () => {
    const bytes = MSGPACK_CODEC.encode({ t: "msg", room: "r", type: "x", id: 7 });
    // fixmap(4) ... "id" then positive fixint 7: no float64 marker (0xcb) anywhere.
    assert.ok(!bytes.includes(0xcb));
    assert.equal(msgpackDecode(bytes).id, 7);
  });

  for (const frame of SERVER_FRAMES) {
    test(`decodes a ${frame.t} frame in both codecs`, () => {
      assert.deepEqual(JSON_CODEC.decode(JSON.stringify(frame)), frame);
      assert.deepEqual(JSON_CODEC.decode(new TextEncoder().encode(JSON.stringify(frame))), frame);
      const bytes = msgpackEncode(frame);
      assert.deepEqual(MSGPACK_CODEC.decode(bytes), frame);
      const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      assert.deepEqual(MSGPACK_CODEC.decode(copy), frame);
    });
  }

  test("null in an optional field counts as absent", () => {
    const frame = JSON_CODEC.decode('{"t":"error","code":"x","message":"m","room":null,"ref":null}');
    assert.equal(frame.room, null);
  });

  const BAD = [
    ["not a map", "[1,2]"],
    ["no kind", '{"room":"r"}'],
    ["a missing field", '{"t":"event","room":"r","type":"x"}'],
    ["a wrong type", '{"t":"event","room":"r","seq":"1","type":"x"}'],
    ["a wrong optional type", '{"t":"ack","room":"r","id":1,"dup":"yes"}'],
    ["a non-finite number", '{"t":"pong","id":1e999}'],
    ["not JSON", "{"],
  ];
  for (const [what, text] of BAD) {
    test(`json refuses ${what} with ProtocolError`, () => {
      assert.throws(
        () => JSON_CODEC.decode(text),
        (err) => err instanceof ProtocolError && err.code === "bad_frame",
      );
    });
  }

  test("a frame of an unknown kind decodes to null (ignored), unknown fields are ignored", () => {
    assert.equal(JSON_CODEC.decode('{"t":"from_the_future","x":1}'), null);
    assert.equal(MSGPACK_CODEC.decode(msgpackEncode({ t: "from_the_future" })), null);
    assert.deepEqual(JSON_CODEC.decode('{"t":"pong","id":1,"extra":true}'), { t: "pong", id: 1, extra: true });
  });

  test("msgpack refuses text frames and garbage with ProtocolError", () => {
    assert.throws(() => MSGPACK_CODEC.decode('{"t":"pong"}'), ProtocolError);
    assert.throws(() => MSGPACK_CODEC.decode(new Uint8Array([0xc1])), ProtocolError);
    assert.throws(() => MSGPACK_CODEC.decode(msgpackEncode("just a string")), ProtocolError);
  });

  test("json refuses invalid UTF-8 bytes", () => {
    assert.throws(() => JSON_CODEC.decode(new Uint8Array([0x7b, 0xff, 0x7d])), ProtocolError);
  });

  test("the size limit is checked before parsing", () => {
    const frame = { t: "event", room: "r", seq: 1, type: "x", data: "é".repeat(100) };
    const text = JSON.stringify(frame);
    const size = new TextEncoder().encode(text).byteLength;
    assert.equal(encodedSize(text), size);
    assert.deepEqual(JSON_CODEC.decode(text, size), frame);
    assert.throws(
      () => JSON_CODEC.decode(text, size - 1),
      (err) => err.code === "frame_too_large",
    );
    const bytes = msgpackEncode(frame);
    assert.throws(
      () => MSGPACK_CODEC.decode(bytes, bytes.byteLength - 1),
      (err) => err.code === "frame_too_large",
    );
  });

  test("encodedSize counts UTF-8 bytes, surrogate pairs included", () => {
    for (const text of ["", "abc", "é", "€", "😀", "a😀b€", "\ud800x"]) {
      assert.equal(encodedSize(text), new TextEncoder().encode(text).byteLength, text);
    }
  });
});
