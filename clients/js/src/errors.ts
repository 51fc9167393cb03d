/**
 * Every error the SDK raises or reports, in one tree that mirrors roomwire's Python errors.
 *
 *     RoomwireError            .code is the wire ErrorCode (or a client-side code below)
 *     ├─ ProtocolError         bad_frame, frame_too_large, not_ready, unsupported_version
 *     ├─ ValidationError       invalid_message: data does not match the handler's schema
 *     ├─ RejectedError         rejected: game code refused the input; the room goes on
 *     ├─ AuthError             → UnauthorizedError, ForbiddenError
 *     ├─ RateLimitedError      rate_limited
 *     ├─ RoomError             → RoomNotFoundError, RoomFullError, RoomClosedError, NotJoinedError,
 *     │                          UnknownMessageTypeError, MessageTooLargeError, HistoryGoneError
 *     ├─ InternalError         internal, step_timeout: a server bug or a game handler that hung; the detail is in the server log (see .ref)
 *     ├─ ConnectionError       connection_failed / connection_closed (client-side; .closeCode)
 *     └─ TimeoutError          timeout (client-side)
 */

/** Error codes carried by `error` and `reject` frames (src/roomwire/protocol/codes.py). */
export const ErrorCode = {
  BAD_FRAME: "bad_frame",
  FRAME_TOO_LARGE: "frame_too_large",
  NOT_READY: "not_ready",
  UNSUPPORTED_VERSION: "unsupported_version",
  UNAUTHORIZED: "unauthorized",
  FORBIDDEN: "forbidden",
  ROOM_NOT_FOUND: "room_not_found",
  ROOM_FULL: "room_full",
  ROOM_CLOSED: "room_closed",
  NOT_JOINED: "not_joined",
  UNKNOWN_TYPE: "unknown_type",
  INVALID_MESSAGE: "invalid_message",
  MESSAGE_TOO_LARGE: "message_too_large",
  REJECTED: "rejected",
  RATE_LIMITED: "rate_limited",
  REPLACED: "replaced",
  ID_EXPIRED: "id_expired",
  HISTORY_GONE: "history_gone",
  UNAVAILABLE: "unavailable",
  INTERNAL: "internal",
  STEP_TIMEOUT: "step_timeout",
  // Client-side codes: never on the wire.
  CONNECTION_FAILED: "connection_failed",
  CONNECTION_CLOSED: "connection_closed",
  TIMEOUT: "timeout",
} as const;

/** One of the known error codes; unknown codes from a newer server are kept as plain strings. */
export type ErrorCodeName = (typeof ErrorCode)[keyof typeof ErrorCode];

/** WebSocket close codes the server uses (src/roomwire/protocol/codes.py). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  INVALID_PAYLOAD: 1007,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  SERVICE_RESTART: 1012,
  PROTOCOL: 4000,
  UNAUTHORIZED: 4001,
  SLOW_CONSUMER: 4002,
  HEARTBEAT_TIMEOUT: 4003,
  FLOODING: 4004,
  HANDSHAKE_TIMEOUT: 4005,
} as const;

/**
 * Close codes after which reconnecting cannot help: the same frames would be refused again.
 *
 * 1002/1003/1007 are WebSocket-level protocol faults; everything else (1001 going away, 1006
 * abnormal, 1011, 4002 slow consumer, 4003 heartbeat, 4005 handshake) reconnects and resumes.
 */
const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([1002, 1003, 1007, 1008, 1009, 4000, 4001, 4004]);

/** True when the client must not reconnect after the server closed with this code. */
export function isFatalCloseCode(code: number): boolean {
  return FATAL_CLOSE_CODES.has(code);
}

/** Extra facts an error may carry; all optional. */
export interface ErrorDetails {
  /** The room the error concerns. */
  room?: string;
  /** The server's log reference for this failure. */
  ref?: string;
  /** The client message id that was rejected. */
  id?: number;
  /** HTTP status of a failed lobby call. */
  status?: number;
  /** WebSocket close code that ended the connection. */
  closeCode?: number;
  /** The underlying error (a network failure, a decode error). */
  cause?: unknown;
}

/** Base of every roomwire error; `code` is stable and safe to switch on. */
export class RoomwireError extends Error {
  /** The error code: an ErrorCode value, or an unknown code from a newer server. */
  readonly code: string;
  /** The room the error concerns, if any. */
  readonly room: string | undefined;
  /** Server log reference, if the server gave one. */
  readonly ref: string | undefined;
  /** The rejected client message id, for `reject` frames. */
  readonly id: number | undefined;
  /** HTTP status, for lobby calls. */
  readonly status: number | undefined;
  /** WebSocket close code, for errors that ended a connection. */
  readonly closeCode: number | undefined;

  /** The default code of this class, used when the constructor is not given one. */
  static readonly defaultCode: string = ErrorCode.INTERNAL;

  constructor(message: string, code?: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.code = code ?? (new.target as typeof RoomwireError).defaultCode;
    this.room = details.room;
    this.ref = details.ref;
    this.id = details.id;
    this.status = details.status;
    this.closeCode = details.closeCode;
  }
}

/** A frame was malformed, too large, out of order, or of an unsupported protocol version. */
export class ProtocolError extends RoomwireError {
  static override readonly defaultCode: string = ErrorCode.BAD_FRAME;
}

