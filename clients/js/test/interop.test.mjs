// The SDK's codecs against the server's own (src/roomwire/protocol/codec.py, msgspec): server
// frames encoded by Python decode here, and frames encoded here decode as valid client frames.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";

import { JSON_CODEC, MSGPACK_CODEC } from "../dist/index.js";
import { requireOrSkip, unavailable, venvBin } from "./support/python.mjs";

const PYTHON = venvBin("python");
const skipReason = unavailable(PYTHON, ["-c", "import roomwire.protocol"]);

const SCRIPT = String.raw`
import base64, json, sys
import msgspec
from roomwire.protocol import (Ack, Error, Event, Joined, Left, Pong, Reject, Welcome, codec_for)

request = json.load(sys.stdin)
frames = [
    Welcome(v=1, codec="json", heartbeat_s=15.0, max_frame_bytes=65536),
    Joined(room="r", player="p", seq=3, last_id=2, rejoin="s", resumed=True),
    Joined(room="r", player="p", seq=0, last_id=0, rejoin="s"),
    Event(room="r", seq=4, type="moved", data={"x": 1.5, "y": [1, 2], "n": None, "s": "é😀"}),
    Event(room="r", seq=5, type="tick"),
    Ack(room="r", id=1),
    Ack(room="r", id=2, dup=True),
    Reject(room="r", id=3, code="rejected", message="no", ref="L1"),
    Left(room="r", reason="ended", detail="round over"),
    Left(room="r", reason="left"),
    Error(code="room_full", message="m", room="r"),
    Error(code="bad_frame", message="m"),
    Pong(id=9),
]
answer = {"expected": [msgspec.to_builtins(f) for f in frames], "server": {}, "client": {}}
for name in ("json", "msgpack"):
    codec = codec_for(name)
    answer["server"][name] = [base64.b64encode(codec.encode(f)).decode() for f in frames]
    decoded = []
    for item in request[name]:
        try:
            decoded.append(msgspec.to_builtins(codec.decode_client(base64.b64decode(item))))
        except Exception as exc:
            decoded.append({"error": str(exc)})
    answer["client"][name] = decoded
print(json.dumps(answer))
`;

const CLIENT_FRAMES = [
  { t: "hello", v: 1, client: "roomwire-client-js/0.1.0" },
  { t: "hello", v: 1 },
  { t: "join", room: "r", seat: "s" },
  { t: "join", room: "r", seat: "s", since: 41 },
  { t: "leave", room: "r" },
  { t: "msg", room: "r", type: "move", data: { x: 1, y: -2.5, list: [1, "a", null], s: "é😀" }, id: 7 },
  { t: "msg", room: "r", type: "move", data: null, id: 8 },
  { t: "msg", room: "r", type: "noid", data: 3 },
  { t: "msg", room: "r", type: "nodata", id: 9 },
  { t: "ping", id: 12 },
];

function toBase64(encoded) {
  return Buffer.from(typeof encoded === "string" ? new TextEncoder().encode(encoded) : encoded).toString("base64");
}

describe("interop with the server's msgspec codecs", () => {
  test("frames round-trip between the SDK and roomwire.protocol", requireOrSkip(skipReason), () => {
    const request = {
      json: CLIENT_FRAMES.map((f) => toBase64(JSON_CODEC.encode(f))),
      msgpack: CLIENT_FRAMES.map((f) => toBase64(MSGPACK_CODEC.encode(f))),
    };
    const run = spawnSync(PYTHON, ["-c", SCRIPT], {
      input: JSON.stringify(request),
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(run.status, 0, run.stderr);
    const answer = JSON.parse(run.stdout);
    for (const [name, codec] of [
      ["json", JSON_CODEC],
      ["msgpack", MSGPACK_CODEC],
    ]) {
      // Every server frame the Python side writes decodes to the same fields here.
      const decoded = answer.server[name].map((b64) => {
        const bytes = Buffer.from(b64, "base64");
        return name === "json" ? codec.decode(bytes.toString("utf8")) : codec.decode(bytes);
      });
      assert.deepEqual(decoded, answer.expected, name);
      // Every client frame written here is a valid client frame for the server, field for field
      // (msgspec's omit_defaults leaves out defaults, `data: null` and `hello.v: 1`, so this does too).
      const isDefault = (frame, key, value) => value === null || (frame.t === "hello" && key === "v" && value === 1);
      const expected = CLIENT_FRAMES.map((f) =>
        Object.fromEntries(Object.entries(f).filter(([k, v]) => !isDefault(f, k, v))),
      );
      assert.deepEqual(answer.client[name], expected, name);
    }
  });
});
