"""State patches (protocol §15): diff and apply are inverse, and the mirror reports changes."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roomwire.protocol.mirror import Change, StateMirror
from roomwire.protocol.patch import PatchError, apply_patch, copy_value, diff

# Plain data as a synced state holds it; no bools mixed with numbers (True == 1 in Python, so
# the diff cannot tell them apart: docs/protocol.md §15 says so).
scalars = st.one_of(st.none(), st.integers(-5, 5), st.text("ab", max_size=2))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text("abc", max_size=2), inner, max_size=4),
        st.tuples(inner, inner),
    ),
    max_leaves=12,
)
states = st.dictionaries(st.text("abcd", max_size=2), values, max_size=5)


def wire(value: Any) -> Any:
    """What a client decodes: tuples become lists."""
    return msgspec.json.decode(msgspec.json.encode(value))


@settings(max_examples=300, deadline=None)
@given(st.lists(states, min_size=1, max_size=6))
def test_applying_each_patch_gives_the_next_state(sequence: list[dict[str, Any]]) -> None:
    server = copy_value(sequence[0])
    client = wire(sequence[0])
    for new in sequence[1:]:
        ops = diff(server, new)
        client = apply_patch(client, wire(ops))
        server = apply_patch(
            server, [[op[0], op[1], copy_value(op[2])] if len(op) == 3 else op for op in ops]
        )
        assert client == wire(new)
        assert wire(server) == wire(new)
        assert diff(server, new) == []


def test_no_ops_when_nothing_changed_even_tuple_against_list() -> None:
    state = {"pos": (1, 2), "players": {"a": {"hp": 3, "at": (0, 0)}}}
    assert diff(copy_value(state), state) == []
    assert diff(state, wire(state)) == []  # a state decoded after a rollback has lists


def test_one_field_changes_into_one_short_op() -> None:
    state = {"players": {f"p{i}": {"pos": (i, i), "score": i} for i in range(8)}}
    old = copy_value(state)
    state["players"]["p3"]["score"] = 10
    assert diff(old, state) == [["set", ["players", "p3", "score"], 10]]


def test_list_appends_and_truncations_are_index_ops() -> None:
    assert diff({"log": [1, 2]}, {"log": [1, 2, 3]}) == [["set", ["log", 2], 3]]
    assert diff({"log": [1, 2, 3, 4]}, {"log": [1, 2]}) == [["del", ["log", 3]], ["del", ["log", 2]]]
    assert diff({"log": [1, 2, 3, 4]}, {"log": [0, 1, 2, 3]}) == [["set", ["log"], [0, 1, 2, 3]]]


def test_values_in_a_patch_are_copies() -> None:
    state: dict[str, Any] = {"a": {}}
    ops = diff({}, state)
    state["a"]["x"] = 1
    assert ops == [["set", ["a"], {}]]


def test_non_plain_data_and_non_string_keys_are_refused_with_the_path() -> None:
    with pytest.raises(TypeError, match=r"set at \['bad'\]"):
        diff({}, {"bad": {1, 2}})
    with pytest.raises(TypeError, match="object keys must be strings"):
        diff({}, {"m": {3: "x"}})


@pytest.mark.parametrize(
    "ops",
    [
        [["set", ["missing", "x"], 1]],
        [["del", ["nope"]]],
        [["set", ["list", 5], 1]],
        [["frob", ["a"]]],
        ["not an op"],
        [["del", []]],
        [["set", ["list", -1], 1]],
        [["set", ["nested", -1, "x"], 1]],
        [["set", ["nested", True, "x"], 1]],
        [["del", ["a", "x"]]],
    ],
)
def test_a_patch_that_does_not_fit_raises_patch_error(ops: list[Any]) -> None:
    with pytest.raises(PatchError):
        apply_patch({"list": [1], "a": 1, "nested": [{"x": 0}, {"x": 1}]}, ops)


def test_mirror_reports_changes_additions_and_removals() -> None:
    mirror = StateMirror()
    seen: list[Change] = []
    mirror.on_change(("players", "*"), seen.append)
    scores: list[Any] = []
    mirror.on_change(("players", "a", "score"), lambda c: scores.append(c.value))
    assert mirror.on_event(1, "@state", {"players": {"a": {"score": 0}}})
    assert seen == [Change(("players", "a"), {"score": 0})] and scores == [0]
    seen.clear()
    mirror.on_event(
        2, "@patch", [["set", ["players", "a", "score"], 5], ["set", ["players", "b"], {"score": 1}]]
    )
    assert seen == [Change(("players", "a"), {"score": 5}), Change(("players", "b"), {"score": 1})]
    assert scores == [0, 5]
    seen.clear()
    mirror.on_event(3, "@patch", [["del", ["players", "a"]]])
    assert seen == [Change(("players", "a"), None, removed=True)]
    assert scores == [0, 5, None]
    assert not mirror.on_event(4, "moved", {})
    assert mirror.state == {"players": {"b": {"score": 1}}} and mirror.seq == 3


def test_callbacks_of_a_state_see_the_mirror_ready() -> None:
    mirror = StateMirror()
    seen: list[tuple[bool, Any]] = []
    mirror.on_change("a", lambda change: seen.append((mirror.ready, change.value)))
    mirror.on_event(1, "@state", {"a": 1})
    mirror.invalidate()
    mirror.on_event(2, "@state", {"a": 2})  # stale -> ready
    assert seen == [(True, 1), (True, 2)]


def test_mirror_goes_stale_on_a_gap_or_a_bad_patch_until_the_next_state() -> None:
    mirror = StateMirror()
    mirror.on_event(1, "@patch", [["set", ["x"], 1]])
    assert mirror.status == "empty" and mirror.state is None  # patches before any @state: ignored
    mirror.on_event(2, "@state", {"x": 0})
    mirror.invalidate()
    mirror.on_event(3, "@patch", [["set", ["x"], 2]])
    assert mirror.status == "stale" and mirror.state == {"x": 0}
    mirror.on_event(4, "@state", {"x": 3})
    mirror.on_event(5, "@patch", [["del", ["nope"]]])
    assert mirror.status == "stale"
    mirror.on_event(6, "@state", {"x": 4})
    assert mirror.ready and mirror.state == {"x": 4}