/** A message's data does not match the schema its handler declares. */
export class ValidationError extends RoomwireError {
  static override readonly defaultCode: string = ErrorCode.INVALID_MESSAGE;
}

/** Game code refused the input; nothing of it was applied and the room goes on. */
export class RejectedError extends RoomwireError {
  static override readonly defaultCode: string = ErrorCode.REJECTED;
}

/** Authentication or authorization failed. */
export class AuthError extends RoomwireError {
  static override readonly defaultCode: string = ErrorCode.UNAUTHORIZED;
}

/** No identity, or the token or seat is invalid or expired: log in again. */
export class UnauthorizedError extends AuthError {
  static override readonly defaultCode: string = ErrorCode.UNAUTHORIZED;
}

/** The identity is known but may not do this. */
export class ForbiddenError extends AuthError {
  static override readonly defaultCode: string = ErrorCode.FORBIDDEN;
}

/** The player sent more messages than the room type's rate limit allows: slow down. */
export class RateLimitedError extends RoomwireError {
  static override readonly defaultCode: string = ErrorCode.RATE_LIMITED;
}

/** A request about a room that cannot be served. */
export class RoomError extends RoomwireError {
  static override readonly defaultCode: string = ErrorCode.ROOM_NOT_FOUND;
}

/** No room with that id (never created, or ended). */
export class RoomNotFoundError extends RoomError {
  static override readonly defaultCode: string = ErrorCode.ROOM_NOT_FOUND;
}

/** The room has max_players players or reserved seats. */
export class RoomFullError extends RoomError {
  static override readonly defaultCode: string = ErrorCode.ROOM_FULL;
}

/** The room has ended and takes no more input. */
export class RoomClosedError extends RoomError {
  static override readonly defaultCode: string = ErrorCode.ROOM_CLOSED;
}

/** A message or leave for a room this connection is not (or no longer) in. */
export class NotJoinedError extends RoomError {
  static override readonly defaultCode: string = ErrorCode.NOT_JOINED;
}

/** The room type has no handler for this message type. */
export class UnknownMessageTypeError extends RoomError {
  static override readonly defaultCode: string = ErrorCode.UNKNOWN_TYPE;
}

/** A message is larger than the room type's or the connection's size limit. */
export class MessageTooLargeError extends RoomError {
  static override readonly defaultCode: string = ErrorCode.MESSAGE_TOO_LARGE;
}

/** A resume asked for events older than the room's kept history; the SDK joins afresh. */
export class HistoryGoneError extends RoomError {
  static override readonly defaultCode: string = ErrorCode.HISTORY_GONE;
}

/** The server hit a bug; the detail is only in its log, under `ref`. */
export class InternalError extends RoomwireError {
  static override readonly defaultCode: string = ErrorCode.INTERNAL;
}

/** The connection to the server could not be made or was closed for good. */
export class ConnectionError extends RoomwireError {
  static override readonly defaultCode: string = ErrorCode.CONNECTION_CLOSED;
}

/** The server did not answer in time. */
export class TimeoutError extends RoomwireError {
  static override readonly defaultCode: string = ErrorCode.TIMEOUT;
}

type ErrorClass = new (message: string, code?: string, details?: ErrorDetails) => RoomwireError;

/** Which class each wire code becomes. */
const CLASS_BY_CODE: Readonly<Record<string, ErrorClass>> = {
  [ErrorCode.BAD_FRAME]: ProtocolError,
  [ErrorCode.FRAME_TOO_LARGE]: ProtocolError,
  [ErrorCode.NOT_READY]: ProtocolError,
  [ErrorCode.UNSUPPORTED_VERSION]: ProtocolError,
  [ErrorCode.UNAUTHORIZED]: UnauthorizedError,
  [ErrorCode.FORBIDDEN]: ForbiddenError,
  [ErrorCode.ROOM_NOT_FOUND]: RoomNotFoundError,
  [ErrorCode.ROOM_FULL]: RoomFullError,
  [ErrorCode.ROOM_CLOSED]: RoomClosedError,
  [ErrorCode.NOT_JOINED]: NotJoinedError,
  // The message's connection was replaced by a newer join of the player: it is not in the room.
  [ErrorCode.REPLACED]: NotJoinedError,
  [ErrorCode.UNKNOWN_TYPE]: UnknownMessageTypeError,
  [ErrorCode.INVALID_MESSAGE]: ValidationError,
  [ErrorCode.MESSAGE_TOO_LARGE]: MessageTooLargeError,
  [ErrorCode.REJECTED]: RejectedError,
  [ErrorCode.RATE_LIMITED]: RateLimitedError,
  [ErrorCode.HISTORY_GONE]: HistoryGoneError,
  [ErrorCode.INTERNAL]: InternalError,
  [ErrorCode.STEP_TIMEOUT]: InternalError,
  [ErrorCode.CONNECTION_FAILED]: ConnectionError,
  [ErrorCode.CONNECTION_CLOSED]: ConnectionError,
  [ErrorCode.TIMEOUT]: TimeoutError,
};

/** The typed error for a wire code; an unknown code gives a plain RoomwireError with that code. */
export function errorFromCode(code: string, message: string, details: ErrorDetails = {}): RoomwireError {
  const cls = Object.prototype.hasOwnProperty.call(CLASS_BY_CODE, code) ? CLASS_BY_CODE[code] : undefined;
  return new (cls ?? RoomwireError)(message, code, details);
}
