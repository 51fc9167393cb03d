/**
 * One WebSocket to a roomwire gateway: handshake, heartbeat, and reconnect with backoff.
 *
 * States and legal transitions (TRANSITIONS below is the table the code checks):
 *
 *     idle ──open()──► connecting ──welcome──► connected ──socket lost──► reconnecting
 *       ▲                  │                      ▲                          │
 *       ├── first attempt ─┘                      └────────── welcome ───────┘
 *       │   failed
 *       └── socket lost (or retry due) while the owner needs no connection (no rooms left)
 *
 *                                    any ──close() or fatal close code──► closed
 *
 * A connection that never got a `welcome` goes back to idle and rejects its waiters: a broken URL
 * or server fails fast instead of retrying forever. Once it has been connected, a lost socket is
 * reopened with exponential backoff and jitter, and the owner resumes its rooms on each welcome.
 * Close codes 4000 protocol, 4001 unauthorized, 4004 flooding (and WebSocket-level faults) are
 * final: reconnecting would be refused again.
 */

import { codecFor, encodedSize, type Codec, type CodecName } from "./codec.js";
import {
  ConnectionError,
  ErrorCode,
  isFatalCloseCode,
  MessageTooLargeError,
  ProtocolError,
  RoomwireError,
  TimeoutError,
  errorFromCode,
} from "./errors.js";
import { PROTOCOL_VERSION, type ClientFrame, type ServerFrame, type WelcomeFrame } from "./frames.js";

/** The parts of the browser WebSocket API the SDK uses; the `ws` package's class fits too. */
export interface WebSocketLike {
  readonly protocol: string;
  readonly readyState: number;
  binaryType: string;
  send(data: string | ArrayBufferLike | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}

/** A WebSocket class: the browser's global one, or `ws` in Node versions without it. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** How the connection comes back after losing its socket. */
export interface ReconnectOptions {
  /** Delay before the second attempt (the first is made at once), doubled per attempt (default 50 ms). */
  initialDelayMs?: number;
  /** Longest delay between attempts (default 5000 ms). */
  maxDelayMs?: number;
  /** Attempts in a row before giving up for good (default: never give up). */
  maxAttempts?: number;
}

/** Status of the connection, as `Client.onStatus` reports it. */
export type ConnectionStatus = "idle" | "connecting" | "connected" | "reconnecting" | "closed";

/** Options of a Connection. */
export interface ConnectionOptions {
  codec?: CodecName | undefined;
  WebSocket?: WebSocketConstructor | undefined;
  /** Name sent in `hello.client`. */
  clientName?: string | undefined;
  /** Time allowed from opening the socket to `welcome` (default 10000 ms). */
  handshakeTimeoutMs?: number | undefined;
  /** Reconnect policy, or false to never reconnect. */
  reconnect?: ReconnectOptions | false | undefined;
}

/** What the owner of a connection is told; every callback is optional to implement. */
export interface ConnectionHandlers {
  /** A handshake completed (the first one, or after a reconnect): join or rejoin rooms now. */
  welcomed(welcome: WelcomeFrame): void;
  /** A frame arrived after the handshake. */
  frame(frame: ServerFrame): void;
  /** The socket was lost; `error` says why. A reconnect follows unless `closed` is called. */
  lost(error: RoomwireError): void;
  /** The connection is closed for good; `error` is null after `close()`. */
  closed(error: RoomwireError | null): void;
  /** The status changed. */
  status(status: ConnectionStatus): void;
  /** Something went wrong that does not end the connection (an undecodable frame). */
  problem(error: RoomwireError): void;
  /** True while the owner needs the connection (it is in rooms); otherwise a lost one stays idle. */
  isNeeded(): boolean;
}

/** Legal status transitions; a transition not listed here is a bug in this module. */
const TRANSITIONS: Readonly<Record<ConnectionStatus, readonly ConnectionStatus[]>> = {
  idle: ["connecting", "closed"],
  connecting: ["connected", "idle", "closed"],
  connected: ["reconnecting", "idle", "closed"],
  reconnecting: ["connected", "idle", "closed"],
  closed: [],
};

const DEFAULT_HEARTBEAT_S = 15;
const DEFAULT_MAX_FRAME_BYTES = 64 * 1024;
const CLIENT_NAME = "roomwire-client-js/0.1.0";
const OPEN = 1;

interface Waiter {
  resolve(): void;
  reject(error: RoomwireError): void;
}

/** A self-healing WebSocket speaking roomwire frames. */
export class Connection {
  readonly codec: Codec;
  private readonly urls: readonly string[];
  private urlIndex = 0;
  private readonly handlers: ConnectionHandlers;
  private readonly WebSocketClass: WebSocketConstructor;
  private readonly clientName: string;
  private readonly handshakeTimeoutMs: number;
  private readonly reconnect: Required<ReconnectOptions> | false;

