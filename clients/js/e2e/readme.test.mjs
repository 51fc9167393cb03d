// The README's browser block ("From a web page") as printed, in Chromium, against the arena:
// its module script is taken from README.md and run in a page of the arena's origin, so its
// `/sdk/roomwire-client.js` import and `location.origin` mean what they mean on the arena's page.
// It must log its own player's `moved` event (the arena's rules accepted its move) and raise
// nothing. Skipped with the reason when Chromium, the SDK bundle or the roomwire command is
// missing; under CI (env CI set) those fail instead.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { REPO_ROOT, requireOrSkip } from "../test/support/python.mjs";
import { RoomwireServer, serverTestOptions } from "../test/support/server.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const BUNDLE = fileURLToPath(new URL("../dist/roomwire-client.js", import.meta.url));
const WAIT_MS = 15_000;
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];

function setupOptions() {
  const server = serverTestOptions();
  if (server.skip) return server;
  if (!existsSync(CHROMIUM)) return requireOrSkip(`${CHROMIUM} is missing (apt-get install chromium)`);
  if (!existsSync(BUNDLE)) return requireOrSkip(`${BUNDLE} is missing (npm run build)`);
  return {};
}

/** The body of the README's one html block's module script. */
function readmeScript() {
  const readme = readFileSync(`${REPO_ROOT}README.md`, "utf8");
  const blocks = [...readme.matchAll(/```html\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.equal(blocks.length, 1, "README.md should have one html block");
  const script = blocks[0].match(/<script type="module">([\s\S]*?)<\/script>/);
  assert.ok(script, "the html block should hold a module script");
  return script[1];
}

describe("the README's browser block", { ...setupOptions(), timeout: 120_000 }, () => {
  let server;
  let browser;

  before(async () => {
    server = await RoomwireServer.start("examples/arena/app.py");
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("joins the arena and makes a move the arena's rules accept", async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const errors = [];
      const logs = [];
      page.on("pageerror", (error) => errors.push(error));
      page.on("console", (message) => logs.push(message.text()));
      // A page of the arena's origin that runs no client of its own.
      await page.goto(`${server.baseUrl}/rules`);
      await page.addScriptTag({ type: "module", content: readmeScript() });
      const deadline = Date.now() + WAIT_MS;
      while (!logs.some((line) => line.includes("moved to")) && errors.length === 0) {
        assert.ok(Date.now() < deadline, `no "moved to" log within ${WAIT_MS} ms; console: ${logs.join(" | ")}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.deepEqual(errors, []);
      assert.match(logs.find((line) => line.includes("moved to")), /^\S+ moved to \d+(\.\d+)? \d+(\.\d+)?$/);
    } finally {
      await context.close();
    }
  });
});
