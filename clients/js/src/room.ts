/**
 * A joined room as the game sees it: events by type, messages with acknowledgements, leaving.
 *
 * States and legal transitions (TRANSITIONS below is the table the code checks):
 *
 *     joining ──joined──► joined ──leave()──► leaving ──left──► left
 *        ▲                  │                                    ▲
 *        └─ socket lost ────┘        refused, ended, replaced, ──┘
 *                                    removed, client closed
 *
 * `joining` covers the first join and every rejoin after a lost socket: on each welcome the room
 * sends `join` (with `since` = last seq seen once it has been joined), then resends every message
 * not yet answered, with its id (the room answers `dup` for those it consumed). Events are delivered once each, in seq order.
 */

import {
  ConnectionError,
  ErrorCode,
  errorFromCode,
  HistoryGoneError,
  NotJoinedError,
  RoomwireError,
  TimeoutError,
} from "./errors.js";
import type { ClientFrame, EventFrame, JSONValue, JoinedFrame, ServerFrame } from "./frames.js";
import { Listeners } from "./listeners.js";
import { StateMirror, type Change, type PathItem, type PresenceStatus } from "./mirror.js";
import { RoomTracker, type PendingMessage } from "./tracker.js";

/** A room event handed to listeners. */
export interface RoomEvent<T = JSONValue> {
  /** Room id. */
  room: string;
  /** Room sequence number: increases by one per event of the room. */
  seq: number;
  /** Event type. */
  type: string;
  /** Event data. */
  data: T;
}

/** Why the client is no longer in a room. */
export interface LeaveInfo {
  /**
   * `left`: leave() was called; `ended`: the room ended; `replaced`: the same player joined from
   * another connection; `removed`: the game removed the player (or the reconnect grace ran out);
   * `closed`: client.close(); `failed`: the connection or a rejoin failed for good (see `error`).
   */
  reason: "left" | "ended" | "replaced" | "removed" | "closed" | "failed" | (string & {});
  /** The game's detail for `ended` (and `removed`). */
  detail?: string;
  /** The error behind `failed`. */
  error?: RoomwireError;
}

/** The settled outcome of a message sent with request(). */
export interface Ack {
  /** The message's client id. */
  id: number;
  /** True when the room had applied it already (a resend); its effect happened once. */
  dup: boolean;
}

/** State of a Room. */
export type RoomStatus = "joining" | "joined" | "leaving" | "left";

/** What a room needs from its client: the connection, and being forgotten when it is left. */
export interface RoomLink {
  /** True when frames can be sent now. */
  readonly isReady: boolean;
  /** Encode a frame; raises MessageTooLargeError when it can never be sent. */
  encode(frame: ClientFrame): string | Uint8Array;
  /** Send an encoded frame; false if the connection is not ready. */
  send(encoded: string | Uint8Array): boolean;
  /** The room is left: stop routing frames to it. */
  forget(room: Room): void;
}

/** Facts from the lobby needed to join. */
export interface RoomSeat {
  room: string;
  type: string;
  player: string;
  seat: string;
}

/** Options of a Room. */
export interface RoomOptions {
  /** Resume after this seq (with a rejoin seat kept from an earlier session). */
  since?: number | undefined;
  /** Time allowed for the first join (default 15000 ms). */
  joinTimeoutMs?: number | undefined;
  /** Time allowed for leave() to be confirmed (default 5000 ms). */
  leaveTimeoutMs?: number | undefined;
}

interface Waiter {
  resolve(ack: Ack): void;
  reject(error: RoomwireError): void;
}

/** A rejoin refused with `internal` (the room did not answer in time) is tried this often. */
const MAX_REJOIN_RETRIES = 5;
const REJOIN_RETRY_MS = 500;

/** Legal state transitions; a transition not listed here is a bug in this module. */
const TRANSITIONS: Readonly<Record<RoomStatus, readonly RoomStatus[]>> = {
  joining: ["joined", "left"],
  joined: ["joining", "leaving", "left"],
  leaving: ["left"],
  left: [],
};

