// The browser bundle (dist/roomwire-client.js) is self-contained and exports the package's API.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import * as bundle from "../dist/roomwire-client.js";
import * as sdk from "../dist/index.js";

const BUNDLE_URL = new URL("../dist/roomwire-client.js", import.meta.url);

describe("browser bundle", () => {
  test("imports nothing: a plain <script type=module> can load it", () => {
    const source = readFileSync(BUNDLE_URL, "utf8");
    // An import statement starts a statement; the same words inside a message string do not count.
    assert.doesNotMatch(source, /(?:^|[;}\n])\s*import\s*[\w{*"']/);
    assert.doesNotMatch(source, /\bimport\s*\(\s*["']/);
    assert.doesNotMatch(source, /\brequire\s*\(/);
  });

  test("exports the same names as the package entry point", () => {
    assert.deepEqual(Object.keys(bundle).sort(), Object.keys(sdk).sort());
  });

  test("keeps class names (error.name) through minification", () => {
    const error = bundle.errorFromCode("room_full", "x");
    assert.ok(error instanceof bundle.RoomFullError);
    assert.equal(error.name, "RoomFullError");
  });

  test("carries the MessagePack codec", () => {
    const frame = { t: "event", room: "r", seq: 1, type: "moved", data: { x: 1.5 } };
    const bytes = bundle.MSGPACK_CODEC.encode({ t: "msg", room: "r", type: "move", data: { x: 1.5 }, id: 1 });
    assert.ok(bytes instanceof Uint8Array);
    assert.deepEqual(bundle.MSGPACK_CODEC.decode(sdk.MSGPACK_CODEC.encode(frame)), frame);
  });
});
