/**
 * The entry point: lobby calls, one shared WebSocket, and the rooms joined over it.
 */

import type { CodecName } from "./codec.js";
import { Connection, type ConnectionStatus, type ReconnectOptions, type WebSocketConstructor } from "./connection.js";
import { ConnectionError, ErrorCode, errorFromCode, RoomwireError } from "./errors.js";
import type { ClientFrame, ServerFrame } from "./frames.js";
import {
  Lobby,
  type CreateOptions,
  type FetchFunction,
  type GuestLogin,
  type JoinOrCreateOptions,
  type RoomListing,
  type SeatGrant,
} from "./lobby.js";
import { Listeners } from "./listeners.js";
import { Room, type RoomLink } from "./room.js";

/** Options of a Client. */
export interface ClientOptions {
  /** Wire format: `json` (default) or `msgpack`. */
  codec?: CodecName;
  /**
   * Base URLs of other servers of the same deployment: a reconnect tries them in turn when the
   * current server cannot be reached or goes away (any server can resume any room).
   */
  servers?: string[];
  /** Bearer token for lobby calls (or call loginGuest()). */
  token?: string;
  /** WebSocket class, when the runtime has no global one (Node 20: `ws`). */
  WebSocket?: WebSocketConstructor;
  /** fetch function, when the runtime has no global one. */
  fetch?: FetchFunction;
  /** Reconnect policy after a lost socket, or false to never reconnect. */
  reconnect?: ReconnectOptions | false;
  /** Time allowed for the WebSocket handshake (default 10000 ms). */
  handshakeTimeoutMs?: number;
  /** Time allowed for a join to be answered (default 15000 ms). */
  joinTimeoutMs?: number;
  /** Name sent to the server in `hello.client`. */
  clientName?: string;
}

/** Options of Client.joinSeat. */
export interface JoinSeatOptions {
  /** Resume after this seq: with a rejoin token and lastSeq kept from an earlier session. */
  since?: number;
}

/** A roomwire client: log in, find or create rooms, and play in them. */
export class Client {
  /** The lobby HTTP client (token, raw calls). */
  readonly lobby: Lobby;
  /** The player id from loginGuest(), if it was called. */
  player: string | undefined;

  private readonly baseUrl: string;
  private readonly options: ClientOptions;
  private connection: Connection | null = null;
  private wsUrl: string | null = null;
  private state: ConnectionStatus = "idle";
  private isClosed = false;
  private readonly rooms = new Map<string, Room>();
  private readonly statusListeners = new Listeners<[ConnectionStatus]>();
  private readonly errorListeners = new Listeners<[RoomwireError]>();

  /** `baseUrl`: the server's HTTP base, e.g. `http://127.0.0.1:8000` or `location.origin`. */
  constructor(baseUrl: string, options: ClientOptions = {}) {
    this.baseUrl = baseUrl;
    this.options = options;
    this.lobby = new Lobby(baseUrl, { token: options.token, fetch: options.fetch });
  }

  /** The connection status: idle, connecting, connected, reconnecting or closed. */
  get status(): ConnectionStatus {
    return this.state;
  }

  /** The bearer token used for lobby calls. */
  get token(): string | undefined {
    return this.lobby.token;
  }

  set token(token: string | undefined) {
    this.lobby.token = token;
  }

  /** Log in as a new guest; the token is kept for the next lobby calls. */
  async loginGuest(name?: string): Promise<GuestLogin> {
    const login = await this.lobby.loginGuest(name);
    this.player = login.player;
    return login;
  }

  /** Public rooms of a type, optionally filtered by meta values. */
  listRooms(type?: string, meta?: Record<string, string | number | boolean>): Promise<RoomListing[]> {
    return this.lobby.listRooms(type, meta);
  }

  /** Join a matching room of this type, or create one; resolves once joined. */
  async joinOrCreate(type: string, options: JoinOrCreateOptions = {}): Promise<Room> {
    this.ensureOpen();
    return this.joinSeat(await this.lobby.joinOrCreate(type, options));
  }

  /** Create a new room of this type and join it. */
  async create(type: string, options: CreateOptions = {}): Promise<Room> {
    this.ensureOpen();
    return this.joinSeat(await this.lobby.create(type, options));
  }

  /** Join an existing room by id. */
  async join(roomId: string): Promise<Room> {
    this.ensureOpen();
    return this.joinSeat(await this.lobby.reserveSeat(roomId));
  }

