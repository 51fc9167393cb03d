/**
 * The mirror of a synced room (docs/protocol.md §15): the room's state (or this player's view of
 * it) kept by its `@state` and `@patch` events, with change callbacks, plus presence (`@presence`)
 * and the relay host (`@host`).
 *
 * A port of the Python SDK's `roomwire.protocol.mirror.StateMirror` and `protocol.patch`, with
 * the same statuses and callback semantics: `empty` (no `@state` yet) → `ready` on `@state`;
 * `ready` → `stale` on a history gap (`invalidate`) or a patch that does not fit; `stale` →
 * `ready` on the next `@state` (every join, rejoin and resume brings one). Patches are ignored
 * unless ready. No I/O: the Room feeds it events in seq order.
 */

import type { JSONValue } from "./frames.js";

/** One item of a state path: an object key, or a list index. */
export type PathItem = string | number;

/** `empty` until the first `@state`, `ready` while equal to the server's, `stale` after a gap. */
export type MirrorStatus = "empty" | "ready" | "stale";

/** A player's presence: `left` is only reported to callbacks (the player is then gone). */
export type PresenceStatus = "connected" | "reconnecting" | "left";

/** In an onChange path: any key of an object, or any index of a list. */
export const ANY = "*";

/** The event types the mirror consumes: they never reach the room's ordinary listeners. */
export const STATE_EVENT = "@state";
export const PATCH_EVENT = "@patch";
export const PRESENCE_EVENT = "@presence";
export const HOST_EVENT = "@host";

/** One changed place of the mirrored state. */
export interface Change {
  /** The concrete path that changed (a `"*"` of the pattern is replaced by the key or index). */
  readonly path: readonly PathItem[];
  /** The new value there (undefined when removed). */
  readonly value: JSONValue | undefined;
  /** True when the place no longer exists (a key deleted, a list shortened). */
  readonly removed: boolean;
  /** True when the place did not exist before (a key or an element added). */
  readonly added: boolean;
}

/** A patch operation that does not fit the mirror (a missing path, a malformed operation). */
export class PatchError extends Error {
  override name = "PatchError";
}

type Watcher = { pattern: readonly PathItem[]; fn: (change: Change) => void };
type Node = JSONValue | undefined;

const ABSENT = Symbol("absent");
type Maybe = Node | typeof ABSENT;

/** The mirrored state of one room for this player. */
export class StateMirror {
  /** The state (this player's view of it); null until the first `@state`. */
  state: JSONValue = null;
  /** See MirrorStatus. */
  status: MirrorStatus = "empty";
  /** Room seq of the last `@state` or `@patch` applied. */
  seq = 0;
  /** Who is in the room: player id → `connected` or `reconnecting` (from `@presence`). */
  presence: Record<string, "connected" | "reconnecting"> = {};
  /** The relay room's host (from `@host`): null when there is none or none is known. */
  host: string | null = null;

  private readonly watchers: Watcher[] = [];
  private readonly presenceWatchers: Array<(player: string, status: PresenceStatus) => void> = [];
  private readonly hostWatchers: Array<(host: string | null) => void> = [];

  /** True when `state` equals the server's (view of the) state at the last event fed. */
  get ready(): boolean {
    return this.status === "ready";
  }

  /**
   * Call `fn(change)` whenever the value at `path` changes; returns a function that stops it.
   *
   * `path` is a key or an array of keys/indexes; `"*"` matches any key or index, so
   * `["players", "*"]` reports each player added (`added`), changed, or removed (`removed`).
   * A change below `path` counts as a change of `path`. A `@state` reports every watched place
   * whose value differs from before.
   */
  onChange(path: PathItem | readonly PathItem[], fn: (change: Change) => void): () => void {
    const entry: Watcher = { pattern: Array.isArray(path) ? [...path] : [path as PathItem], fn };
    this.watchers.push(entry);
    return () => remove(this.watchers, entry);
  }

  /** Call `fn(player, status)` for each player whose presence changes (`left`: gone). */
  onPresence(fn: (player: string, status: PresenceStatus) => void): () => void {
    this.presenceWatchers.push(fn);
    return () => remove(this.presenceWatchers, fn);
  }

