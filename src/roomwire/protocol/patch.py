"""State patches of synced rooms: compute one (`diff`), apply one (`apply_patch`). Sans-I/O.

A patch is a list of operations, each a JSON/MessagePack array (docs/protocol.md §15):

    ["set", path, value]   put `value` at `path`: a new or replaced object key, a replaced list
                           element, or (index == length) an element appended to a list
    ["del", path]          remove the object key, or the list element (later ones shift down)

`path` is an array: strings are object keys, integers list indexes; `[]` is the whole state.
Operations apply in order. The server keeps, per view, a copy of what the client last got and
diffs the new state against it after each step; the client applies the same operations to its
mirror with `apply_patch`, so both halves of the representation live here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from roomwire.protocol.errors import ProtocolError

PathItem = str | int
Op = list[Any]  # ["set", path, value] or ["del", path]

SET = "set"
DEL = "del"

_SCALARS = (str, int, float, bool, type(None))


class PatchError(ProtocolError):
    """A patch does not fit the state it is applied to (a path that does not exist, a bad op)."""


def copy_value(value: Any, path: tuple[PathItem, ...] = ()) -> Any:
    """A deep copy of plain data (dict with str keys, list, tuple, str, number, bool, None).

    Tuples stay tuples, so the copy compares equal to the original (the diff's fast path).

    Raises:
        TypeError: a value is not plain data, or an object key is not a string (object keys
            are strings on the JSON wire, so a path could not name them unambiguously).
    """
    kind = type(value)
    if kind is dict:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"synced state: object keys must be strings, got {key!r} at {list(path)}")
            out[key] = item if type(item) in _SCALARS else copy_value(item, (*path, key))
        return out
    if kind is list:
        return [
            item if type(item) in _SCALARS else copy_value(item, (*path, i)) for i, item in enumerate(value)
        ]
    if kind is tuple:
        for item in value:
            if type(item) not in _SCALARS:
                return tuple(
                    item if type(item) in _SCALARS else copy_value(item, (*path, i))
                    for i, item in enumerate(value)
                )
        return value  # immutable all the way down: no copy needed
    if isinstance(value, _SCALARS):
        return value
    raise TypeError(f"synced state must be plain data; got {kind.__name__} at {list(path)}")


class DiffMemo:
    """Diffs of object subtrees already computed, for diffing several views of one state.

    Views usually hold the same live objects (`room.state["players"]` in every player's view),
    and every player's copy of such a subtree is equal when they got the same patches. A memo
    keyed by the new subtree's identity reuses the operations found for one player for every
    other whose old subtree compares equal (one C-level `==` instead of a walk in Python).
    Valid while nothing is mutated: make a new one per checkpoint.
    """

    __slots__ = ("entries",)

    def __init__(self) -> None:
        # id(new subtree) → (the subtree, kept alive so the id stays its; old subtree; ops
        # with paths relative to the subtree)
        self.entries: dict[int, tuple[Any, Any, list[Op]]] = {}


def diff(old: Any, new: Any, memo: DiffMemo | None = None) -> list[Op]:
    """The operations that turn `old` into `new` (empty when they are equal).

    Equal subtrees are skipped by one C-level `==`, so a step that changed one field costs
    about the depth of that field, not the size of the state. Values in the result are copies
    (`copy_value`): later changes to `new` do not alter the patch (nor must the caller change
    them: with a `memo`, several results may share them).

    Raises:
        TypeError: `new` holds something that is not plain data (see `copy_value`).
    """
    ops: list[Op] = []
    # A dict root is compared key by key at once: a whole-state `==` first would compare the
    # unchanged keys twice whenever something changed.
    if (type(old) is dict and type(new) is dict) or old != new:
        _diff(old, new, [], ops, memo)
    return ops


def _seq_equal(a: Any, b: Any) -> bool:
    """True for a list and a tuple with equal items: one wire value (an array).

    A state decoded after a recovery or a rollback has lists where handlers wrote tuples.
    """
    ta, tb = type(a), type(b)
    return ta is not tb and ta in _SEQS and tb in _SEQS and len(a) == len(b) and list(a) == list(b)


_SEQS = (list, tuple)
_CONTAINERS = (dict, list)
_MISSING: Any = object()


def _diff(a: Any, b: Any, path: list[PathItem], ops: list[Op], memo: DiffMemo | None) -> None:
    """Append the ops for a != b at `path` (the caller checked `a != b`), through the memo."""
    if memo is None or not path or type(b) not in _CONTAINERS:
        _diff_node(a, b, path, ops, memo)
        return
    entry = memo.entries.get(id(b))
    if entry is not None and type(entry[1]) is type(a) and entry[1] == a:
        ops.extend([op[0], [*path, *op[1]], *op[2:]] for op in entry[2])
        return
    start = len(ops)
    _diff_node(a, b, path, ops, memo)
    depth = len(path)
    memo.entries[id(b)] = (b, a, [[op[0], op[1][depth:], *op[2:]] for op in ops[start:]])


def _diff_node(a: Any, b: Any, path: list[PathItem], ops: list[Op], memo: DiffMemo | None) -> None:
    """The ops for a != b at `path`: per key, per index, or the whole value."""
    ta, tb = type(a), type(b)
    if ta is dict and tb is dict:
        added = 0
        for key, value in b.items():
            old = a.get(key, _MISSING)
            if old is _MISSING:
                if type(key) is not str:
                    raise TypeError(f"synced state: object keys must be strings, got {key!r} at {path}")
                ops.append([SET, [*path, key], copy_value(value, (*path, key))])
                added += 1
            elif old != value:
                _diff(old, value, [*path, key], ops, memo)
        if len(a) + added > len(b):  # some key of `a` is gone
            for key in a:
                if key not in b:
                    ops.append([DEL, [*path, key]])
        return
    if ta is list and tb is list:
        common = min(len(a), len(b))
        changed = [i for i in range(common) if a[i] != b[i]]
        # An insert or removal near the front changes every later index: send the list whole.
        if len(changed) <= len(b) // 2:
            for i in changed:
                _diff(a[i], b[i], [*path, i], ops, memo)
            for i in range(common, len(b)):
                ops.append([SET, [*path, i], copy_value(b[i], (*path, i))])
            for i in range(len(a) - 1, common - 1, -1):  # from the end: no index shifts
                ops.append([DEL, [*path, i]])
            return
    if _seq_equal(a, b):
        return
    ops.append([SET, list(path), copy_value(b, tuple(path))])


def apply_patch(state: Any, ops: list[Op]) -> Any:
    """Apply `ops` to `state` in place and return the new root (a `[]` path replaces it).

    Values are used as given (not copied): pass freshly decoded data.

    Raises:
        PatchError: an op is malformed or its path does not exist in `state`; `state` may then
            be partly patched, so the caller must get a full state again (docs/protocol.md §15).
    """
    for op in ops:
        if not isinstance(op, list | tuple) or len(op) < 2 or not isinstance(op[1], list | tuple):
            raise PatchError(f"malformed patch operation {op!r}")
        kind, path = op[0], op[1]
        if kind == SET and len(op) == 3:
            if not path:
                state = op[2]
                continue
            parent, key = _parent(state, path)
            if (isinstance(parent, dict) and isinstance(key, str)) or (
                _has(parent, key) and type(parent) is list
            ):
                parent[key] = op[2]
            elif type(parent) is list and key == len(parent) and type(key) is int:
                parent.append(op[2])
            else:
                raise PatchError(f"cannot set {list(path)}: no such place in the state")
        elif kind == DEL and len(op) == 2 and path:
            parent, key = _parent(state, path)
            if _has(parent, key) and type(parent) is not tuple:
                del parent[key]
            else:
                raise PatchError(f"cannot delete {list(path)}: no such place in the state")
        else:
            raise PatchError(f"malformed patch operation {op!r}")
    return state


def get_path(state: Any, path: Sequence[PathItem]) -> Any:
    """The value at `path` in `state`.

    Raises:
        KeyError: the path does not exist.
    """
    node = state
    for item in path:
        if not _has(node, item):
            raise KeyError(list(path))
        node = node[item]
    return node


def _has(node: Any, key: Any) -> bool:
    """True when `key` names an existing place in `node` (a str key of a dict, an index of a list)."""
    if isinstance(node, dict):
        return isinstance(key, str) and key in node
    if isinstance(node, list | tuple):
        return type(key) is int and 0 <= key < len(node)
    return False


def _parent(state: Any, path: list[Any] | tuple[Any, ...]) -> tuple[Any, Any]:
    """The container that holds `path`'s last item, and that item (checked by the caller)."""
    node = state
    for item in path[:-1]:
        # Only str keys and non-negative int indexes: Python would also take -1 or True.
        if type(item) is not str and (type(item) is not int or item < 0):
            raise PatchError(f"bad item {item!r} in patch path {list(path)}")
        try:
            node = node[item]
        except (LookupError, TypeError):
            raise PatchError(f"patch path {list(path)} does not exist in the state") from None
    return node, path[-1]
