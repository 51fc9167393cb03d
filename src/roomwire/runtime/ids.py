"""Client message ids of one player: which ids a room consumed, skipped or no longer knows (promise 2).

A high-water mark alone cannot tell an applied id from a skipped one: a message refused before
the room saw it (`unavailable`, `rate_limited`) and resent after a newer id was applied would be
taken for a duplicate. So the room keeps, next to `last_id` (the highest id consumed), the ranges
of ids below it that it skipped, and a `floor` below which it no longer knows anything:

* id > last_id: consume it (the ids in between become a skipped range);
* floor < id <= last_id, inside a skipped range: consume it now (the range shrinks or splits);
* floor < id <= last_id, otherwise: a duplicate (that id was consumed);
* id <= floor: expired; the room cannot tell, so it refuses (`id_expired`) rather than guess.

At most MAX_GAPS ranges are kept; making room for another drops the oldest (lowest) one and
raises the floor to its upper bound. Ids are appended in increasing order, so ranges stay sorted.
"""

from __future__ import annotations

from typing import Literal, Protocol

MAX_GAPS = 32  # skipped ranges remembered per player; a client that skips more is misbehaving

Verdict = Literal["apply", "dup", "expired"]


class IdRecord(Protocol):
    """What the id rules read and update (PlayerRecord and DepartedRecord have these fields)."""

    last_id: int
    gaps: list[int]  # flat [lo, hi, lo, hi, ...], ascending
    floor: int


def take_id(record: IdRecord, msg_id: int) -> Verdict:
    """Decide what to do with a message id, consuming it in `record` when the verdict is apply."""
    last = record.last_id
    if msg_id > last:
        if msg_id > last + 1:
            record.gaps.extend((last + 1, msg_id - 1))
            _trim(record)
        record.last_id = msg_id
        return "apply"
    if msg_id <= record.floor:
        return "expired"
    gaps = record.gaps
    for i in range(0, len(gaps), 2):
        lo, hi = gaps[i], gaps[i + 1]
        if msg_id < lo:
            break
        if msg_id <= hi:
            rest: list[int] = []
            if lo < msg_id:
                rest += (lo, msg_id - 1)
            if msg_id < hi:
                rest += (msg_id + 1, hi)
            gaps[i : i + 2] = rest
            _trim(record)
            return "apply"
    return "dup"


def _trim(record: IdRecord) -> None:
    gaps = record.gaps
    while len(gaps) > 2 * MAX_GAPS:
        record.floor = max(record.floor, gaps[1])
        del gaps[:2]
