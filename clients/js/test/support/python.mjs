// Finding the project's Python (with roomwire installed) for tests that need the real server side.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The repository root (clients/js/test/support → four levels up). */
export const REPO_ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

/** Path of a venv executable: $ROOMWIRE_VENV/bin/NAME, default <repo>/.venv/bin/NAME. */
export function venvBin(name) {
  const venv = process.env.ROOMWIRE_VENV ?? `${REPO_ROOT}.venv`;
  return `${venv}/bin/${name}`;
}

/**
 * Why `command args` cannot run here, or null when it can.
 *
 * Tests skip with this reason on a developer's machine; under CI (env CI set) they fail instead,
 * so a broken setup can never pass as "skipped".
 */
export function unavailable(command, args) {
  if (!existsSync(command)) return `${command} does not exist (set ROOMWIRE_VENV to the project's venv)`;
  const probe = spawnSync(command, args, { encoding: "utf8", timeout: 60_000 });
  if (probe.status === 0) return null;
  const output = `${probe.stderr ?? ""}${probe.stdout ?? ""}`.trim().split("\n").slice(-1)[0];
  return `\`${command} ${args.join(" ")}\` failed: ${output || probe.error?.message || `exit ${probe.status}`}`;
}

/** Options for node:test's `test()`: skip with the reason, or throw under CI. */
export function requireOrSkip(reason) {
  if (reason === null) return {};
  if (process.env.CI) throw new Error(`required under CI: ${reason}`);
  console.log(`# skipped: ${reason}`);
  return { skip: reason };
}
