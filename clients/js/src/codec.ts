/**
 * JSON and MessagePack codecs for frames: the WebSocket subprotocol picks one per connection.
 *
 * `roomwire.v1.json` sends text frames, `roomwire.v1.msgpack` binary frames. Decoding checks the
 * size limit first, then the frame's shape, and raises ProtocolError for anything else. A frame
 * of a kind this client does not know decodes to null: clients ignore them (docs/protocol.md).
 */

import { decode as msgpackDecode, encode as msgpackEncode } from "@msgpack/msgpack";

import { ErrorCode, ProtocolError } from "./errors.js";
import { serverFrameProblem, UNKNOWN_KIND, type ClientFrame, type ServerFrame } from "./frames.js";

/** The two wire formats. */
export type CodecName = "json" | "msgpack";

/** WebSocket subprotocol name of each codec. */
export const SUBPROTOCOLS: Readonly<Record<CodecName, string>> = {
  json: "roomwire.v1.json",
  msgpack: "roomwire.v1.msgpack",
};

/** Largest server frame the client accepts; the server's own limit is for frames it receives. */
export const MAX_SERVER_FRAME_BYTES = 16 * 1024 * 1024;

/** Encodes client frames and decodes server frames in one wire format. */
export interface Codec {
  /** `json` or `msgpack`. */
  readonly name: CodecName;
  /** The WebSocket subprotocol to ask for. */
  readonly subprotocol: string;
  /** True when frames go as binary WebSocket messages. */
  readonly isBinary: boolean;
  /** Encode one frame: a string for JSON, bytes for MessagePack. */
  encode(frame: ClientFrame): string | Uint8Array;
  /**
   * Decode one server frame; null for a frame kind this client does not know (to be ignored).
   *
   * Raises ProtocolError when the data is not a well-formed frame or is over `maxBytes`.
   */
  decode(data: string | ArrayBuffer | ArrayBufferView, maxBytes?: number): ServerFrame | null;
}

/** Byte length of an encoded frame, as the server measures it against max_frame_bytes. */
export function encodedSize(encoded: string | Uint8Array): number {
  return typeof encoded === "string" ? utf8Length(encoded) : encoded.byteLength;
}

function utf8Length(text: string): number {
  // Counting without allocating: ASCII dominates game traffic, surrogate pairs count 4 in total.
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

function asBytes(data: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

function checked(value: unknown): ServerFrame | null {
  const problem = serverFrameProblem(value);
  if (problem === UNKNOWN_KIND) return null;
  if (problem !== null) throw new ProtocolError(`not a valid server frame: ${problem}`);
  return value as ServerFrame;
}

function tooLarge(size: number, maxBytes: number): ProtocolError {
  return new ProtocolError(`frame of ${size} bytes exceeds the limit of ${maxBytes} bytes`, ErrorCode.FRAME_TOO_LARGE);
}

const textDecoder = new TextDecoder("utf-8", { fatal: true });

/** JSON text frames. */
export const JSON_CODEC: Codec = {
  name: "json",
  subprotocol: SUBPROTOCOLS.json,
  isBinary: false,
  encode(frame: ClientFrame): string {
    return JSON.stringify(frame);
  },
  decode(data, maxBytes = MAX_SERVER_FRAME_BYTES): ServerFrame | null {
    let text: string;
    if (typeof data === "string") {
      // UTF-16 length is a lower bound of UTF-8 bytes: only count exactly when it may matter.
      if (data.length > maxBytes || (data.length * 3 > maxBytes && utf8Length(data) > maxBytes)) {
        throw tooLarge(utf8Length(data), maxBytes);
      }
      text = data;
    } else {
      const bytes = asBytes(data);
      if (bytes.byteLength > maxBytes) throw tooLarge(bytes.byteLength, maxBytes);
      try {
        text = textDecoder.decode(bytes);
      } catch (exc) {
        throw new ProtocolError("frame is not valid UTF-8", ErrorCode.BAD_FRAME, { cause: exc });
      }
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (exc) {
      throw new ProtocolError(`cannot decode JSON frame: ${(exc as Error).message}`, ErrorCode.BAD_FRAME, {
        cause: exc,
      });
    }
    return checked(value);
  },
};

/** MessagePack binary frames (undefined fields are left out, as the server omits defaults). */
export const MSGPACK_CODEC: Codec = {
  name: "msgpack",
  subprotocol: SUBPROTOCOLS.msgpack,
  isBinary: true,
  encode(frame: ClientFrame): Uint8Array {
    return msgpackEncode(frame, { ignoreUndefined: true });
  },
  decode(data, maxBytes = MAX_SERVER_FRAME_BYTES): ServerFrame | null {
    if (typeof data === "string") {
      throw new ProtocolError("a msgpack connection got a text frame", ErrorCode.BAD_FRAME);
    }
    const bytes = asBytes(data);
    if (bytes.byteLength > maxBytes) throw tooLarge(bytes.byteLength, maxBytes);
    let value: unknown;
    try {
      value = msgpackDecode(bytes);
    } catch (exc) {
      throw new ProtocolError(`cannot decode MessagePack frame: ${(exc as Error).message}`, ErrorCode.BAD_FRAME, {
        cause: exc,
      });
    }
    return checked(value);
  },
};

/** The codec for a name; raises TypeError for anything but `json` and `msgpack`. */
export function codecFor(name: CodecName): Codec {
  if (name === "json") return JSON_CODEC;
  if (name === "msgpack") return MSGPACK_CODEC;
  throw new TypeError(`unknown codec ${JSON.stringify(name)}; use "json" or "msgpack"`);
}
