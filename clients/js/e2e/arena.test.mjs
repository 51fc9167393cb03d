// The arena page in a real browser: Playwright drives Debian's Chromium (headless) against
// `roomwire run examples/arena/app.py` on a free port. Two pages play each other; one page's
// network is cut and restored while the other keeps moving, and it must resume with every event
// once and in order, its synced state equal to the other page's. A screenshot goes to
// <repo>/test-artifacts/.
//
// The pages are read through their debug hook `window.__arena` (state: the page's synced room
// state, which it draws; mirror: its status; events; lastSeq; status).
// Skipped with the reason when Chromium, the SDK bundle or the roomwire command is missing;
// under CI (env CI set) those fail instead.

import assert from "node:assert/strict";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { REPO_ROOT, requireOrSkip } from "../test/support/python.mjs";
import { RoomwireServer, serverTestOptions } from "../test/support/server.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const BUNDLE = fileURLToPath(new URL("../dist/roomwire-client.js", import.meta.url));
const ARTIFACTS = `${REPO_ROOT}test-artifacts`;
const WAIT_MS = 15_000;
const TEST_MS = 90_000;
// Playwright runs the browser with a fresh temporary profile (--user-data-dir) of its own and
// removes it on close; every context is a separate, empty one on top of it.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
];
// Events the game sends to every player (the SDK keeps the synced state's `@` events to itself).
const TO_ALL = new Set(["moved", "tagged", "round_started", "round_over"]);

function setupOptions() {
  const server = serverTestOptions();
  if (server.skip) return server;
  if (!existsSync(CHROMIUM)) return requireOrSkip(`${CHROMIUM} is missing (apt-get install chromium)`);
  if (!existsSync(BUNDLE)) return requireOrSkip(`${BUNDLE} is missing (npm run build)`);
  return {};
}

