// Starts a real roomwire server (`roomwire run examples/arena/app.py`) on a free port for a test.

import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";

import { REPO_ROOT, requireOrSkip, unavailable, venvBin } from "./python.mjs";

const ROOMWIRE = venvBin("roomwire");
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

/** node:test options that skip (or fail under CI) when the roomwire command does not work. */
export function serverTestOptions() {
  return requireOrSkip(unavailable(ROOMWIRE, ["--version"]));
}

async function freePort() {
  const probe = net.createServer();
  probe.listen(0, "127.0.0.1");
  await once(probe, "listening");
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A running server; `stop()` ends it (and its process group) and waits for the exit. */
export class RoomwireServer {
  baseUrl;
  output = "";
  #child;
  #exited;

  /** Start `roomwire run APP --port <free>` and resolve once it prints its URL. */
  static async start(app = "examples/arena/app.py") {
    const server = new RoomwireServer();
    const port = await freePort();
    server.baseUrl = `http://127.0.0.1:${port}`;
    // Own process group (detached), so stop() also ends anything the CLI started.
    server.#child = spawn(ROOMWIRE, ["run", app, "--port", String(port), "--no-reload", "--log-level", "warning"], {
      cwd: REPO_ROOT,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    server.#exited = once(server.#child, "exit");
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        server.stop();
        reject(new Error(`roomwire did not print its URL within ${READY_TIMEOUT_MS} ms:\n${server.output}`));
      }, READY_TIMEOUT_MS);
      const onData = (chunk) => {
        server.output += chunk;
        if (server.output.includes(server.baseUrl)) {
          clearTimeout(timer);
          resolve();
        }
      };
      server.#child.stdout.setEncoding("utf8").on("data", onData);
      server.#child.stderr.setEncoding("utf8").on("data", onData);
      server.#child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`roomwire exited with ${code} before it was ready:\n${server.output}`));
      });
    });
    return server;
  }

  /** Stop the server: SIGTERM to its process group, SIGKILL if it is still there after a while. */
  async stop() {
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    signalGroup(child.pid, "SIGTERM");
    const timer = setTimeout(() => signalGroup(child.pid, "SIGKILL"), STOP_TIMEOUT_MS);
    await this.#exited;
    clearTimeout(timer);
  }
}

function signalGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch (exc) {
    if (exc.code !== "ESRCH") throw exc; // ESRCH: already gone
  }
}
