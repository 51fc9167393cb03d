"""The gateway frames broadcasts itself: the bytes must be exactly what websockets would send."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from roomwire.gateway._uvicorn_ws import frame_bytes

# Every boundary of the three length encodings (7-bit, 16-bit, 64-bit), and an empty payload.
SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("text", [True, False])
def test_frame_bytes_match_websockets_serialization(size: int, text: bool) -> None:
    payload = bytes(i % 251 for i in range(size))
    opcode = Opcode.TEXT if text else Opcode.BINARY

    expected = Frame(opcode, payload).serialize(mask=False, extensions=[])

    assert frame_bytes(payload, text=text) == expected
