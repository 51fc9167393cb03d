/**
 * roomwire-client: the browser and Node SDK for roomwire realtime game servers.
 *
 * ```ts
 * const client = new Client(location.origin);
 * await client.loginGuest();
 * const room = await client.joinOrCreate("arena");
 * room.on("moved", (data) => draw(data));
 * room.send("move", { x: 1, y: 0 });
 * ```
 */

export { Client, toWebSocketUrl, type ClientOptions, type JoinSeatOptions } from "./client.js";
export { codecFor, JSON_CODEC, MSGPACK_CODEC, SUBPROTOCOLS, type Codec, type CodecName } from "./codec.js";
export type { ConnectionStatus, ReconnectOptions, WebSocketConstructor, WebSocketLike } from "./connection.js";
export {
  AuthError,
  CloseCode,
  ConnectionError,
  ErrorCode,
  errorFromCode,
  ForbiddenError,
  HistoryGoneError,
  InternalError,
  isFatalCloseCode,
  MessageTooLargeError,
  NotJoinedError,
  ProtocolError,
  RateLimitedError,
  RejectedError,
  RoomClosedError,
  RoomError,
  RoomFullError,
  RoomNotFoundError,
  RoomwireError,
  TimeoutError,
  UnauthorizedError,
  UnknownMessageTypeError,
  ValidationError,
  type ErrorCodeName,
  type ErrorDetails,
} from "./errors.js";
export { PROTOCOL_VERSION, type ClientFrame, type JSONValue, type ServerFrame } from "./frames.js";
export {
  Lobby,
  type CreateOptions,
  type FetchFunction,
  type GuestLogin,
  type JoinOrCreateOptions,
  type RoomListing,
  type SeatGrant,
} from "./lobby.js";
export {
  ANY,
  applyPatch,
  deepEqual,
  PatchError,
  StateMirror,
  type Change,
  type MirrorStatus,
  type PathItem,
  type PresenceStatus,
} from "./mirror.js";
export { Room, type Ack, type LeaveInfo, type RoomEvent, type RoomStatus } from "./room.js";
export { RoomTracker, type JoinOutcome, type PendingMessage } from "./tracker.js";
