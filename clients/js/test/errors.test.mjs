// The error tree: wire codes map to typed classes that carry their facts.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as sdk from "../dist/index.js";

const { errorFromCode, isFatalCloseCode, RoomwireError } = sdk;

describe("errors", () => {
  const CASES = [
    ["bad_frame", "ProtocolError", []],
    ["frame_too_large", "ProtocolError", []],
    ["unsupported_version", "ProtocolError", []],
    ["unauthorized", "UnauthorizedError", ["AuthError"]],
    ["forbidden", "ForbiddenError", ["AuthError"]],
    ["room_not_found", "RoomNotFoundError", ["RoomError"]],
    ["room_full", "RoomFullError", ["RoomError"]],
    ["room_closed", "RoomClosedError", ["RoomError"]],
    ["not_joined", "NotJoinedError", ["RoomError"]],
    ["unknown_type", "UnknownMessageTypeError", ["RoomError"]],
    ["message_too_large", "MessageTooLargeError", ["RoomError"]],
    ["history_gone", "HistoryGoneError", ["RoomError"]],
    ["invalid_message", "ValidationError", []],
    ["rejected", "RejectedError", []],
    ["rate_limited", "RateLimitedError", []],
    ["internal", "InternalError", []],
    ["connection_closed", "ConnectionError", []],
    ["timeout", "TimeoutError", []],
  ];
  for (const [code, className, parents] of CASES) {
    test(`${code} becomes ${className}`, () => {
      const error = errorFromCode(code, "why", { room: "r1", ref: "log-1", id: 3 });
      assert.ok(error instanceof sdk[className]);
      for (const parent of parents) assert.ok(error instanceof sdk[parent], parent);
      assert.ok(error instanceof RoomwireError);
      assert.ok(error instanceof Error);
      assert.equal(error.code, code);
      assert.equal(error.name, className);
      assert.equal(error.message, "why");
      assert.equal(error.room, "r1");
      assert.equal(error.ref, "log-1");
      assert.equal(error.id, 3);
    });
  }

  test("an unknown code from a newer server stays a RoomwireError with that code", () => {
    const error = errorFromCode("brand_new", "m");
    assert.equal(error.constructor, RoomwireError);
    assert.equal(error.code, "brand_new");
  });

  test("classes made directly get their default code", () => {
    assert.equal(new sdk.RoomFullError("x").code, "room_full");
    assert.equal(new sdk.RejectedError("x").code, "rejected");
    assert.equal(new sdk.ConnectionError("x").code, "connection_closed");
  });

  test("close codes: reconnect after going away, slow consumer, heartbeat; not after protocol, auth, flooding", () => {
    for (const code of [1000, 1001, 1006, 1011, 4002, 4003, 4005]) assert.equal(isFatalCloseCode(code), false, code);
    for (const code of [4000, 4001, 4004, 1008, 1009]) assert.equal(isFatalCloseCode(code), true, code);
  });
});