  /** Call `fn(host)` when the relay room's host changes. */
  onHost(fn: (host: string | null) => void): () => void {
    this.hostWatchers.push(fn);
    return () => remove(this.hostWatchers, fn);
  }

  /** Feed one room event (in seq order); true if it was a sync event the game must not see. */
  onEvent(seq: number, type: string, data: JSONValue): boolean {
    if (type.charCodeAt(0) !== 64 /* "@" */) return false;
    switch (type) {
      case STATE_EVENT:
        this.status = "ready"; // before the callbacks run: they see a current mirror
        this.apply([["set", [], data]], seq);
        return true;
      case PATCH_EVENT:
        if (this.status === "ready") {
          try {
            if (!Array.isArray(data)) throw new PatchError(`a @patch carries a list of operations`);
            this.apply(data, seq);
          } catch (exc) {
            if (!(exc instanceof PatchError)) throw exc;
            this.status = "stale"; // wait for the next @state (docs/protocol.md §15)
          }
        }
        return true;
      case PRESENCE_EVENT:
        this.setPresence(isObject(data) ? data : {});
        return true;
      case HOST_EVENT: {
        const player = isObject(data) && typeof data["player"] === "string" ? data["player"] : null;
        if (player !== this.host) {
          this.host = player;
          for (const fn of [...this.hostWatchers]) fn(player);
        }
        return true;
      }
      default:
        return false; // an `@` type this SDK does not know: hand it to the game
    }
  }

  /** Events were missed (a history gap): patches are ignored until the next `@state`. */
  invalidate(): void {
    if (this.status === "ready") this.status = "stale";
  }

  private setPresence(next: Record<string, JSONValue>): void {
    const old = this.presence;
    const now: Record<string, "connected" | "reconnecting"> = {};
    for (const [id, status] of Object.entries(next)) now[id] = status === "reconnecting" ? "reconnecting" : "connected";
    this.presence = now;
    const changes: Array<[string, PresenceStatus]> = [];
    for (const [id, status] of Object.entries(now)) if (old[id] !== status) changes.push([id, status]);
    for (const id of Object.keys(old)) if (!(id in now)) changes.push([id, "left"]);
    for (const [id, status] of changes) for (const fn of [...this.presenceWatchers]) fn(id, status);
  }

  private apply(ops: JSONValue[], seq: number): void {
    if (this.watchers.length === 0) {
      this.state = applyPatch(this.state, ops);
      this.seq = seq;
      return;
    }
    // Per concrete watched path: its value before the first op that touched it, and whether an
    // op below it changed it in place (then old and new are the same object).
    const before = new Map<string, { path: PathItem[]; old: Maybe }>();
    const inside = new Set<string>();
    for (const op of ops) {
      const opPath = Array.isArray(op) && op.length > 1 && Array.isArray(op[1]) ? (op[1] as PathItem[]) : [];
      for (const [path, isInside] of this.touched(opPath, this.state)) {
        const key = JSON.stringify(path);
        if (!before.has(key)) before.set(key, { path, old: valueAt(this.state, path) });
        if (isInside) inside.add(key);
      }
      this.state = applyPatch(this.state, [op]);
      for (const [path] of this.touched(opPath, this.state)) {
        const key = JSON.stringify(path);
        if (!before.has(key)) before.set(key, { path, old: ABSENT }); // appeared with this op
      }
    }
    this.seq = seq;
    for (const [key, { path, old }] of before) {
      const now = valueAt(this.state, path);
      if (!inside.has(key) && (old === now || deepEqual(old, now))) continue;
      const change: Change = {
        path,
        value: now === ABSENT ? undefined : now,
        removed: now === ABSENT,
        added: old === ABSENT,
      };
      for (const { pattern, fn } of [...this.watchers]) if (matches(pattern, path)) fn(change);
    }
  }