  private state: ConnectionStatus = "idle";
  private socket: WebSocketLike | null = null;
  private isWelcomed = false;
  private welcome: WelcomeFrame | null = null;
  private attempts = 0;
  private waiters: Waiter[] = [];
  private handshakeTimer: ReturnType<typeof setTimeout> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private lastSentMs = 0;
  private lastReceivedMs = 0;
  private pingId = 0;

  /**
   * `urls`: WebSocket URLs of the servers of one deployment; the first is used until a connection
   * attempt fails or a server goes away (1001), then the next one, in turn.
   */
  constructor(urls: string | readonly string[], handlers: ConnectionHandlers, options: ConnectionOptions = {}) {
    this.urls = typeof urls === "string" ? [urls] : [...urls];
    if (this.urls.length === 0) throw new TypeError("a connection needs at least one URL");
    this.handlers = handlers;
    this.codec = codecFor(options.codec ?? "json");
    const WebSocketClass =
      options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? undefined;
    if (WebSocketClass === undefined) {
      throw new TypeError(
        "no global WebSocket in this runtime: pass { WebSocket } in the client options " +
          "(in Node 20: import { WebSocket } from 'ws')",
      );
    }
    this.WebSocketClass = WebSocketClass;
    this.clientName = options.clientName ?? CLIENT_NAME;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
    this.reconnect =
      options.reconnect === false
        ? false
        : {
            initialDelayMs: options.reconnect?.initialDelayMs ?? 50,
            maxDelayMs: options.reconnect?.maxDelayMs ?? 5_000,
            maxAttempts: options.reconnect?.maxAttempts ?? Number.POSITIVE_INFINITY,
          };
  }

  /** Current status. */
  get status(): ConnectionStatus {
    return this.state;
  }

  /** True when frames can be sent now (the handshake is done and the socket is open). */
  get isReady(): boolean {
    return this.state === "connected";
  }

  /** The server's limit for one frame this client sends (from `welcome`). */
  get maxFrameBytes(): number {
    return this.welcome?.max_frame_bytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /**
   * Resolve once the connection is ready, opening it when idle.
   *
   * Rejects with ConnectionError when the first attempt fails or the connection is closed for
   * good, with TimeoutError when the server does not finish the handshake in time.
   */
  open(): Promise<void> {
    if (this.state === "connected") return Promise.resolve();
    if (this.state === "closed") {
      return Promise.reject(new ConnectionError("the client is closed", ErrorCode.CONNECTION_CLOSED));
    }
    const ready = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.state === "idle") {
      this.setStatus("connecting");
      this.openSocket();
    }
    return ready;
  }

  /**
   * Encode a frame and check it against the connection's frame limit.
   *
   * Raises MessageTooLargeError when the frame is too large to ever be accepted.
   */
  encode(frame: ClientFrame): string | Uint8Array {
    const encoded = this.codec.encode(frame);
    const size = encodedSize(encoded);
    if (size > this.maxFrameBytes) {
      const room = "room" in frame ? frame.room : undefined;
      throw new MessageTooLargeError(
        `a ${frame.t} frame of ${size} bytes exceeds the server's limit of ${this.maxFrameBytes} bytes`,
        ErrorCode.MESSAGE_TOO_LARGE,
        room === undefined ? {} : { room },
      );
    }
    return encoded;
  }

  /** Send an encoded frame if the connection is ready; false when it is not (nothing sent). */
  send(encoded: string | Uint8Array): boolean {
    const socket = this.socket;
    if (this.state !== "connected" || socket === null || socket.readyState !== OPEN) return false;
    socket.send(encoded);
    this.lastSentMs = Date.now();
    return true;
  }

  /** Drop the current socket as if the network failed; the usual reconnect follows. */
  dropSocket(reason = "dropped by the client"): void {
    if (this.socket === null || this.state === "closed") return;
    this.onSocketGone(this.socket, 1006, reason);
  }

  /** Close for good: no reconnect; rooms are told with `closed(null)`. */
  close(): void {
    if (this.state === "closed") return;
    this.finish(null);
  }

  // --- socket lifecycle --------------------------------------------------------------------

  /** The URL in use (or to be tried next). */
  get url(): string {
    return this.urls[this.urlIndex] as string;
  }

