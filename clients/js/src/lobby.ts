/**
 * Lobby HTTP calls (docs/design.md, "Lobby HTTP API"): guest login, room listing, seat grants.
 *
 * Every call but guest login sends `Authorization: Bearer <token>`. A failed call raises the typed
 * error for the body's `{error: {code, message}}`, or ConnectionError when no answer came.
 */

import { ConnectionError, ErrorCode, errorFromCode, ProtocolError, RoomwireError } from "./errors.js";
import type { JSONValue } from "./frames.js";

/** A guest identity issued by `POST /auth/guest`. */
export interface GuestLogin {
  /** The new guest's player id. */
  player: string;
  /** Bearer token for later lobby calls. */
  token: string;
}

/** A reserved seat in a room: what `join` needs on the WebSocket. */
export interface SeatGrant {
  /** Room id. */
  room: string;
  /** Room type name. */
  type: string;
  /** The player the seat is for. */
  player: string;
  /** Short-lived signed seat token. */
  seat: string;
  /** WebSocket path (or URL) relative to the server's base URL. */
  ws: string;
  /** True when join-or-create made a new room. */
  created?: boolean;
}

/** One public room as `GET /rooms` lists it. */
export interface RoomListing {
  id: string;
  type: string;
  players: number;
  max_players: number;
  meta: Record<string, JSONValue>;
  created_at: number | string;
}

/** Options of `POST /rooms/join-or-create`. */
export interface JoinOrCreateOptions {
  /** Match only rooms whose meta has these values. */
  filters?: Record<string, JSONValue>;
  /** Options for the room's create hook, when a room is made. */
  options?: Record<string, JSONValue>;
  /** Meta of a new room (listed by `GET /rooms`). */
  meta?: Record<string, JSONValue>;
}

/** Options of `POST /rooms`. */
export interface CreateOptions {
  options?: Record<string, JSONValue>;
  meta?: Record<string, JSONValue>;
  /** A private room is not listed and not matched by join-or-create. */
  private?: boolean;
}

/** The `fetch` function the lobby uses (the global one unless given). */
export type FetchFunction = (input: string, init?: RequestInit) => Promise<Response>;

/** A client of one server's lobby routes. */
export class Lobby {
  /** Bearer token sent with every call but guest login. */
  token: string | undefined;
  private readonly baseUrl: string;
  private readonly fetchFn: FetchFunction;

  constructor(baseUrl: string, options: { token?: string | undefined; fetch?: FetchFunction | undefined } = {}) {
    this.baseUrl = baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`;
    this.token = options.token;
    if (options.fetch === undefined && typeof globalThis.fetch !== "function") {
      throw new TypeError("no global fetch: pass { fetch } in the client options");
    }
    // A bare `fetch` reference loses its `this` in some browsers ("Illegal invocation").
    this.fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** Absolute URL of a path relative to the base URL. */
  url(path: string): string {
    return new URL(path.replace(/^\//, ""), this.baseUrl).toString();
  }

  /** `POST /auth/guest`: a new guest identity; its token is kept for later calls. */
  async loginGuest(name?: string): Promise<GuestLogin> {
    const body = name === undefined ? {} : { name };
    const login = (await this.call("POST", "auth/guest", body, false)) as GuestLogin;
    this.token = login.token;
    return login;
  }

  /** `GET /rooms?type=T&meta.K=V`: public rooms of a type. */
  async listRooms(type?: string, meta: Record<string, string | number | boolean> = {}): Promise<RoomListing[]> {
    const query = new URLSearchParams();
    if (type !== undefined) query.set("type", type);
    for (const [key, value] of Object.entries(meta)) query.set(`meta.${key}`, String(value));
    const encoded = query.toString();
    const suffix = encoded === "" ? "" : `?${encoded}`;
    const answer = (await this.call("GET", `rooms${suffix}`)) as { rooms: RoomListing[] };
    return answer.rooms;
  }

  /** `POST /rooms/join-or-create`: a seat in a matching room, made if none has room. */
  async joinOrCreate(type: string, options: JoinOrCreateOptions = {}): Promise<SeatGrant> {
    return (await this.call("POST", "rooms/join-or-create", { type, ...options })) as SeatGrant;
  }

  /** `POST /rooms`: a seat in a new room. */
  async create(type: string, options: CreateOptions = {}): Promise<SeatGrant> {
    return (await this.call("POST", "rooms", { type, ...options })) as SeatGrant;
  }

  /** `POST /rooms/{id}/seats`: a seat in an existing room. */
  async reserveSeat(roomId: string): Promise<SeatGrant> {
    return (await this.call("POST", `rooms/${encodeURIComponent(roomId)}/seats`, {})) as SeatGrant;
  }

  /**
   * Make one lobby call and return the decoded JSON answer.
   *
   * Raises the error class of the answer's code (UnauthorizedError, RoomFullError, ...) with
   * `.status` set, ConnectionError when the server could not be reached, ProtocolError when the
   * answer is not JSON.
   */
  async call(method: string, path: string, body?: JSONValue, withToken = true): Promise<JSONValue> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (withToken && this.token !== undefined) headers["authorization"] = `Bearer ${this.token}`;
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = JSON.stringify(body);
    let response: Response;
    try {
      response = await this.fetchFn(this.url(path), init);
    } catch (exc) {
      throw new ConnectionError(`${method} /${path} failed: ${(exc as Error).message}`, ErrorCode.CONNECTION_FAILED, {
        cause: exc,
      });
    }
    const text = await response.text();
    let answer: JSONValue;
    try {
      answer = text === "" ? null : JSON.parse(text);
    } catch (exc) {
      if (!response.ok) throw httpError(response.status, `${method} /${path}: HTTP ${response.status}`);
      throw new ProtocolError(`${method} /${path}: the answer is not JSON`, ErrorCode.BAD_FRAME, {
        status: response.status,
        cause: exc,
      });
    }
    if (!response.ok) {
      const error = answer?.error;
      if (error && typeof error.code === "string") {
        throw errorFromCode(error.code, String(error.message ?? error.code), { status: response.status });
      }
      throw httpError(response.status, `${method} /${path}: HTTP ${response.status}`);
    }
    return answer;
  }
}

/** The error for an HTTP failure without a roomwire error body. */
function httpError(status: number, message: string): RoomwireError {
  const code =
    status === 401
      ? ErrorCode.UNAUTHORIZED
      : status === 403
        ? ErrorCode.FORBIDDEN
        : status === 404
          ? ErrorCode.ROOM_NOT_FOUND
          : status === 429
            ? ErrorCode.RATE_LIMITED
            : status >= 400 && status < 500
              ? ErrorCode.BAD_FRAME
              : ErrorCode.INTERNAL;
  return errorFromCode(code, message, { status });
}