  /** Concrete watched paths an op at `opPath` may change in `root`, and whether from inside. */
  private touched(opPath: readonly PathItem[], root: JSONValue): Array<[PathItem[], boolean]> {
    const out: Array<[PathItem[], boolean]> = [];
    for (const { pattern } of this.watchers) {
      if (opPath.length > pattern.length) {
        // The op is below the watched place.
        const head = opPath.slice(0, pattern.length);
        if (matches(pattern, head)) out.push([head, true]);
        continue;
      }
      if (!matches(pattern.slice(0, opPath.length), opPath)) continue;
      // The op replaces an ancestor of (or the) watched place: expand the rest of the pattern
      // over what `root` holds there.
      let paths: PathItem[][] = [[...opPath]];
      for (const item of pattern.slice(opPath.length)) {
        if (item !== ANY) {
          paths = paths.map((p) => [...p, item]);
          continue;
        }
        const grown: PathItem[][] = [];
        for (const p of paths) {
          const node = valueAt(root, p);
          if (Array.isArray(node)) for (let i = 0; i < node.length; i++) grown.push([...p, i]);
          else if (isObject(node)) for (const k of Object.keys(node)) grown.push([...p, k]);
        }
        paths = grown;
      }
      for (const p of paths) out.push([p, false]);
    }
    return out;
  }
}

/**
 * Apply patch operations to `state` in place and return the new root (a `[]` path replaces it).
 *
 * Throws PatchError for an operation that is malformed or whose path does not exist; `state`
 * may then be partly patched (the caller must get a whole state again).
 */
export function applyPatch(state: JSONValue, ops: readonly JSONValue[]): JSONValue {
  for (const op of ops) {
    if (!Array.isArray(op) || op.length < 2 || !Array.isArray(op[1])) {
      throw new PatchError(`malformed patch operation ${show(op)}`);
    }
    const [kind, path] = op as [JSONValue, PathItem[]];
    if (kind === "set" && op.length === 3) {
      const value = op[2] as JSONValue;
      if (path.length === 0) {
        state = value;
        continue;
      }
      const [parent, key] = parentOf(state, path);
      if (isObject(parent) && typeof key === "string") {
        // defineProperty: a "__proto__" key is data here, not the object's prototype.
        Object.defineProperty(parent, key, { value, writable: true, enumerable: true, configurable: true });
      } else if (Array.isArray(parent) && isIndex(key) && key <= parent.length) {
        parent[key] = value; // replace, or append at the length
      } else {
        throw new PatchError(`cannot set ${show(path)}: no such place in the state`);
      }
    } else if (kind === "del" && op.length === 2 && path.length > 0) {
      const [parent, key] = parentOf(state, path);
      if (!has(parent, key)) throw new PatchError(`cannot delete ${show(path)}: no such place in the state`);
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete (parent as Record<string, JSONValue>)[key as string];
    } else {
      throw new PatchError(`malformed patch operation ${show(op)}`);
    }
  }
  return state;
}

/** Structural equality of plain data (objects by own keys, arrays by index). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

function parentOf(state: JSONValue, path: readonly PathItem[]): [JSONValue, PathItem] {
  let node: JSONValue = state;
  for (const item of path.slice(0, -1)) {
    if (!has(node, item)) throw new PatchError(`patch path ${show(path)} does not exist in the state`);
    node = (node as Record<string, JSONValue>)[item as string] as JSONValue;
  }
  return [node, path[path.length - 1] as PathItem];
}

/** True when `key` names an existing place in `node` (a key of an object, an index of a list). */
function has(node: unknown, key: unknown): boolean {
  if (Array.isArray(node)) return isIndex(key) && key < node.length;
  return isObject(node) && typeof key === "string" && Object.prototype.hasOwnProperty.call(node, key);
}

function valueAt(root: JSONValue, path: readonly PathItem[]): Maybe {
  let node: JSONValue = root;
  for (const item of path) {
    if (!has(node, item)) return ABSENT;
    node = (node as Record<string, JSONValue>)[item as string] as JSONValue;
  }
  return node;
}

function matches(pattern: readonly PathItem[], path: readonly PathItem[]): boolean {
  return pattern.length === path.length && pattern.every((q, i) => q === ANY || q === path[i]);
}

function isIndex(key: unknown): key is number {
  return typeof key === "number" && Number.isInteger(key) && key >= 0;
}

function isObject(value: unknown): value is Record<string, JSONValue> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function remove<T>(list: T[], item: T): void {
  const at = list.indexOf(item);
  if (at >= 0) list.splice(at, 1);
}

function show(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
