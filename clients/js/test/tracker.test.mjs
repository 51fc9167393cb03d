// Resume bookkeeping without any I/O: event de-dup by seq, ids, and what to resend after a rejoin.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { RoomTracker } from "../dist/index.js";

describe("RoomTracker", () => {
  test("no event is accepted before the first join", () => {
    const tracker = new RoomTracker();
    assert.equal(tracker.lastSeq, null);
    assert.equal(tracker.acceptEvent(1), false);
  });

  test("a fresh join sets the position to joined.seq; later events pass once, in order", () => {
    const tracker = new RoomTracker();
    tracker.joined({ seq: 4, last_id: 0 });
    assert.equal(tracker.lastSeq, 4);
    assert.equal(tracker.acceptEvent(4), false, "at the join point: already part of the state");
    assert.equal(tracker.acceptEvent(5), true);
    assert.equal(tracker.acceptEvent(5), false, "a repeated seq is a duplicate");
    assert.equal(tracker.acceptEvent(8), true, "gaps are events for other players");
    assert.equal(tracker.acceptEvent(7), false, "an older seq never passes");
    assert.equal(tracker.lastSeq, 8);
  });

  test("a resumed join keeps the position so the replay fills the gap; overlap is dropped", () => {
    const tracker = new RoomTracker();
    tracker.joined({ seq: 0, last_id: 0 });
    for (const seq of [1, 2, 3]) assert.ok(tracker.acceptEvent(seq));
    assert.equal(tracker.resumeFrom(), 3);
    tracker.joined({ seq: 6, last_id: 0, resumed: true });
    assert.equal(tracker.lastSeq, 3);
    const delivered = [2, 3, 4, 5, 6, 7].filter((seq) => tracker.acceptEvent(seq));
    assert.deepEqual(delivered, [4, 5, 6, 7]);
  });

  test("a resumed join behind the position says so and moves back, so new events pass", () => {
    const tracker = new RoomTracker(10);
    const outcome = tracker.joined({ seq: 7, last_id: 0, resumed: true });
    assert.equal(outcome.isBehind, true);
    assert.equal(tracker.lastSeq, 7);
    assert.equal(tracker.acceptEvent(8), true);
    assert.equal(new RoomTracker(5).joined({ seq: 9, last_id: 0, resumed: true }).isBehind, false);
  });

  test("a stored position resumes across sessions (constructor since)", () => {
    const tracker = new RoomTracker(10);
    assert.equal(tracker.resumeFrom(), 10);
    tracker.joined({ seq: 12, last_id: 0, resumed: true });
    assert.deepEqual(
      [10, 11, 12].filter((seq) => tracker.acceptEvent(seq)),
      [11, 12],
    );
  });

  test("after history_gone the position is forgotten and the next join starts afresh", () => {
    const tracker = new RoomTracker();
    tracker.joined({ seq: 0, last_id: 0 });
    tracker.acceptEvent(1);
    tracker.forgetPosition();
    assert.equal(tracker.resumeFrom(), undefined);
    tracker.joined({ seq: 50, last_id: 0, resumed: false });
    assert.equal(tracker.acceptEvent(2), false);
    assert.equal(tracker.acceptEvent(51), true);
  });

  test("ids are positive, strictly increasing, and continue after joined.last_id", () => {
    const tracker = new RoomTracker();
    tracker.joined({ seq: 0, last_id: 41 });
    assert.equal(tracker.nextId, 42, "an earlier session's ids must not look like duplicates");
    const ids = ["a", "b", "c"].map((type) => tracker.add(type, null, undefined).id);
    assert.deepEqual(ids, [42, 43, 44]);
  });

  test("ack and reject settle one pending message; a late answer is ignored", () => {
    const tracker = new RoomTracker();
    tracker.joined({ seq: 0, last_id: 0 });
    tracker.add("a", 1, "w1");
    tracker.add("b", 2, "w2");
    assert.equal(tracker.pendingCount, 2);
    assert.equal(tracker.settle(1).waiter, "w1");
    assert.equal(tracker.settle(1), undefined);
    assert.equal(tracker.settle(99), undefined);
    assert.equal(tracker.pendingCount, 1);
  });

  test("a rejoin resends every pending message with its id, in id order, even those <= last_id", () => {
    const tracker = new RoomTracker();
    tracker.joined({ seq: 0, last_id: 0 });
    for (const type of ["m1", "m2", "m3", "m4", "m5"]) tracker.add(type, { type }, type);
    tracker.settle(1); // acked before the drop
    // 2 and 3 may have been skipped by the room (refused before it saw them, e.g. `unavailable`,
    // while 4 was applied): only the room can tell, so they are resent too; it answers `dup`
    // for those it consumed.
    const outcome = tracker.joined({ seq: 9, last_id: 4, resumed: true });
    assert.deepEqual(
      outcome.resend.map((m) => [m.id, m.type]),
      [
        [2, "m2"],
        [3, "m3"],
        [4, "m4"],
        [5, "m5"],
      ],
    );
    assert.equal(tracker.pendingCount, 4, "resent messages stay pending until answered");
    assert.equal(tracker.nextId, 6, "new messages continue after the pending ones");
    // A second drop before any answer: the same ones are resent again, still with their ids.
    const again = tracker.joined({ seq: 9, last_id: 4, resumed: true });
    assert.deepEqual(
      again.resend.map((m) => m.id),
      [2, 3, 4, 5],
    );
  });

  test("a fresh join continues ids after last_id and resends nothing when nothing is pending", () => {
    const tracker = new RoomTracker();
    const outcome = tracker.joined({ seq: 2, last_id: 7 });
    assert.equal(outcome.resend.length, 0);
    assert.equal(tracker.nextId, 8);
  });

  test("drain fails everything pending, in id order", () => {
    const tracker = new RoomTracker();
    tracker.joined({ seq: 0, last_id: 0 });
    tracker.add("a", null, 1);
    tracker.add("b", null, 2);
    assert.deepEqual(
      tracker.drain().map((m) => m.waiter),
      [1, 2],
    );
    assert.equal(tracker.pendingCount, 0);
  });
});