/** A room this client is in. Get one from Client.joinOrCreate, create, join or joinSeat. */
export class Room {
  /** Room id. */
  readonly id: string;
  /** Room type name. */
  readonly type: string;
  /** This client's player id in the room. */
  readonly player: string;

  private readonly link: RoomLink;
  private readonly tracker: RoomTracker<Waiter | undefined>;
  private readonly leaveTimeoutMs: number;
  private state: RoomStatus = "joining";
  private seat: string;
  private hasJoined = false;
  private joinSent = false;
  private sinceForJoin: number | undefined;
  private joinWaiter: { resolve(): void; reject(error: RoomwireError): void } | null = null;
  private joinTimer: ReturnType<typeof setTimeout> | null = null;
  private leaveWaiters: Array<() => void> = [];
  private rejoinRetries = 0;
  private rejoinTimer: ReturnType<typeof setTimeout> | null = null;
  private leaveTimer: ReturnType<typeof setTimeout> | null = null;
  // Deliveries wait here from the first `joined` until the next macrotask, so that code after
  // `await client.joinOrCreate(...)` can add listeners before the first events are dispatched.
  private held: Array<() => void> | null = null;

  private readonly typeListeners = new Map<string, Listeners<[JSONValue, RoomEvent]>>();
  private readonly eventListeners = new Listeners<[RoomEvent]>();
  private readonly leaveListeners = new Listeners<[LeaveInfo]>();
  private readonly errorListeners = new Listeners<[RoomwireError]>();
  private readonly statusListeners = new Listeners<[RoomStatus]>();
  private readonly syncedWaiters: Array<() => void> = [];

  /**
   * A synced room's mirror (docs/protocol.md §15): its `state`, `status` (`empty`, `ready`,
   * `stale`), `seq`, `presence` and `host`. Kept by the `@state`, `@patch`, `@presence` and
   * `@host` events, which never reach on() or onEvent().
   */
  readonly mirror = new StateMirror();

  /** Made by Client (joinOrCreate, create, join, joinSeat); not meant to be called by games. */
  constructor(seat: RoomSeat, link: RoomLink, options: RoomOptions = {}) {
    this.id = seat.room;
    this.type = seat.type;
    this.player = seat.player;
    this.seat = seat.seat;
    this.link = link;
    this.tracker = new RoomTracker(options.since);
    this.sinceForJoin = options.since;
    this.leaveTimeoutMs = options.leaveTimeoutMs ?? 5_000;
    const joinTimeoutMs = options.joinTimeoutMs ?? 15_000;
    this.joinPromise = new Promise<void>((resolve, reject) => {
      this.joinWaiter = { resolve, reject };
    });
    // Avoid an unhandled rejection report when nobody awaits (the client does, normally).
    this.joinPromise.catch(() => undefined);
    this.joinTimer = setTimeout(() => {
      this.joinTimer = null;
      if (this.state !== "joining" || this.hasJoined) return;
      const error = new TimeoutError(`no answer to joining room ${this.id} in time`, ErrorCode.TIMEOUT, {
        room: this.id,
      });
      // The join may still land on the server: leave, so the seat is not held until it expires.
      this.transmit({ t: "leave", room: this.id });
      this.end({ reason: "failed", error });
    }, joinTimeoutMs);
  }

  private readonly joinPromise: Promise<void>;

  // --- public API --------------------------------------------------------------------------

  /** `joining`, `joined`, `leaving` or `left`. */
  get status(): RoomStatus {
    return this.state;
  }

  /** Seq of the last event delivered (or of the join point); 0 before the first join. */
  get lastSeq(): number {
    return this.tracker.lastSeq ?? 0;
  }

  /** The seat token to resume this room later (from `joined.rejoin`); keep it with lastSeq. */
  get rejoinToken(): string {
    return this.seat;
  }