  /**
   * Join with a seat from the lobby (or a rejoin token kept from `room.rejoinToken`).
   *
   * Rejects with the server's refusal (UnauthorizedError for an expired seat, RoomFullError,
   * RoomClosedError, ...), ConnectionError when the server cannot be reached, TimeoutError.
   */
  async joinSeat(grant: SeatGrant, options: JoinSeatOptions = {}): Promise<Room> {
    this.ensureOpen();
    if (this.rooms.has(grant.room))
      throw new RoomwireError(`already in room ${grant.room}`, ErrorCode.FORBIDDEN, { room: grant.room });
    const connection = this.connectionFor(grant.ws);
    const room = new Room(grant, this.link(connection), {
      since: options.since,
      joinTimeoutMs: this.options.joinTimeoutMs,
    });
    this.rooms.set(room.id, room);
    if (connection.isReady) {
      room.connectionReady();
    } else {
      connection.open().catch((error: RoomwireError) => room.connectionClosed(error));
    }
    await room.joined();
    return room;
  }

  /** Call `handler(status)` on every connection status change; returns a function that unsubscribes. */
  onStatus(handler: (status: ConnectionStatus) => void): () => void {
    return this.statusListeners.add(handler);
  }

  /** Call `handler(error)` for connection errors not tied to one room; returns an unsubscribe function. */
  onError(handler: (error: RoomwireError) => void): () => void {
    return this.errorListeners.add(handler);
  }

  /** The rooms this client is in. */
  get joinedRooms(): Room[] {
    return [...this.rooms.values()];
  }

  /** Cut the socket as a network failure would (for tests and demos); the client resumes. */
  simulateDisconnect(): void {
    this.connection?.dropSocket("simulated disconnect");
  }

  /** Close the connection for good; rooms end with reason `closed`. Safe to call twice. */
  close(): void {
    this.isClosed = true;
    if (this.connection !== null) {
      this.connection.close();
    } else if (this.state !== "closed") {
      this.setStatus("closed");
    }
  }

  // --- internals ---------------------------------------------------------------------------

  private ensureOpen(): void {
    if (this.isClosed) throw new ConnectionError("the client is closed", ErrorCode.CONNECTION_CLOSED);
  }

  /** The one connection of this client, made for the first seat's WebSocket URL. */
  private connectionFor(wsPath: string): Connection {
    const url = toWebSocketUrl(this.baseUrl, wsPath);
    if (this.connection !== null) {
      if (url !== this.wsUrl) {
        // One socket carries every room; a second gateway URL would need a second client.
        throw new RoomwireError(`this client is connected to ${this.wsUrl}, not ${url}`, ErrorCode.BAD_FRAME);
      }
      return this.connection;
    }
    this.wsUrl = url;
    const fallbacks = (this.options.servers ?? []).map((base) => toWebSocketUrl(base, wsPath));
    this.connection = new Connection(
      [url, ...fallbacks],
      {
        welcomed: () => {
          for (const room of [...this.rooms.values()]) room.connectionReady();
        },
        frame: (frame) => this.route(frame),
        lost: () => {
          for (const room of [...this.rooms.values()]) room.connectionLost();
        },
        closed: (error) => {
          for (const room of [...this.rooms.values()]) room.connectionClosed(error);
          if (error !== null) this.reportError(error);
        },
        status: (status) => this.setStatus(status),
        problem: (error) => this.reportError(error),
        isNeeded: () => this.rooms.size > 0,
      },
      {
        codec: this.options.codec,
        WebSocket: this.options.WebSocket,
        clientName: this.options.clientName,
        handshakeTimeoutMs: this.options.handshakeTimeoutMs,
        reconnect: this.options.reconnect,
      },
    );
    return this.connection;
  }

  private link(connection: Connection): RoomLink {
    return {
      get isReady() {
        return connection.isReady;
      },
      encode: (frame: ClientFrame) => connection.encode(frame),
      send: (encoded) => connection.send(encoded),
      forget: (room) => {
        if (this.rooms.get(room.id) === room) this.rooms.delete(room.id);
      },
    };
  }

  private route(frame: ServerFrame): void {
    const roomId = "room" in frame ? frame.room : undefined;
    const room = roomId === undefined || roomId === null ? undefined : this.rooms.get(roomId);
    if (room !== undefined) {
      room.receive(frame);
    } else if (frame.t === "error") {
      this.reportError(errorFromCode(frame.code, frame.message, frame.ref ? { ref: frame.ref } : {}));
    }
    // Frames for a room already left (a late event, a late ack) are dropped on purpose.
  }

  private setStatus(status: ConnectionStatus): void {
    if (status === this.state) return;
    this.state = status;
    this.statusListeners.emit(status);
  }

  private reportError(error: RoomwireError): void {
    this.errorListeners.emit(error);
  }
}

/** ws:// or wss:// URL of a WebSocket path relative to an http(s) base URL. */
export function toWebSocketUrl(baseUrl: string, wsPath: string): string {
  // Relative to the base *path* (a server mounted under /game/ serves /game/ws), like lobby calls.
  const base = baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`;
  const url = new URL(wsPath.replace(/^\//, ""), base);
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  return url.toString();
}