describe("the arena page in Chromium", { ...setupOptions(), timeout: 4 * TEST_MS }, () => {
  let server;
  let browser;
  const contexts = new Set();

  before(async () => {
    server = await RoomwireServer.start("examples/arena/app.py");
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
  });

  after(async () => {
    // Each step runs even if an earlier one failed, so no browser or server outlives the tests.
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await server?.stop();
  });

  /** A new browser context (its own cookies, storage and network) with the page open. */
  async function openPage() {
    const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
    contexts.add(context);
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    const errors = [];
    page.on("pageerror", (error) => errors.push(error));
    await page.goto(`${server.baseUrl}/`);
    return { context, page, errors };
  }

  /** Open the page, log in as `name` and wait until it is in the room with its own position. */
  async function joinAs(name) {
    const player = await openPage();
    await player.page.fill("#name", name);
    await player.page.click("#play:not([disabled])");
    await player.page.waitForFunction(() => window.__arena.status === "connected" && window.__arena.position);
    return player;
  }

  async function closeAll(...players) {
    for (const { context, errors } of players) {
      await context.close();
      contexts.delete(context);
      assert.deepEqual(errors, [], "no uncaught error in the page");
    }
  }

  const hook = (page) =>
    page.evaluate(() => {
      const { state, mirror, events, lastSeq, status, room, player, position } = window.__arena;
      return { state, mirror, events, lastSeq, status, room, player, position };
    });

  /** Wait until `page` has `playerId` at `position` in its synced state (what it draws). */
  function waitForPosition(page, playerId, position) {
    return page.waitForFunction(
      ([id, { x, y }]) => window.__arena.state?.players.some((p) => p.id === id && p.x === x && p.y === y),
      [playerId, position],
    );
  }

  /** The arrow key that moves away from the nearer wall along x. */
  const towardsCentre = (position) => (position.x < 400 ? "ArrowRight" : "ArrowLeft");

  test(
    "two pages join the same room and a key press on one moves its player on the other",
    { timeout: TEST_MS },
    async () => {
      const ann = await joinAs("ann");
      const bob = await joinAs("bob");
      const [a, b] = [await hook(ann.page), await hook(bob.page)];
      assert.equal(a.room, b.room, "both pages are in one arena room");
      await ann.page.waitForFunction((id) => window.__arena.state?.players.some((p) => p.id === id), b.player);
      assert.ok(
        b.state.players.some((p) => p.id === a.player && p.name === "ann"),
        "bob's page shows ann",
      );

      const start = (await hook(ann.page)).position;
      const key = towardsCentre(start);
      await ann.page.keyboard.press(key); // resolves once the page handled keydown and keyup
      await ann.page.waitForFunction((x) => window.__arena.position.x !== x, start.x);
      const moved = (await hook(ann.page)).position;
      // One step (10) per 50 ms while the key is down: a busy machine may see it held for two.
      const dx = (moved.x - start.x) * (key === "ArrowRight" ? 1 : -1);
      assert.ok(dx > 9.9 && Math.abs(dx / 10 - Math.round(dx / 10)) < 1e-6, `moved ${dx} along x`);
      await waitForPosition(bob.page, a.player, moved);
      // And the other way: bob's position as the server has it is on ann's page.
      const bobAt = (await hook(bob.page)).state.players.find((p) => p.id === b.player);
      await waitForPosition(ann.page, b.player, bobAt);
      const [a2, b2] = [await hook(ann.page), await hook(bob.page)];
      assert.deepEqual([a2.mirror, b2.mirror], ["ready", "ready"]);
      assert.deepEqual(a2.state, b2.state, "both pages hold the same synced state");

      mkdirSync(ARTIFACTS, { recursive: true });
      const shot = `${ARTIFACTS}/arena-bob.png`;
      await bob.page.screenshot({ path: shot });
      assert.ok(statSync(shot).size > 1000, `a screenshot of the game at ${shot}`);
      await closeAll(ann, bob);
    },
  );

  test(
    "a page cut off while the other keeps moving resumes with every event once, in order",
    { timeout: TEST_MS },
    async () => {
      const ann = await joinAs("ann");
      const bob = await joinAs("bob");
      const bobId = (await hook(bob.page)).player;
      await ann.page.waitForFunction((id) => window.__arena.state?.players.some((p) => p.id === id), bobId);

      // setOffline alone leaves an open WebSocket alone in Chromium, but refuses new ones: cut the
      // socket as a network failure would, and every reconnect attempt fails until it is back.
      await ann.context.setOffline(true);
      await ann.page.evaluate(() => window.__arena.disconnect());
      await ann.page.waitForFunction(() => window.__arena.status === "reconnecting");
      const seqAtCut = (await hook(ann.page)).lastSeq;

      // Bob moves while ann is away: at least 5 steps (the reconnect grace is 5 s; this is ~0.3 s).
      const bobStart = (await hook(bob.page)).position;
      const key = towardsCentre(bobStart);
      await bob.page.keyboard.down(key);
      await bob.page.waitForFunction(
        (since) => window.__arena.events.filter((e) => e.type === "moved" && e.seq > since).length >= 5,
        seqAtCut,
      );
      await bob.page.keyboard.up(key);
      const away = await hook(ann.page);
      assert.equal(away.status, "reconnecting", "ann was offline all along");
      assert.equal(away.lastSeq, seqAtCut, "ann received nothing while offline");

      await ann.context.setOffline(false);
      await ann.page.waitForFunction(() => window.__arena.status === "connected");
      // One more live move from bob after the outage; ann must see it after everything missed.
      const before = (await hook(bob.page)).position;
      await bob.page.keyboard.press(key);
      await bob.page.waitForFunction((x) => window.__arena.position.x !== x, before.x);
      const bobEnd = (await hook(bob.page)).position;
      await waitForPosition(ann.page, bobId, bobEnd);
      await waitForPosition(bob.page, bobId, bobEnd);

      const [a, b] = [await hook(ann.page), await hook(bob.page)];
      assert.ok(
        a.state.players.some((p) => p.id === a.player),
        "ann kept her seat",
      );
      for (const [name, events] of [
        ["ann", a.events],
        ["bob", b.events],
      ]) {
        const seqs = events.map((e) => e.seq);
        assert.ok(
          seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]),
          `${name} saw each event once, in order: ${seqs}`,
        );
      }
      // Every event addressed to all, from bob's first on, is on both pages: same seqs, same types.
      const bobFirst = b.events[0].seq;
      const last = Math.min(a.lastSeq, b.lastSeq);
      const toAll = (events) => events.filter((e) => TO_ALL.has(e.type) && e.seq >= bobFirst && e.seq <= last);
      assert.deepEqual(toAll(a.events), toAll(b.events));
      const missed = toAll(a.events).filter((e) => e.seq > seqAtCut && e.type === "moved");
      assert.ok(missed.length >= 6, `ann got bob's moves made while she was offline (${missed.length})`);
      assert.equal(a.mirror, "ready", "ann's synced state is current after the resume");
      assert.deepEqual(
        a.state.players.find((p) => p.id === bobId),
        b.state.players.find((p) => p.id === bobId),
        "both pages show bob in the same place",
      );
      assert.deepEqual(a.state, b.state, "both pages hold the same synced state");
      await closeAll(ann, bob);
    },
  );

  test("without the SDK bundle the page says how to build it", { timeout: TEST_MS }, async () => {
    const context = await browser.newContext();
    contexts.add(context);
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    await page.route("**/sdk/roomwire-client.js", (route) => route.fulfill({ status: 404, body: "Not Found" }));
    await page.goto(`${server.baseUrl}/`);
    await page.waitForSelector("#notice:not([hidden])");
    assert.match(await page.textContent("#notice"), /cd clients\/js && npm ci && npm run build/);
    assert.equal(await page.isDisabled("#play"), true, "no Play button without the SDK");
    await context.close();
    contexts.delete(context);
  });
});