  /** Messages sent with an id and not yet acknowledged or rejected. */
  get pendingCount(): number {
    return this.tracker.pendingCount;
  }

  /**
   * The synced room's state as the server holds it (this player's view of it): null until the
   * first `@state`. It is replaced by every `@state` and patched in place by each `@patch`, so
   * read it afresh rather than keeping parts of it. See `mirror.status` for whether it is current.
   */
  get synced(): JSONValue {
    return this.mirror.state;
  }

  /** Players of the room: id → `connected` or `reconnecting` (from `@presence`). */
  get presence(): Readonly<Record<string, "connected" | "reconnecting">> {
    return this.mirror.presence;
  }

  /** A relay room's host (from `@host`), or null. */
  get host(): string | null {
    return this.mirror.host;
  }

  /** Resolves once the mirror holds the server's state (at once if it does already). */
  whenSynced(): Promise<void> {
    if (this.mirror.ready) return Promise.resolve();
    return new Promise((resolve) => this.syncedWaiters.push(resolve));
  }

  /**
   * Call `handler(change)` when the synced state at `path` changes; `"*"` matches any key or
   * index: `onChange(["players", "*"], ...)` reports each player added (`change.added`), changed,
   * or removed (`change.removed`). A change below `path` counts as a change of `path`; a `@state`
   * reports every watched place whose value differs. Returns a function that unsubscribes.
   */
  onChange(path: PathItem | readonly PathItem[], handler: (change: Change) => void): () => void {
    return this.mirror.onChange(path, guard(handler));
  }

  /** Call `handler(key, value)` for each key or index added below `path` (an object or a list). */
  onAdd(path: PathItem | readonly PathItem[], handler: (key: PathItem, value: JSONValue) => void): () => void {
    return this.mirror.onChange(
      [...(Array.isArray(path) ? path : [path as PathItem]), "*"],
      guard((change) => {
        if (change.added) handler(change.path[change.path.length - 1] as PathItem, change.value);
      }),
    );
  }

  /** Call `handler(key)` for each key or index removed below `path` (an object or a list). */
  onRemove(path: PathItem | readonly PathItem[], handler: (key: PathItem) => void): () => void {
    return this.mirror.onChange(
      [...(Array.isArray(path) ? path : [path as PathItem]), "*"],
      guard((change) => {
        if (change.removed) handler(change.path[change.path.length - 1] as PathItem);
      }),
    );
  }

  /** Call `handler(player, status)` when a player connects, starts reconnecting, or leaves (`left`). */
  onPresence(handler: (player: string, status: PresenceStatus) => void): () => void {
    return this.mirror.onPresence(guard(handler));
  }

  /** Call `handler(host)` when a relay room's host changes. */
  onHost(handler: (host: string | null) => void): () => void {
    return this.mirror.onHost(guard(handler));
  }

  /** Call `handler(data, event)` for each event of this type; returns a function that unsubscribes. */
  on<T = JSONValue>(type: string, handler: (data: T, event: RoomEvent<T>) => void): () => void {
    let listeners = this.typeListeners.get(type);
    if (listeners === undefined) {
      listeners = new Listeners();
      this.typeListeners.set(type, listeners);
    }
    return listeners.add(handler as (data: JSONValue, event: RoomEvent) => void);
  }

  /** Call `handler(event)` for every event, in seq order; returns a function that unsubscribes. */
  onEvent(handler: (event: RoomEvent) => void): () => void {
    return this.eventListeners.add(handler);
  }

  /** Call `handler(info)` once when the client is no longer in the room. */
  onLeave(handler: (info: LeaveInfo) => void): () => void {
    return this.leaveListeners.add(handler);
  }

  /**
   * Call `handler(error)` for errors not tied to a request(): a rejected send(), an `error` frame
   * about this room, a history gap after a long disconnect (HistoryGoneError), or the failure that
   * ends the room.
   */
  onError(handler: (error: RoomwireError) => void): () => void {
    return this.errorListeners.add(handler);
  }