  private openSocket(): void {
    this.isWelcomed = false;
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketClass(this.url, [this.codec.subprotocol]);
    } catch (exc) {
      // A malformed URL throws synchronously; retrying cannot fix it.
      this.finish(
        new ConnectionError(`cannot open ${this.url}: ${(exc as Error).message}`, ErrorCode.CONNECTION_FAILED, {
          cause: exc,
        }),
      );
      return;
    }
    this.socket = socket;
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.lastReceivedMs = Date.now();
      this.sendRaw(socket, { t: "hello", v: PROTOCOL_VERSION, client: this.clientName });
    };
    socket.onmessage = (event: { data: unknown }) => {
      if (this.socket === socket) this.onData(socket, event.data);
    };
    socket.onclose = (event: { code?: number; reason?: string }) => {
      if (this.socket === socket) this.onSocketGone(socket, event.code ?? 1006, event.reason ?? "");
    };
    // An error event is always followed by a close event, which carries the code.
    socket.onerror = () => undefined;
    this.handshakeTimer = setTimeout(() => {
      if (this.socket !== socket || this.isWelcomed) return;
      this.onSocketGone(socket, 4005, "no welcome from the server in time", true);
    }, this.handshakeTimeoutMs);
  }

  private onData(socket: WebSocketLike, data: unknown): void {
    this.lastReceivedMs = Date.now();
    let frame: ServerFrame | null;
    try {
      frame = this.codec.decode(data as string | ArrayBuffer);
    } catch (exc) {
      // One bad frame is reported and skipped: dropping the socket would lose the good ones.
      this.handlers.problem(exc instanceof RoomwireError ? exc : new ProtocolError(String(exc)));
      return;
    }
    if (frame === null) return; // a frame kind from a newer protocol revision: ignored
    if (this.isWelcomed) {
      if (frame.t !== "pong") this.handlers.frame(frame);
      return;
    }
    if (frame.t === "welcome") {
      this.onWelcome(socket, frame);
    } else if (frame.t === "error") {
      // The handshake was refused (unsupported_version, unauthorized): retrying cannot help.
      this.finish(errorFromCode(frame.code, frame.message, frame.ref === undefined ? {} : { ref: frame.ref }));
    } else {
      this.handlers.problem(new ProtocolError(`a ${frame.t} frame arrived before welcome`));
    }
  }

  private onWelcome(socket: WebSocketLike, welcome: WelcomeFrame): void {
    if (welcome.codec !== this.codec.name || welcome.v !== PROTOCOL_VERSION) {
      this.finish(
        new ProtocolError(
          `the server answered with protocol v${welcome.v} and codec ${welcome.codec}; ` +
            `this client speaks v${PROTOCOL_VERSION} with ${this.codec.name}`,
          ErrorCode.UNSUPPORTED_VERSION,
        ),
      );
      return;
    }
    this.clearTimer("handshakeTimer");
    this.isWelcomed = true;
    this.welcome = welcome;
    this.attempts = 0;
    this.startHeartbeat(socket, welcome.heartbeat_s > 0 ? welcome.heartbeat_s : DEFAULT_HEARTBEAT_S);
    this.setStatus("connected");
    const waiters = this.waiters;
    this.waiters = [];
    this.handlers.welcomed(welcome);
    for (const waiter of waiters) waiter.resolve();
  }

  /** The socket closed, failed, or was given up on; decide between reconnecting and stopping. */
  private onSocketGone(socket: WebSocketLike, code: number, reason: string, isTimeout = false): void {
    this.detach(socket);
    const wasWelcomed = this.isWelcomed;
    this.isWelcomed = false;
    const detail = reason === "" ? "" : `: ${reason}`;
    const url = this.url;
    if (!wasWelcomed || code === 1001) {
      // This server cannot be reached or is shutting down: the next attempt tries the next one.
      this.urlIndex = (this.urlIndex + 1) % this.urls.length;
    }
    if (isFatalCloseCode(code)) {
      this.finish(closeError(code, `the server closed the connection (${code})${detail}`));
      return;
    }
    const error = isTimeout
      ? new TimeoutError(`connection to ${url} timed out${detail}`, ErrorCode.TIMEOUT, { closeCode: code })
      : new ConnectionError(`connection to ${url} lost (${code})${detail}`, ErrorCode.CONNECTION_CLOSED, {
          closeCode: code,
        });
    if (this.state === "connecting") {
      // Never connected: fail the waiters and go back to idle, so a later join tries afresh.
      this.setStatus("idle");
      this.rejectWaiters(error);
      return;
    }
    if (!this.handlers.isNeeded() && this.waiters.length === 0) {
      // No room to resume: reconnecting would only hold a socket; the next join opens one.
      this.attempts = 0;
      this.setStatus("idle");
      return;
    }
    if (this.reconnect === false) {
      this.finish(error);
      return;
    }
    if (wasWelcomed) {
      this.setStatus("reconnecting");
      this.handlers.lost(error);
    }
    this.scheduleRetry(this.reconnect, error);
  }

  private scheduleRetry(policy: Required<ReconnectOptions>, lastError: RoomwireError): void {
    this.attempts += 1;
    if (this.attempts > policy.maxAttempts) {
      this.finish(
        new ConnectionError(
          `gave up after ${policy.maxAttempts} reconnect attempts: ${lastError.message}`,
          lastError.code,
          lastError.closeCode === undefined ? {} : { closeCode: lastError.closeCode },
        ),
      );
      return;
    }
    // The first retry goes at once (a blip, or another server after 1001); then exponential
    // backoff with equal jitter (at least half the delay), so a crowd does not come back at once.
    const ceiling =
      this.attempts === 1 ? 0 : Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (this.attempts - 2));
    const delayMs = ceiling / 2 + Math.random() * (ceiling / 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.state !== "reconnecting") return;
      if (this.handlers.isNeeded() || this.waiters.length > 0) {
        this.openSocket();
      } else {
        this.attempts = 0;
        this.setStatus("idle");
      }
    }, delayMs);
  }

  /** Enter `closed` for good; `error` null means the owner asked for it. */
  private finish(error: RoomwireError | null): void {
    const socket = this.socket;
    if (socket !== null) {
      this.detach(socket);
      closeQuietly(socket, 1000, "client closed");
    }
    this.clearTimer("retryTimer");
    this.isWelcomed = false;
    this.setStatus("closed");
    this.rejectWaiters(error ?? new ConnectionError("the client was closed", ErrorCode.CONNECTION_CLOSED));
    this.handlers.closed(error);
  }

  private detach(socket: WebSocketLike): void {
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    // Late error events from a socket being torn down are expected; keep a no-op listener.
    socket.onerror = () => undefined;
    if (this.socket === socket) this.socket = null;
    this.clearTimer("handshakeTimer");
    this.clearTimer("heartbeatTimer");
    if (socket.readyState <= OPEN) closeQuietly(socket, 1000, "reconnecting");
  }

  // --- heartbeat ---------------------------------------------------------------------------

  /**
   * Keep the server's heartbeat window: send a ping whenever nothing went out (or came in) for
   * half a window, and treat two windows without any frame from the server as a dead socket.
   */
  private startHeartbeat(socket: WebSocketLike, heartbeatS: number): void {
    const windowMs = heartbeatS * 1000;
    this.lastSentMs = Date.now();
    this.lastReceivedMs = Date.now();
    this.heartbeatTimer = setInterval(() => {
      if (this.socket !== socket) return;
      const now = Date.now();
      if (now - this.lastReceivedMs > 2 * windowMs) {
        this.onSocketGone(socket, 4003, "no frame from the server within two heartbeat windows", true);
        return;
      }
      if (now - this.lastSentMs >= windowMs / 2 || now - this.lastReceivedMs >= windowMs / 2) {
        this.pingId += 1;
        this.sendRaw(socket, { t: "ping", id: this.pingId });
      }
    }, windowMs / 4);
  }

  // --- small helpers -----------------------------------------------------------------------

  private sendRaw(socket: WebSocketLike, frame: ClientFrame): void {
    if (socket.readyState !== OPEN) return;
    socket.send(this.codec.encode(frame));
    this.lastSentMs = Date.now();
  }

  private setStatus(next: ConnectionStatus): void {
    if (next === this.state) return;
    if (!TRANSITIONS[this.state].includes(next)) {
      throw new Error(`roomwire-client bug: connection status ${this.state} -> ${next} is not allowed`);
    }
    this.state = next;
    this.handlers.status(next);
  }

  private rejectWaiters(error: RoomwireError): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  private clearTimer(name: "handshakeTimer" | "retryTimer" | "heartbeatTimer"): void {
    const timer = this[name];
    if (timer === null) return;
    clearTimeout(timer);
    this[name] = null;
  }
}

/** The error for a final close code. */
function closeError(code: number, message: string): RoomwireError {
  const wireCode =
    code === 4001
      ? ErrorCode.UNAUTHORIZED
      : code === 4004
        ? ErrorCode.RATE_LIMITED
        : code === 1009
          ? ErrorCode.FRAME_TOO_LARGE
          : code === 1008
            ? ErrorCode.FORBIDDEN
            : ErrorCode.BAD_FRAME;
  return errorFromCode(wireCode, message, { closeCode: code });
}

function closeQuietly(socket: WebSocketLike, code: number, reason: string): void {
  try {
    socket.close(code, reason);
  } catch {
    // Closing a socket that is still connecting throws in some implementations; it is gone anyway.
  }
}
