"""StateMirror: a client's copy of a synced room's state, kept by `@state` and `@patch` events.

Sans-I/O: feed it the room's events in order (`on_event`) and the history gaps (`invalidate`);
it keeps `state`, says whether it is `ready` (equal to the server's view at the last event fed)
and calls the `on_change` callbacks. Every SDK (and roomwire.testing) drives the same class.

States: `empty` (no `@state` yet) → `ready` on `@state`; `ready` → `stale` on `invalidate`
(events were missed) or on a patch that does not fit; `stale` → `ready` on the next `@state`
(the server sends one to every joining, rejoining or resuming connection). Patches are ignored
unless ready. docs/protocol.md §15.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from roomwire.protocol.patch import DEL, SET, Op, PatchError, PathItem, apply_patch, get_path

PATCH_EVENT = "@patch"
STATE_EVENT = "@state"
PRESENCE_EVENT = "@presence"
HOST_EVENT = "@host"  # a relay room's host: {"player": id or None} (docs/protocol.md §16)
ANY = "*"  # in an `on_change` path: every key of an object, or every index of a list

MirrorStatus = Literal["empty", "ready", "stale"]


@dataclass(frozen=True, slots=True)
class Change:
    """One changed place of the mirrored state: its concrete path, new value, or removed."""

    path: tuple[PathItem, ...]
    value: Any
    removed: bool = False


ChangeCallback = Callable[[Change], object]
PresenceCallback = Callable[[str, str], object]  # (player, "connected" | "reconnecting" | "left")
HostCallback = Callable[[str | None], object]
_ABSENT: Any = object()


class StateMirror:
    """The mirrored state of one room for one player."""

    def __init__(self) -> None:
        self.state: Any = None
        self.status: MirrorStatus = "empty"
        self.seq = 0  # room seq of the last `@state` or `@patch` applied
        self._watchers: list[tuple[tuple[PathItem, ...], ChangeCallback]] = []
        # Who is in the room: player → "connected" | "reconnecting" (from `@presence`).
        self.presence: dict[str, str] = {}
        self._presence_watchers: list[PresenceCallback] = []
        self.host: str | None = None  # a relay room's host (from `@host`)
        self._host_watchers: list[HostCallback] = []

    @property
    def ready(self) -> bool:
        """True when `state` equals the server's (view of the) state at the last event fed."""
        return self.status == "ready"

    def on_change(self, path: str | Sequence[PathItem], fn: ChangeCallback) -> Callable[[], None]:
        """Call `fn(change)` whenever the value at `path` changes; returns a function to stop.

        `path` is a key or a sequence of keys/indexes; "*" matches any key or index, so
        `("players", "*")` reports each player added (value), changed or removed (`removed`).
        A change below `path` counts as a change of `path`. A `@state` reports every watched
        place whose value differs from before.
        """
        pattern: tuple[PathItem, ...] = (path,) if isinstance(path, str) else tuple(path)
        entry = (pattern, fn)
        self._watchers.append(entry)

        def stop() -> None:
            if entry in self._watchers:
                self._watchers.remove(entry)

        return stop

    def on_presence(self, fn: PresenceCallback) -> Callable[[], None]:
        """Call `fn(player, status)` for each player whose presence changes (`left`: gone)."""
        self._presence_watchers.append(fn)

        def stop() -> None:
            if fn in self._presence_watchers:
                self._presence_watchers.remove(fn)

        return stop

    def on_host(self, fn: HostCallback) -> Callable[[], None]:
        """Call `fn(host)` when the relay room's host changes (None: no host)."""
        self._host_watchers.append(fn)

        def stop() -> None:
            if fn in self._host_watchers:
                self._host_watchers.remove(fn)

        return stop

    def on_event(self, seq: int, type: str, data: Any) -> bool:
        """Feed one room event (in seq order); True if it was a sync event (`@state`, `@patch`,
        `@presence`, `@host`)."""
        if type == HOST_EVENT:
            player = data.get("player") if isinstance(data, dict) else None
            host = player if isinstance(player, str) else None
            if host != self.host:
                self.host = host
                for fn in list(self._host_watchers):
                    fn(host)
            return True
        if type == PRESENCE_EVENT:
            self._set_presence(data if isinstance(data, dict) else {})
            return True
        if type == STATE_EVENT:
            self.status = "ready"  # before the callbacks run: they see a current mirror
            self._apply([[SET, [], data]], seq)
            return True
        if type == PATCH_EVENT:
            if self.status == "ready":
                try:
                    if not isinstance(data, list):
                        raise PatchError(f"a @patch carries a list of operations, got {data!r}")
                    self._apply(data, seq)
                except PatchError:
                    self.status = "stale"  # wait for the next @state (docs/protocol.md §15)
            return True
        return False

    def invalidate(self) -> None:
        """Events were missed (a history gap): patches are ignored until the next `@state`."""
        if self.status == "ready":
            self.status = "stale"

    def _set_presence(self, new: dict[str, Any]) -> None:
        old, self.presence = self.presence, {str(k): str(v) for k, v in new.items()}
        changes = [(pid, status) for pid, status in self.presence.items() if old.get(pid) != status]
        changes += [(pid, "left") for pid in old if pid not in self.presence]
        for pid, status in changes:
            for fn in list(self._presence_watchers):
                fn(pid, status)

    def _apply(self, ops: list[Op], seq: int) -> None:
        if not self._watchers:
            self.state = apply_patch(self.state, ops)
            self.seq = seq
            return
        # Per concrete watched path: its value before the first op that touched it, and
        # whether an op below it changed it in place.
        before: dict[tuple[PathItem, ...], Any] = {}
        inside: set[tuple[PathItem, ...]] = set()
        for op in ops:
            op_path = tuple(op[1]) if isinstance(op, list | tuple) and len(op) > 1 else ()
            touched = self._touched(op_path, self.state)
            for path, is_inside in touched:
                before.setdefault(path, _value(self.state, path))
                if is_inside:
                    inside.add(path)
            self.state = apply_patch(self.state, [op])
            for path, _ in self._touched(op_path, self.state):
                before.setdefault(path, _ABSENT)  # appeared with this op
        self.seq = seq
        for path, old in before.items():
            new = _value(self.state, path)
            if path in inside or (old is not new and old != new):
                change = Change(path, None if new is _ABSENT else new, new is _ABSENT)
                for pattern, fn in list(self._watchers):
                    if _matches(pattern, path):
                        fn(change)

    def _touched(self, op_path: tuple[PathItem, ...], root: Any) -> list[tuple[tuple[PathItem, ...], bool]]:
        """Concrete watched paths an op at `op_path` may change in `root`, and if from inside."""
        out: list[tuple[tuple[PathItem, ...], bool]] = []
        for pattern, _ in self._watchers:
            if len(op_path) > len(pattern):  # the op is below the watched place
                if _matches(pattern, op_path[: len(pattern)]):
                    out.append((op_path[: len(pattern)], True))
                continue
            if not _matches(pattern[: len(op_path)], op_path):
                continue
            # The op replaces an ancestor of (or the) watched place: expand the rest of the
            # pattern over what `root` holds there.
            paths = [op_path]
            for item in pattern[len(op_path) :]:
                if item != ANY:
                    paths = [(*p, item) for p in paths]
                    continue
                grown: list[tuple[PathItem, ...]] = []
                for p in paths:
                    node = _value(root, p)
                    keys: Sequence[PathItem] = (
                        list(node)
                        if isinstance(node, dict)
                        else range(len(node))
                        if isinstance(node, list)
                        else ()
                    )
                    grown.extend((*p, k) for k in keys)
                paths = grown
            out.extend((p, False) for p in paths)
        return out


def _matches(pattern: Sequence[PathItem], path: Sequence[PathItem]) -> bool:
    return len(pattern) == len(path) and all(q in (ANY, p) for q, p in zip(pattern, path, strict=True))


def _value(root: Any, path: Sequence[PathItem]) -> Any:
    try:
        return get_path(root, path)
    except KeyError:
        return _ABSENT


__all__ = ["ANY", "DEL", "SET", "Change", "HostCallback", "MirrorStatus", "PresenceCallback", "StateMirror"]
