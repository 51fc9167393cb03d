/**
 * Resume bookkeeping of one room, free of I/O: the last event seq seen, message ids, and the
 * messages not yet acknowledged.
 *
 * Promise 1 (per-room order) and promise 2 (exactly-once effect) seen from the client:
 * - an event is delivered only if its seq is above every seq delivered before (replays after a
 *   resume may repeat events; gaps are events addressed to other players);
 * - every message gets an id one above the last; after a reconnect every pending message is
 *   resent with its same id, in id order, even those at or below `joined.last_id`: the room may
 *   have skipped such an id (refused before it reached the room, then a newer id was applied), so
 *   only the room can tell. It answers `ack {dup: true}` for those it consumed and applies the
 *   others (docs/protocol.md sections 8 and 9).
 */

import type { JSONValue } from "./frames.js";

/** A message sent with an id and not yet acknowledged or rejected. */
export interface PendingMessage<W> {
  /** Client message id. */
  readonly id: number;
  /** Message type. */
  readonly type: string;
  /** Message data. */
  readonly data: JSONValue;
  /** What the sender waits with (a promise's callbacks), opaque to the tracker. */
  readonly waiter: W;
}

/** What a `joined` frame settles: the messages to send again. */
export interface JoinOutcome<W> {
  /** Every pending message, in id order: send them again with the same ids. */
  readonly resend: PendingMessage<W>[];
  /**
   * True when a resumed join's `seq` is below the position resumed from: the room lost events
   * this client had seen (docs/protocol.md section 9, as `history_gone`). The position moves
   * back to `joined.seq` so that the room's new events are delivered.
   */
  readonly isBehind: boolean;
}

/** The resume state of one room for one player. */
export class RoomTracker<W = undefined> {
  private seq: number | null;
  private next = 1;
  // A Map iterates in insertion order, and ids are inserted in increasing order.
  private readonly pending = new Map<number, PendingMessage<W>>();

  /** `since`: resume after this seq (a stored position, e.g. across a page reload). */
  constructor(since?: number) {
    this.seq = since ?? null;
  }

  /** Seq of the last event delivered (or of the join point); null before the first join. */
  get lastSeq(): number | null {
    return this.seq;
  }

  /** The id the next message will get. */
  get nextId(): number {
    return this.next;
  }

  /** How many messages wait for an ack or a reject. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** The `since` to put in a rejoin: the last seq seen, or undefined to join afresh. */
  resumeFrom(): number | undefined {
    return this.seq ?? undefined;
  }

  /** Forget the position, so that the next join starts afresh (after `history_gone`). */
  forgetPosition(): void {
    this.seq = null;
  }

  /**
   * Record a `joined` frame and list the pending messages to resend (all of them, in id order).
   *
   * A resumed join keeps the position: the replay that follows starts right after it. A fresh
   * join moves it to `joined.seq`, after which live events follow.
   */
  joined(frame: { seq: number; last_id: number; resumed?: boolean | undefined }): JoinOutcome<W> {
    const isBehind = frame.resumed === true && this.seq !== null && frame.seq < this.seq;
    if (!frame.resumed || this.seq === null || isBehind) this.seq = frame.seq;
    if (frame.last_id >= this.next) this.next = frame.last_id + 1;
    // Even ids <= last_id: a high-water mark cannot tell a consumed id from a skipped one.
    return { resend: [...this.pending.values()], isBehind };
  }

  /** True when an event with this seq is new and must be delivered (it then becomes the last). */
  acceptEvent(seq: number): boolean {
    if (this.seq === null || seq <= this.seq) return false;
    this.seq = seq;
    return true;
  }

  /** Give a new message the next id and keep it until it is settled. */
  add(type: string, data: JSONValue, waiter: W): PendingMessage<W> {
    const message: PendingMessage<W> = { id: this.next, type, data, waiter };
    this.next += 1;
    this.pending.set(message.id, message);
    return message;
  }

  /** The pending message with this id, removed (on ack or reject); undefined if unknown. */
  settle(id: number): PendingMessage<W> | undefined {
    const message = this.pending.get(id);
    if (message !== undefined) this.pending.delete(id);
    return message;
  }

  /** Every pending message, removed, in id order (the room is gone: fail them all). */
  drain(): PendingMessage<W>[] {
    const all = [...this.pending.values()];
    this.pending.clear();
    return all;
  }

  /** Pending messages in id order, kept. */
  unsettled(): PendingMessage<W>[] {
    return [...this.pending.values()];
  }
}
