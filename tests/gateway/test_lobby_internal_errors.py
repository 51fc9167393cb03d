"""A lobby request that fails on a bug answers 500 `internal` with the documented JSON body and a ref.

Found by an outside probe: an authenticator (`@app.authenticate`) returning claims no codec
carries (an integer of 2^64) made `POST /rooms` answer Starlette's plain-text "Internal Server
Error": no `code`, no `ref` to quote, against protocol section 2 ("Errors have ... the body
{"error": {"code", "message"}}", 500 `internal`).
"""

from __future__ import annotations

from typing import Any

import httpx

from roomwire import App, Identity
from roomwire.testing import serve_app


def bad_claims_app() -> App:
    """An app whose authenticator hands out a claim MessagePack cannot encode."""
    app = App("bad-claims")
    app.room("r", max_players=2)

    @app.authenticate
    def authenticate(request: Any) -> Identity:
        return Identity("p1", {"level": 2**64})

    return app


async def test_claims_no_codec_carries_answer_500_internal_in_the_json_body() -> None:
    async with serve_app(bad_claims_app()) as base, httpx.AsyncClient(base_url=base) as http:
        response = await http.post("/rooms", json={"type": "r"})
    assert response.status_code == 500, response.text
    error = response.json()["error"]
    assert error["code"] == "internal" and "ref " in error["message"], error