  /**
   * Call `handler(status)` when the room's status changes: `joining` after a lost socket,
   * `joined` once resumed, `leaving`, `left`. Returns a function that unsubscribes.
   */
  onStatus(handler: (status: RoomStatus) => void): () => void {
    return this.statusListeners.add(handler);
  }

  /**
   * Send a message with an id, without waiting: it is resent after a reconnect until the room
   * applies it once. Returns the id; a rejection is reported to onError with `.id` set.
   *
   * Raises NotJoinedError after leave, MessageTooLargeError when it is over the frame limit.
   */
  send(type: string, data?: JSONValue): number {
    return this.enqueue(type, data, undefined).id;
  }

  /**
   * Send a message with an id and wait until the room applied it (resolves with the Ack) or
   * refused it (rejects with RejectedError, ValidationError, UnknownMessageTypeError, ...).
   *
   * A message still unacknowledged when the room is left rejects with NotJoinedError (or the
   * error that ended the room); it may or may not have been applied.
   */
  request(type: string, data?: JSONValue): Promise<Ack> {
    return new Promise<Ack>((resolve, reject) => {
      this.enqueue(type, data, { resolve, reject });
    });
  }

  /** Leave the room for good; resolves when the server confirmed (or at once when offline). */
  leave(): Promise<void> {
    if (this.state === "left") return Promise.resolve();
    const done = new Promise<void>((resolve) => this.leaveWaiters.push(resolve));
    if (this.state === "leaving") return done;
    if (this.state === "joined" && this.transmit({ t: "leave", room: this.id })) {
      this.move("leaving");
      this.leaveTimer = setTimeout(() => this.end({ reason: "left" }), this.leaveTimeoutMs);
    } else {
      // Not connected: the server drops the seat when its reconnect grace runs out.
      this.end({ reason: "left" });
    }
    return done;
  }

  // --- driven by the client ----------------------------------------------------------------

  /** @internal Resolves when the first join succeeds; rejects when it fails. */
  joined(): Promise<void> {
    return this.joinPromise;
  }

  /** @internal The connection is (again) ready: send the join or rejoin. */
  connectionReady(): void {
    if (this.state !== "joining" || this.joinSent) return;
    const since = this.hasJoined ? this.tracker.resumeFrom() : this.sinceForJoin;
    const frame: ClientFrame =
      since === undefined
        ? { t: "join", room: this.id, seat: this.seat }
        : { t: "join", room: this.id, seat: this.seat, since };
    this.joinSent = this.transmit(frame);
  }

  /** @internal The socket was lost: rejoin on the next welcome. */
  connectionLost(): void {
    this.joinSent = false;
    this.clearRejoinTimer();
    if (this.state === "joined") this.move("joining");
    else if (this.state === "leaving") this.end({ reason: "left" });
  }

  /** @internal The connection is closed for good (`error` null: client.close()). */
  connectionClosed(error: RoomwireError | null): void {
    if (this.state === "left") return;
    if (error === null) this.end({ reason: "closed" });
    else this.end({ reason: "failed", error });
  }

  /** @internal A frame for this room. */
  receive(frame: ServerFrame): void {
    switch (frame.t) {
      case "joined":
        this.onJoined(frame);
        break;
      case "event":
        this.handleEvent(frame);
        break;
      case "ack":
        this.settle(frame.id, null, frame.dup === true);
        break;
      case "reject":
        this.settle(
          frame.id,
          errorFromCode(frame.code, frame.message, {
            room: this.id,
            id: frame.id,
            ...(frame.ref ? { ref: frame.ref } : {}),
          }),
          false,
        );
        break;
      case "left":
        this.end(
          frame.detail === undefined || frame.detail === null
            ? { reason: frame.reason }
            : { reason: frame.reason, detail: frame.detail },
        );
        break;
      case "error":
        this.onErrorFrame(
          errorFromCode(frame.code, frame.message, { room: this.id, ...(frame.ref ? { ref: frame.ref } : {}) }),
        );
        break;
      default:
        break;
    }
  }

