// The synced-state mirror (docs/protocol.md §15): unit cases, and a property test against the
// server's own code: random state histories are diffed by roomwire.protocol.patch in Python, and
// the JS mirror must end equal to the server's state after every step, reporting the same changes
// to its callbacks as the Python SDK's StateMirror.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { applyPatch, PatchError, StateMirror } from "../dist/index.js";
import { requireOrSkip, unavailable, venvBin } from "./support/python.mjs";

const PYTHON = venvBin("python");
const CASES = fileURLToPath(new URL("./support/patch_cases.py", import.meta.url));

test("applyPatch follows §15's operations", () => {
  const state = { players: { a: { pos: [0, 0] } }, log: [1, 2, 3] };
  const out = applyPatch(state, [
    ["set", ["players", "a", "pos"], [3, 4]],
    ["set", ["players", "b"], { pos: [1, 1] }],
    ["set", ["log", 3], 4],
    ["del", ["log", 0]],
    ["set", ["log", 0], 9],
  ]);
  assert.equal(out, state); // in place
  assert.deepEqual(out, { players: { a: { pos: [3, 4] }, b: { pos: [1, 1] } }, log: [9, 3, 4] });
  assert.deepEqual(applyPatch(out, [["set", [], { fresh: true }]]), { fresh: true });
  // "__proto__" is a key like any other: it must not change the object's prototype.
  const odd = applyPatch({}, [["set", ["__proto__"], { polluted: true }]]);
  assert.deepEqual(Object.keys(odd), ["__proto__"]);
  assert.equal({}.polluted, undefined);
  assert.equal(Object.getPrototypeOf(odd), Object.prototype);
});

test("applyPatch refuses operations that do not fit", () => {
  for (const ops of [
    [["set", ["missing", "x"], 1]],
    [["set", ["log", 5], 1]],
    [["set", ["log", -1], 1]],
    [["set", ["log", "0"], 1]],
    [["del", ["nope"]]],
    [["del", []]],
    [["move", ["log"]]],
    ["set"],
    [["set", "log", 1]],
  ]) {
    assert.throws(() => applyPatch({ log: [1] }, ops), PatchError, JSON.stringify(ops));
  }
});

test("the mirror's statuses: empty, ready on @state, stale on a gap or a bad patch", () => {
  const mirror = new StateMirror();
  assert.equal(mirror.onEvent(1, "@patch", [["set", ["a"], 1]]), true); // ignored while empty
  assert.equal(mirror.status, "empty");
  assert.equal(mirror.state, null);
  mirror.onEvent(2, "@state", { a: 0 });
  assert.equal(mirror.status, "ready");
  mirror.onEvent(3, "@patch", [["set", ["a"], 1]]);
  assert.deepEqual([mirror.state, mirror.seq], [{ a: 1 }, 3]);
  mirror.onEvent(4, "@patch", [["del", ["zz"]]]);
  assert.equal(mirror.status, "stale");
  mirror.onEvent(5, "@patch", [["set", ["a"], 2]]);
  assert.deepEqual(mirror.state, { a: 1 }); // ignored while stale
  mirror.onEvent(6, "@state", { a: 7 });
  assert.equal(mirror.status, "ready");
  mirror.invalidate();
  assert.equal(mirror.status, "stale");
  assert.equal(mirror.onEvent(7, "moved", {}), false); // a game event is not the mirror's
});

test("presence and host callbacks", () => {
  const mirror = new StateMirror();
  const seen = [];
  mirror.onPresence((player, status) => seen.push([player, status]));
  mirror.onHost((host) => seen.push(["host", host]));
  mirror.onEvent(1, "@presence", { a: "connected", b: "connected" });
  mirror.onEvent(2, "@presence", { a: "reconnecting" });
  mirror.onEvent(3, "@host", { player: "a" });
  mirror.onEvent(4, "@host", { player: null });
  assert.deepEqual(seen, [
    ["a", "connected"],
    ["b", "connected"],
    ["a", "reconnecting"],
    ["b", "left"],
    ["host", "a"],
    ["host", null],
  ]);
  assert.deepEqual(mirror.presence, { a: "reconnecting" });
  assert.equal(mirror.host, null);
});

test("change callbacks: added, changed and removed entries of a map and a list", () => {
  const mirror = new StateMirror();
  const seen = [];
  mirror.onChange(["players", "*"], (c) => seen.push([c.path.join("."), c.added, c.removed, structuredClone(c.value)]));
  mirror.onChange("round", (c) => seen.push(["round", c.value]));
  mirror.onEvent(1, "@state", { round: 1, players: { a: { x: 0 } } });
  mirror.onEvent(2, "@patch", [
    ["set", ["players", "a", "x"], 5],
    ["set", ["players", "b"], { x: 1 }],
  ]);
  mirror.onEvent(3, "@patch", [
    ["del", ["players", "a"]],
    ["set", ["round"], 2],
  ]);
  assert.deepEqual(seen, [
    ["round", 1], // a @state reports what it changed, after the whole event
    ["players.a", true, false, { x: 0 }],
    ["players.a", false, false, { x: 5 }],
    ["players.b", true, false, { x: 1 }],
    ["players.a", false, true, undefined],
    ["round", 2],
  ]);
});

test(
  "property: random patches from the server's diff give the server's state and Python's callbacks",
  requireOrSkip(unavailable(PYTHON, ["-c", "import roomwire.protocol.mirror"])),
  () => {
    const seed = Number(process.env.ROOMWIRE_PATCH_SEED ?? Date.now() % 100_000);
    const run = spawnSync(PYTHON, [CASES, String(seed), "60", "40"], {
      encoding: "utf8",
      maxBuffer: 1 << 28,
    });
    assert.equal(run.status, 0, run.stderr);
    const cases = JSON.parse(run.stdout);
    let steps = 0;
    for (const [n, { watch, initial, steps: history }] of cases.entries()) {
      const mirror = new StateMirror();
      let changes = [];
      for (const pattern of watch) {
        mirror.onChange(pattern, (c) => changes.push([c.path, structuredClone(c.value) ?? null, c.removed]));
      }
      mirror.onEvent(1, "@state", structuredClone(initial));
      for (const [i, step] of history.entries()) {
        changes = [];
        mirror.onEvent(i + 2, "@patch", structuredClone(step.ops));
        const where = `seed ${seed}, case ${n}, step ${i}: ${JSON.stringify(step.ops)}`;
        assert.equal(mirror.status, "ready", where);
        assert.deepEqual(mirror.state, step.state, where);
        // Compared as sets: each place is reported once per event, and a JS object lists
        // integer-like keys ("0") first where Python keeps insertion order.
        assert.deepEqual(sorted(changes), sorted(step.changes), where);
        steps += 1;
      }
    }
    assert.equal(steps, 60 * 40);
  },
);

/** Changes in a canonical order. */
function sorted(changes) {
  return changes.map((c) => JSON.stringify(c)).sort();
}
