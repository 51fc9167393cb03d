/**
 * Wire frames of the roomwire protocol v1, as the TypeScript types a client sends and receives.
 *
 * Mirrors src/roomwire/protocol/frames.py; docs/protocol.md is the normative text. Every frame is a
 * map whose field `t` names its kind. Optional fields may be absent on the wire (the server omits
 * defaults), so readers treat a missing field and its default alike.
 */

/** Protocol version this client speaks (`hello.v`). */
export const PROTOCOL_VERSION = 1;

/** Any JSON/MessagePack value a game puts in message or event data. */
export type JSONValue = any;

// --- client → server -------------------------------------------------------------------------

/** First frame on a connection. */
export interface HelloFrame {
  t: "hello";
  v: number;
  client?: string;
}

/** Enter a room with a seat token; `since` resumes after that room sequence number. */
export interface JoinFrame {
  t: "join";
  room: string;
  seat: string;
  since?: number;
}

/** Leave a room for good. */
export interface LeaveFrame {
  t: "leave";
  room: string;
}

/** A game message; `id` (strictly increasing per player and room) makes resends idempotent. */
export interface MsgFrame {
  t: "msg";
  room: string;
  type: string;
  data?: JSONValue;
  id?: number;
}

/** Liveness check; the server answers `pong` with the same id. */
export interface PingFrame {
  t: "ping";
  id: number;
}

/** Every frame a client may send. */
export type ClientFrame = HelloFrame | JoinFrame | LeaveFrame | MsgFrame | PingFrame;

// --- server → client -------------------------------------------------------------------------

/** Answer to `hello`: negotiated version and the limits of this connection. */
export interface WelcomeFrame {
  t: "welcome";
  v: number;
  codec: string;
  heartbeat_s: number;
  max_frame_bytes: number;
  server?: string;
}

/** The join succeeded; events with seq > `seq` follow (after the replay, when resumed). */
export interface JoinedFrame {
  t: "joined";
  room: string;
  player: string;
  seq: number;
  last_id: number;
  rejoin: string;
  resumed?: boolean;
}

/** A committed room event with its room sequence number. */
export interface EventFrame {
  t: "event";
  room: string;
  seq: number;
  type: string;
  data?: JSONValue;
}

/** The message with this client id was applied and committed once (`dup`: already before). */
export interface AckFrame {
  t: "ack";
  room: string;
  id: number;
  dup?: boolean;
}

/** The message with this client id was refused; nothing of it was applied. */
export interface RejectFrame {
  t: "reject";
  room: string;
  id: number;
  code: string;
  message: string;
  ref?: string;
}

/** This connection is no longer in the room (`left`, `ended`, `replaced` or `removed`). */
export interface LeftFrame {
  t: "left";
  room: string;
  reason: string;
  detail?: string;
}

/** A request failed; `room` is set when it concerns one room. */
export interface ErrorFrame {
  t: "error";
  code: string;
  message: string;
  room?: string;
  ref?: string;
}

/** Answer to `ping`. */
export interface PongFrame {
  t: "pong";
  id: number;
}

/** Every frame a server may send. */
export type ServerFrame =
  WelcomeFrame | JoinedFrame | EventFrame | AckFrame | RejectFrame | LeftFrame | ErrorFrame | PongFrame;

type FieldKind = "string" | "number" | "boolean" | "any";

/** Required and optional fields of each server frame kind, checked on arrival (table, not ifs). */
const SERVER_FIELDS: Record<
  ServerFrame["t"],
  { required: Record<string, FieldKind>; optional: Record<string, FieldKind> }
> = {
  welcome: {
    required: { v: "number", codec: "string", heartbeat_s: "number", max_frame_bytes: "number" },
    optional: { server: "string" },
  },
  joined: {
    required: { room: "string", player: "string", seq: "number", last_id: "number", rejoin: "string" },
    optional: { resumed: "boolean" },
  },
  event: { required: { room: "string", seq: "number", type: "string" }, optional: { data: "any" } },
  ack: { required: { room: "string", id: "number" }, optional: { dup: "boolean" } },
  reject: {
    required: { room: "string", id: "number", code: "string", message: "string" },
    optional: { ref: "string" },
  },
  left: { required: { room: "string", reason: "string" }, optional: { detail: "string" } },
  error: { required: { code: "string", message: "string" }, optional: { room: "string", ref: "string" } },
  pong: { required: {}, optional: { id: "number" } },
};

/**
 * Check a decoded value: "unknown" for a well-formed frame of a kind this client does not know
 * (ignored, for forward compatibility), a description of the problem, or null when it is valid.
 *
 * Unknown fields are ignored; `null` in an optional field counts as absent.
 */
export function serverFrameProblem(value: unknown): string | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "a frame must be a map";
  }
  const record = value as Record<string, unknown>;
  const kind = record["t"];
  if (typeof kind !== "string") return "a frame must have a string field `t`";
  if (!Object.prototype.hasOwnProperty.call(SERVER_FIELDS, kind)) return UNKNOWN_KIND;
  const spec = SERVER_FIELDS[kind as ServerFrame["t"]];
  for (const [name, fieldKind] of Object.entries(spec.required)) {
    if (!hasKind(record[name], fieldKind)) return `\`${kind}.${name}\` must be a ${fieldKind}`;
  }
  for (const [name, fieldKind] of Object.entries(spec.optional)) {
    const field = record[name];
    if (field !== undefined && field !== null && !hasKind(field, fieldKind)) {
      return `\`${kind}.${name}\` must be a ${fieldKind} when present`;
    }
  }
  return null;
}

/** What serverFrameProblem returns for a frame kind from a newer protocol revision. */
export const UNKNOWN_KIND = "unknown";

function hasKind(value: unknown, kind: FieldKind): boolean {
  if (kind === "any") return true;
  if (kind === "number") return typeof value === "number" && Number.isFinite(value);
  return typeof value === kind;
}