  // --- internals ---------------------------------------------------------------------------

  private enqueue(type: string, data: JSONValue, waiter: Waiter | undefined): PendingMessage<Waiter | undefined> {
    if (this.state === "leaving" || this.state === "left") {
      const error = new NotJoinedError(`cannot send ${type}: the room ${this.id} was left`, ErrorCode.NOT_JOINED, {
        room: this.id,
      });
      if (waiter === undefined) throw error;
      waiter.reject(error);
      return { id: 0, type, data, waiter };
    }
    const id = this.tracker.nextId;
    let encoded: string | Uint8Array;
    try {
      encoded = this.link.encode(msgFrame(this.id, id, type, data));
    } catch (exc) {
      if (waiter === undefined) throw exc;
      waiter.reject(exc as RoomwireError);
      return { id: 0, type, data, waiter };
    }
    const message = this.tracker.add(type, data, waiter);
    // Queued while (re)joining: the `joined` handler sends every message the room lacks.
    if (this.state === "joined") this.link.send(encoded);
    return message;
  }

  private onJoined(frame: JoinedFrame): void {
    if (this.state !== "joining") return;
    this.seat = frame.rejoin;
    this.joinSent = false;
    const outcome = this.tracker.joined(frame);
    const first = !this.hasJoined;
    this.hasJoined = true;
    this.move("joined");
    if (first) {
      this.clearJoinTimer();
      this.held = [];
      setTimeout(() => this.release(), 0);
      this.joinWaiter?.resolve();
      this.joinWaiter = null;
    }
    this.rejoinRetries = 0;
    if (outcome.isBehind) {
      this.deliver(() => this.mirror.invalidate());
      this.report(
        new HistoryGoneError(
          `room ${this.id} is at seq ${frame.seq}, behind the seq this client had seen: events were lost`,
          ErrorCode.HISTORY_GONE,
          { room: this.id },
        ),
      );
    }
    for (const message of outcome.resend) {
      this.transmit(msgFrame(this.id, message.id, message.type, message.data));
    }
  }

  private handleEvent(frame: EventFrame): void {
    if (this.state === "left" || !this.tracker.acceptEvent(frame.seq)) return;
    const event: RoomEvent = { room: this.id, seq: frame.seq, type: frame.type, data: frame.data ?? null };
    this.deliver(() => {
      // Sync events update the mirror (and its callbacks) only: the game never sees them.
      if (this.mirror.onEvent(event.seq, event.type, event.data)) {
        if (this.mirror.ready) for (const resolve of this.syncedWaiters.splice(0)) resolve();
        return;
      }
      this.eventListeners.emit(event);
      this.typeListeners.get(event.type)?.emit(event.data, event);
    });
  }

  private onErrorFrame(error: RoomwireError): void {
    if (this.state === "joining") {
      if (error.code === ErrorCode.HISTORY_GONE && this.hasJoined) {
        // The gap is too old to replay: join afresh (the game should send a full state on join).
        const lastSeen = this.lastSeq;
        this.tracker.forgetPosition();
        this.deliver(() => this.mirror.invalidate()); // patches do not fit now: wait for the join's @state
        this.joinSent = false;
        this.report(
          new HistoryGoneError(
            `events of room ${this.id} after seq ${lastSeen} are no longer kept: joined afresh`,
            ErrorCode.HISTORY_GONE,
            { room: this.id },
          ),
        );
        this.connectionReady();
        return;
      }
      if (
        this.joinSent &&
        error.code === ErrorCode.INTERNAL &&
        this.hasJoined &&
        this.rejoinRetries < MAX_REJOIN_RETRIES
      ) {
        // The room did not answer in time (or failed once): the place is kept for the reconnect
        // grace, so try again shortly instead of giving the room up.
        this.rejoinRetries += 1;
        this.joinSent = false;
        this.report(error);
        this.rejoinTimer = setTimeout(() => {
          this.rejoinTimer = null;
          this.connectionReady();
        }, REJOIN_RETRY_MS * this.rejoinRetries);
        return;
      }
      if (this.joinSent) {
        this.end({ reason: "failed", error });
        return;
      }
    }
    // Joined, but the replay found the history gone: live events follow after a gap.
    if (error.code === ErrorCode.HISTORY_GONE) this.deliver(() => this.mirror.invalidate());
    this.report(error);
  }

