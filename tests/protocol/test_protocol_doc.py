"""docs/protocol.md documents every frame, field, error code and close code the code defines."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import msgspec
import pytest

from roomwire.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    SUBPROTOCOLS,
    ClientFrame,
    CloseCode,
    ErrorCode,
    ServerFrame,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")
FRAMES: list[Any] = [*typing.get_args(ClientFrame), *typing.get_args(ServerFrame)]


def _section(tag: str) -> str:
    """The text under the `#### \\`tag\\`` heading, up to the next heading."""
    match = re.search(rf"^#### `{re.escape(tag)}`.*?$(.*?)(?=^#{{2,4}} )", DOC, re.S | re.M)
    assert match, f"docs/protocol.md has no '#### `{tag}`' section"
    return match.group(1)


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: f.__struct_config__.tag)
def test_every_frame_and_field_is_documented(frame: Any) -> None:
    tag = frame.__struct_config__.tag
    section = _section(tag)
    assert f'| `t` | `"{tag}"` | yes |' in section
    for field in msgspec.structs.fields(frame):
        required = field.required
        row = re.search(rf"^\| `{field.name}` \| [^|]+ \| (yes|opt[^|]*) \|", section, re.M)
        assert row, f"field {field.name!r} of `{tag}` is not in its table"
        assert (row.group(1) == "yes") == required, f"`{tag}.{field.name}`: required is {required}"


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_every_error_code_is_in_the_error_table(code: ErrorCode) -> None:
    assert re.search(rf"^\| `{code.value}` \| [^|]+ \|", DOC, re.M), (
        f"error code {code.value} is undocumented"
    )


@pytest.mark.parametrize("code", list(CloseCode), ids=lambda c: c.name)
def test_every_close_code_is_in_the_close_table(code: CloseCode) -> None:
    assert re.search(rf"^\| {code.value} \| ", DOC, re.M), f"close code {code.value} is undocumented"


def test_subprotocols_and_default_frame_limit_are_documented() -> None:
    for name in SUBPROTOCOLS:
        assert f"`{name}`" in DOC
    assert f"{DEFAULT_MAX_FRAME_BYTES} bytes" in DOC


def test_every_close_code_the_checklist_names_is_in_the_close_table() -> None:
    checklist = DOC.split("## 14.")[1]
    table = DOC.split("## 11.")[1].split("## 12.")[0]
    named = set(re.findall(r"\b(1\d{3}|4\d{3})\b", checklist))
    assert named, "the checklist names no close codes"
    for code in named:
        assert re.search(rf"^\| {code} \| ", table, re.M), f"section 14 names {code}; section 11 lacks it"