  private settle(id: number, error: RoomwireError | null, dup: boolean): void {
    const message = this.tracker.settle(id);
    if (message === undefined) return;
    if (error === null) {
      message.waiter?.resolve({ id, dup });
    } else if (message.waiter !== undefined) {
      message.waiter.reject(error);
    } else {
      this.report(error);
    }
  }

  /** Enter `left` once: fail what waits, tell the listeners, and unhook from the client. */
  private end(info: LeaveInfo): void {
    if (this.state === "left") return;
    this.move("left");
    this.clearJoinTimer();
    this.clearRejoinTimer();
    if (this.leaveTimer !== null) clearTimeout(this.leaveTimer);
    this.leaveTimer = null;
    this.link.forget(this);
    const failure =
      info.error ??
      (info.reason === "ended"
        ? errorFromCode(ErrorCode.ROOM_CLOSED, `room ${this.id} ended`, { room: this.id })
        : new NotJoinedError(
            `left room ${this.id} (${info.reason}) before the message was acknowledged`,
            ErrorCode.NOT_JOINED,
            {
              room: this.id,
            },
          ));
    for (const message of this.tracker.drain()) message.waiter?.reject(failure);
    if (this.joinWaiter !== null) {
      this.joinWaiter.reject(info.error ?? failure);
      this.joinWaiter = null;
      return; // never joined: the caller gets the error, there is no room to leave
    }
    const waiters = this.leaveWaiters;
    this.leaveWaiters = [];
    this.deliver(() => {
      if (info.error !== undefined) this.errorListeners.emit(info.error);
      this.leaveListeners.emit(info);
      for (const resolve of waiters) resolve();
    });
  }

  private report(error: RoomwireError): void {
    this.deliver(() => {
      this.errorListeners.emit(error);
    });
  }

  private deliver(fn: () => void): void {
    if (this.held !== null) this.held.push(fn);
    else fn();
  }

  private release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const fn of held) fn();
  }

  private transmit(frame: ClientFrame): boolean {
    if (!this.link.isReady) return false;
    try {
      return this.link.send(this.link.encode(frame));
    } catch (exc) {
      this.report(exc instanceof RoomwireError ? exc : new ConnectionError(String(exc)));
      return false;
    }
  }

  private move(next: RoomStatus): void {
    if (next === this.state) return;
    if (!TRANSITIONS[this.state].includes(next)) {
      throw new Error(`roomwire-client bug: room status ${this.state} -> ${next} is not allowed`);
    }
    this.state = next;
    this.deliver(() => this.statusListeners.emit(next));
  }

  private clearRejoinTimer(): void {
    if (this.rejoinTimer !== null) clearTimeout(this.rejoinTimer);
    this.rejoinTimer = null;
  }

  private clearJoinTimer(): void {
    if (this.joinTimer !== null) clearTimeout(this.joinTimer);
    this.joinTimer = null;
  }
}

/** A user callback that cannot break the SDK: its error is reported from a fresh task. */
function guard<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (exc) {
      setTimeout(() => {
        throw exc;
      }, 0);
    }
  };
}

function msgFrame(room: string, id: number, type: string, data: JSONValue): ClientFrame {
  return data === undefined ? { t: "msg", room, type, id } : { t: "msg", room, type, data, id };
}
